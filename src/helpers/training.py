"""The training loop shared by every neural chapter, and the optimizer step it shares with
pretraining.

:func:`fit` trains on batches of :mod:`helpers.batching` with any ``loss_fn(logits, batch)``
(:mod:`helpers.losses`), evaluates on the validation split after every epoch, stops early and keeps
the best epoch's weights (a copy, not an alias of the model that goes on training). A run shows
one progress bar (standard error) and logs one line when it ends (:meth:`History.summary`); each
epoch's figures are logged at debug level and kept in its :class:`History`.
:func:`make_optimizer` and :func:`optimizer_step` are the AdamW, schedule and clipping that
:func:`fit` and :func:`helpers.pretraining.pretrain_student` both use.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from .batching import logits_to_proba, model_logits, predict_logits
from .config import SEED
from .evaluation import evaluate
from .losses import LossFn, cross_entropy_loss

logger = logging.getLogger(__name__)

def set_seed(seed: int = SEED) -> None:
    """Seed Python, NumPy and PyTorch (CPU and CUDA) so that runs repeat."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """The device to train on: the one asked for, else CUDA when present, else Apple's MPS when
    present, else the CPU."""
    if device is not None:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def make_optimizer(
    parameters: Iterable[nn.Parameter], *, lr: float, weight_decay: float, warmup_ratio: float,
    total_steps: int,
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW and a linear schedule: ``warmup_ratio`` of the steps warming up, then decay to 0."""
    from transformers import get_linear_schedule_with_warmup

    optimizer = torch.optim.AdamW(list(parameters), lr=lr, weight_decay=weight_decay)
    scheduler = get_linear_schedule_with_warmup(
        optimizer, int(warmup_ratio * total_steps), total_steps)
    return optimizer, scheduler


def optimizer_step(loss: torch.Tensor, optimizer: torch.optim.Optimizer,
                   scheduler: torch.optim.lr_scheduler.LambdaLR,
                   max_grad_norm: float | None = 1.0) -> None:
    """One update: gradients of ``loss``, clipped to ``max_grad_norm``, AdamW step, schedule step.

    Gradients are clipped over every parameter the optimizer updates (``None`` or 0: no clipping).
    """
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if max_grad_norm:
        params = [p for group in optimizer.param_groups for p in group["params"]]
        nn.utils.clip_grad_norm_(params, max_grad_norm)
    optimizer.step()
    scheduler.step()


@dataclass
class History:
    """Per-epoch figures of a training run; ``best_epoch`` is the one whose weights were kept,
    ``epochs_cap`` the most it was allowed (0: not recorded)."""

    epochs: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    seconds: float = 0.0
    epochs_cap: int = 0

    @property
    def stopped_by(self) -> str:
        """``"plateau rule"`` when early stopping ended the run before its cap, else
        ``"epoch cap"`` (the run may still have been improving: compare ``best_epoch``)."""
        return "epoch cap" if len(self.epochs) >= self.epochs_cap else "plateau rule"

    def summary(self, name: str) -> str:
        """The run in one line: epochs run, kept epoch and its validation F1, what stopped it,
        wall time (the line :func:`fit` logs when a run ends)."""
        cap = f" of {self.epochs_cap}" if self.epochs_cap else ""
        run = f"{len(self.epochs)} epoch{'s' if len(self.epochs) != 1 else ''}{cap}"
        return (f"{name}: {run} ({self.stopped_by}), kept epoch "
                f"{self.best_epoch} (valid F1 {self.best_valid_f1:.4f}), {self.seconds:.0f} s")

    @property
    def steps_run(self) -> int:
        """Optimizer steps taken before the run stopped (0 for a history saved without them)."""
        return int(self.epochs[-1].get("steps", 0)) if self.epochs else 0

    @property
    def steps_kept(self) -> int:
        """Optimizer steps behind the kept weights: those of the best epoch's end."""
        return int(self.epochs[self.best_epoch - 1].get("steps", 0)) if self.best_epoch else 0

    @property
    def best_valid_f1(self) -> float:
        """Validation F1 of the kept epoch: the figure runs are chosen by, never the test F1."""
        return self.epochs[self.best_epoch - 1]["valid_f1"]

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.epochs).set_index("epoch")

    def plot(self, title: str = "", axes=None):
        """Training loss and validation F1 per epoch, the kept epoch marked."""
        frame = self.to_frame()
        if axes is None:
            _, axes = plt.subplots(1, 2, figsize=(9, 3))
        frame["train_loss"].plot(ax=axes[0], marker="o", title="training loss")
        frame["valid_f1"].plot(ax=axes[1], marker="o", title="validation F1 (toxic)")
        axes[1].axvline(self.best_epoch, color="grey", linestyle="--", label="kept")
        axes[1].legend()
        for ax in axes:
            ax.set_xlabel("epoch")
        if title:
            axes[0].figure.suptitle(title)
        return axes


