"""A byte-level BPE tokenizer for the BiLSTM students, trained on the training split only.

Byte-level BPE (as in GPT-2 and RoBERTa) starts from the 256 byte values, so no text is ever out of
vocabulary: Cyrillic, Latin, emoji and typos all decompose into known pieces, and decoding the ids
gives back the exact text. Frequent pieces (stems, endings, whole common words) are merged into
single tokens up to the vocabulary size, which suits Russian morphology: "токсичный",
"токсичного" and "токсичные" share their stem's tokens.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from .config import BookConfig, get_config

PAD_TOKEN = "[PAD]"
UNK_TOKEN = "[UNK]"
# [PAD] first, so that it gets id 0: the embedding's padding_idx and pad_collate's fill value.
SPECIAL_TOKENS = [PAD_TOKEN, UNK_TOKEN]
VOCAB_SIZE = 5000  # as in the source article


def train_bpe_tokenizer(
    texts: Iterable[str], vocab_size: int = VOCAB_SIZE, min_frequency: int = 2
) -> Tokenizer:
    """Train a byte-level BPE tokenizer on ``texts`` (pass the training split only).

    No normaliser (no lowercasing): case and punctuation carry signal in toxic comments, and it
    keeps ``decode(encode(text)) == text``. ``[PAD]`` has id 0 and ``[UNK]`` id 1; with a byte-level
    alphabet ``[UNK]`` is never produced, it is there for models that expect one.
    """
    tokenizer = Tokenizer(models.BPE(unk_token=UNK_TOKEN))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=SPECIAL_TOKENS,
        # All 256 bytes from the start, even those absent from the training texts.
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(list(texts), trainer=trainer)
    return tokenizer


def pad_id(tokenizer: Tokenizer) -> int:
    """Id of ``[PAD]`` (0 for tokenizers trained here)."""
    token_id = tokenizer.token_to_id(PAD_TOKEN)
    if token_id is None:
        raise ValueError(f"The tokenizer has no {PAD_TOKEN} token")
    return token_id


def save_bpe_tokenizer(tokenizer: Tokenizer, path: str | Path) -> Path:
    """Save to a single ``tokenizer.json`` file (creating its folder)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(path))
    return path


def load_bpe_tokenizer(path: str | Path) -> Tokenizer:
    """Load a tokenizer saved by :func:`save_bpe_tokenizer`."""
    return Tokenizer.from_file(str(path))


def encode_texts(tokenizer: Tokenizer, texts: Sequence[str], max_length: int) -> list[list[int]]:
    """Token ids of each text, cut to its first ``max_length`` tokens.

    ``encode_batch`` runs in parallel in Rust; truncating afterwards leaves the tokenizer itself
    unchanged, so the saved ``tokenizer.json`` carries no truncation setting.
    """
    if max_length < 1:
        raise ValueError(f"max_length must be at least 1, got {max_length}")
    return [enc.ids[:max_length] for enc in tokenizer.encode_batch(list(texts))]


def token_lengths(tokenizer: Tokenizer, texts: Sequence[str]) -> np.ndarray:
    """Number of tokens of each text, untruncated."""
    return np.array([len(enc.ids) for enc in tokenizer.encode_batch(list(texts))], dtype=np.int64)


def choose_max_length(lengths: Sequence[int], quantile: float = 0.95, cap: int = 512) -> int:
    """The maximum sequence length: the ``quantile`` of the token lengths, at most ``cap``.

    Padding every text to 512 tokens (BERT's limit) wastes most of the computation when the typical
    comment is a few dozen tokens long. Cutting at the 95th percentile keeps 95% of the texts whole
    and only trims the tail of very long ones, whose first few hundred tokens usually already show
    whether they are toxic. An LSTM's cost grows with the length of the longest text in a batch, so
    the cap also bounds the slowest batches.
    """
    if not 0 < quantile <= 1:
        raise ValueError(f"quantile must be in (0, 1], got {quantile}")
    lengths = np.asarray(lengths)
    if lengths.size == 0:
        raise ValueError("No lengths to choose from")
    return int(max(1, min(cap, int(np.ceil(np.quantile(lengths, quantile))))))


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


def get_bpe_tokenizer(
    config: BookConfig | None = None, train_texts: Iterable[str] | None = None,
    vocab_size: int = VOCAB_SIZE,
) -> Tokenizer:
    """The book's BPE tokenizer: loaded from the ``bilstm`` artifacts, else trained and saved.

    Chapter 2 and the distillation chapter share it; whichever runs first trains it on
    ``train_texts`` (the training split), the other loads the same file.
    """
    config = config or get_config()
    path = config.artifact("bilstm", "tokenizer.json")
    if path.is_file():
        return load_bpe_tokenizer(path)
    if train_texts is None:
        raise ValueError(f"No tokenizer at {path}; pass train_texts to train one")
    tokenizer = train_bpe_tokenizer(train_texts, vocab_size=vocab_size)
    save_bpe_tokenizer(tokenizer, path)
    return tokenizer
