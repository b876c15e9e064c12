"""A byte-level BPE tokenizer for the BiLSTM students, trained on the training split only.

Byte-level BPE (as in GPT-2 and RoBERTa) starts from the 256 byte values, so no text is ever out of
vocabulary: Cyrillic, Latin, emoji and typos all decompose into known pieces, and decoding the ids
gives back the exact text. Frequent pieces (stems, endings, whole common words) are merged into
single tokens up to the vocabulary size, which suits Russian morphology: the forms of a word
share their stem's pieces (on the full data, "комментарий", "комментария" and "комментариев" all
start with the token " коммент").
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from .config import BookConfig
from .encoding import load_tokenizer, save_tokenizer
from .provenance import artifact_key, texts_fingerprint

PAD_TOKEN = "[PAD]"
UNK_TOKEN = "[UNK]"
# [PAD] first, so that it gets id 0: the embedding's padding_idx and the batches' fill value.
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


KEY_FILE = "tokenizer.key"


def get_bpe_tokenizer(
    config: BookConfig, train_texts: Sequence[str], vocab_size: int = VOCAB_SIZE,
) -> Tokenizer:
    """The book's BPE tokenizer: loaded from the ``bilstm`` artifacts if it was trained on these
    very ``train_texts`` with this ``vocab_size``, else trained on them and saved.

    Chapter 2 and the distillation chapter share it; whichever runs first trains it on the
    training split, the other loads the same file. A tokenizer saved from other texts (another
    ``BOOK_DATA``, another split) is never reused: its vocabulary would have seen today's test
    texts.
    """
    train_texts = list(train_texts)
    path = config.artifact("bilstm", "tokenizer.json")
    key = artifact_key(texts=texts_fingerprint(train_texts), vocab_size=vocab_size)
    key_file = path.with_name(KEY_FILE)
    if path.is_file() and key_file.is_file() and key_file.read_text().strip() == key:
        return load_tokenizer(path)
    tokenizer = train_bpe_tokenizer(train_texts, vocab_size=vocab_size)
    save_tokenizer(tokenizer, path)
    key_file.write_text(key + "\n", encoding="utf-8")
    return tokenizer
