"""One interface for every model of the book: raw strings in, toxic-class probabilities out.

Each chapter saves its model in its own way (a joblib pipeline, a BiLSTM folder, a transformers
folder). To compare them fairly, the last chapter loads each one as a :class:`TextClassifier`, whose
``predict_proba(texts)`` starts from the raw comments: whatever a deployed model would have to do
(lemmatization, tokenization, padding) is part of what is timed. Neural models run in batches
under ``torch.inference_mode``, with texts sorted by length and each batch padded only to its
longest text (never every text to 512 tokens).

:func:`load_classifier` builds the right classifier from a row of the results file. A row names
its ``kind`` (:data:`KINDS`) and its ``artifact``, the saved model's path relative to
``config.artifacts_dir``; ``sklearn`` rows also say which ``preprocess`` (:data:`PREPROCESS`) the
pipeline was fitted on.

:func:`cls_embeddings` gives the [CLS] sentence embeddings of a BERT encoder, the way the author of
rubert-tiny evaluates it (a logistic regression on frozen embeddings); :func:`train_cls_logreg`
fits and records such a model, loaded back as kind ``cls_logreg``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import joblib
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from torch import nn

from .baselines import count_params as count_pipeline_params
from .config import SEED, BookConfig, get_config
from .data import Splits
from .evaluation import evaluate
from .models import count_parameters, load_bilstm
from .results import record_result, size_on_disk_mb
from .teacher import INFO_FILE, MAX_LENGTH_CAP, choose_max_length, encode_texts, quiet_transformers
from .text import Lemmatizer, preprocess_for_classical, russian_stop_words
from .tokenization import encode_texts as bpe_encode
from .tokenization import pad_id
from .training import EncodedDataset, logits_to_proba, make_loader, predict_logits

KINDS = ("sklearn", "bilstm", "transformers", "cls_logreg")
PREPROCESS = ("raw", "lemmas")
BATCH_SIZE = 64
CPU = torch.device("cpu")
C_GRID = (0.1, 1.0, 10.0)


@runtime_checkable
class TextClassifier(Protocol):
    """What the comparison needs from a model: a name, its size, and probabilities from raw text."""

    name: str
    params: int
    size_mb: float

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Probability of the toxic class for each text, in the order given."""
        ...


# --------------------------------------------------------------------------- scikit-learn


def lemma_preprocessor(backend: str = "auto") -> Callable[[Sequence[str]], list[str]]:
    """The input chapter 1 fed the TF-IDF + random forest pipeline: normalised, lemmatized text
    without stop words (:func:`helpers.text.preprocess_for_classical`).

    The lemmatizer's cache grows with every new word, as it would in a deployed service.
    """
    return partial(preprocess_for_classical, lemmatizer=Lemmatizer(backend, verbose=False),
                   stop_words=russian_stop_words(), progress=False)


@dataclass
class SklearnClassifier:
    """A fitted scikit-learn pipeline, with the text preprocessing it was fitted on."""

    pipeline: Pipeline
    name: str
    params: int
    size_mb: float
    preprocess: Callable[[Sequence[str]], list[str]] | None = None

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if self.preprocess is not None:
            texts = self.preprocess(texts)
        return self.pipeline.predict_proba(texts)[:, 1]


def load_sklearn(path: str | Path, preprocess: str = "raw", name: str | None = None,
                 lemmatizer: str = "auto") -> SklearnClassifier:
    """A pipeline saved with joblib; ``preprocess`` is ``"raw"`` or ``"lemmas"`` (see
    :func:`lemma_preprocessor`; ``lemmatizer`` is its backend)."""
    if preprocess not in PREPROCESS:
        raise ValueError(f"preprocess must be one of {PREPROCESS}, not {preprocess!r}")
    path = Path(path)
    pipeline = joblib.load(path)
    return SklearnClassifier(
        pipeline, name or path.stem, count_pipeline_params(pipeline), size_on_disk_mb(path),
        lemma_preprocessor(lemmatizer) if preprocess == "lemmas" else None,
    )


