"""Frozen sentence embeddings: a logistic regression on a BERT's [CLS] vectors.

This is how the author of rubert-tiny evaluates an encoder: no fine-tuning, the L2-normalised
[CLS] vector of each text as features, a linear classifier on top. Chapter 6 uses it to ask how
much of a model's quality is already in its frozen embeddings. A trained model is saved as one
folder holding ``logreg.joblib`` and ``encoder/`` (the encoder and its tokenizer, saved with
``save_pretrained``): the whole artifact a deployment would ship, whatever the encoder's source.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from torch import nn

from .batching import CPU, text_logits
from .benchmark import count_parameters
from .checkpoints import quiet_transformers
from .config import SEED, BookConfig, slug
from .data import Splits
from .encoding import max_length_for
from .evaluation import evaluate

BATCH_SIZE = 64
C_GRID = (0.1, 1.0, 10.0)
LOGREG_FILE = "logreg.joblib"
ENCODER_DIR = "encoder"


class ClsPooler(nn.Module):
    """A BERT encoder that returns its L2-normalised [CLS] vector, as rubert-tiny's author does
    (``last_hidden_state[:, 0]``, normalised), so that the shared prediction loop can run it."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return F.normalize(hidden[:, 0], dim=-1)


def load_encoder(model_dir: str | Path, tokenizer_dir: str | Path | None = None
                 ) -> tuple[Any, ClsPooler]:
    """Tokenizer and [CLS] pooler of any BERT checkpoint (pre-training, MLM or classifier): the
    task heads are dropped, and so is BERT's pooler (a dense layer over [CLS], 97,656 parameters
    in rubert-tiny), which the raw [CLS] vector never passes through: it is neither counted nor
    saved. ``tokenizer_dir`` defaults to ``model_dir``."""
    from transformers import AutoModel, AutoTokenizer

    with quiet_transformers():
        tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir or model_dir))
        encoder = AutoModel.from_pretrained(str(model_dir)).eval()
    if getattr(encoder, "pooler", None) is not None:
        encoder.pooler = None  # BertModel skips a missing pooler; last_hidden_state is unchanged
    return tokenizer, ClsPooler(encoder).eval()


def cls_embeddings(model_dir: str | Path, texts: Sequence[str], max_length: int | None = None,
                   tokenizer_dir: str | Path | None = None,
                   batch_size: int = BATCH_SIZE) -> np.ndarray:
    """Normalised [CLS] embeddings of ``texts``, shape ``(n, hidden)``, from a hub id or folder.

    ``max_length`` defaults to the 95th percentile of the texts' token lengths.
    """
    tokenizer, pooler = load_encoder(model_dir, tokenizer_dir)
    max_length = max_length or max_length_for(tokenizer, texts)
    return text_logits(pooler, tokenizer, texts, max_length, batch_size, CPU)


def resolve_model_path(config: BookConfig, location: str) -> str:
    """An artifact-relative folder if it exists under ``config.artifacts_dir``, else ``location``
    as given (a hub id or an absolute path)."""
    candidate = config.artifacts_dir / location
    return str(candidate) if candidate.exists() else location


@dataclass
class ClsLogRegRun:
    """A fitted [CLS] logistic regression, saved with its encoder, and its test figures.

    Load it back as a text classifier with :func:`helpers.classifiers.load_cls_logreg`.
    """

    folder: Path
    logreg: LogisticRegression
    params: int
    valid_f1: float
    test: dict[str, float]
    test_proba: np.ndarray
    train_seconds: float
    encoder: str

    def as_result(self) -> dict[str, Any]:
        """The fields :func:`helpers.results.record_result` needs, besides name and chapter."""
        return {"metrics": self.test, "kind": "cls_logreg", "artifact": self.folder,
                "params": self.params, "train_seconds": self.train_seconds,
                "valid_f1": self.valid_f1, "encoder": self.encoder, "C": float(self.logreg.C)}


def train_cls_logreg(
    config: BookConfig, name: str, encoder: str, splits: Splits, *, tokenizer: str | None = None,
    max_length: int | None = None, grid: Sequence[float] = C_GRID, seed: int = SEED,
) -> ClsLogRegRun:
    """Fit a logistic regression on the frozen [CLS] embeddings of ``encoder`` and save both.

    ``encoder`` (and ``tokenizer``, default: the same) is a folder relative to
    ``config.artifacts_dir``, an absolute path or a hub id. ``C`` is chosen by F1 on the validation
    split from ``grid``; the test split is scored once. The regression and the encoder are saved
    under ``embeddings/<name>/`` (``name`` made file-safe). ``train_seconds`` covers the
    embedding of the training and validation texts and the fits (not the test texts).
    """
    start = time.perf_counter()
    tok, pooler = load_encoder(resolve_model_path(config, encoder),
                               resolve_model_path(config, tokenizer or encoder))
    max_length = max_length or max_length_for(tok, splits.train["text"])

    def embed(frame: pd.DataFrame) -> np.ndarray:
        return text_logits(pooler, tok, frame["text"].tolist(), max_length, BATCH_SIZE, CPU)

    features = {"train": embed(splits.train), "valid": embed(splits.valid)}
    best: tuple[float, LogisticRegression] | None = None
    for c in grid:
        logreg = LogisticRegression(C=c, max_iter=2000, random_state=seed)
        logreg.fit(features["train"], splits.train["label"])
        f1 = evaluate(splits.valid["label"], logreg.predict_proba(features["valid"])[:, 1])["f1"]
        if best is None or f1 > best[0]:
            best = (f1, logreg)
    valid_f1, logreg = best
    train_seconds = time.perf_counter() - start
    test_proba = logreg.predict_proba(embed(splits.test))[:, 1]
    folder = config.artifact("embeddings", slug(name), LOGREG_FILE).parent
    joblib.dump({"logreg": logreg, "max_length": max_length}, folder / LOGREG_FILE)
    with quiet_transformers():
        pooler.encoder.save_pretrained(str(folder / ENCODER_DIR))
        tok.save_pretrained(str(folder / ENCODER_DIR))
    params = count_parameters(pooler) + logreg.coef_.size + logreg.intercept_.size
    return ClsLogRegRun(folder, logreg, int(params), valid_f1,
                        evaluate(splits.test["label"], test_proba), test_proba, train_seconds,
                        encoder)
