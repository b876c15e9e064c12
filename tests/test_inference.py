"""Tests of helpers.inference: every kind of saved model, from raw strings to probabilities.

The ``tiny_*`` builders below are also used by test_quantization.py and test_pipeline.py.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import torch

from helpers.baselines import make_article_pipeline, make_char_ngram_pipeline
from helpers.config import BookConfig
from helpers.data import Splits
from helpers.inference import (
    BiLSTMTextClassifier,
    ClsLogRegClassifier,
    SklearnClassifier,
    TextClassifier,
    TransformersTextClassifier,
    cls_embeddings,
    load_classifier,
    stored_max_length,
    train_cls_logreg,
)
from helpers.models import BiLSTMClassifier, bilstm_predict_proba, save_bilstm
from helpers.text import Lemmatizer, preprocess_for_classical, russian_stop_words
from helpers.tokenization import train_bpe_tokenizer

TOXIC = ["дурак", "идиот", "тупой", "мразь", "урод"]
NORMAL = ["спасибо", "хорошо", "интересно", "согласен", "отлично"]
FILLER = ["это", "был", "очень", "пост", "статья", "автор", "комментарии", "сегодня", "люди"]


def toy_corpus(n: int = 120, seed: int = 0) -> pd.DataFrame:
    """Texts of a few filler words plus one word that decides the label (every third is toxic)."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = int(i % 3 == 0)
        words = rng.sample(FILLER, rng.randint(1, 5)) + [rng.choice(TOXIC if label else NORMAL)]
        rng.shuffle(words)
        rows.append({"text": " ".join(words) + ("!" * rng.randint(0, 2)) + f" {i}",
                     "label": label})
    return pd.DataFrame(rows)


