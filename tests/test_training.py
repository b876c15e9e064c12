"""The shared training loop: batching, padding, prediction order, seeding, early stopping."""

import random

import numpy as np
import torch
from torch import nn

from helpers.batching import (
    EncodedDataset,
    length_batches,
    make_loader,
    pad_collate,
    predict_logits,
)
from helpers.training import fit, set_seed


def test_length_batches_cover_every_index_once():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 100, size=537)
    for shuffle in (False, True):
        batches = length_batches(lengths, batch_size=16, shuffle=shuffle, pool=3)
        flat = [i for b in batches for i in b]
        assert sorted(flat) == list(range(len(lengths)))
        assert all(1 <= len(b) <= 16 for b in batches)


def test_length_batches_sorted_without_shuffle():
    lengths = [5, 1, 9, 3, 3, 7, 2]
    batches = length_batches(lengths, batch_size=3, shuffle=False)
    flat = [i for b in batches for i in b]
    assert [lengths[i] for i in flat] == sorted(lengths)
    assert [len(b) for b in batches] == [3, 3, 1]


def test_shuffled_batches_group_similar_lengths_and_change_with_seed():
    lengths = np.tile(np.arange(1, 65), 8)  # 512 texts
    batches = length_batches(lengths, batch_size=8, shuffle=True, seed=1)
    spread = np.mean([np.ptp(lengths[b]) for b in batches])
    assert spread < 16  # a random batch of 8 would spread over ~50 lengths
    assert batches != length_batches(lengths, batch_size=8, shuffle=True, seed=2)
    assert batches == length_batches(lengths, batch_size=8, shuffle=True, seed=1)


def test_pad_collate_pads_and_masks():
    items = [
        {"input_ids": [4, 5, 6], "index": 0, "labels": np.int64(1),
         "teacher_logits": np.array([0.5, -0.5], dtype=np.float32)},
        {"input_ids": [7], "index": 1, "labels": np.int64(0),
         "teacher_logits": np.array([1.0, 2.0], dtype=np.float32)},
    ]
    batch = pad_collate(pad_id=0)(items)
    assert batch["inputs"]["input_ids"].tolist() == [[4, 5, 6], [7, 0, 0]]
    assert batch["inputs"]["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["index"].tolist() == [0, 1]
    assert batch["labels"].tolist() == [1, 0]
    assert batch["teacher_logits"].shape == (2, 2)


class FirstToken(nn.Module):
    """Logits ``[t, -t]`` of each text's first token ``t``: predictions reveal the text."""

    def __init__(self) -> None:
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(1))

    def forward(self, input_ids, attention_mask):
        first = input_ids[:, 0].float()
        return torch.stack([first, -first], dim=1) + 0 * self.unused


def test_predict_logits_returns_dataset_order():
    # Lengths chosen so that sorting by length reorders the texts.
    ids = [[10] * 5, [11], [12] * 3, [13] * 7, [14] * 2, [15]]
    loader = make_loader(EncodedDataset(ids, [0] * 6), batch_size=2, shuffle=False, pad_id=0)
    first_batch = next(iter(loader))["index"].tolist()
    assert first_batch != [0, 1]  # the loader really does reorder
    logits = predict_logits(FirstToken(), loader)
    assert logits[:, 0].tolist() == [10, 11, 12, 13, 14, 15]


def test_set_seed_repeats_runs():
    def draw():
        layer = nn.Linear(4, 3)
        return layer.weight.detach().clone(), np.random.rand(3), random.random()

    set_seed(7)
    first = draw()
    set_seed(7)
    second = draw()
    assert torch.equal(first[0], second[0])
    assert np.array_equal(first[1], second[1]) and first[2] == second[2]


class Threshold(nn.Module):
    """Toxic logit ``x - b`` with ``x = first token / 10``; records ``b`` at every validation.

    Lowering ``b`` predicts more texts toxic, so validation F1 first rises, then falls: the best
    epoch is neither the first nor the last.
    """

    def __init__(self, b: float) -> None:
        super().__init__()
        self.b = nn.Parameter(torch.tensor(b))
        self.validated: list[float] = []

    def forward(self, input_ids, attention_mask):
        if not self.training:
            self.validated.append(self.b.item())
        x = input_ids[:, 0].float() / 10
        return torch.stack([torch.zeros_like(x), x - self.b], dim=1)


