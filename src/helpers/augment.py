"""Data augmentation for distillation: Tang et al. (2019), section 3.3.

Tang, Lu, Liu, Mou, Vechtomova and Lin (2019), "Distilling Task-Specific Knowledge from BERT into
Simple Neural Networks", build a *transfer set* for the student: synthetic texts made from the
training texts, labelled by the teacher alone. For each word ``w_i`` of a text they draw
``X_i ~ U[0, 1]``:

* ``X_i < p_mask``: **masking**, the word becomes ``[MASK]``;
* ``p_mask <= X_i < p_mask + p_pos``: **POS-guided replacement**, the word becomes another word of
  the same part of speech, drawn from the unigram distribution of the training words restricted
  to that part of speech;

(the two rules exclude each other), then with probability ``p_ng`` **n-gram sampling** keeps only a
random n-gram of the result, ``n`` uniform in ``1..5``. This is repeated ``n_iter`` times per
text and duplicates are dropped. The paper uses ``p_mask = p_pos = 0.1``, ``p_ng = 0.25``,
``n_iter = 20``; a CPU budget allows far fewer samples per text.

Choices made here for Russian comments:

* Words are the whitespace-separated tokens of a text; punctuation glued to a word stays in place
  (``"дурак!"`` -> ``"[MASK]!"``), so the texts keep their look. Augmented texts are joined with
  single spaces, and a candidate equal to its source text with normalised whitespace counts as
  unchanged and is dropped.
* Parts of speech come from ``pymorphy3`` (the most probable parse of the lower-cased word),
  computed once per distinct word. Words with no part of speech (numbers, Latin, emoji) are never
  replaced. The replacement is inserted as it appears in the vocabulary (lower case, whatever its
  inflection; in capitals or capitalised if the original was).
* The mask token is ``"[MASK]"`` in the texts the teacher labels: the teacher's (BERT) tokenizer
  knows it as its mask token, as in the paper. The BiLSTM's byte-level BPE would read it as five
  punctuation and letter pieces, so :func:`student_view` turns it into ``"[UNK]"``, a special token
  of that tokenizer, matching the paper's "unknown token" for the student.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
from tqdm import tqdm

from .losses import UNLABELLED

MASK_TOKEN = "[MASK]"
STUDENT_MASK_TOKEN = "[UNK]"
MAX_NGRAM = 5
# A token = leading non-word characters, the word itself, trailing non-word characters.
_TOKEN = re.compile(r"^(\W*)(.*?)(\W*)$", re.DOTALL)


@lru_cache(maxsize=1)
def _analyzer():
    import pymorphy3

    return pymorphy3.MorphAnalyzer()


def split_token(token: str) -> tuple[str, str, str]:
    """``(prefix, word, suffix)``: punctuation around a whitespace token, and the word inside it."""
    prefix, word, suffix = _TOKEN.match(token).groups()
    return prefix, word, suffix


def pos_tag(word: str) -> str | None:
    """Part of speech of ``word`` by ``pymorphy3`` (its most probable parse), or ``None``."""
    word = word.lower()
    return _analyzer().parse(word)[0].tag.POS if word else None


@dataclass
class PosVocabulary:
    """Training words grouped by part of speech, with their counts, for POS-guided replacement.

    ``words[pos]`` holds the distinct lower-cased words of that part of speech and ``cumulative``
    their running share of the counts, so a draw ``u ~ U[0, 1)`` maps to a word by
    ``searchsorted``: the unigram distribution re-normalised per part of speech (Tang et al. 2019).
    ``pos_of`` caches the part of speech of every word ever looked up.
    """

    words: dict[str, np.ndarray]
    cumulative: dict[str, np.ndarray]
    pos_of: dict[str, str | None]

    @classmethod
    def from_texts(cls, texts: Sequence[str], progress: bool = True) -> PosVocabulary:
        """Count the words of ``texts`` (pass the training split only) and tag each distinct one."""
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(w.lower() for w in (split_token(t)[1] for t in text.split()) if w)
        pos_of: dict[str, str | None] = {}
        for word in tqdm(counts, desc="POS tags", disable=not progress, leave=False):
            pos_of[word] = pos_tag(word)
        grouped: dict[str, list[str]] = {}
        for word, pos in pos_of.items():
            if pos is not None:
                grouped.setdefault(pos, []).append(word)
        words, cumulative = {}, {}
        for pos, members in grouped.items():
            weights = np.array([counts[w] for w in members], dtype=np.float64)
            words[pos] = np.array(members, dtype=object)
            cumulative[pos] = np.cumsum(weights) / weights.sum()
        return cls(words=words, cumulative=cumulative, pos_of=pos_of)

    def tag(self, word: str) -> str | None:
        """Part of speech of ``word``, from the cache or from ``pymorphy3`` (then cached)."""
        key = word.lower()
        if key not in self.pos_of:
            self.pos_of[key] = pos_tag(key)
        pos = self.pos_of[key]
        return pos if pos in self.words else None

    def sample(self, pos: str, uniforms: np.ndarray) -> np.ndarray:
        """Words of part of speech ``pos``, one per uniform draw, by their training frequency."""
        index = np.searchsorted(self.cumulative[pos], uniforms, side="right")
        return self.words[pos][np.minimum(index, len(self.words[pos]) - 1)]


def _match_case(new: str, old: str) -> str:
    """``new`` in the case of ``old``: all capitals (shouting is common in toxic comments),
    capitalised, or as it is."""
    if len(old) > 1 and old.isupper():
        return new.upper()
    return new[:1].upper() + new[1:] if old[:1].isupper() else new


def _check_probabilities(p_mask: float, p_pos: float, p_ng: float) -> None:
    if not (p_mask >= 0 and p_pos >= 0 and p_mask + p_pos <= 1 and 0 <= p_ng <= 1):
        raise ValueError(f"need p_mask, p_pos >= 0, p_mask + p_pos <= 1 and p_ng in [0, 1]; got "
                         f"{p_mask=}, {p_pos=}, {p_ng=}")


def augment_text(
    text: str,
    vocabulary: PosVocabulary,
    rng: np.random.Generator,
    n_iter: int,
    p_mask: float = 0.1,
    p_pos: float = 0.1,
    p_ng: float = 0.25,
    mask_token: str = MASK_TOKEN,
    max_ngram: int = MAX_NGRAM,
) -> list[str]:
    """``n_iter`` candidates made from ``text`` by Tang et al.'s procedure (duplicates kept).

    All random draws for the text are made at once: a ``(n_iter, words)`` matrix of uniforms picks
    the masked and replaced words, one vector picks which candidates get n-gram sampling, its
    ``n`` and its start. Empty texts give no candidates.
    """
    _check_probabilities(p_mask, p_pos, p_ng)
    tokens = text.split()
    n = len(tokens)
    if n == 0 or n_iter <= 0:
        return []
    parts = [split_token(t) for t in tokens]
    tags = [vocabulary.tag(word) if word else None for _, word, _ in parts]
    has_pos = np.array([tag is not None for tag in tags])
    draws = rng.random((n_iter, n))
    masked = draws < p_mask
    replaced = (draws >= p_mask) & (draws < p_mask + p_pos) & has_pos
    # Replacement words, drawn in one call per part of speech present in the text.
    new_words = np.empty((n_iter, n), dtype=object)
    rows, cols = np.nonzero(replaced)
    uniforms = rng.random(len(rows))
    col_tags = np.array(tags, dtype=object)[cols]
    for pos in set(col_tags.tolist()):
        chosen = col_tags == pos
        new_words[rows[chosen], cols[chosen]] = vocabulary.sample(pos, uniforms[chosen])
    use_ngram = rng.random(n_iter) < p_ng
    sizes = np.minimum(rng.integers(1, max_ngram + 1, n_iter), n)
    starts = np.floor(rng.random(n_iter) * (n - sizes + 1)).astype(int)

    candidates = []
    for i in range(n_iter):
        out = []
        for j, (prefix, word, suffix) in enumerate(parts):
            if masked[i, j]:
                out.append(f"{prefix}{mask_token}{suffix}" if word else mask_token)
            elif replaced[i, j]:
                out.append(f"{prefix}{_match_case(new_words[i, j], word)}{suffix}")
            else:
                out.append(tokens[j])
        if use_ngram[i]:
            out = out[starts[i]:starts[i] + sizes[i]]
        candidates.append(" ".join(out))
    return candidates


def augment_texts(
    texts: Sequence[str],
    n_per_text: int,
    seed: int | np.random.Generator,
    p_mask: float = 0.1,
    p_pos: float = 0.1,
    p_ng: float = 0.25,
    vocabulary: PosVocabulary | None = None,
    mask_token: str = MASK_TOKEN,
    max_ngram: int = MAX_NGRAM,
    progress: bool = True,
) -> list[str]:
    """New texts made from ``texts`` by Tang et al. (2019) §3.3, de-duplicated.

    ``n_per_text`` candidates are drawn per text (the paper's ``n_iter``); a candidate is kept only
    if it differs from every text of ``texts`` (whitespace normalised) and from every candidate kept
    before it, so the result has at most ``n_per_text * len(texts)`` texts, in the order of their
    sources. ``seed`` (an int or a ``numpy.random.Generator``) makes the result repeatable.
    ``vocabulary`` defaults to one built from ``texts``: pass the training split, never test texts.
    """
    _check_probabilities(p_mask, p_pos, p_ng)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    if vocabulary is None:
        vocabulary = PosVocabulary.from_texts(texts, progress=progress)
    seen = {" ".join(t.split()) for t in texts} | set(texts)
    augmented = []
    for text in tqdm(texts, desc="augment", disable=not progress, leave=False):
        for candidate in augment_text(text, vocabulary, rng, n_per_text, p_mask, p_pos, p_ng,
                                      mask_token, max_ngram):
            if candidate and candidate not in seen:
                seen.add(candidate)
                augmented.append(candidate)
    return augmented


def student_view(texts: Sequence[str], mask_token: str = MASK_TOKEN,
                 unknown_token: str = STUDENT_MASK_TOKEN) -> list[str]:
    """``texts`` with the mask token replaced by the student tokenizer's unknown token.

    The teacher labels the texts with ``[MASK]`` (its own mask token); the BiLSTM's BPE would split
    that string into pieces, whereas ``[UNK]`` is one of its special tokens (Tang et al. 2019 map
    masked words to the unknown token of the student).
    """
    return [text.replace(mask_token, unknown_token) for text in texts]


@dataclass(frozen=True)
class TransferSet:
    """Training texts plus augmented ones: gold labels (``-1`` for augmented) and teacher logits."""

    texts: list[str]
    labels: np.ndarray
    teacher_logits: np.ndarray
    is_augmented: np.ndarray

    def frame(self, for_student: bool = True) -> pd.DataFrame:
        """``text`` and ``label`` columns, the shape of a split (``label`` -1 where augmented).

        With ``for_student`` the texts go through :func:`student_view` (``[MASK]`` -> ``[UNK]``).
        """
        texts = student_view(self.texts) if for_student else self.texts
        return pd.DataFrame({"text": texts, "label": self.labels})

    def step_matched_control(self, seed: int) -> TransferSet:
        """The control of an augmented run: the original rows alone, as many rows as this set.

        Every original row once per whole copy, then a seeded draw of the remainder without
        replacement, so that an epoch of the control takes as many optimizer steps, under the
        same learning-rate schedule, as an epoch of the augmented set: the augmented student
        against this control measures the teacher-labelled texts alone, not the extra updates.
        """
        originals = np.flatnonzero(~self.is_augmented)
        if len(originals) == 0:
            raise ValueError("the transfer set has no original rows to repeat")
        copies, rest = divmod(len(self.texts), len(originals))
        rng = np.random.default_rng(seed)
        rows = np.concatenate([np.tile(originals, copies),
                               np.sort(rng.choice(originals, rest, replace=False))])
        return TransferSet(texts=[self.texts[i] for i in rows], labels=self.labels[rows],
                           teacher_logits=self.teacher_logits[rows],
                           is_augmented=np.zeros(len(rows), bool))


def build_transfer_set(
    texts: Sequence[str],
    labels: Sequence[int],
    teacher_logits: np.ndarray,
    augmented: Sequence[str],
    label_fn: Callable[[list[str]], np.ndarray],
) -> TransferSet:
    """The training set of the augmented student: originals first, then augmented texts.

    Original texts keep their gold label and their (cached) teacher logits; each augmented text
    gets the logits ``label_fn`` returns for it, i.e. the teacher's (in the book,
    ``helpers.teacher.cached_teacher_logits``), and the label :data:`helpers.distill.UNLABELLED`, so
    the distillation losses train on it through the teacher term only.
    """
    teacher_logits = np.asarray(teacher_logits, dtype=np.float32)
    if len(texts) != len(labels) or len(texts) != len(teacher_logits):
        raise ValueError(f"{len(texts)} texts, {len(labels)} labels, "
                         f"{len(teacher_logits)} teacher logits")
    augmented = list(augmented)
    aug_logits = np.asarray(label_fn(augmented), dtype=np.float32)
    if aug_logits.shape != (len(augmented), teacher_logits.shape[1]):
        raise ValueError(f"label_fn returned shape {aug_logits.shape} for {len(augmented)} texts")
    return TransferSet(
        texts=list(texts) + augmented,
        labels=np.concatenate([np.asarray(labels, dtype=np.int64),
                               np.full(len(augmented), UNLABELLED, dtype=np.int64)]),
        teacher_logits=np.concatenate([teacher_logits, aug_logits]),
        is_augmented=np.concatenate([np.zeros(len(texts), bool), np.ones(len(augmented), bool)]),
    )