def toy_splits(n: int = 120) -> Splits:
    frame = toy_corpus(n)
    third = n // 3
    return Splits(frame.iloc[:third * 2].reset_index(drop=True),
                  frame.iloc[third * 2:third * 2 + third // 2].reset_index(drop=True),
                  frame.iloc[third * 2 + third // 2:].reset_index(drop=True))


def tiny_bert_tokenizer(folder: Path):
    """A WordPiece tokenizer over the toy corpus's words (no download needed)."""
    from transformers import BertTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    words = sorted({w for t in toy_corpus()["text"] for w in t.replace("!", " ! ").split()})
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "!", *words]
    (folder / "vocab.txt").write_text("\n".join(dict.fromkeys(vocab)) + "\n", encoding="utf-8")
    return BertTokenizer(vocab=str(folder / "vocab.txt"), do_lower_case=True)


def tiny_bert_folder(folder: Path, classifier: bool = True, seed: int = 0) -> Path:
    """A randomly initialised 1-layer BERT of width 32 and its tokenizer, saved with
    ``save_pretrained`` (a sequence classifier, or an MLM model to fine-tune as a teacher)."""
    from transformers import BertConfig, BertForMaskedLM, BertForSequenceClassification

    tokenizer = tiny_bert_tokenizer(folder / "_vocab")
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=64,
                        pad_token_id=tokenizer.pad_token_id, num_labels=2)
    torch.manual_seed(seed)
    model = (BertForSequenceClassification if classifier else BertForMaskedLM)(config).eval()
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


def tiny_bilstm_folder(folder: Path, max_length: int = 24, hidden: int = 16, seed: int = 0) -> Path:
    """A randomly initialised small BiLSTM and a BPE tokenizer trained on the toy corpus."""
    tokenizer = train_bpe_tokenizer(toy_corpus()["text"], vocab_size=300)
    torch.manual_seed(seed)
    model = BiLSTMClassifier(tokenizer.get_vocab_size(), embedding_dim=16,
                             hidden_size=hidden).eval()
    return save_bilstm(model, tokenizer, folder, {"name": "tiny", "max_length": max_length})


def tiny_config(root: Path) -> BookConfig:
    return BookConfig(data=None, teacher="unused", small=True, root=root)


def check_predictor(classifier: TextClassifier, texts: list[str]) -> np.ndarray:
    """Shape, range, and batched == one-by-one (dynamic padding must not change a prediction)."""
    assert isinstance(classifier, TextClassifier)
    proba = classifier.predict_proba(texts)
    assert proba.shape == (len(texts),)
    assert np.all((proba >= 0) & (proba <= 1))
    one_by_one = np.array([classifier.predict_proba([text])[0] for text in texts])
    np.testing.assert_allclose(proba, one_by_one, atol=1e-5)
    assert classifier.params > 0 and classifier.size_mb > 0
    return proba


TEXTS = ["спасибо очень интересно", "ты дурак", "автор идиот!!! и урод",
         "комментарии сегодня хорошо, а вот статья " * 5, "x", ""]


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
    row = {"model": "BiLSTM", "chapter": "02", "kind": "bilstm", "artifact": "bilstm/model"}
    classifier = load_classifier(config, row)
    assert isinstance(classifier, BiLSTMTextClassifier)
    assert classifier.max_length == 24 and classifier.name == "BiLSTM"
    assert classifier.params == sum(p.numel() for p in classifier.model.parameters())
    proba = check_predictor(classifier, TEXTS)
    assert classifier.predict_proba([]).shape == (0,)
    # The same figures as chapter 2's own prediction function (which cannot take "" alone).
    expected = bilstm_predict_proba(classifier.model, classifier.tokenizer, TEXTS, 24)
    np.testing.assert_allclose(proba, expected, atol=1e-6)


def test_distilled_bilstm_rows_can_be_reloaded_and_timed(tmp_path: Path) -> None:
    """Chapter 4's rows carry what chapter 6 needs to load the saved student and measure it."""
    from helpers.distill import article_loss_fn, record_student, train_student
    from helpers.evaluation import evaluate
    from helpers.results import load_results

    config = tiny_config(tmp_path)
    splits = toy_splits()
    tokenizer = train_bpe_tokenizer(splits.train["text"], vocab_size=300)
    teacher_logits = np.where(splits.train["label"].to_numpy()[:, None] == 1, [-2.0, 2.0],
                              [2.0, -2.0])
    run = train_student(config, splits, tokenizer, article_loss_fn(0.5), teacher_logits,
                        name="student", label="MSE", epochs=1, max_length=24,
                        embedding_dim=16, hidden_size=16)
    record_student(config, "BiLSTM distilled", run, "04", None)
    row = load_results(config).set_index("model").loc["BiLSTM distilled"]
    assert row["kind"] == "bilstm" and row["teacher"] is None and not row["standin"]
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
    assert isinstance(classifier, TransformersTextClassifier) and classifier.max_length == 8
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
    row, classifier = train_cls_logreg(config, "LR on [CLS]", "encoder", toy_splits(),
                                       max_length=16, teacher="tiny", standin=False)
    assert row["kind"] == "cls_logreg" and row["encoder"] == "encoder"
    assert (config.artifacts_dir / row["artifact"]).is_file()
    assert 0 <= row["f1"] <= 1 and row["teacher"] == "tiny"
    reloaded = load_classifier(config, row)
    assert isinstance(reloaded, ClsLogRegClassifier)
    np.testing.assert_allclose(reloaded.predict_proba(TEXTS), classifier.predict_proba(TEXTS),
                               atol=1e-6)
    check_predictor(reloaded, TEXTS)
    # Its parameters: the encoder's plus the regression's coefficients and intercept.
    assert reloaded.params == sum(p.numel() for p in reloaded.pooler.parameters()) + 32 + 1


def test_load_classifier_dispatches_on_kind_and_explains_failures(tmp_path: Path) -> None:
    config = tiny_config(tmp_path)
    tiny_bilstm_folder(config.artifacts_dir / "bilstm")
    tiny_bert_folder(config.artifacts_dir / "bert")
    assert isinstance(load_classifier(config, {"model": "a", "kind": "bilstm",
                                               "artifact": "bilstm"}), BiLSTMTextClassifier)
    series = pd.Series({"model": "b", "chapter": "05", "kind": "transformers",
                        "artifact": "bert", "preprocess": float("nan")})
    assert isinstance(load_classifier(config, series), TransformersTextClassifier)
    with pytest.raises(ValueError, match="Re-run its chapter"):
        load_classifier(config, {"model": "old", "chapter": "02", "f1": 0.5})
    with pytest.raises(ValueError, match="kind"):
        load_classifier(config, {"model": "x", "kind": "onnx", "artifact": "bilstm"})
    with pytest.raises(FileNotFoundError):
        load_classifier(config, {"model": "gone", "kind": "bilstm", "artifact": "nothing/here"})
    with pytest.raises(ValueError, match="preprocess"):
        path = config.artifact("baselines", "p.joblib")
        joblib.dump(make_char_ngram_pipeline(), path)
        load_classifier(config, {"model": "p", "kind": "sklearn",
                                 "artifact": "baselines/p.joblib", "preprocess": "stems"})