# --------------------------------------------------------------------------- neural networks


@dataclass
class BiLSTMTextClassifier:
    """A BiLSTM with its BPE tokenizer; texts are cut to ``max_length`` tokens."""

    model: nn.Module
    tokenizer: Any
    max_length: int
    name: str
    params: int
    size_mb: float
    batch_size: int = BATCH_SIZE

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros(0, dtype=np.float32)
        # An empty text has no BPE token, and a batch of it alone cannot be packed; a single
        # [PAD] step is what the model gives an empty text inside a longer batch (its embedding is
        # zero and the length is clamped to 1 either way), so the result is the same.
        pad = pad_id(self.tokenizer)
        ids = [row or [pad] for row in bpe_encode(self.tokenizer, list(texts), self.max_length)]
        loader = make_loader(EncodedDataset(ids), self.batch_size, shuffle=False, pad_id=pad)
        with torch.inference_mode():
            return logits_to_proba(predict_logits(self.model, loader, CPU))


def load_bilstm_classifier(folder: str | Path, name: str | None = None) -> BiLSTMTextClassifier:
    """A BiLSTM saved by :func:`helpers.models.save_bilstm` (max length from its ``meta``)."""
    folder = Path(folder)
    model, tokenizer, meta = load_bilstm(folder)
    return BiLSTMTextClassifier(model, tokenizer, int(meta["max_length"]),
                                name or meta.get("name", folder.name), count_parameters(model),
                                size_on_disk_mb(folder))


def _predict_cpu(model: nn.Module, tokenizer: Any, texts: Sequence[str], max_length: int,
                 batch_size: int) -> np.ndarray:
    """Outputs of ``model`` for BERT-tokenized ``texts``, length-bucketed, in the given order."""
    dataset = EncodedDataset(encode_texts(tokenizer, list(texts), max_length))
    loader = make_loader(dataset, batch_size, shuffle=False, pad_id=tokenizer.pad_token_id)
    with torch.inference_mode():
        return predict_logits(model, loader, CPU)


@dataclass
class TransformersTextClassifier:
    """A transformers sequence classifier (the teacher, the BERT students) and its tokenizer."""

    model: nn.Module
    tokenizer: Any
    max_length: int
    name: str
    params: int
    size_mb: float
    batch_size: int = BATCH_SIZE

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros(0, dtype=np.float32)
        return logits_to_proba(_predict_cpu(self.model, self.tokenizer, texts, self.max_length,
                                            self.batch_size))


def stored_max_length(folder: str | Path, tokenizer: Any = None, model_config: Any = None) -> int:
    """The max length a transformers model was trained with, as saved beside it.

    Looked up in ``teacher_info.json`` (the teacher) or ``training.json`` (the students) under the
    key ``max_length``; without one, the smallest of the tokenizer's ``model_max_length``, the
    model's position embeddings and 512.
    """
    import json

    folder = Path(folder)
    for file in (INFO_FILE, "training.json"):
        path = folder / file
        if path.is_file():
            value = json.loads(path.read_text(encoding="utf-8")).get("max_length")
            if value:
                return int(value)
    limits = [MAX_LENGTH_CAP, getattr(tokenizer, "model_max_length", MAX_LENGTH_CAP),
              getattr(model_config, "max_position_embeddings", MAX_LENGTH_CAP)]
    return int(min(limits))


