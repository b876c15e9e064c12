"""The record of a pretraining run and its curves.

:class:`PretrainHistory` holds the training losses of :func:`helpers.pretraining.pretrain_student`
every few steps and its validation MLM loss every ``eval_every`` steps (which
:class:`helpers.training.Plateau`, the early stopping :func:`helpers.training.fit` uses too,
watches); :func:`plot_valid_mlm` draws several runs' validation curves on one figure, a student
beside its twin.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
from torch import nn

from .training import plot_curves


@dataclass
class PretrainHistory:
    """Training losses every ``log_every`` steps, the validation MLM loss every ``eval_every``
    steps (``valid``), the step whose weights were kept, wall time, and the [CLS] adapter if one
    was trained."""

    recipe: Any  # the helpers.pretraining.PretrainRecipe it ran
    steps: list[dict[str, float]] = field(default_factory=list)
    valid: list[dict[str, float]] = field(default_factory=list)
    best_step: int = 0
    steps_run: int = 0
    steps_cap: int = 0
    seconds: float = 0.0
    adapter: nn.Module | None = None

    @property
    def stopped_by(self) -> str:
        """``"plateau rule"`` when the validation rule ended the run before its cap, else
        ``"step cap"`` (the run may still have been improving: compare ``best_step``)."""
        return "step cap" if self.steps_run >= self.steps_cap else "plateau rule"

    def summary(self, name: str = "") -> str:
        """The run in one line (logged when it ends): steps run, kept step and its validation
        MLM loss, what stopped it, wall time; ``name`` defaults to the recipe's."""
        kept = f"kept step {self.best_step}"
        if self.valid:
            kept += f" (valid MLM {self.valid_frame()['valid_mlm'].loc[self.best_step]:.4f})"
        return (f"{name or self.recipe.name}: {self.steps_run} steps of {self.steps_cap} "
                f"({self.stopped_by}), {kept}, {self.seconds:.0f} s")

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.steps).set_index("step")

    def valid_frame(self) -> pd.DataFrame:
        """The validation MLM loss by step (empty without a validation loader)."""
        return pd.DataFrame(self.valid, columns=["step", "valid_mlm"]).set_index("step")

    def plot(self, title: str = "", ax=None):
        """Each training loss component over the steps, the validation MLM loss, the kept step."""
        if ax is None:
            _, ax = plt.subplots(figsize=(6, 3))
        self.to_frame().drop(columns=["seconds"], errors="ignore").plot(ax=ax, marker=".")
        if self.valid:
            self.valid_frame()["valid_mlm"].plot(ax=ax, marker="o", color="black",
                                                 label="valid MLM")
            ax.axvline(self.best_step, color="grey", linestyle="--", label="kept")
            ax.legend(fontsize=8)
        ax.set_xlabel("step")
        ax.set_title(title or self.recipe.name)
        return ax


def plot_valid_mlm(histories: dict[str, PretrainHistory], title: str = "", ax=None):
    """The validation MLM loss of several pretrainings on one figure, each kept step circled."""
    return plot_curves({label: h.valid_frame()["valid_mlm"] for label, h in histories.items()},
                       {label: h.best_step for label, h in histories.items()},
                       xlabel="pretraining step", ylabel="validation MLM loss", title=title,
                       ax=ax)