def plot_curves(curves: Mapping[str, pd.Series], kept: Mapping[str, float], *, xlabel: str,
                ylabel: str, title: str = "", ax=None):
    """Several runs' validation curves on one figure (a student beside its twin), each run's kept
    point circled: ``curves`` maps a label to a series indexed by epoch or step, ``kept`` maps
    it to the epoch or step whose weights were kept."""
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.8))
    for label, curve in curves.items():
        (line,) = ax.plot(curve.index, curve.values, marker=".", label=label)
        ax.plot(kept[label], curve.loc[kept[label]], "o", mfc="none", ms=10,
                color=line.get_color())
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return ax


def plot_histories(histories: Mapping[str, History], title: str = "", ax=None):
    """Validation F1 per epoch of several runs on one figure, each kept epoch circled."""
    return plot_curves({label: h.to_frame()["valid_f1"] for label, h in histories.items()},
                       {label: h.best_epoch for label, h in histories.items()},
                       xlabel="epoch", ylabel="validation F1 (toxic)", title=title, ax=ax)


class Plateau:
    """Early stopping on a validation figure measured again and again (every epoch in
    :func:`fit`, every few steps in :func:`helpers.pretraining.pretrain_student`).

    The weights of the best measurement are kept (a CPU copy) at any improvement; the patience
    count restarts only at a gain of more than ``min_improvement`` over the value where it last
    restarted (``relative``: as a share of that value), so that gains inside the noise do not keep
    a flat run going; after ``patience`` measurements without one (``None``: never) it says stop.
    """

    def __init__(self, patience: int | None, min_improvement: float = 0.0,
                 higher_is_better: bool = True, relative: bool = False) -> None:
        self.patience, self.min_improvement = patience, min_improvement
        self.higher_is_better, self.relative = higher_is_better, relative
        self.best: float | None = None
        self.reference: float | None = None
        self.best_at, self.waited = 0, 0
        self.best_state: dict[str, torch.Tensor] | None = None

    def _beats(self, value: float, bar: float) -> bool:
        return value > bar if self.higher_is_better else value < bar

    def _restart_bar(self) -> float:
        """The value a measurement must beat to restart the patience count."""
        sign = 1 if self.higher_is_better else -1
        if self.relative:
            return self.reference * (1 + sign * self.min_improvement)
        return self.reference + sign * self.min_improvement

    def update(self, at: int, value: float, model: nn.Module) -> bool:
        """Record ``value``, measured at epoch or step ``at``; True when training should
        stop."""
        if self.best is None or self._beats(value, self.best):
            self.best, self.best_at = value, at
            self.best_state = {k: v.detach().to("cpu", copy=True)
                               for k, v in model.state_dict().items()}
        if self.reference is None or self._beats(value, self._restart_bar()):
            self.reference, self.waited = value, 0
            return False
        self.waited += 1
        return self.patience is not None and self.waited >= self.patience

    def restore(self, model: nn.Module) -> int:
        """Load the best weights back into ``model``; the epoch or step they are from."""
        model.load_state_dict(self.best_state)
        return self.best_at


