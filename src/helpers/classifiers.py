"""One interface for every model of the book: raw strings in, toxic-class probabilities out.

Each chapter saves its model in its own way (a joblib pipeline, a BiLSTM folder, a transformers
folder). To compare them fairly, the last chapter loads each one as a :class:`TextClassifier`, whose
``predict_proba(texts)`` starts from the raw comments: whatever a deployed model would have to do
(lemmatization, tokenization, padding) is part of what is timed. Neural models run in batches
under ``torch.inference_mode``, with texts sorted by length and each batch padded only to its
longest text (never every text to 512 tokens).

:func:`load_classifier` builds the right classifier from a row of the results file: its ``kind``
(:data:`helpers.results.KINDS`) and its ``artifact``, the saved model's path relative to
``config.artifacts_dir``; ``sklearn`` rows also say which ``preprocess`` (:data:`PREPROCESS`) the
pipeline was fitted on. A classifier's ``size_mb`` is its artifact's size on disk, measured as the
results file measures it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import joblib
import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline
from torch import nn

from .batching import CPU, logits_to_proba, text_logits
from .benchmark import count_parameters, size_on_disk_mb
from .checkpoints import quiet_transformers
from .config import BookConfig, get_config
from .embeddings import ENCODER_DIR, LOGREG_FILE, load_encoder
from .encoding import MAX_LENGTH_CAP
from .results import KINDS, field_value
from .text import Lemmatizer, preprocess_for_classical, russian_stop_words
from .token_models import load_token_model

PREPROCESS = ("raw", "lemmas")
BATCH_SIZE = 64
# Where a transformers model's training max length is saved: the teacher's and the students' files.
LENGTH_FILES = ("teacher_info.json", "training.json")


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
        pipeline, name or path.stem, count_parameters(pipeline), size_on_disk_mb(path),
        lemma_preprocessor(lemmatizer) if preprocess == "lemmas" else None,
    )


# --------------------------------------------------------------------------- neural networks


@dataclass
class NeuralTextClassifier:
    """A PyTorch model (a BiLSTM, a transformers classifier, a frozen encoder) and its tokenizer,
    on the CPU.

    Texts are cut to ``max_length`` tokens and run through :func:`helpers.batching.text_logits`.
    The model's outputs are two-class logits, turned into probabilities by a softmax, unless a
    ``head`` maps them to toxic-class probabilities (a logistic regression on embeddings).
    """

    model: nn.Module
    tokenizer: Any
    max_length: int
    name: str
    params: int
    size_mb: float
    batch_size: int = BATCH_SIZE
    head: Callable[[np.ndarray], np.ndarray] | None = None

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros(0, dtype=np.float32)
        outputs = text_logits(self.model, self.tokenizer, texts, self.max_length,
                              self.batch_size, CPU)
        return logits_to_proba(outputs) if self.head is None else self.head(outputs)


def load_token_classifier(folder: str | Path, name: str | None = None) -> NeuralTextClassifier:
    """A BiLSTM or CNN saved by :func:`helpers.token_models.save_token_model` (max length from
    its ``meta``)."""
    folder = Path(folder)
    model, tokenizer, meta = load_token_model(folder)
    return NeuralTextClassifier(model, tokenizer, int(meta["max_length"]),
                                name or meta.get("name", folder.name), count_parameters(model),
                                size_on_disk_mb(folder))


def stored_max_length(folder: str | Path, tokenizer: Any = None, model_config: Any = None) -> int:
    """The max length a transformers model was trained with, as saved beside it.

    Looked up in :data:`LENGTH_FILES` under the key ``max_length``; without one, the smallest of
    the tokenizer's ``model_max_length``, the model's position embeddings and 512.
    """
    folder = Path(folder)
    for file in LENGTH_FILES:
        path = folder / file
        if path.is_file():
            value = json.loads(path.read_text(encoding="utf-8")).get("max_length")
            if value:
                return int(value)
    limits = [MAX_LENGTH_CAP, getattr(tokenizer, "model_max_length", MAX_LENGTH_CAP),
              getattr(model_config, "max_position_embeddings", MAX_LENGTH_CAP)]
    return int(min(limits))


def load_transformers_classifier(folder: str | Path, name: str | None = None,
                                 max_length: int | None = None) -> NeuralTextClassifier:
    """A folder saved with ``save_pretrained`` (model and tokenizer), on the CPU, in eval mode."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder = Path(folder)
    with quiet_transformers():
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
        model = AutoModelForSequenceClassification.from_pretrained(str(folder)).eval()
    max_length = max_length or stored_max_length(folder, tokenizer, model.config)
    return NeuralTextClassifier(model, tokenizer, max_length, name or folder.name,
                                count_parameters(model), size_on_disk_mb(folder))


def load_cls_logreg(folder: str | Path, name: str | None = None) -> NeuralTextClassifier:
    """A model saved by :func:`helpers.embeddings.train_cls_logreg`: the frozen encoder's [CLS]
    vectors, then the logistic regression saved beside it."""
    folder = Path(folder)
    bundle = joblib.load(folder / LOGREG_FILE)
    tokenizer, pooler = load_encoder(folder / ENCODER_DIR)
    logreg = bundle["logreg"]
    params = count_parameters(pooler) + logreg.coef_.size + logreg.intercept_.size
    return NeuralTextClassifier(pooler, tokenizer, int(bundle["max_length"]), name or folder.name,
                                int(params), size_on_disk_mb(folder),
                                head=lambda features: logreg.predict_proba(features)[:, 1])


# --------------------------------------------------------------------------- dispatch


def load_classifier(config: BookConfig | None, row: Mapping[str, Any] | pd.Series
                    ) -> TextClassifier:
    """The :class:`TextClassifier` of a results-file row, built from its ``kind`` and ``artifact``.

    Raises ``ValueError`` for a row without a known ``kind`` or an ``artifact`` (recorded before
    rows carried them: re-run its chapter) and ``FileNotFoundError`` when the artifact is gone.
    """
    config = config or get_config()
    row = dict(row)
    name, kind, artifact = row.get("model"), field_value(row, "kind"), field_value(row, "artifact")
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
        return load_sklearn(path, field_value(row, "preprocess", "raw"), name,
                            field_value(row, "lemmatizer", "auto"))
    if kind == "token_model":
        return load_token_classifier(path, name)
    if kind == "transformers":
        max_length = field_value(row, "max_length")
        return load_transformers_classifier(path, name, int(max_length) if max_length else None)
    return load_cls_logreg(path, name)
