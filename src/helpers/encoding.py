"""From texts to token ids, for any tokenizer of the book, and how long to let a text be.

The BiLSTMs use a byte-level BPE tokenizer of the ``tokenizers`` library (:mod:`helpers.bpe`);
the BERTs use a ``transformers`` tokenizer. The functions here accept either, so every model is
fed by the same code: :func:`encode_texts` gives each text's ids (a BERT tokenizer adds [CLS] and
[SEP]), cut to a maximum length, never padded (padding is per batch, :mod:`helpers.batching`).

How long a text may be is decided in one place, :func:`max_length_for`: the 95th percentile of
the training texts' token lengths (:func:`choose_max_length`), at most a cap (BERT's 512, or a
budget's smaller one, :mod:`helpers.budgets`). Every model of the book gets its length from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from tokenizers import Tokenizer

LENGTH_QUANTILE = 0.95
MAX_LENGTH_CAP = 512  # BERT's position embeddings (rubert-tiny's) stop at 512


def _is_tokenizers(tokenizer: Any) -> bool:
    return isinstance(tokenizer, Tokenizer)


def save_tokenizer(tokenizer: Tokenizer, path: str | Path) -> Path:
    """Save a ``tokenizers`` tokenizer (BPE or words) to a single ``tokenizer.json`` file,
    creating its folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(path))
    return path


def load_tokenizer(path: str | Path) -> Tokenizer:
    """Load a tokenizer saved by :func:`save_tokenizer`."""
    return Tokenizer.from_file(str(path))


def encode_texts(tokenizer: Any, texts: Sequence[str], max_length: int | None) -> list[list[int]]:
    """Token ids of each text, cut to its first ``max_length`` tokens (``None``: uncut).

    A ``tokenizers.Tokenizer`` encodes the batch in parallel in Rust and the ids are cut
    afterwards, so the saved tokenizer carries no truncation setting. A ``transformers`` tokenizer
    adds its special tokens ([CLS] ... [SEP]) and truncates with them kept.
    """
    if max_length is not None and max_length < 1:
        raise ValueError(f"max_length must be at least 1, got {max_length}")
    texts = list(texts)
    if _is_tokenizers(tokenizer):
        return [enc.ids[:max_length] for enc in tokenizer.encode_batch(texts)]
    # verbose=False: untruncated lengths are asked for on purpose (token_lengths), so the
    # tokenizer's "longer than the maximum sequence length" warning is noise here.
    encoded = tokenizer(texts, add_special_tokens=True, truncation=max_length is not None,
                        max_length=max_length, verbose=False)
    return encoded["input_ids"]


def token_lengths(tokenizer: Any, texts: Sequence[str]) -> np.ndarray:
    """Number of tokens of each text (special tokens included), untruncated."""
    return np.array([len(ids) for ids in encode_texts(tokenizer, texts, None)], dtype=np.int64)


def pad_token_id(tokenizer: Any) -> int:
    """The id batches are padded with: ``[PAD]`` of either kind of tokenizer (a ``tokenizers``
    one, BPE or words, or a ``transformers`` one)."""
    if _is_tokenizers(tokenizer):
        token_id = tokenizer.token_to_id("[PAD]")
    else:
        token_id = tokenizer.pad_token_id
    if token_id is None:
        raise ValueError("The tokenizer has no [PAD] token")
    return int(token_id)


def choose_max_length(lengths: Sequence[int], quantile: float = LENGTH_QUANTILE,
                      cap: int = MAX_LENGTH_CAP) -> int:
    """The maximum sequence length: the ``quantile`` of the token lengths, at most ``cap``.

    Padding every text to 512 tokens (BERT's limit) wastes most of the computation when the typical
    comment is a few dozen tokens long. Cutting at the 95th percentile keeps 95% of the texts whole
    and only trims the tail of very long ones, whose first few hundred tokens usually already show
    whether they are toxic; it also bounds the cost of the slowest batches.
    """
    if not 0 < quantile <= 1:
        raise ValueError(f"quantile must be in (0, 1], got {quantile}")
    lengths = np.asarray(lengths)
    if lengths.size == 0:
        raise ValueError("No lengths to choose from")
    return int(max(1, min(cap, int(np.ceil(np.quantile(lengths, quantile))))))


def max_length_for(tokenizer: Any, train_texts: Sequence[str],
                   cap: int = MAX_LENGTH_CAP) -> int:
    """The book's one rule for how long a text may be: :func:`choose_max_length` (the 95th
    percentile) of the training texts' token lengths under ``tokenizer``, at most ``cap``.

    ``cap`` is BERT's limit by default; a budget that bounds the cost of its runs passes its own
    (chapter 4's :attr:`helpers.budgets.DistillationBudget.length_cap`).
    """
    return choose_max_length(token_lengths(tokenizer, list(train_texts)), cap=cap)


def plot_length_distribution(lengths: Sequence[int], max_length: int, ax=None, bins: int = 60):
    """Histogram of token lengths (log scale on counts) with the chosen cut marked."""
    lengths = np.asarray(lengths)
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3))
    ax.hist(lengths, bins=bins, color="steelblue")
    ax.set_yscale("log")
    cut = float((lengths > max_length).mean())
    ax.axvline(max_length, color="crimson", linestyle="--",
               label=f"max length {max_length} (truncates {cut:.1%} of texts)")
    ax.set_xlabel("tokens per text")
    ax.set_ylabel("texts")
    ax.legend()
    return ax
