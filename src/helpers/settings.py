"""How a token model of :mod:`helpers.token_models` is built and trained, as two settings objects
handed whole to :func:`helpers.token_models.train_token_model`: :class:`NetworkSpec` (which network
and its size) and :class:`TrainSettings` (the schedule). Both are checked where they are made, as
scikit-learn checks its parameters: a bad value raises a ValueError naming the field.
:mod:`helpers.budgets` hands out each chapter's; the loss is :class:`helpers.losses.Recipe`.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from torch import nn

from .config import SEED


def _check(field: str, value: Any, ok: bool, wanted: str) -> None:
    """Raise a ValueError naming the field, what it must be and what it was."""
    if not ok:
        raise ValueError(f"{field} must be {wanted}, got {value!r}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class NetworkSpec:
    """Which network of :data:`helpers.token_models.NETWORKS` (``name``) and its size: keyword
    arguments of its class besides the vocabulary (e.g. ``{"embedding_dim": 128,
    "hidden_size": 128}``; empty: the class's defaults, the article's BiLSTM for ``"bilstm"``)."""

    name: str = "bilstm"
    size: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        from .token_models import NETWORKS  # the classes; they import these settings

        _check("network", self.name, self.name in NETWORKS, f"one of {sorted(NETWORKS)}")
        accepted = set(inspect.signature(NETWORKS[self.name]).parameters) - {"vocab_size",
                                                                             "pad_id"}
        for key, value in self.size.items():
            _check(f"{self.name} size key", key, key in accepted, f"one of {sorted(accepted)}")
            if key != "dropout" and key != "widths":
                _check(f"{self.name} {key}", value, _is_int(value) and value >= 1,
                       "an integer >= 1")
        object.__setattr__(self, "size", dict(self.size))  # a copy: the spec stays as built

    def with_size(self, **size: Any) -> NetworkSpec:
        """The same network with some size arguments changed (e.g. ``hidden_size=32``)."""
        return NetworkSpec(self.name, {**self.size, **size})

    def build(self, vocab_size: int, pad_id: int = 0) -> nn.Module:
        """A freshly initialised model of this spec for a vocabulary of ``vocab_size``."""
        from .token_models import NETWORKS

        return NETWORKS[self.name](vocab_size, pad_id=pad_id, **self.size)


@dataclass(frozen=True)
class TrainSettings:
    """How a token model trains: the schedule that :func:`helpers.token_models.train_token_model`
    takes whole.

    At most ``epochs`` passes over the training split, stopped earlier once validation F1 has not
    improved by more than ``min_improvement`` for ``patience`` epochs (the best epoch is kept);
    batches of ``batch_size``, AdamW at ``lr`` falling linearly to 0, texts cut at
    ``max_length`` tokens (:func:`helpers.encoding.max_length_for` decides it), ``seed`` for
    the initial weights, dropout and the batch order. Checked where it is made: a bad value
    raises a ValueError naming the field.
    """

    epochs: int
    max_length: int
    patience: int = 2
    min_improvement: float = 0.0
    batch_size: int = 64
    lr: float = 2e-3
    seed: int = SEED

    def __post_init__(self) -> None:
        for field in ("epochs", "max_length", "patience", "batch_size"):
            value = getattr(self, field)
            _check(field, value, _is_int(value) and value >= 1, "an integer >= 1")
        _check("min_improvement", self.min_improvement,
               isinstance(self.min_improvement, int | float) and 0 <= self.min_improvement < 1,
               "in [0, 1) (a gain in validation F1)")
        _check("lr", self.lr, isinstance(self.lr, int | float) and math.isfinite(self.lr)
               and self.lr > 0, "a finite number > 0")
        _check("seed", self.seed, _is_int(self.seed) and self.seed >= 0, "an integer >= 0")
