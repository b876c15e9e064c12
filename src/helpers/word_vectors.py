"""Pretrained Russian word vectors (navec) for a word-level BiLSTM (chapters 2, 4 and 6).

Tang et al. (2019) start their BiLSTM student from pretrained word2vec vectors; the article's
BiLSTM learns its embeddings from the ~10k training comments alone. navec (the Natasha project,
MIT licence) holds 300-dimensional vectors of 250,000 lower-case Russian words, trained on about
a billion tokens of news and product-quantised into a 26.6 MB file. That file ships inside the
``natasha`` wheel, so ``pip install`` brings it from the package registry; :func:`locate_navec`
finds it there **without importing** ``natasha`` (whose ``pymorphy2`` dependency does not import
on Python 3.11+), or downloads it from its official location, and checks its sha256 either way.

The model's vocabulary (:func:`build_word_vocabulary`) is the words of the training texts plus
the most frequent navec words: the latter give a meaning to words the training set never saw,
which is what pretrained vectors are for, while the embedding table (a deployment cost: every
row ships with the model) stays a fraction of navec's. Training words navec lacks (crude words
are rare in news) get a random vector of their own, learned from the labels (Kim, 2014), when
they occur at least :data:`MIN_NEW_WORD_COUNT` times; rarer ones become ``[UNK]``.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers

from .bpe import PAD_TOKEN, UNK_TOKEN
from .config import SEED, BookConfig
from .data import ChecksumError, Splits, download_file, verify_checksum
from .encoding import load_tokenizer, save_tokenizer
from .errors import UserError
from .provenance import artifact_key, modules_fingerprint, texts_fingerprint

NAVEC_FILE = "navec_news_v1_1B_250K_300d_100q.tar"
NAVEC_SHA256 = "f07270833d78523edc5781538d67038e95b43975e4a7ae757c693b687f9cbfca"
NAVEC_URL = f"https://storage.yandexcloud.net/natasha-navec/packs/{NAVEC_FILE}"
NAVEC_IN_NATASHA = f"natasha/data/emb/{NAVEC_FILE}"  # inside the natasha 1.6.0 wheel
NAVEC_DIM = 300
EXTRA_WORDS = 25_000  # navec's most frequent words, kept with the training texts' navec words
MIN_NEW_WORD_COUNT = 2  # a training word navec lacks gets its own vector from this many uses
# Words are runs of letters and digits, with inner hyphens ("что-то"), as navec's vocabulary;
# everything between them (spaces, punctuation, a dash standing alone) separates words.
SEPARATORS = r"(?:[^\w-]|(?<!\w)-|-(?!\w))+"


class WordVectorsError(UserError, FileNotFoundError):
    """The navec file is neither installed, nor cached, nor downloadable."""


def locate_navec(config: BookConfig, download: bool = True) -> Path:
    """Path of the checked navec file: from the installed ``natasha`` wheel (never imported),
    else the book's data cache, else downloaded there from :data:`NAVEC_URL`.

    Raises :class:`WordVectorsError` (what to install or download) when none of them works, and
    :class:`helpers.data.ChecksumError` for a file whose sha256 is not :data:`NAVEC_SHA256`.
    """
    candidates = []
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        candidates.append(Path(importlib.metadata.distribution("natasha").locate_file(
            NAVEC_IN_NATASHA)))
    cached = config.data_cache_dir / NAVEC_FILE
    candidates.append(cached)
    for path in candidates:
        if path.is_file():
            verify_checksum(path, NAVEC_SHA256)
            return path
    if download:
        try:
            return download_file(NAVEC_URL, cached, NAVEC_SHA256)
        except ChecksumError:
            raise
        except OSError as error:
            raise WordVectorsError(
                f"navec's vectors are not installed and could not be downloaded ({error}). "
                f"Install them with `pip install natasha==1.6.0` (the wheel holds "
                f"{NAVEC_FILE}), or download {NAVEC_URL} to {cached}.") from error
    raise WordVectorsError(f"navec's vectors are not installed: `pip install natasha==1.6.0`, "
                           f"or download {NAVEC_URL} to {cached}.")


@dataclass(frozen=True)
class WordVectors:
    """navec's words (alphabetical), their counts in its news corpus, their vectors, and the
    vector navec gives unknown words."""

    words: list[str]
    counts: np.ndarray
    vectors: np.ndarray
    unk_vector: np.ndarray

    def __post_init__(self) -> None:
        if self.vectors.shape != (len(self.words), NAVEC_DIM) or len(self.counts) != len(
                self.words):
            raise ValueError("words, counts and vectors of WordVectors do not match")

    @cached_property
    def index(self) -> dict[str, int]:
        """Word -> row of :attr:`vectors` (built once)."""
        return {word: i for i, word in enumerate(self.words)}


def load_navec(path: str | Path) -> WordVectors:
    """The dense vectors of a navec file (``navec``'s product quantisation unpacked: 300 MB of
    float32 for its 250,000 words), without its ``<unk>`` and ``<pad>`` rows among the words."""
    from navec import Navec

    navec = Navec.load(str(path))
    words = list(navec.vocab.words)
    vectors = navec.pq.unpack().astype(np.float32, copy=False)
    keep = [i for i, word in enumerate(words) if word not in ("<unk>", "<pad>")]
    return WordVectors(words=[words[i] for i in keep],
                       counts=np.asarray(navec.vocab.counts, dtype=np.int64)[keep],
                       vectors=vectors[keep], unk_vector=vectors[words.index("<unk>")])


def _normalizer() -> normalizers.Normalizer:
    return normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])


def _pre_tokenizer() -> pre_tokenizers.PreTokenizer:
    return pre_tokenizers.Split(Regex(SEPARATORS), behavior="removed")


def split_words(texts: Sequence[str]) -> list[list[str]]:
    """Each text's words, lower-cased, exactly as :func:`word_tokenizer` splits them."""
    normalizer, pre_tokenizer = _normalizer(), _pre_tokenizer()
    return [[word for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text))]
            for text in texts]


