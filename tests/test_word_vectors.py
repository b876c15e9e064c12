"""navec word vectors: where the file comes from, the word tokenizer, the vocabulary, the initial
embeddings, coverage, and the BiLSTM that starts from them (frozen epochs, reuse)."""

from __future__ import annotations

import importlib.metadata

import numpy as np
import pytest
import torch
from toy import tiny_config, toy_splits

from helpers import word_vectors
from helpers.data import ChecksumError
from helpers.losses import cross_entropy_loss
from helpers.settings import NetworkSpec, TrainSettings
from helpers.token_models import load_token_model, train_token_model
from helpers.word_vectors import (
    NAVEC_DIM,
    WordVectors,
    build_word_vocabulary,
    coverage,
    embedding_matrix,
    load_navec,
    locate_navec,
    split_words,
    word_tokenizer,
)


def toy_vectors() -> WordVectors:
    words = ["автор", "дурак", "идиот", "новости", "спасибо", "это"]
    rng = np.random.default_rng(0)
    return WordVectors(words=words, counts=np.array([5, 1, 2, 100, 50, 1000]),
                       vectors=rng.normal(size=(len(words), NAVEC_DIM)).astype(np.float32),
                       unk_vector=np.full(NAVEC_DIM, 0.5, dtype=np.float32))


def test_words_are_split_and_lower_cased_like_navec():
    text = "Что-то - ПЛОХО!!! Ёжик,2020 год... -привет- co_op"
    expected = ["что-то", "плохо", "ёжик", "2020", "год", "привет", "co_op"]
    assert split_words([text]) == [expected]
    tokenizer = word_tokenizer(expected)
    assert tokenizer.encode(text).tokens == expected  # the tokenizer splits the very same way


def test_word_tokenizer_ids_and_unknown_words(tmp_path):
    tokenizer = word_tokenizer(["дурак", "спасибо"])
    assert tokenizer.token_to_id("[PAD]") == 0 and tokenizer.token_to_id("[UNK]") == 1
    assert tokenizer.encode("Спасибо, ДУРАК! незнакомец").ids == [3, 2, 1]
    path = tmp_path / "tokenizer.json"
    tokenizer.save(str(path))
    from tokenizers import Tokenizer

    assert Tokenizer.from_file(str(path)).encode("спасибо дурак").ids == [3, 2]
    with pytest.raises(ValueError, match="twice"):
        word_tokenizer(["дурак", "дурак"])


def test_vocabulary_keeps_training_words_frequent_navec_words_and_repeated_new_words():
    vectors = toy_vectors()
    train = ["Дурак дурак лол", "лол автор кек"]  # "лол" twice, "кек" once: not in navec
    words, from_navec = build_word_vocabulary(train, vectors, extra_words=2, min_new_count=2)
    # navec words of the training texts + the two most frequent navec words, then new words.
    assert words == ["автор", "дурак", "новости", "это", "лол"]
    assert from_navec.tolist() == [True, True, True, True, False]
    words, _ = build_word_vocabulary(train, vectors, extra_words=0, min_new_count=1)
    assert words == ["автор", "дурак", "лол", "кек"]
    with pytest.raises(ValueError):
        build_word_vocabulary(train, vectors, extra_words=-1)


def test_embedding_matrix_rows():
    vectors = toy_vectors()
    vocabulary = ["дурак", "лол"]
    matrix = embedding_matrix(vocabulary, vectors, seed=1)
    assert matrix.shape == (4, NAVEC_DIM) and matrix.dtype == np.float32
    assert not matrix[0].any()                                   # [PAD]
    np.testing.assert_array_equal(matrix[1], vectors.unk_vector)  # [UNK]
    np.testing.assert_array_equal(matrix[2], vectors.vectors[1])  # navec's "дурак"
    assert abs(matrix[3].std() - vectors.vectors.std()) < 0.2    # a new word: navec's spread
    np.testing.assert_array_equal(matrix, embedding_matrix(vocabulary, vectors, seed=1))
    assert not np.array_equal(matrix[3], embedding_matrix(vocabulary, vectors, seed=2)[3])


def test_coverage_counts_tokens_overall_and_in_toxic_texts():
    known = {"ты", "дурак"}
    shares = coverage(["ты дурак", "ты молодец сегодня"], [1, 0], known)
    assert shares == {"all tokens": pytest.approx(3 / 5), "toxic-class tokens": 1.0}
    with pytest.raises(ValueError, match="length"):
        coverage(["a"], [1, 0], known)


def test_locate_navec_finds_the_installed_file_without_importing_natasha(tmp_path):
    import sys

    path = locate_navec(tiny_config(tmp_path), download=False)
    assert path.name == word_vectors.NAVEC_FILE and "natasha" in str(path)
    assert "natasha" not in sys.modules


