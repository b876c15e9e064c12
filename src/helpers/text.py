"""Text preparation for the classical models: normalisation, lemmatization, stop words.

The source article lower-cases the comments, keeps only Russian letters, lemmatizes them with
Yandex's mystem (through ``pymystem3``) and drops stop words before TF-IDF. ``pymystem3`` downloads
the mystem binary on first use, which fails on an offline machine, so :class:`Lemmatizer` falls
back to ``pymorphy3`` (whose dictionaries are an ordinary pip package) and says which it uses.
"""

from __future__ import annotations

import logging
import os
import re
import socket
from collections.abc import Iterable, Sequence
from urllib.parse import urlparse

from tqdm import tqdm

logger = logging.getLogger(__name__)

_NOT_CYRILLIC = re.compile(r"[^а-яё ]+")
_SPACES = re.compile(r" +")


def normalize_for_classical(text: str) -> str:
    """Lower-case ``text`` and keep only Cyrillic letters (with ё) and single spaces.

    Everything else (Latin letters, digits, punctuation, emoji, newlines) becomes a space, so that
    ``"Привет,мир!"`` still gives two words.
    """
    text = _NOT_CYRILLIC.sub(" ", text.lower())
    return _SPACES.sub(" ", text).strip()


def _mystem_reachable(timeout: float = 3.0) -> tuple[bool, str]:
    """Whether pymystem3 has its binary or can download it; the reason when it cannot.

    ``pymystem3`` downloads without a timeout, which can hang behind a firewall, so the host is
    probed first with a short one.
    """
    from pymystem3 import constants, mystem

    if os.path.isfile(constants.MYSTEM_BIN):
        return True, f"mystem binary found at {constants.MYSTEM_BIN}"
    url = mystem._get_tarball_url()
    host = urlparse(url).hostname or ""
    try:
        socket.create_connection((host, 80), timeout=timeout).close()
    except OSError as error:
        return False, f"the mystem binary is not installed and {host} is unreachable: {error}"
    return True, f"mystem binary will be downloaded from {url}"


class Lemmatizer:
    """Lemmatize Russian words with mystem if available, else pymorphy3, caching every word.

    Each distinct word goes to the backend once; afterwards it is a dictionary look-up, which is
    what makes lemmatizing the whole corpus take seconds (it has only tens of thousands of distinct
    words).

    ``backend`` is ``"auto"`` (mystem, falling back to pymorphy3), ``"mystem"`` or
    ``"pymorphy3"``. After construction, :attr:`backend` names the one in use and :attr:`reason`
    says why it was chosen; :attr:`backend_calls` counts words sent to the backend. The choice
    is logged at info level (``verbose``), else at debug level.
    """

    def __init__(self, backend: str = "auto", verbose: bool = True) -> None:
        if backend not in {"auto", "mystem", "pymorphy3"}:
            raise ValueError(f"backend must be 'auto', 'mystem' or 'pymorphy3', not {backend!r}")
        self.cache: dict[str, str] = {}
        self.backend_calls = 0
        self._mystem = None
        self._morph = None
        if backend in {"auto", "mystem"}:
            error = self._start_mystem()
            if error is None:
                self.backend, self.reason = "mystem", "pymystem3 works (as in the source article)"
            elif backend == "mystem":
                raise RuntimeError(f"mystem is not available: {error}")
            else:
                self._start_pymorphy()
                self.backend = "pymorphy3"
                self.reason = f"fallback, mystem is not available: {error}"
        else:
            self._start_pymorphy()
            self.backend, self.reason = "pymorphy3", "pymorphy3 was asked for"
        logger.log(logging.INFO if verbose else logging.DEBUG, "Lemmatizer: %s (%s)",
                   self.backend, self.reason)

    def _start_mystem(self) -> str | None:
        """Start mystem; return ``None`` on success, else why it failed."""
        try:
            reachable, why = _mystem_reachable()
            if not reachable:
                return why
            from pymystem3 import Mystem

            self._mystem = Mystem(entire_input=True)
            self._mystem.analyze("проверка")  # fails here if the binary is broken
        except Exception as error:  # a failed download raises requests/OS/tar errors alike
            self._mystem = None
            return f"{type(error).__name__}: {error}"
        return None

    def _start_pymorphy(self) -> None:
        import pymorphy3

        self._morph = pymorphy3.MorphAnalyzer(lang="ru")

    def _backend_lemmas(self, words: list[str], progress: bool = False) -> list[str]:
        """Lemmas of ``words`` (distinct, not cached) from the backend, in order."""
        self.backend_calls += len(words)
        if self._morph is not None:
            bar = tqdm(words, desc="lemmatize distinct words", disable=not progress)
            return [self._morph.parse(word)[0].normal_form for word in bar]
        # One mystem call for all words: starting mystem per word would be far slower. The lemma of
        # each token is matched back by its text, so the alignment cannot drift.
        lemmas: dict[str, str] = {}
        for token in self._mystem.analyze("\n".join(words)):
            analysis = token.get("analysis")
            if analysis:
                lemmas[token["text"]] = analysis[0]["lex"]
        return [lemmas.get(word, word) for word in words]

    def lemmatize_words(self, words: Iterable[str], progress: bool = False) -> list[str]:
        """The lemma of each word, each distinct new word sent to the backend once."""
        words = list(words)
        new = list(dict.fromkeys(w for w in words if w not in self.cache))
        if new:
            self.cache.update(zip(new, self._backend_lemmas(new, progress), strict=True))
        return [self.cache[w] for w in words]

    def lemmatize(self, text: str) -> str:
        """Lemmatize a normalised text (space-separated words)."""
        return " ".join(self.lemmatize_words(text.split()))


def russian_stop_words() -> frozenset[str]:
    """Russian stop words from the maintained ``stop-words`` package (a few hundred words)."""
    from stop_words import get_stop_words

    return frozenset(get_stop_words("russian"))


def preprocess_for_classical(
    texts: Sequence[str], lemmatizer: Lemmatizer, stop_words: Iterable[str] = (),
    progress: bool = True,
) -> list[str]:
    """Normalise, lemmatize and drop stop words: the article's input for TF-IDF.

    All distinct words of the corpus are lemmatized in one batch first (one mystem call, or one
    pymorphy3 parse per word); then each text is rebuilt from the cache. A word is dropped when
    its lemma is in ``stop_words`` (so every inflected form of a listed lemma goes; an inflected
    entry of the list, which is no lemma, never matches).
    """
    stop = frozenset(stop_words)
    normalised = [normalize_for_classical(t) for t in texts]
    distinct = dict.fromkeys(w for t in normalised for w in t.split())
    lemmatizer.lemmatize_words(distinct, progress=progress)
    result = []
    for text in tqdm(normalised, desc="rebuild texts", disable=not progress):
        lemmas = lemmatizer.lemmatize_words(text.split())
        result.append(" ".join(lemma for lemma in lemmas if lemma not in stop))
    return result
