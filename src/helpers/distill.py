"""Distillation losses on logits, shared by every student in the book.

Each function names its source. All take raw logits: softmax and log-softmax happen inside.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def logit_mse_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor, alpha: float
) -> torch.Tensor:
    """``alpha * CE(student, label) + (1 - alpha) * MSE(student logits, teacher logits)``.

    The loss of the source article, after Tang et al. (2019), "Distilling Task-Specific Knowledge
    from BERT into Simple Neural Networks": matching logits (not probabilities) keeps what the
    teacher knows about how sure it is, which softmax would squash.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    ce = F.cross_entropy(student_logits, labels)
    mse = F.mse_loss(student_logits, teacher_logits)
    return alpha * ce + (1.0 - alpha) * mse


def soft_target_kl(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float
) -> torch.Tensor:
    """KL(teacher || student) of temperature-softened distributions, times ``temperature**2``.

    Hinton, Vinyals and Dean (2015), "Distilling the Knowledge in a Neural Network"; used by
    DistilBERT. The ``T**2`` factor keeps the gradient's scale independent of the temperature.
    Works for any number of classes along the last dimension (also token distributions over a
    vocabulary, after flattening the positions into the batch dimension).
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    student = F.log_softmax(student_logits / temperature, dim=-1)
    teacher = F.log_softmax(teacher_logits / temperature, dim=-1)
    kl = F.kl_div(student, teacher, log_target=True, reduction="batchmean")
    return kl * temperature**2
