"""The source article's mistakes, demonstrated: each demo shows the difference it claims."""

from __future__ import annotations

import pytest
import torch

from helpers.article_bugs import best_model_alias_demo, kl_over_positions_demo
from helpers.losses import soft_target_kl


def test_an_alias_keeps_the_last_epoch_and_a_copy_the_best() -> None:
    demo = best_model_alias_demo(weights=(0.5, 1.0, 2.0), valid_f1=(0.8, 0.75, 0.7))
    weight = demo["weight"]
    assert weight["best epoch (validation F1)"] == 0.5 and weight["last epoch"] == 2.0
    assert weight["kept by best_model = model"] == weight["last epoch"]
    best = weight["best epoch (validation F1)"]
    assert weight["kept by best_model = copy.deepcopy(model)"] == best


def test_the_alias_is_harmless_only_when_the_last_epoch_is_the_best() -> None:
    demo = best_model_alias_demo(weights=(0.5, 1.0, 2.0), valid_f1=(0.6, 0.7, 0.8))
    assert demo["weight"].nunique() == 1


def kl_by_hand(student: torch.Tensor, teacher: torch.Tensor, dim: int, t: float) -> float:
    """KL(teacher || student) of softmaxes over ``dim``, summed and divided by the batch size,
    times ``t**2``, written out with plain tensor operations."""
    p = torch.softmax(teacher / t, dim=dim)
    log_q = torch.log_softmax(student / t, dim=dim)
    return float((p * (p.log() - log_q)).sum() / student.shape[0] * t**2)


def test_kl_over_positions_differs_from_kl_over_the_vocabulary() -> None:
    demo = kl_over_positions_demo(batch=2, positions=6, vocab_size=50, temperature=2.0, seed=0)
    book, article = demo["KL"]
    # The demo's random logits, drawn again from the same seed.
    generator = torch.Generator().manual_seed(0)
    student = torch.randn(2, 6, 50, generator=generator)
    teacher = torch.randn(2, 6, 50, generator=generator)
    # The book: one distribution over the vocabulary per position (2 x 6 rows, batch = 12).
    by_vocabulary = kl_by_hand(student.reshape(12, 50), teacher.reshape(12, 50), -1, 2.0)
    # The article: softmax over the positions, batch = 2, then divided by the vocabulary size.
    by_positions = kl_by_hand(student, teacher, 1, 2.0) / 50
    assert book == pytest.approx(by_vocabulary, abs=1e-4)
    assert article == pytest.approx(by_positions, abs=1e-4)
    assert abs(book - article) > 1e-3
    sums = demo.iloc[:, -1]
    assert sums.iloc[0] == pytest.approx(1.0) and sums.iloc[1] != pytest.approx(1.0)


def test_the_books_value_is_soft_target_kl_at_every_position() -> None:
    generator = torch.Generator().manual_seed(3)
    student = torch.randn(2, 4, 10, generator=generator)
    teacher = torch.randn(2, 4, 10, generator=generator)
    expected = soft_target_kl(student.reshape(-1, 10), teacher.reshape(-1, 10), 1.0).item()
    assert kl_over_positions_demo(2, 4, 10, seed=3)["KL"].iloc[0] == round(expected, 4)
