"""Tests of helpers.classifiers and helpers.embeddings: every kind of saved model, from raw
strings to probabilities."""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from toy import (
    TEXTS,
    check_predictor,
    tiny_bert_folder,
    tiny_bilstm_folder,
    tiny_config,
    toy_corpus,
    toy_splits,
)

from helpers.baselines import make_article_pipeline, make_char_ngram_pipeline
from helpers.batching import logits_to_proba, text_logits
from helpers.bpe import train_bpe_tokenizer
from helpers.classifiers import (
    NeuralTextClassifier,
    SklearnClassifier,
    load_classifier,
    stored_max_length,
)
from helpers.embeddings import cls_embeddings, train_cls_logreg
from helpers.results import record_result
from helpers.text import Lemmatizer, preprocess_for_classical, russian_stop_words


def test_sklearn_raw_pipeline(tmp_path: Path) -> None:
    corpus = toy_corpus()
    pipeline = make_char_ngram_pipeline(min_df=1).fit(corpus["text"], corpus["label"])
    config = tiny_config(tmp_path)
    (config.artifacts_dir / "baselines").mkdir(parents=True)
    joblib.dump(pipeline, config.artifacts_dir / "baselines" / "char.joblib")
    row = {"model": "char", "chapter": "01", "kind": "sklearn",
           "artifact": "baselines/char.joblib", "preprocess": "raw"}
    classifier = load_classifier(config, row)
    assert isinstance(classifier, SklearnClassifier) and classifier.name == "char"
    proba = check_predictor(classifier, TEXTS)
    np.testing.assert_allclose(proba, pipeline.predict_proba(TEXTS)[:, 1])
    assert classifier.params == pipeline.named_steps["logreg"].coef_.size + 1
    # It learned the toy task: the toxic texts score higher than the polite one.
    assert proba[1] > proba[0] and proba[2] > proba[0]


def test_sklearn_lemma_pipeline_gets_the_lemmatized_text(tmp_path: Path) -> None:
    # The random forest of chapter 1 is fitted on lemmatized text without stop words; its
    # predictor must turn raw text into exactly that.
    corpus = toy_corpus()
    lemmatizer = Lemmatizer("pymorphy3", verbose=False)
    stop = russian_stop_words()
    lemmas = preprocess_for_classical(corpus["text"], lemmatizer, stop, progress=False)
    pipeline = make_article_pipeline(n_estimators=5).fit(lemmas, corpus["label"])
    config = tiny_config(tmp_path)
    path = config.artifact("baselines", "forest.joblib")
    joblib.dump(pipeline, path)
    row = {"model": "forest", "chapter": "01", "kind": "sklearn",
           "artifact": "baselines/forest.joblib", "preprocess": "lemmas",
           "lemmatizer": "pymorphy3"}
    classifier = load_classifier(config, row)
    proba = check_predictor(classifier, TEXTS)
    expected = pipeline.predict_proba(
        preprocess_for_classical(TEXTS, lemmatizer, stop, progress=False))[:, 1]
    np.testing.assert_allclose(proba, expected)
    # Inflected forms reach the forest as the lemmas it was fitted on; raw, they would be unknown.
    assert classifier.preprocess(["Дураками!!! и ИДИОТАМИ"]) == ["дурак идиот"]
    assert load_classifier(config, dict(row, preprocess="raw")).preprocess is None


def test_bilstm_predictor(tmp_path: Path) -> None:
    config = tiny_config(tmp_path)
    tiny_bilstm_folder(config.artifacts_dir / "bilstm" / "model", max_length=24)
    row = {"model": "BiLSTM", "chapter": "02", "kind": "token_model", "artifact": "bilstm/model"}
    classifier = load_classifier(config, row)
    assert isinstance(classifier, NeuralTextClassifier)
    assert classifier.max_length == 24 and classifier.name == "BiLSTM"
    assert classifier.params == sum(p.numel() for p in classifier.model.parameters())
    proba = check_predictor(classifier, TEXTS)
    assert classifier.predict_proba([]).shape == (0,)
    # The same figures as the batched prediction every chapter uses.
    expected = logits_to_proba(text_logits(classifier.model, classifier.tokenizer, TEXTS, 24))
    np.testing.assert_allclose(proba, expected, atol=1e-6)


def test_distilled_bilstm_rows_can_be_reloaded_and_timed(tmp_path: Path) -> None:
    """Chapter 4's rows carry what chapter 6 needs to load the saved student and measure it."""
    from helpers.distill import train_token_student
    from helpers.evaluation import evaluate
    from helpers.losses import article_loss_fn
    from helpers.results import load_results
    from helpers.settings import NetworkSpec, TrainSettings

    config = tiny_config(tmp_path)
    splits = toy_splits()
    tokenizer = train_bpe_tokenizer(splits.train["text"], vocab_size=300)
    teacher_logits = np.where(splits.train["label"].to_numpy()[:, None] == 1, [-2.0, 2.0],
                              [2.0, -2.0])
    run = train_token_student(config, splits, tokenizer, article_loss_fn(0.5), teacher_logits,
                               name="student", label="MSE",
                               schedule=TrainSettings(epochs=1, max_length=24),
                               network=NetworkSpec("bilstm", {"embedding_dim": 16,
                                                              "hidden_size": 16}))
    record_result(config, "BiLSTM distilled", "04", **run.as_result())
    row = load_results(config).set_index("model").loc["BiLSTM distilled"]
    assert row["kind"] == "token_model" and row["teacher"] is None and not row["standin"]
    classifier = load_classifier(config, {**row.to_dict(), "model": "BiLSTM distilled"})
    proba = check_predictor(classifier, splits.test["text"].tolist())
    # What chapter 6 times is what chapter 4 scored.
    assert evaluate(splits.test["label"], proba)["f1"] == pytest.approx(run.test["f1"])


