"""The byte-level BPE tokenizer and the encoding helpers: lossless round trips, special ids,
truncation, persistence, the same ids from either kind of tokenizer."""

from pathlib import Path

import numpy as np
import pytest

from helpers import encoding
from helpers.bpe import get_bpe_tokenizer, train_bpe_tokenizer
from helpers.config import get_config
from helpers.encoding import choose_max_length, encode_texts, pad_token_id, token_lengths

CORPUS = [
    "Привет, как дела? Всё хорошо, спасибо!",
    "Это был очень токсичный комментарий, удалите его.",
    "Токсичного текста здесь нет, только обычная речь.",
    "Ну и дурак же ты, честное слово",
    "Модераторы, обратите внимание на этот пост!!!",
    "Ёлки-палки, опять сломалось 😡",
    "Отличная статья 👍 спасибо автору",
    "mixed текст with latin и кириллица 123",
] * 20

VOCAB_SIZE = 400


@pytest.fixture(scope="module")
def tokenizer():
    return train_bpe_tokenizer(CORPUS, vocab_size=VOCAB_SIZE)


@pytest.mark.parametrize("text", [
    "Привет, мир!",
    "Ёжик в тумане — ёлка",
    "эмодзи 😀🔥 и 🇷🇺 флаг",
    "  двойные  пробелы\nи перевод строки\t",
    "Слово, которого в обучении не было: сепульки",
    "",
])
def test_decode_encode_round_trip(tokenizer, text):
    assert tokenizer.decode(tokenizer.encode(text).ids) == text


def test_special_tokens(tokenizer):
    assert pad_token_id(tokenizer) == 0
    assert tokenizer.token_to_id("[PAD]") == 0
    assert tokenizer.token_to_id("[UNK]") == 1
    # Byte-level: even unseen characters map to byte tokens, never to [UNK] or [PAD].
    ids = tokenizer.encode("中文 ☃ ß").ids
    assert ids and 0 not in ids and 1 not in ids


def test_vocab_size_bound_and_merges(tokenizer):
    vocab = tokenizer.get_vocab()
    assert 256 + 2 <= len(vocab) <= VOCAB_SIZE
    # Frequent Cyrillic words are merged into fewer tokens than their bytes.
    word = "спасибо"
    assert len(tokenizer.encode(word).ids) < len(word.encode("utf-8"))


def test_encode_texts_truncates(tokenizer):
    texts = ["коротко", "очень длинный текст " * 30]
    full = token_lengths(tokenizer, texts)
    ids = encode_texts(tokenizer, texts, max_length=10)
    assert full[1] > 10
    assert [len(x) for x in ids] == [min(n, 10) for n in full]
    assert ids[1] == tokenizer.encode(texts[1]).ids[:10]
    with pytest.raises(ValueError):
        encode_texts(tokenizer, texts, max_length=0)


def test_save_load_gives_identical_ids(tokenizer, tmp_path):
    path = encoding.save_tokenizer(tokenizer, tmp_path / "sub" / "tokenizer.json")
    loaded = encoding.load_tokenizer(path)
    texts = CORPUS[:8] + ["новое 😀 слово"]
    assert encode_texts(loaded, texts, 64) == encode_texts(tokenizer, texts, 64)
    assert loaded.get_vocab() == tokenizer.get_vocab()


def test_get_bpe_tokenizer_reuses_only_a_tokenizer_trained_on_the_same_texts(tmp_path):
    (tmp_path / "_toc.yml").write_text("")
    config = get_config({"BOOK_SMALL": "1"}, root=tmp_path)
    first = get_bpe_tokenizer(config, CORPUS, vocab_size=300)
    path = config.artifact("bilstm", "tokenizer.json")
    assert path.is_file()
    before = path.stat().st_mtime_ns
    second = get_bpe_tokenizer(config, CORPUS, vocab_size=300)
    assert second.get_vocab() == first.get_vocab() and path.stat().st_mtime_ns == before
    # Other training texts (another BOOK_DATA or split): trained again, never reused.
    other = get_bpe_tokenizer(config, CORPUS[::-1][:40] + ["совсем другие слова"] * 5,
                              vocab_size=300)
    assert path.stat().st_mtime_ns != before
    assert other.get_vocab() != first.get_vocab()


def test_choose_max_length():
    lengths = np.arange(1, 101)  # 1..100
    assert choose_max_length(lengths, quantile=0.95) == 96
    assert choose_max_length(lengths, quantile=1.0) == 100
    assert choose_max_length(lengths, quantile=0.95, cap=50) == 50
    assert choose_max_length([0, 0, 0]) == 1
    with pytest.raises(ValueError):
        choose_max_length([], 0.95)
    with pytest.raises(ValueError):
        choose_max_length(lengths, quantile=0)


def test_encoding_works_the_same_for_a_bert_tokenizer(rubert_tokenizer_dir: Path) -> None:
    from transformers import AutoTokenizer

    bert = AutoTokenizer.from_pretrained(str(rubert_tokenizer_dir))
    texts = ["Привет, как дела?", "ну ты и токсичный комментатор " * 20]
    ids = encode_texts(bert, texts, max_length=16)
    assert ids[0][0] == bert.cls_token_id and ids[0][-1] == bert.sep_token_id
    assert len(ids[1]) == 16 and ids[1][-1] == bert.sep_token_id  # cut with [SEP] kept
    lengths = token_lengths(bert, texts)
    assert lengths[0] == len(ids[0]) and lengths[1] > 16
    assert pad_token_id(bert) == bert.pad_token_id


def test_untruncated_lengths_print_no_too_long_warning(rubert_tokenizer_dir: Path, capfd) -> None:
    """Counting the tokens of a long text is not feeding it to a model: no transformers warning."""
    from transformers import AutoTokenizer

    bert = AutoTokenizer.from_pretrained(str(rubert_tokenizer_dir))
    long_text = "слово " * 700
    assert token_lengths(bert, [long_text])[0] > bert.model_max_length
    assert "Token indices sequence length" not in "".join(capfd.readouterr())