def word_tokenizer(vocabulary: Sequence[str]) -> Tokenizer:
    """A word-level ``tokenizers.Tokenizer``: NFKC, lower case, words split as navec's
    (:data:`SEPARATORS`), ``[PAD]`` id 0, ``[UNK]`` id 1 for a word outside ``vocabulary``,
    then the words of ``vocabulary`` in its order. It saves to one ``tokenizer.json`` like the
    BPE tokenizer, so training, export and the torch-free predictor treat both alike."""
    vocab = {PAD_TOKEN: 0, UNK_TOKEN: 1}
    for word in vocabulary:
        if word in vocab:
            raise ValueError(f"{word!r} appears twice in the vocabulary")
        vocab[word] = len(vocab)
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK_TOKEN))
    tokenizer.normalizer = _normalizer()
    tokenizer.pre_tokenizer = _pre_tokenizer()
    return tokenizer


def build_word_vocabulary(
    train_texts: Sequence[str], vectors: WordVectors, extra_words: int = EXTRA_WORDS,
    min_new_count: int = MIN_NEW_WORD_COUNT,
) -> tuple[list[str], np.ndarray]:
    """The model's words and, for each, whether navec has a vector for it.

    Kept: every navec word found in ``train_texts``, the ``extra_words`` most frequent navec
    words (by their news-corpus counts; no other split is looked at), and the training words
    navec lacks that occur at least ``min_new_count`` times. Sorted: navec words alphabetically,
    then the new words by falling count.
    """
    if extra_words < 0 or min_new_count < 1:
        raise ValueError("extra_words must be >= 0 and min_new_count >= 1")
    counts = Counter(word for words in split_words(train_texts) for word in words)
    index = vectors.index
    chosen = {word for word in counts if word in index}
    chosen.update(vectors.words[i] for i in np.argsort(-vectors.counts, kind="stable")[
        :extra_words])
    new = sorted((word for word, count in counts.items()
                  if word not in index and count >= min_new_count),
                 key=lambda word: (-counts[word], word))
    words = sorted(chosen) + new
    return words, np.array([word in index for word in words])


def embedding_matrix(vocabulary: Sequence[str], vectors: WordVectors, seed: int = SEED
                     ) -> np.ndarray:
    """Initial embeddings for :func:`word_tokenizer` ``(vocabulary)``'s ids: zeros for
    ``[PAD]``, navec's unknown-word vector for ``[UNK]``, navec's vector for a word it has, and
    for a word it lacks a random vector of navec's own spread (normal, mean 0, the standard
    deviation of all of navec's coordinates)."""
    index = vectors.index
    matrix = np.zeros((len(vocabulary) + 2, NAVEC_DIM), dtype=np.float32)
    matrix[1] = vectors.unk_vector
    rng = np.random.default_rng(seed)
    spread = float(vectors.vectors.std())
    for row, word in enumerate(vocabulary, start=2):
        position = index.get(word)
        matrix[row] = (vectors.vectors[position] if position is not None
                       else rng.normal(0.0, spread, NAVEC_DIM))
    return matrix