def load_transformers_classifier(folder: str | Path, name: str | None = None,
                                 max_length: int | None = None) -> TransformersTextClassifier:
    """A folder saved with ``save_pretrained`` (model and tokenizer), on the CPU, in eval mode."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder = Path(folder)
    with quiet_transformers():
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
        model = AutoModelForSequenceClassification.from_pretrained(str(folder)).eval()
    max_length = max_length or stored_max_length(folder, tokenizer, model.config)
    return TransformersTextClassifier(model, tokenizer, max_length, name or folder.name,
                                      count_parameters(model), size_on_disk_mb(folder))


# --------------------------------------------------------------------------- [CLS] embeddings


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
    task heads are dropped. ``tokenizer_dir`` defaults to ``model_dir``."""
    from transformers import AutoModel, AutoTokenizer

    with quiet_transformers():
        tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir or model_dir))
        encoder = AutoModel.from_pretrained(str(model_dir)).eval()
    return tokenizer, ClsPooler(encoder).eval()


def cls_embeddings(model_dir: str | Path, texts: Sequence[str], max_length: int | None = None,
                   tokenizer_dir: str | Path | None = None,
                   batch_size: int = BATCH_SIZE) -> np.ndarray:
    """Normalised [CLS] embeddings of ``texts``, shape ``(n, hidden)``, from a hub id or folder.

    ``max_length`` defaults to the 95th percentile of the texts' token lengths.
    """
    tokenizer, pooler = load_encoder(model_dir, tokenizer_dir)
    max_length = max_length or choose_max_length(tokenizer, list(texts))
    return _predict_cpu(pooler, tokenizer, texts, max_length, batch_size)


@dataclass
class ClsLogRegClassifier:
    """Logistic regression on a frozen encoder's [CLS] embeddings."""

    pooler: nn.Module
    tokenizer: Any
    logreg: LogisticRegression
    max_length: int
    name: str
    params: int
    size_mb: float
    batch_size: int = BATCH_SIZE

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros(0, dtype=np.float32)
        features = _predict_cpu(self.pooler, self.tokenizer, texts, self.max_length,
                                self.batch_size)
        return self.logreg.predict_proba(features)[:, 1]


def resolve_model_path(config: BookConfig, location: str) -> str:
    """An artifact-relative folder if it exists under ``config.artifacts_dir``, else ``location``
    as given (a hub id or an absolute path)."""
    candidate = config.artifacts_dir / location
    return str(candidate) if candidate.exists() else location


def load_cls_logreg(config: BookConfig, path: str | Path, name: str | None = None
                    ) -> ClsLogRegClassifier:
    """A model saved by :func:`train_cls_logreg`: the joblib bundle and the encoder it names."""
    path = Path(path)
    bundle = joblib.load(path)
    model_dir = resolve_model_path(config, bundle["encoder"])
    tokenizer_dir = resolve_model_path(config, bundle.get("tokenizer") or bundle["encoder"])
    tokenizer, pooler = load_encoder(model_dir, tokenizer_dir)
    logreg = bundle["logreg"]
    params = count_parameters(pooler) + logreg.coef_.size + logreg.intercept_.size
    folders = {Path(p) for p in (model_dir, tokenizer_dir) if Path(p).exists()}
    size_mb = size_on_disk_mb(path) + sum(size_on_disk_mb(f) for f in folders)
    return ClsLogRegClassifier(pooler, tokenizer, logreg, int(bundle["max_length"]),
                               name or path.stem, int(params), size_mb)


