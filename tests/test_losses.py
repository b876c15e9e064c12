"""Distillation losses against values worked out by hand on tiny tensors."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers.batching import EncodedDataset, pad_collate
from helpers.losses import (
    UNLABELLED,
    article_loss_fn,
    kl_distillation_loss,
    kl_loss_fn,
    logit_mse_loss,
    masked_cross_entropy,
    soft_target_kl,
)

LOG2 = math.log(2)
LOG3 = math.log(3)

# Two rows used throughout:
#   student [0, 0], teacher [1, -1], label 0: CE = -log(1/2) = log 2; squared errors 1 and 1.
#   student [2, 0], teacher [2,  0], label 1: CE = -log(e^0 / (e^2 + 1)) = log(1 + e^2); errors 0.
STUDENT = torch.tensor([[0.0, 0.0], [2.0, 0.0]])
TEACHER = torch.tensor([[1.0, -1.0], [2.0, 0.0]])
LABELS = torch.tensor([0, 1])
CE_ROWS = [LOG2, math.log(1 + math.e**2)]
CE_MEAN = sum(CE_ROWS) / 2  # (0.693147 + 2.126928) / 2 = 1.410038
MSE = (1 + 1 + 0 + 0) / 4  # mean over all 4 logits = 0.5
# KL of teacher (3/4, 1/4) from student (1/2, 1/2):
#   3/4 * log((3/4) / (1/2)) + 1/4 * log((1/4) / (1/2)) = 3/4 log 1.5 - 1/4 log 2 = 0.130812
KL_HAND = 0.75 * math.log(1.5) - 0.25 * LOG2


def test_logit_mse_loss_by_hand():
    loss = logit_mse_loss(STUDENT, TEACHER, LABELS, alpha=0.5)
    assert loss.item() == pytest.approx(0.5 * CE_MEAN + 0.5 * MSE, abs=1e-6)  # 0.955019
    loss = logit_mse_loss(STUDENT, TEACHER, LABELS, alpha=0.25)
    assert loss.item() == pytest.approx(0.25 * CE_MEAN + 0.75 * MSE, abs=1e-6)


def test_alpha_one_is_cross_entropy_and_alpha_zero_is_mse():
    ce = logit_mse_loss(STUDENT, TEACHER, LABELS, alpha=1.0)
    mse = logit_mse_loss(STUDENT, TEACHER, LABELS, alpha=0.0)
    assert ce.item() == pytest.approx(F.cross_entropy(STUDENT, LABELS).item(), abs=1e-7)
    assert ce.item() == pytest.approx(CE_MEAN, abs=1e-6)
    assert mse.item() == pytest.approx(F.mse_loss(STUDENT, TEACHER).item(), abs=1e-7)
    assert mse.item() == pytest.approx(MSE, abs=1e-7)


def test_soft_target_kl_by_hand_and_batchmean():
    student = torch.tensor([[0.0, 0.0]])
    teacher = torch.tensor([[LOG3, 0.0]])  # softmax = (3/4, 1/4)
    assert soft_target_kl(student, teacher, 1.0).item() == pytest.approx(KL_HAND, abs=1e-6)
    # A second, identical row adds 0 to the sum; "batchmean" divides by 2 rows.
    both_s = torch.tensor([[0.0, 0.0], [1.0, 2.0]])
    both_t = torch.tensor([[LOG3, 0.0], [1.0, 2.0]])
    assert soft_target_kl(both_s, both_t, 1.0).item() == pytest.approx(KL_HAND / 2, abs=1e-6)


def test_kl_is_zero_for_identical_logits():
    logits = torch.tensor([[0.3, -1.2], [5.0, 2.0], [0.0, 0.0]])
    for temperature in (0.5, 1.0, 4.0):
        assert soft_target_kl(logits, logits.clone(), temperature).item() == pytest.approx(
            0.0, abs=1e-7)


def test_kl_temperature_squared_scaling():
    # At T = 2, teacher logits [2 log 3, 0] soften to [log 3, 0] (the same (3/4, 1/4)) and the
    # student's [0, 0] stays [0, 0]: the KL is the same as above, and T^2 = 4 multiplies it.
    student = torch.tensor([[0.0, 0.0]])
    teacher = torch.tensor([[2 * LOG3, 0.0]])
    assert soft_target_kl(student, teacher, 2.0).item() == pytest.approx(4 * KL_HAND, abs=1e-6)


def test_kl_distillation_loss_mixes_like_the_mse_one():
    student = torch.tensor([[0.0, 0.0]])
    teacher = torch.tensor([[LOG3, 0.0]])
    loss = kl_distillation_loss(student, teacher, torch.tensor([1]), temperature=1.0, alpha=0.25)
    assert loss.item() == pytest.approx(0.25 * LOG2 + 0.75 * KL_HAND, abs=1e-6)


@pytest.mark.parametrize("alpha", [-0.1, 1.5])
def test_invalid_alpha_raises(alpha):
    with pytest.raises(ValueError, match="alpha"):
        logit_mse_loss(STUDENT, TEACHER, LABELS, alpha)
    with pytest.raises(ValueError, match="alpha"):
        article_loss_fn(alpha)
    with pytest.raises(ValueError, match="alpha"):
        kl_loss_fn(2.0, alpha)


@pytest.mark.parametrize("temperature", [0.0, -1.0])
def test_invalid_temperature_raises(temperature):
    with pytest.raises(ValueError, match="temperature"):
        soft_target_kl(STUDENT, TEACHER, temperature)
    with pytest.raises(ValueError, match="temperature"):
        kl_loss_fn(temperature, 0.5)


def test_masked_cross_entropy_uses_labelled_rows_only():
    labels = torch.tensor([0, UNLABELLED])
    assert masked_cross_entropy(STUDENT, labels).item() == pytest.approx(LOG2, abs=1e-6)
    none = masked_cross_entropy(STUDENT.clone().requires_grad_(), torch.tensor([-1, -1]))
    assert none.item() == 0.0
    none.backward()  # still part of the graph


def test_unlabelled_rows_get_the_teacher_term_only():
    labels = torch.tensor([0, UNLABELLED])
    # CE of the labelled first row only (log 2); MSE of both rows (0.5).
    loss = logit_mse_loss(STUDENT, TEACHER, labels, alpha=0.5)
    assert loss.item() == pytest.approx(0.5 * LOG2 + 0.5 * MSE, abs=1e-6)  # 0.596574
    # With alpha = 1 the unlabelled row receives no gradient at all.
    student = STUDENT.clone().requires_grad_()
    logit_mse_loss(student, TEACHER, labels, alpha=1.0).backward()
    assert torch.all(student.grad[1] == 0) and torch.any(student.grad[0] != 0)
    # With alpha = 0 it is trained towards the teacher like any other row.
    student = torch.tensor([[0.0, 0.0], [0.0, 0.0]], requires_grad=True)
    logit_mse_loss(student, TEACHER, labels, alpha=0.0).backward()
    assert torch.any(student.grad[1] != 0)


def _batch(labels):
    """A real batch from EncodedDataset + pad_collate, as the shared loop builds it."""
    dataset = EncodedDataset([[5, 6], [7]], labels, extras={"teacher_logits": TEACHER.numpy()})
    return pad_collate(0)([dataset[0], dataset[1]])


def test_loss_fn_factories_read_the_batch_and_mask_unlabelled_rows():
    batch = _batch(np.array([0, UNLABELLED]))
    assert batch["teacher_logits"].dtype == torch.float32
    mse = article_loss_fn(0.5)(STUDENT, batch)
    assert mse.item() == pytest.approx(0.5 * LOG2 + 0.5 * MSE, abs=1e-6)
    # KL term over both rows: row 1 is teacher softmax(1, -1) against uniform; row 2 is 0.
    teacher_p = torch.softmax(TEACHER[0], dim=0)
    kl_row = float((teacher_p * torch.log(teacher_p / 0.5)).sum())
    kl = kl_loss_fn(1.0, 0.25)(STUDENT, batch)
    assert kl.item() == pytest.approx(0.25 * LOG2 + 0.75 * kl_row / 2, abs=1e-6)


def test_loss_fn_factories_match_the_plain_functions_on_labelled_batches():
    batch = _batch(LABELS.numpy())
    assert article_loss_fn(0.3)(STUDENT, batch).item() == pytest.approx(
        logit_mse_loss(STUDENT, TEACHER, LABELS, 0.3).item())
    assert kl_loss_fn(2.0, 0.3)(STUDENT, batch).item() == pytest.approx(
        0.3 * CE_MEAN + 0.7 * soft_target_kl(STUDENT, TEACHER, 2.0).item())


def test_loss_fn_without_teacher_logits_says_what_to_do():
    dataset = EncodedDataset([[5], [7]], [0, 1])
    batch = pad_collate(0)([dataset[0], dataset[1]])
    with pytest.raises(KeyError, match="teacher_logits"):
        article_loss_fn(0.5)(STUDENT, batch)
