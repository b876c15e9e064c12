"""The networks over BPE tokens (BiLSTM, CNN): shapes, padding invariance, gradients,
persistence, loaders."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from helpers.article_bugs import sigmoid_before_cross_entropy_demo
from helpers.batching import padding_summary
from helpers.benchmark import count_parameters
from helpers.bpe import train_bpe_tokenizer
from helpers.data import Splits
from helpers.encoding import encode_texts
from helpers.losses import cross_entropy_loss
from helpers.token_models import (
    BiLSTMClassifier,
    CNNClassifier,
    load_token_model,
    make_token_loaders,
    save_token_model,
)

VOCAB, EMB, HIDDEN = 50, 8, 6


def small_model(seed: int = 0) -> BiLSTMClassifier:
    torch.manual_seed(seed)
    return BiLSTMClassifier(VOCAB, pad_id=0, embedding_dim=EMB, hidden_size=HIDDEN, dropout=0.5)


def batch(rows: list[list[int]], width: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids and mask, padded to ``width`` (default: the longest row)."""
    width = width or max(len(r) for r in rows)
    ids = torch.zeros((len(rows), width), dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, r in enumerate(rows):
        ids[i, :len(r)] = torch.tensor(r)
        mask[i, :len(r)] = 1
    return ids, mask


ROWS = [[5, 6, 7], [8, 9, 10, 11, 12, 13], [14], [3, 3, 3, 3]]


def test_output_shape_and_finite_loss():
    model = small_model()
    ids, mask = batch(ROWS)
    logits = model(ids, mask)
    assert logits.shape == (4, 2)
    loss = F.cross_entropy(logits, torch.tensor([0, 1, 0, 1]))
    assert torch.isfinite(loss) and loss.item() > 0


def test_padding_does_not_change_logits():
    model = small_model().eval()
    ids, mask = batch(ROWS)
    more_ids, more_mask = batch(ROWS, width=20)
    alone = torch.cat([model(*batch([row])) for row in ROWS])
    torch.testing.assert_close(model(ids, mask), model(more_ids, more_mask))
    torch.testing.assert_close(model(ids, mask), alone)


def test_padding_is_ignored_even_if_pad_ids_differ():
    # Packed sequences: positions past the mask are never read, whatever ids they hold.
    model = small_model().eval()
    ids, mask = batch(ROWS, width=10)
    noisy = ids.clone()
    noisy[mask == 0] = 7
    torch.testing.assert_close(model(ids, mask), model(noisy, mask))


def test_backward_reaches_every_parameter_but_the_pad_embedding():
    model = small_model()
    ids, mask = batch(ROWS)
    F.cross_entropy(model(ids, mask), torch.tensor([0, 1, 0, 1])).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert model.classifier.weight.grad.abs().sum() > 0
    assert model.lstm.weight_hh_l0_reverse.grad.abs().sum() > 0
    assert model.embedding.weight.grad[0].abs().sum() == 0  # padding_idx gets no gradient


def test_dropout_only_in_training():
    model = small_model()
    ids, mask = batch(ROWS)
    model.eval()
    torch.testing.assert_close(model(ids, mask), model(ids, mask))
    model.train()
    torch.manual_seed(1)
    a = model(ids, mask)
    assert not torch.allclose(a, model(ids, mask))


def test_count_parameters():
    model = small_model()
    lstm = 2 * (4 * HIDDEN * (EMB + HIDDEN) + 2 * 4 * HIDDEN)  # two directions, two biases
    expected = VOCAB * EMB + lstm + 2 * HIDDEN * 2 + 2
    assert count_parameters(model) == expected
    model.embedding.weight.requires_grad_(False)
    assert count_parameters(model, trainable_only=True) == expected - VOCAB * EMB


def test_save_load_round_trip(tmp_path):
    tokenizer = train_bpe_tokenizer(["пример текста", "ещё один пример"] * 10, vocab_size=300)
    model = BiLSTMClassifier(tokenizer.get_vocab_size(), embedding_dim=EMB, hidden_size=HIDDEN)
    model.eval()
    ids, mask = batch(encode_texts(tokenizer, ["пример", "ещё один текст"], 16))
    folder = save_token_model(model, tokenizer, tmp_path / "bilstm",
                              {"max_length": 16, "note": "тест"})
    loaded, loaded_tokenizer, meta = load_token_model(folder)
    assert not loaded.training
    assert meta == {"max_length": 16, "note": "тест"}
    assert loaded.hparams == model.hparams
    assert loaded_tokenizer.get_vocab() == tokenizer.get_vocab()
    assert torch.equal(loaded(ids, mask), model(ids, mask))


def make_splits() -> Splits:
    def frame(n: int, offset: int) -> pd.DataFrame:
        texts = [" ".join(["слово"] * (1 + (i * 7) % 9)) + f" {offset + i}" for i in range(n)]
        return pd.DataFrame({"text": texts, "label": [i % 2 for i in range(n)]})

    return Splits(frame(12, 0), frame(6, 100), frame(5, 200))


def test_loaders_pass_extras_per_split():
    splits = make_splits()
    tokenizer = train_bpe_tokenizer(splits.train.text, vocab_size=300)
    teacher = np.arange(24, dtype=np.float32).reshape(12, 2)
    loaders = make_token_loaders(tokenizer, splits, max_length=4, batch_size=5,
                                  extras={"teacher_logits": {"train": teacher}})
    seen = np.zeros(12, dtype=bool)
    for b in loaders["train"]:
        assert b["inputs"]["input_ids"].shape[1] <= 4
        # Every row carries its own text's teacher logits, whatever order the batch is in.
        torch.testing.assert_close(b["teacher_logits"], torch.as_tensor(teacher[b["index"]]))
        seen[b["index"].numpy()] = True
    assert seen.all()
    assert "teacher_logits" not in next(iter(loaders["valid"]))
    assert sum(len(b["index"]) for b in loaders["test"]) == 5
    # A bare array is the training split's.
    bare = make_token_loaders(tokenizer, splits, 4, 5, extras={"teacher_logits": teacher})
    assert "teacher_logits" in next(iter(bare["train"]))
    with pytest.raises(ValueError):
        make_token_loaders(tokenizer, splits, 4, extras={"t": {"training": teacher}})


def test_padding_summary_orders_the_three_schemes():
    lengths = [3, 5, 200, 8, 9, 40] * 30
    frame = padding_summary(lengths, max_length=50, batch_size=8)
    positions = frame["positions"].tolist()
    assert positions[0] == len(lengths) * 512
    assert positions[0] > positions[1] > positions[2] >= sum(min(n, 50) for n in lengths)


@pytest.mark.parametrize("make", [small_model, lambda: small_cnn()])
def test_the_books_networks_and_loss_have_no_sigmoid_floor(make) -> None:
    """The article put a sigmoid before cross-entropy, which keeps the loss above
    log(1 + e^-1) ~ 0.31 however right the model is (``sigmoid_before_cross_entropy_demo``). The
    book's networks return raw logits and its loss takes them as they are: a model made
    confidently right goes below that floor, and a confidently wrong one keeps a full gradient."""
    model = make().eval()
    with torch.no_grad():  # make the network confidently say "toxic" whatever the text
        model.classifier.weight.zero_()
        model.classifier.bias.copy_(torch.tensor([-4.0, 4.0]))
    ids, mask = batch(ROWS)
    logits = model(ids, mask)
    assert logits.max().item() > 1 and logits.min().item() < 0  # not squashed into (0, 1)
    floor = float(np.log(1 + np.exp(-1)))
    right = cross_entropy_loss(logits, {"labels": torch.ones(4, dtype=torch.long)})
    assert right.item() < 0.01 < floor
    demo = sigmoid_before_cross_entropy_demo().loc["confidently right"]
    assert demo["loss CE(logits)"] == pytest.approx(right.item(), abs=1e-4)
    wrong = cross_entropy_loss(logits, {"labels": torch.zeros(4, dtype=torch.long)})
    wrong.backward()
    assert model.classifier.bias.grad.abs().max().item() > 0.9  # softmax(8) ~ 1: no flat tail


def small_cnn(seed: int = 0) -> CNNClassifier:
    torch.manual_seed(seed)
    return CNNClassifier(VOCAB, pad_id=0, embedding_dim=EMB, num_filters=4, widths=(2, 3))


def test_cnn_logits_do_not_depend_on_padding_or_the_batch():
    model = small_cnn().eval()
    ids, mask = batch(ROWS)
    more_ids, more_mask = batch(ROWS, width=20)
    alone = torch.cat([model(*batch([row])) for row in ROWS])
    torch.testing.assert_close(model(ids, mask), model(more_ids, more_mask))
    torch.testing.assert_close(model(ids, mask), alone)
    noisy = more_ids.clone()
    noisy[more_mask == 0] = 7  # whatever sits past the mask is never read
    torch.testing.assert_close(model(noisy, more_mask), model(more_ids, more_mask))
    # A text shorter than the widest window (one token) still gets finite logits.
    assert torch.isfinite(model(*batch([[9]]))).all()


def test_save_load_round_trip_of_either_network(tmp_path):
    tokenizer = train_bpe_tokenizer(["пример текста", "ещё один текст"] * 20, vocab_size=300)
    for network, model in (("cnn", CNNClassifier(tokenizer.get_vocab_size(), embedding_dim=8,
                                                 num_filters=4)),
                           ("bilstm", BiLSTMClassifier(tokenizer.get_vocab_size(),
                                                       embedding_dim=8, hidden_size=4))):
        folder = save_token_model(model.eval(), tokenizer, tmp_path / network, {"max_length": 8})
        assert json.loads((folder / "config.json").read_text())["network"] == network
        loaded, _, meta = load_token_model(folder)
        assert type(loaded) is type(model) and meta == {"max_length": 8}
        ids, mask = batch(encode_texts(tokenizer, ["пример", "ещё один текст"], 8))
        torch.testing.assert_close(loaded(ids, mask), model(ids, mask))
    with pytest.raises(TypeError, match="not one of"):
        save_token_model(torch.nn.Linear(2, 2), tokenizer, tmp_path / "x", {})
