"""Every loss of the book, on raw logits: softmax and log-softmax happen inside.

Classification (chapters 2-5): cross-entropy on the labels, the logit MSE of Tang et al. (2019)
and the temperature KL of Hinton et al. (2015), each mixed with the cross-entropy by ``alpha``.
Pretraining of BERT students (chapter 5): the MLM cross-entropy at masked positions, the KL between
token distributions, the MSE between normalised [CLS] vectors and DistilBERT's hidden-state cosine.
Each function names its source.

Rows without a gold label
    The transfer set of Tang et al. (2019) adds augmented texts that only the teacher has
    labelled. Such rows carry the label :data:`UNLABELLED` (``-1``): the cross-entropy term is
    averaged over the labelled rows only, while the teacher term (MSE or KL) uses every row. An
    unlabelled row therefore teaches the student through the teacher alone, as in the paper, and a
    batch of unlabelled rows only has no cross-entropy term at all (so with ``alpha = 1`` such rows
    teach nothing).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

UNLABELLED = -1
"""Label of a row that has no gold label (an augmented text labelled by the teacher only)."""

IGNORE = -100
"""Label of a position the MLM loss skips (PyTorch's cross-entropy default ``ignore_index``)."""

LossFn = Callable[[torch.Tensor, dict], torch.Tensor]
"""``loss_fn(logits, batch) -> loss``: what :func:`helpers.training.fit` minimises."""


def cross_entropy_loss(logits: torch.Tensor, batch: dict) -> torch.Tensor:
    """Cross-entropy on raw logits: softmax is inside the loss, never applied before
    it."""
    return F.cross_entropy(logits, batch["labels"].to(logits.device))


def _check_alpha(alpha: float) -> None:
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")


def _check_temperature(temperature: float) -> None:
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")


def masked_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the rows that have a gold label (``label >= 0``).

    Rows labelled :data:`UNLABELLED` are left out of both the sum and the count; with no labelled
    row at all the result is a zero that still belongs to the graph (so ``backward`` works).
    ``F.cross_entropy(ignore_index=-1)`` would return NaN in that case, hence the explicit mask.
    """
    labelled = labels >= 0
    if bool(labelled.all()):
        return F.cross_entropy(logits, labels)
    if not bool(labelled.any()):
        return logits.sum() * 0.0
    return F.cross_entropy(logits[labelled], labels[labelled])


def logit_mse_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
    alpha: float,
) -> torch.Tensor:
    """``alpha * CE(student, label) + (1 - alpha) * MSE(student logits, teacher logits)``.

    The loss of the source article, after Tang et al. (2019), "Distilling Task-Specific Knowledge
    from BERT into Simple Neural Networks": matching logits (not probabilities) keeps what the
    teacher knows about how sure it is, which softmax would squash. The cross-entropy is averaged
    over labelled rows only (see :func:`masked_cross_entropy`); the MSE over every row and logit.
    """
    _check_alpha(alpha)
    ce = masked_cross_entropy(student_logits, labels)
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
    _check_temperature(temperature)
    student = F.log_softmax(student_logits / temperature, dim=-1)
    teacher = F.log_softmax(teacher_logits / temperature, dim=-1)
    kl = F.kl_div(student, teacher, log_target=True, reduction="batchmean")
    return kl * temperature**2


def kl_distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    temperature: float,
    alpha: float,
) -> torch.Tensor:
    """``alpha * CE(student, label) + (1 - alpha) * T**2 * KL(teacher_T || student_T)``.

    The soft-target loss of Hinton et al. (2015), with the hard-label term weighted by ``alpha``
    (the same convention as :func:`logit_mse_loss`, so the two differ only in the teacher term).
    The cross-entropy uses labelled rows only; the KL term every row.
    """
    _check_alpha(alpha)
    ce = masked_cross_entropy(student_logits, labels)
    kl = soft_target_kl(student_logits, teacher_logits, temperature)
    return alpha * ce + (1.0 - alpha) * kl


def _targets(batch: dict, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The batch's teacher logits and labels, on ``device``."""
    if "teacher_logits" not in batch:
        raise KeyError(
            "the batch has no 'teacher_logits': build the dataset with "
            "EncodedDataset(ids, labels, extras={'teacher_logits': logits})"
        )
    teacher = batch["teacher_logits"].to(device=device, dtype=torch.float32)
    return teacher, batch["labels"].to(device)


def article_loss_fn(alpha: float) -> LossFn:
    """A ``loss_fn(logits, batch)`` for :func:`helpers.training.fit`: :func:`logit_mse_loss`.

    The article's (and Tang et al.'s 2019) loss on the batch's cached ``teacher_logits``, so the
    teacher never runs inside the student's training loop. ``alpha = 1`` is plain cross-entropy
    (no teacher), ``alpha = 0`` pure logit matching. Rows labelled ``-1`` get the teacher term only.
    """
    _check_alpha(alpha)

    def loss_fn(logits: torch.Tensor, batch: dict) -> torch.Tensor:
        teacher, labels = _targets(batch, logits.device)
        return logit_mse_loss(logits, teacher, labels, alpha)

    return loss_fn


def kl_loss_fn(temperature: float, alpha: float) -> LossFn:
    """A ``loss_fn(logits, batch)`` for :func:`helpers.training.fit`: :func:`kl_distillation_loss`.

    Hinton et al. (2015) soft targets at ``temperature`` on the batch's cached ``teacher_logits``,
    plus ``alpha`` times the cross-entropy on the labelled rows (rows labelled ``-1`` get the KL
    term only).
    """
    _check_alpha(alpha)
    _check_temperature(temperature)

    def loss_fn(logits: torch.Tensor, batch: dict) -> torch.Tensor:
        teacher, labels = _targets(batch, logits.device)
        return kl_distillation_loss(logits, teacher, labels, temperature, alpha)

    return loss_fn


@dataclass(frozen=True)
class Recipe:
    """A distillation recipe of chapter 4: the teacher term (``"mse"``, the article's logit MSE,
    or ``"kl"``, soft targets at ``temperature``) and its mix ``alpha`` with the cross-entropy.

    Checked where it is made (``alpha`` in [0, 1]; a KL recipe needs a ``temperature`` > 0, an
    MSE one has none). :meth:`loss_fn` builds the loss (:func:`article_loss_fn` or
    :func:`kl_loss_fn`); :attr:`label` and :meth:`fields` name it in tables and results rows.
    """

    loss: str = "mse"
    alpha: float = 0.5
    temperature: float | None = None

    def __post_init__(self) -> None:
        if self.loss not in ("mse", "kl"):
            raise ValueError(f"loss must be 'mse' or 'kl', got {self.loss!r}")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {self.alpha!r}")
        if self.loss == "kl" and (self.temperature is None or not self.temperature > 0):
            raise ValueError(f"temperature (T) must be > 0 for the KL loss, got "
                             f"{self.temperature!r}")
        if self.loss == "mse" and self.temperature is not None:
            raise ValueError(f"temperature must be None for the MSE loss (it has none), got "
                             f"{self.temperature!r}")

    def loss_fn(self) -> LossFn:
        """The ``loss_fn(logits, batch)`` this recipe trains with."""
        if self.loss == "mse":
            return article_loss_fn(self.alpha)
        return kl_loss_fn(self.temperature, self.alpha)

    @property
    def label(self) -> str:
        """``"MSE, alpha=0.5"`` or ``"KL, T=2, alpha=0.5"``."""
        if self.loss == "mse":
            return f"MSE, alpha={self.alpha:g}"
        return f"KL, T={self.temperature:g}, alpha={self.alpha:g}"

    @property
    def short(self) -> str:
        """The recipe in a results row's name: ``"MSE, a=0.5"`` or ``"KL, T=2, a=0.5"``."""
        return self.label.replace("alpha=", "a=")

    @property
    def slug(self) -> str:
        """The recipe in an artifact's folder name: ``"mse_a0.5"`` or ``"kl_t2_a0.5"``."""
        if self.loss == "mse":
            return f"mse_a{self.alpha:g}"
        return f"kl_t{self.temperature:g}_a{self.alpha:g}"

    def fields(self) -> dict[str, float]:
        """What a results row records of the recipe: its ``recipe`` label, ``alpha`` and, for KL,
        ``temperature``."""
        if self.loss == "mse":
            return {"recipe": self.label, "alpha": self.alpha}
        return {"recipe": self.label, "alpha": self.alpha, "temperature": self.temperature}


# --------------------------------------------------------------------------- pretraining


def cls_embedding_loss(student_cls: torch.Tensor,
                       teacher_cls: torch.Tensor) -> torch.Tensor:
    """MSE between L2-normalised sentence embeddings, as in the source article.

    Summed over dimensions and averaged over the batch, i.e. ``|u - v|^2 = 2 - 2 cos(u, v)``, so
    the scale does not shrink with the width. ``student_cls`` should already have gone through
    the linear adapter to the teacher's width.
    """
    diff = F.normalize(student_cls, dim=-1) - F.normalize(teacher_cls, dim=-1)
    return diff.pow(2).sum(-1).mean()


def hidden_cosine_loss(student_hidden: torch.Tensor, teacher_hidden: torch.Tensor,
                       attention_mask: torch.Tensor) -> torch.Tensor:
    """DistilBERT's cosine embedding loss: mean of ``1 - cos`` over the real (non-pad)
    tokens."""
    cos = F.cosine_similarity(student_hidden, teacher_hidden, dim=-1)
    real = attention_mask.bool()
    return (1.0 - cos[real]).mean()