def fit(
    model: nn.Module,
    train_loader: DataLoader,
    valid_loader: DataLoader,
    valid_labels: Sequence[int],
    *,
    epochs: int,
    lr: float,
    loss_fn: LossFn = cross_entropy_loss,
    weight_decay: float = 0.01,
    warmup_ratio: float = 0.0,
    max_grad_norm: float | None = 1.0,
    patience: int = 2,
    device: str | torch.device | None = None,
    seed: int = SEED,
    desc: str = "train",
    frozen: Sequence[nn.Parameter] = (),
    frozen_epochs: int = 0,
    min_improvement: float = 0.0,
) -> History:
    """Train with AdamW and a linear schedule; stop early on validation F1; keep the best weights.

    ``loss_fn(logits, batch)`` returns the loss; the default is cross-entropy on the labels,
    distillation chapters pass their own. After ``patience`` epochs without a better validation
    F1 training stops, and the weights of the best epoch are loaded back into ``model``. With
    ``min_improvement`` (in F1, e.g. 0.005 for half a point) only a gain of more than that
    over the F1 where the count last restarted restarts it, so that gains inside the epoch-to-epoch
    noise do not keep a flat run going; the best epoch's weights are kept at any gain.
    The parameters in ``frozen`` (e.g. pretrained word vectors) stay fixed during the first
    ``frozen_epochs`` epochs: they get no gradient, so AdamW neither moves nor decays them.
    """
    if frozen_epochs < 0:
        raise ValueError(f"frozen_epochs must be >= 0, got {frozen_epochs}")
    set_seed(seed)
    device = pick_device(device)
    model.to(device)
    optimizer, scheduler = make_optimizer(model.parameters(), lr=lr, weight_decay=weight_decay,
                                          warmup_ratio=warmup_ratio,
                                          total_steps=epochs * len(train_loader))
    history = History(epochs_cap=epochs)
    stopping = Plateau(patience, min_improvement)
    start = time.perf_counter()
    # One bar for the whole run (standard error, gone when it ends); mininterval keeps it from
    # writing hundreds of lines into a notebook's saved output.
    bar = tqdm(total=epochs * len(train_loader), desc=desc, leave=False, mininterval=5)
    for epoch in range(1, epochs + 1):
        model.train()
        for parameter in frozen:
            parameter.requires_grad_(epoch > frozen_epochs)
        total, count = 0.0, 0
        if hasattr(train_loader.batch_sampler, "set_epoch"):
            train_loader.batch_sampler.set_epoch(epoch - 1)  # same batches whoever used it before
        for batch in train_loader:
            loss = loss_fn(model_logits(model, batch, device), batch)
            optimizer_step(loss, optimizer, scheduler, max_grad_norm)
            total += loss.item()
            count += 1
            bar.set_postfix(epoch=f"{epoch}/{epochs}", loss=f"{total / count:.4f}", refresh=False)
            bar.update()
        proba = logits_to_proba(predict_logits(model, valid_loader, device))
        scores = evaluate(valid_labels, proba)
        history.epochs.append({
            "epoch": epoch, "train_loss": total / max(count, 1), "valid_f1": scores["f1"],
            "valid_ap": scores["average_precision"], "seconds": time.perf_counter() - start,
            "steps": epoch * len(train_loader),  # optimizer steps so far
        })
        logger.debug("%s epoch %d: loss %.4f, valid F1 %.4f, AP %.4f", desc, epoch,
                     total / max(count, 1), scores["f1"], scores["average_precision"])
        if stopping.update(epoch, scores["f1"], model):
            break
    bar.close()
    for parameter in frozen:  # trainable again, even if training ended inside the frozen epochs
        parameter.requires_grad_(True)
    if stopping.best_state is not None:
        history.best_epoch = stopping.restore(model)
    history.seconds = time.perf_counter() - start
    logger.info(history.summary(desc))
    return history