def test_fit_restores_the_best_epochs_weights():
    ids, labels = [[9], [7], [5], [3], [1]], [1, 1, 0, 0, 0]
    dataset = EncodedDataset(ids, labels)
    # One batch each, so the model sees one validation forward per epoch.
    train = make_loader(dataset, batch_size=8, shuffle=True, pad_id=0)
    valid = make_loader(dataset, batch_size=8, shuffle=False, pad_id=0)
    model = Threshold(1.0)

    def push_b_down(logits, batch):
        return model.b * 1.0 + 0 * logits.sum()  # gradient +1 on b: each step lowers b

    history = fit(model, train, valid, labels, epochs=10, lr=0.2, loss_fn=push_b_down,
                  weight_decay=0.0, patience=2)
    f1 = [e["valid_f1"] for e in history.epochs]
    assert len(model.validated) == len(history.epochs) < 10  # stopped early
    assert history.best_epoch == int(np.argmax(f1)) + 1
    assert 1 < history.best_epoch < len(history.epochs)
    assert f1[history.best_epoch - 1] == 1.0
    # The weights in the model now are those it had when the best epoch was validated.
    assert model.b.item() == model.validated[history.best_epoch - 1]
    assert model.b.item() != model.validated[-1]


class BagOfEmbeddings(nn.Module):
    """Sum of token embeddings, dropout, linear: tiny, with randomness in training."""

    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(11, 4, padding_idx=0)
        self.dropout = nn.Dropout(0.3)  # randomness that only the seed controls
        self.out = nn.Linear(4, 2)

    def forward(self, input_ids, attention_mask):
        summed = (self.embedding(input_ids) * attention_mask.unsqueeze(-1)).sum(1)
        return self.out(self.dropout(summed))


def test_fit_is_repeatable_under_the_same_seed():
    ids = [[1, 2, 3], [4, 5], [6], [7, 8, 9, 10], [2, 2], [3]] * 4
    labels = [0, 1, 0, 1, 1, 0] * 4
    dataset = EncodedDataset(ids, labels)

    def run() -> dict[str, torch.Tensor]:
        torch.manual_seed(0)
        model = BagOfEmbeddings()
        train = make_loader(dataset, batch_size=4, shuffle=True, pad_id=0, seed=3)
        valid = make_loader(dataset, batch_size=4, shuffle=False, pad_id=0)
        fit(model, train, valid, labels, epochs=2, lr=0.05)
        return model.state_dict()

    first, second = run(), run()
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_pick_device_prefers_cuda_then_mps_then_cpu(monkeypatch):
    from helpers.training import pick_device

    assert pick_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert pick_device() == torch.device("mps")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert pick_device() == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device() == torch.device("cuda")


def test_fit_min_improvement_stops_a_creeping_run_and_keeps_its_best_epoch(monkeypatch):
    """Scripted validation F1s: after a jump, gains of 0.001 an epoch. Without a minimum gain each
    one restarts the patience count; with 0.005 the run stops after ``patience`` such epochs,
    keeping the best (last) of them."""
    from helpers import training

    script = [0.80, 0.836, 0.837, 0.838, 0.839, 0.840, 0.841, 0.842]

    def scripted(labels, proba):
        calls.append(1)
        return {"f1": script[len(calls) - 1], "average_precision": 0.5}

    ids, labels = [[9], [7], [5], [3], [1]], [1, 1, 0, 0, 0]
    dataset = EncodedDataset(ids, labels)
    for min_improvement, stop, kept in ((0.0, 8, 8), (0.005, 5, 5)):
        calls: list[int] = []
        monkeypatch.setattr(training, "evaluate", scripted)
        history = fit(BagOfEmbeddings(), make_loader(dataset, 8, True, 0),
                      make_loader(dataset, 8, False, 0), labels, epochs=8, lr=0.01, patience=3,
                      min_improvement=min_improvement)
        assert (len(history.epochs), history.best_epoch) == (stop, kept)