def test_locate_navec_without_natasha(tmp_path, monkeypatch):
    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    config = tiny_config(tmp_path)
    with pytest.raises(word_vectors.WordVectorsError, match="pip install natasha==1.6.0"):
        locate_navec(config, download=False)

    def offline(url, dest, expected_sha256):
        raise OSError("no network")

    monkeypatch.setattr(word_vectors, "download_file", offline)
    with pytest.raises(word_vectors.WordVectorsError, match="no network"):
        locate_navec(config)
    cached = config.data_cache_dir / word_vectors.NAVEC_FILE
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"not navec")
    with pytest.raises(ChecksumError):  # a wrong file is reported, never used or replaced
        locate_navec(config)
    assert cached.read_bytes() == b"not navec"


def test_real_navec_vectors(tmp_path):
    vectors = load_navec(locate_navec(tiny_config(tmp_path), download=False))
    assert vectors.vectors.shape == (250_000, NAVEC_DIM)
    index = vectors.index

    def cosine(a, b):
        u, v = vectors.vectors[index[a]], vectors.vectors[index[b]]
        return float(u @ v / np.linalg.norm(u) / np.linalg.norm(v))

    assert cosine("кошка", "собака") == pytest.approx(0.63, abs=0.02)
    assert cosine("дурак", "идиот") == pytest.approx(0.39, abs=0.02)
    assert cosine("кошка", "собака") > cosine("кошка", "налог")


def _train(tmp_path, frozen, reuse=False, embedding_dim=16, **kwargs):
    splits = toy_splits()
    vocabulary = sorted({w for words in split_words(splits.train["text"]) for w in words})
    tokenizer = word_tokenizer(vocabulary)
    init = np.random.default_rng(0).normal(size=(tokenizer.get_vocab_size(), 16)).astype(
        np.float32)
    init[0] = 0.0
    run = train_token_model(tiny_config(tmp_path), splits, tokenizer,
                            TrainSettings(epochs=1, max_length=24),
                            NetworkSpec("bilstm", {"embedding_dim": embedding_dim,
                                                   "hidden_size": 8}),
                            name="navec_toy", embedding_init=init,
                            frozen_embedding_epochs=frozen, reuse=reuse, **kwargs)
    return run, init


def test_frozen_embeddings_stay_put_for_their_epochs(tmp_path):
    run, init = _train(tmp_path / "frozen", frozen=1)
    np.testing.assert_array_equal(run.model.embedding.weight.detach().numpy(), init)
    run, init = _train(tmp_path / "tuned", frozen=0)
    assert not np.allclose(run.model.embedding.weight.detach().numpy()[1:], init[1:])


def test_embedding_init_must_match_the_model(tmp_path):
    with pytest.raises(ValueError, match="embedding_init has shape"):
        _train(tmp_path, frozen=0, embedding_dim=8)


def test_reuse_loads_the_same_run_instead_of_training(tmp_path, monkeypatch):
    first, _ = _train(tmp_path, frozen=1, reuse=True)
    from helpers import token_models

    def no_training(*args, **kwargs):
        raise AssertionError("trained again")

    monkeypatch.setattr(token_models, "fit", no_training)
    again, _ = _train(tmp_path, frozen=1, reuse=True)
    np.testing.assert_allclose(again.test_proba, first.test_proba, atol=1e-6)
    assert again.history.epochs == first.history.epochs
    assert again.history.best_epoch == first.history.best_epoch
    with pytest.raises(AssertionError, match="trained again"):  # other settings: a new key
        _train(tmp_path, frozen=0, reuse=True)
    model, _, meta = load_token_model(first.folder)
    assert meta["frozen_embedding_epochs"] == 1 and isinstance(model, torch.nn.Module)


def test_reuse_refuses_a_distillation_loss(tmp_path):
    with pytest.raises(ValueError, match="reuse=True"):
        _train(tmp_path, frozen=0, reuse=True, loss_fn=lambda logits, batch: cross_entropy_loss(
            logits, batch))


def test_missing_words_and_coverage_table():
    from helpers.data import Splits
    from helpers.word_vectors import NavecInputs, coverage_table, missing_words

    vectors = toy_vectors()
    frame = __import__("pandas").DataFrame({"text": ["ты дурак лол", "лол кек", "спасибо автор"],
                                            "label": [1, 1, 0]})
    assert missing_words(frame["text"], frame["label"], vectors.index) == [
        ("лол", 2), ("ты", 1), ("кек", 1)]
    vocabulary, from_navec = build_word_vocabulary(frame["text"], vectors, extra_words=0)
    inputs = NavecInputs(word_tokenizer(vocabulary), embedding_matrix(vocabulary, vectors),
                         from_navec)
    assert inputs.vocabulary == vocabulary == ["автор", "дурак", "спасибо", "лол"]
    table = coverage_table(Splits(frame, frame, frame), vectors, inputs)
    assert table.loc["training texts, words navec has", "all tokens"] == pytest.approx(3 / 7)
    assert table.loc["validation texts, words of the model", "toxic-class tokens"] == (
        pytest.approx(3 / 5))