def coverage(texts: Sequence[str], labels: Sequence[int], known: set[str] | dict[str, int]
             ) -> dict[str, float]:
    """Share of the word tokens of ``texts`` found in ``known``: all of them, and those of the
    toxic texts (label 1) alone."""
    words = split_words(texts)
    labels = np.asarray(labels)
    if len(words) != len(labels):
        raise ValueError("texts and labels differ in length")

    def share(rows: list[list[str]]) -> float:
        tokens = [word for row in rows for word in row]
        return sum(word in known for word in tokens) / max(len(tokens), 1)

    return {"all tokens": share(words),
            "toxic-class tokens": share([w for w, y in zip(words, labels, strict=True) if y == 1])}


def missing_words(texts: Sequence[str], labels: Sequence[int], known: set[str] | dict[str, int],
                  top: int = 15) -> list[tuple[str, int]]:
    """The ``top`` most frequent words of the toxic texts (label 1) that ``known`` lacks, with
    their counts."""
    counts = Counter(word for words, label in zip(split_words(texts), labels, strict=True)
                     if label == 1 for word in words if word not in known)
    return counts.most_common(top)


def coverage_table(splits: Splits, vectors: WordVectors, inputs: NavecInputs) -> pd.DataFrame:
    """Shares of word tokens with a vector: in navec (training and validation texts), and in the
    model's vocabulary (validation texts: what the model sees of comments it was not trained
    on; the rest become ``[UNK]``)."""
    in_navec, in_model = vectors.index, set(inputs.vocabulary)
    rows = {
        "training texts, words navec has": coverage(splits.train["text"], splits.train["label"],
                                                    in_navec),
        "validation texts, words navec has": coverage(splits.valid["text"],
                                                      splits.valid["label"], in_navec),
        "validation texts, words of the model": coverage(splits.valid["text"],
                                                         splits.valid["label"], in_model),
    }
    return pd.DataFrame(rows).T


@dataclass(frozen=True)
class NavecInputs:
    """What a navec BiLSTM needs: its word tokenizer, its initial embeddings (one row per id),
    and which of its words navec knows."""

    tokenizer: Tokenizer
    embeddings: np.ndarray
    from_navec: np.ndarray

    @property
    def vocabulary(self) -> list[str]:
        """The words, in id order after ``[PAD]`` and ``[UNK]``."""
        vocab = self.tokenizer.get_vocab()
        return sorted((w for w in vocab if vocab[w] >= 2), key=vocab.__getitem__)


def get_navec_inputs(config: BookConfig, train_texts: Sequence[str],
                     extra_words: int = EXTRA_WORDS, seed: int = SEED) -> NavecInputs:
    """The book's navec tokenizer and embeddings, saved under ``artifacts/.../navec`` and
    reused while the training texts, the navec file and the settings are the same (chapters 2,
    4 and 6 share them; unpacking navec takes a few seconds and 300 MB)."""
    train_texts = list(train_texts)
    folder = config.artifact("navec", "tokenizer.json").parent
    key = artifact_key(texts=texts_fingerprint(train_texts), navec=NAVEC_SHA256,
                       extra_words=extra_words, min_new_count=MIN_NEW_WORD_COUNT, seed=seed,
                       code=modules_fingerprint(sys.modules[__name__]))
    files = {name: folder / name for name in ("tokenizer.json", "embeddings.npy",
                                              "from_navec.npy", "key.json")}
    if all(path.is_file() for path in files.values()) and json.loads(
            files["key.json"].read_text())["key"] == key:
        return NavecInputs(load_tokenizer(files["tokenizer.json"]),
                           np.load(files["embeddings.npy"]), np.load(files["from_navec.npy"]))
    vectors = load_navec(locate_navec(config))
    vocabulary, from_navec = build_word_vocabulary(train_texts, vectors, extra_words)
    inputs = NavecInputs(word_tokenizer(vocabulary), embedding_matrix(vocabulary, vectors, seed),
                         from_navec)
    save_tokenizer(inputs.tokenizer, files["tokenizer.json"])
    np.save(files["embeddings.npy"], inputs.embeddings)
    np.save(files["from_navec.npy"], inputs.from_navec)
    files["key.json"].write_text(json.dumps({"key": key}), encoding="utf-8")
    return inputs