def test_transformers_predictor_uses_the_stored_max_length(tmp_path: Path) -> None:
    config = tiny_config(tmp_path)
    folder = tiny_bert_folder(config.artifacts_dir / "teacher")
    (folder / "teacher_info.json").write_text(json.dumps({"max_length": 8}))
    assert stored_max_length(folder) == 8
    row = {"model": "teacher", "chapter": "03", "kind": "transformers", "artifact": "teacher"}
    classifier = load_classifier(config, row)
    assert isinstance(classifier, NeuralTextClassifier) and classifier.max_length == 8
    proba = check_predictor(classifier, TEXTS)
    # The long text is cut at 8 tokens: adding words after them changes nothing.
    longer = classifier.predict_proba([TEXTS[3] + " дурак идиот"])[0]
    assert longer == pytest.approx(proba[3], abs=1e-6)
    # A row's own max_length wins over the folder's.
    assert load_classifier(config, dict(row, max_length=16)).max_length == 16


def test_stored_max_length_falls_back_to_the_model_limits(tmp_path: Path) -> None:
    folder = tiny_bert_folder(tmp_path / "student")
    from transformers import AutoConfig, AutoTokenizer

    limit = stored_max_length(folder, AutoTokenizer.from_pretrained(str(folder)),
                              AutoConfig.from_pretrained(str(folder)))
    assert limit == 64  # the model's position embeddings
    (folder / "training.json").write_text(json.dumps({"max_length": 12}))
    assert stored_max_length(folder) == 12


def test_cls_embeddings_are_normalised_and_order_preserving(tmp_path: Path) -> None:
    folder = tiny_bert_folder(tmp_path / "encoder", classifier=False)
    texts = TEXTS[:5]
    embeddings = cls_embeddings(folder, texts, max_length=16)
    assert embeddings.shape == (5, 32)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    reversed_ = cls_embeddings(folder, texts[::-1], max_length=16)
    np.testing.assert_allclose(reversed_[::-1], embeddings, atol=1e-5)


def test_cls_logreg_is_recorded_and_reloaded(tmp_path: Path) -> None:
    config = tiny_config(tmp_path)
    tiny_bert_folder(config.artifacts_dir / "encoder", classifier=False)
    splits = toy_splits()
    run = train_cls_logreg(config, "LR on [CLS]", "encoder", splits, max_length=16)
    row = record_result(config, "LR on [CLS]", "06", **run.as_result(), teacher="tiny")
    assert row["kind"] == "cls_logreg" and row["encoder"] == "encoder"
    # The artifact is self-contained: the regression and a copy of the encoder it needs.
    assert (config.artifacts_dir / row["artifact"] / "logreg.joblib").is_file()
    assert (config.artifacts_dir / row["artifact"] / "encoder" / "config.json").is_file()
    assert 0 <= row["f1"] <= 1 and row["teacher"] == "tiny"
    reloaded = load_classifier(config, row)
    assert isinstance(reloaded, NeuralTextClassifier) and reloaded.head is not None
    assert row["size_mb"] == pytest.approx(reloaded.size_mb, abs=1e-3)
    # The reloaded model scores the test split exactly as the recorded run did.
    np.testing.assert_allclose(reloaded.predict_proba(splits.test["text"].tolist()),
                               run.test_proba, atol=1e-6)
    check_predictor(reloaded, TEXTS)
    # Its parameters: the encoder's plus the regression's coefficients and intercept; not BERT's
    # pooler (a 32 x 32 dense layer here), which the [CLS] vector does not go through.
    from transformers import AutoModel

    full = AutoModel.from_pretrained(config.artifacts_dir / "encoder")
    pooler = sum(p.numel() for p in full.pooler.parameters())
    assert pooler == 32 * 32 + 32
    assert reloaded.params == run.params == sum(p.numel() for p in full.parameters()) - pooler + 33
    from safetensors import safe_open

    saved = config.artifacts_dir / row["artifact"] / "encoder" / "model.safetensors"
    with safe_open(str(saved), "pt") as weights:
        assert not any(key.startswith("pooler.") for key in weights.keys())  # noqa: SIM118


def test_load_classifier_dispatches_on_kind_and_explains_failures(tmp_path: Path) -> None:
    config = tiny_config(tmp_path)
    tiny_bilstm_folder(config.artifacts_dir / "bilstm")
    tiny_bert_folder(config.artifacts_dir / "bert")
    assert isinstance(load_classifier(config, {"model": "a", "kind": "token_model",
                                               "artifact": "bilstm"}), NeuralTextClassifier)
    series = pd.Series({"model": "b", "chapter": "05", "kind": "transformers",
                        "artifact": "bert", "preprocess": float("nan")})
    assert isinstance(load_classifier(config, series), NeuralTextClassifier)
    with pytest.raises(ValueError, match="Re-run its chapter"):
        load_classifier(config, {"model": "old", "chapter": "02", "f1": 0.5})
    with pytest.raises(ValueError, match="kind"):
        load_classifier(config, {"model": "x", "kind": "onnx", "artifact": "bilstm"})
    with pytest.raises(FileNotFoundError):
        load_classifier(config, {"model": "gone", "kind": "token_model",
                                 "artifact": "nothing/here"})
    with pytest.raises(ValueError, match="preprocess"):
        path = config.artifact("baselines", "p.joblib")
        joblib.dump(make_char_ngram_pipeline(), path)
        load_classifier(config, {"model": "p", "kind": "sklearn",
                                 "artifact": "baselines/p.joblib", "preprocess": "stems"})
