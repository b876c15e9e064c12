"""Classical baselines: the source article's TF-IDF + random forest, and a stronger honest bar.

Both are scikit-learn pipelines from raw strings to a toxic-class probability, so they are fitted,
evaluated and saved by the same :func:`fit_baseline`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from .benchmark import count_parameters, size_on_disk_mb
from .config import SEED, BookConfig, get_config
from .evaluation import evaluate

C_GRID = (1.0, 3.0, 10.0, 30.0)


def make_article_pipeline(seed: int = SEED, n_estimators: int = 100) -> Pipeline:
    """The source article's model: TF-IDF of the 5,000 most frequent lemmas + a random forest.

    Feed it lemmatized text (:func:`helpers.text.preprocess_for_classical`). ``n_estimators`` is
    scikit-learn's default, which the article kept; small-data mode may pass fewer trees.
    """
    return Pipeline([
        ("tfidf", TfidfVectorizer(max_features=5000)),
        ("forest", RandomForestClassifier(n_estimators=n_estimators, random_state=seed,
                                          n_jobs=-1)),
    ])


def _logreg(C: float, seed: int) -> LogisticRegression:
    # liblinear: for one binary task on sparse features it converges in a few passes, several times
    # faster than the default lbfgs here.
    return LogisticRegression(C=C, solver="liblinear", max_iter=1000, random_state=seed)


def make_char_ngram_pipeline(seed: int = SEED, C: float = 10.0, min_df: int = 2) -> Pipeline:
    """Character 1-5-gram TF-IDF + logistic regression, on the raw (un-lemmatized) text.

    Character n-grams inside word boundaries (``char_wb``) see through misspellings, obfuscated
    swear words (``х*й``) and inflection without any lemmatizer; ``sublinear_tf`` damps repeated
    n-grams in long comments; ``min_df`` drops n-grams seen in a single comment, which are noise
    and most of the vocabulary. ``C`` is the inverse regularisation strength; pick it with
    :func:`tune_char_ngram_c` on the validation split.
    """
    return Pipeline([
        ("tfidf", TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 5), sublinear_tf=True,
                                  min_df=min_df, lowercase=True, dtype=np.float32)),
        ("logreg", _logreg(C, seed)),
    ])


def tune_char_ngram_c(
    train_texts: Sequence[str], train_labels: Sequence[int],
    valid_texts: Sequence[str], valid_labels: Sequence[int],
    grid: Sequence[float] = C_GRID, seed: int = SEED,
) -> tuple[float, pd.DataFrame]:
    """Pick ``C`` of :func:`make_char_ngram_pipeline` by F1 on the VALIDATION split.

    The test split is never looked at, so the test figure stays an honest estimate. The
    vectorizer is fitted once on the training texts and reused for every ``C`` (it does not
    depend on ``C``). Returns the best ``C`` and a frame of validation scores per ``C``.
    """
    pipeline = make_char_ngram_pipeline(seed)
    vectorizer = pipeline.named_steps["tfidf"]
    x_train = vectorizer.fit_transform(train_texts)
    x_valid = vectorizer.transform(valid_texts)
    rows = []
    for c in grid:
        model = _logreg(c, seed).fit(x_train, train_labels)
        scores = evaluate(valid_labels, model.predict_proba(x_valid)[:, 1])
        rows.append({"C": c, "valid_f1": scores["f1"],
                     "valid_average_precision": scores["average_precision"]})
    table = pd.DataFrame(rows).set_index("C")
    return float(table["valid_f1"].idxmax()), table


@dataclass
class BaselineRun:
    """A fitted baseline with its test figures, as recorded in the results file."""

    name: str
    pipeline: Pipeline
    metrics: dict[str, float]
    test_proba: np.ndarray
    train_seconds: float
    size_mb: float
    params: int
    path: Path
    valid_f1: float

    def as_result(self) -> dict[str, Any]:
        """The fields :func:`helpers.results.record_result` needs, besides name and chapter."""
        return {"metrics": self.metrics, "kind": "sklearn", "artifact": self.path,
                "params": self.params, "train_seconds": self.train_seconds,
                "valid_f1": self.valid_f1}


def fit_baseline(
    name: str, pipeline: Pipeline, texts: Mapping[str, Sequence[str]],
    labels: Mapping[str, Sequence[int]], config: BookConfig | None = None,
) -> BaselineRun:
    """Fit ``pipeline`` on ``texts["train"]``, score it on the validation and test texts, save it.

    ``texts`` and ``labels`` map ``"train"``, ``"valid"`` and ``"test"`` to the split's (possibly
    preprocessed) texts and labels.

    ``train_seconds`` is the wall time of ``pipeline.fit`` alone (text preprocessing and any
    tuning are timed separately by the caller). The pipeline (vectorizer included) is saved under
    ``config.artifact("baselines", ...)``; record it with :func:`helpers.results.record_result`
    and ``run.as_result()``.
    """
    config = config or get_config()
    start = time.perf_counter()
    pipeline.fit(list(texts["train"]), np.asarray(labels["train"]))
    train_seconds = time.perf_counter() - start
    valid_f1 = evaluate(labels["valid"], pipeline.predict_proba(list(texts["valid"]))[:, 1])["f1"]
    proba = pipeline.predict_proba(list(texts["test"]))[:, 1]
    metrics = evaluate(labels["test"], proba)
    path = config.artifact("baselines", f"{name}.joblib")
    joblib.dump(pipeline, path)
    return BaselineRun(name, pipeline, metrics, proba, train_seconds, size_on_disk_mb(path),
                       count_parameters(pipeline), path, valid_f1)