def train_cls_logreg(
    config: BookConfig, name: str, encoder: str, splits: Splits, *, tokenizer: str | None = None,
    chapter: str = "06", max_length: int | None = None, grid: Sequence[float] = C_GRID,
    seed: int = SEED, **extra: Any,
) -> tuple[dict[str, Any], ClsLogRegClassifier]:
    """Fit a logistic regression on the frozen [CLS] embeddings of ``encoder``; record its row.

    ``encoder`` (and ``tokenizer``, default: the same) is a folder relative to
    ``config.artifacts_dir``, an absolute path or a hub id. ``C`` is chosen by F1 on the validation
    split from ``grid``; the test split is scored once. The regression is saved with joblib under
    ``embeddings/<name>.joblib`` and recorded with kind ``cls_logreg``; ``extra`` (e.g. the
    ``teacher``/``standin`` fields) goes into the row. ``train_seconds`` covers the embedding of
    the training and validation texts and the fits (not the test texts).
    """
    start = time.perf_counter()
    model_dir = resolve_model_path(config, encoder)
    tokenizer_dir = resolve_model_path(config, tokenizer or encoder)
    tok, pooler = load_encoder(model_dir, tokenizer_dir)
    max_length = max_length or choose_max_length(tok, splits.train["text"].tolist())

    def embed(frame: pd.DataFrame) -> np.ndarray:
        return _predict_cpu(pooler, tok, frame["text"].tolist(), max_length, BATCH_SIZE)

    features = {"train": embed(splits.train), "valid": embed(splits.valid)}
    best: tuple[float, LogisticRegression] | None = None
    for c in grid:
        logreg = LogisticRegression(C=c, max_iter=2000, random_state=seed)
        logreg.fit(features["train"], splits.train["label"])
        f1 = evaluate(splits.valid["label"], logreg.predict_proba(features["valid"])[:, 1])["f1"]
        if best is None or f1 > best[0]:
            best = (f1, logreg)
    logreg = best[1]
    train_seconds = time.perf_counter() - start
    metrics = evaluate(splits.test["label"], logreg.predict_proba(embed(splits.test))[:, 1])
    path = config.artifact("embeddings", f"{slug(name)}.joblib")
    joblib.dump({"logreg": logreg, "encoder": encoder, "tokenizer": tokenizer or encoder,
                 "max_length": max_length}, path)
    artifact = path.relative_to(config.artifacts_dir).as_posix()
    classifier = load_cls_logreg(config, path, name)
    row = record_result(
        name, chapter, metrics, config, params=classifier.params,
        size_mb=round(classifier.size_mb, 3), train_seconds=round(train_seconds, 1),
        kind="cls_logreg", artifact=artifact, encoder=encoder, C=float(logreg.C), **extra,
    )
    return row, classifier


def slug(name: str) -> str:
    """A file-name-safe version of a model name."""
    return "".join(ch if ch.isalnum() else "_" for ch in name.lower()).strip("_")


# --------------------------------------------------------------------------- dispatch


def _field(row: Mapping[str, Any], key: str, default: Any = None) -> Any:
    """``row[key]``, treating a missing key and pandas' NaN (a column other rows have) alike."""
    value = row.get(key, default)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return default
    return value


def load_classifier(config: BookConfig | None, row: Mapping[str, Any] | pd.Series
                    ) -> TextClassifier:
    """The :class:`TextClassifier` of a results-file row, built from its ``kind`` and ``artifact``.

    Raises ``ValueError`` for a row without a known ``kind`` or an ``artifact`` (recorded before
    rows carried them: re-run its chapter) and ``FileNotFoundError`` when the artifact is gone.
    """
    config = config or get_config()
    row = dict(row)
    name, kind, artifact = row.get("model"), _field(row, "kind"), _field(row, "artifact")
    if kind not in KINDS or not artifact:
        raise ValueError(
            f"Row {name!r} (chapter {row.get('chapter')}) has kind={kind!r}, "
            f"artifact={artifact!r}: it needs a kind in {KINDS} and the saved model's path. "
            "Re-run its chapter to record them."
        )
    path = config.artifacts_dir / artifact
    if not path.exists():
        raise FileNotFoundError(f"Row {name!r}: no saved model at {path}; re-run chapter "
                                f"{row.get('chapter')}.")
    if kind == "sklearn":
        return load_sklearn(path, _field(row, "preprocess", "raw"), name,
                            _field(row, "lemmatizer", "auto"))
    if kind == "bilstm":
        return load_bilstm_classifier(path, name)
    if kind == "transformers":
        max_length = _field(row, "max_length")
        return load_transformers_classifier(path, name, int(max_length) if max_length else None)
    return load_cls_logreg(config, path, name)
