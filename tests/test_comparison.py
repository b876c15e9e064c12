"""Tests of helpers.comparison: every recorded model measured the same way, and what it buys."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from toy import tiny_bert_folder, tiny_bilstm_folder, toy_corpus

from helpers import chapters
from helpers.comparison import (
    compare_models,
    comparison_steps,
    cost_table,
    distilled_students,
    missing_chapters,
    pareto_front,
    plot_tradeoffs,
    quality_table,
    require_earlier_chapters,
    step_gains,
    tradeoffs,
)
from helpers.config import BookConfig
from helpers.results import load_results, record_result, update_row
from helpers.standin import standin_notice

SCORES = {"f1": 0.6, "macro_f1": 0.7, "average_precision": 0.7}


def _two_model_config(tmp_path: Path) -> BookConfig:
    config = BookConfig(data=None, teacher="x", small=True, root=tmp_path)
    tiny_bilstm_folder(config.artifacts_dir / "bilstm" / "model")
    tiny_bert_folder(config.artifacts_dir / "teacher")
    record_result(config, "BiLSTM", "02", SCORES, kind="token_model", artifact="bilstm/model",
                  params=1, train_seconds=1, valid_f1=0.5)
    record_result(config, "teacher", "03", {**SCORES, "f1": 0.8}, kind="transformers",
                  artifact="teacher", params=1, train_seconds=1, valid_f1=0.5, teacher="x",
                  standin=True)
    # A row whose saved model is gone cannot be measured: it is listed, not dropped silently.
    config.artifact("gone", "model.pt").write_bytes(b"x")
    record_result(config, "old row", "01", {**SCORES, "f1": 0.5}, kind="token_model",
                  artifact="gone/model.pt", params=1, train_seconds=1, valid_f1=0.5)
    (config.artifacts_dir / "gone" / "model.pt").unlink()
    return config


def test_compare_models_measures_loadable_rows_and_lists_the_rest(tmp_path: Path) -> None:
    config = _two_model_config(tmp_path)
    texts = toy_corpus(30)["text"].tolist()
    test = toy_corpus(30)
    table = compare_models(config, latency_texts=texts[:4], throughput_texts=texts, test=test)
    assert list(table.index) == ["BiLSTM", "teacher"]
    assert "old row" in table.attrs["skipped"] and "re-run" in table.attrs["skipped"]["old row"]
    assert table.loc["teacher", "standin"] and not table.loc["BiLSTM", "standin"]
    assert table["f1_reloaded"].between(0, 1).all()
    notice = standin_notice(table.reset_index())
    assert "STAND-IN" in notice and "teacher" in notice and "BiLSTM" not in notice.split(":")[-1]
    assert standin_notice(table.reset_index().iloc[:1]) == ""
    axes = plot_tradeoffs(table)  # ranked on the validation F1, as every choice of the book
    front = pareto_front(table["valid_f1"], table["latency_ms"])
    assert axes[0].get_ylabel() == "F1 (toxic), validation"
    assert axes[0].get_xscale() == "log" and len(axes[0].texts) == front.sum() + 1
    listed = axes[0].texts[-1].get_text()  # the Pareto front's names, under the panel
    assert all((str(m) in listed) == on for m, on in zip(table.index, front, strict=True))
    with pytest.raises(ValueError):
        compare_models(config, latency_texts=[], throughput_texts=texts)


def test_tradeoff_plot_names_the_models_it_leaves_out() -> None:
    """A model far below the others is not drawn (it would squash them into a band) but named
    under the plot with its score; the front is drawn from the others."""
    table = pd.DataFrame({"valid_f1": [0.80, 0.85, 0.05], "latency_ms": [0.5, 2.0, 0.1],
                          "size_mb": [1.0, 9.0, 0.5], "standin": [False, False, True]},
                         index=["char", "bilstm", "frozen LR"])
    axes = plot_tradeoffs(table)
    drawn = sum(len(collection.get_offsets()) for collection in axes[0].collections)
    assert drawn == 2
    notes = [text.get_text() for text in axes[0].texts]
    assert any("Not drawn" in note and "frozen LR (0.05)" in note for note in notes)
    front_note = next(note for note in notes if note.startswith("Pareto front"))
    assert "frozen LR" not in front_note and "char" in front_note
    plt.close("all")
    # Many weak models (small-data mode): the first few are named, the rest counted.
    weak = pd.DataFrame({"valid_f1": [0.9] + [0.01 * i for i in range(12)],
                         "latency_ms": [1.0] * 13, "size_mb": [1.0] * 13,
                         "standin": [False] * 13}, index=["best"] + [f"m{i}" for i in range(12)])
    notes = [text.get_text() for text in plot_tradeoffs(weak, listed=8)[0].texts]
    note = next(note for note in notes if "Not drawn" in note)
    assert "m11 (0.11)" in note and "m0 (0.00)" not in note and "4 more" in note
    plt.close("all")


def test_tradeoffs_choose_on_validation_and_step_gains_use_the_table() -> None:
    # The test F1 would put "bilstm" on the front; its validation F1 does not: the choice is
    # made on validation.
    table = pd.DataFrame({"valid_f1": [0.70, 0.74, 0.90, 0.85],
                          "f1": [0.70, 0.99, 0.90, 0.85], "latency_ms": [0.5, 2.0, 10.0, 1.5],
                          "size_mb": [1.0, 9.0, 48.0, 6.0]},
                         index=["char", "bilstm", "teacher", "student"])
    out = tradeoffs(table, reference="char")
    assert out.loc["teacher", "dvalid_f1 vs char"] == pytest.approx(0.20)
    assert out.loc["teacher", "per extra ms"] == pytest.approx(0.20 / 9.5)
    assert np.isnan(out.loc["char", "per extra ms"])
    assert out.loc["bilstm", "f1 (test)"] == 0.99
    # bilstm is slower than the student and worse on validation: not on the Pareto front.
    assert out["pareto"].to_dict() == {"char": True, "bilstm": False, "student": True,
                                       "teacher": True}
    partial = tradeoffs(table.assign(valid_f1=[0.7, None, 0.9, 0.85]))
    assert "bilstm" not in partial.index and partial.attrs["unjudged"] == ["bilstm"]
    steps = step_gains(table, {"distil": ("teacher", "student"), "missing": ("a", "b")})
    assert list(steps.index) == ["distil"]
    assert steps.loc["distil", "dF1"] == pytest.approx(-0.05)
    assert steps.loc["distil", "dF1 per ms"] == pytest.approx(-0.05 / -8.5)
    assert tradeoffs(pd.DataFrame()).empty


def test_ratios_over_noise_sized_changes_are_left_empty() -> None:
    """Two models of one architecture differ by bytes and timing jitter: no F1 'per MB' for that."""
    table = pd.DataFrame({"f1": [0.65, 0.72, 0.80], "latency_ms": [4.57, 4.50, 6.0],
                          "size_mb": [11.0135, 11.01351, 14.3]},
                         index=["twin", "distilled", "bigger"])
    steps = step_gains(table, {"distil": ("twin", "distilled"), "grow": ("twin", "bigger")})
    assert np.isnan(steps.loc["distil", "dF1 per MB"])
    assert np.isnan(steps.loc["distil", "dF1 per ms"])
    assert str(steps.loc["distil", "d size MB"]) == "0.0"  # not "-0.0" for 10 bytes
    assert steps.loc["grow", "dF1 per MB"] == pytest.approx(0.15 / (14.3 - 11.0135))
    assert steps.loc["grow", "dF1 per ms"] == pytest.approx(0.15 / (6.0 - 4.57))
    out = tradeoffs(table, reference="twin", quality="f1")
    assert np.isnan(out.loc["distilled", "per extra MB"])
    assert out.loc["bigger", "per extra MB"] == pytest.approx(0.15 / (14.3 - 11.0135))


def test_chapter_six_bookkeeping(tmp_path: Path) -> None:
    config = _two_model_config(tmp_path)
    results = load_results(config)
    assert missing_chapters(results) == [chapters.DISTILL_SMALL, chapters.DISTILL_TINY_BERT]
    with pytest.raises(chapters.ChapterNotRun) as stopped:
        require_earlier_chapters(results)
    message = "".join(stopped.value._render_traceback_())  # what a notebook shows: one line
    assert "\n" not in message and message.startswith("ChapterNotRun: Comparison and deployment")
    assert "run notebooks/04_distill_bilstm.ipynb, notebooks/05_distill_tiny_bert.ipynb" in message
    update_row(config, "BiLSTM", latency_ms=1.5)
    assert load_results(config).set_index("model").loc["BiLSTM", "latency_ms"] == 1.5
    rows = pd.DataFrame({"model": ["s", "twin", "t"], "chapter": ["05", "05", "03"],
                         "kind": ["transformers"] * 3, "teacher": ["x", None, None]})
    assert distilled_students(rows)["model"].tolist() == ["s"]
    table = pd.DataFrame(
        {"chapter": ["01", "02", "02", "03", "04", "04", "04", "04", "04", "05"],
         "teacher": [None, None, None, "t", None, "t", None, "t", "t", "t"]},
        index=["char_ngram_logreg", "BiLSTM", "BiLSTM + navec", "teacher", "CNN, no teacher",
               "CNN (MSE)", "BiLSTM 128, no teacher", "BiLSTM 128 (MSE)",
               "BiLSTM + navec (MSE)", "tiny"])
    assert comparison_steps(table) == {
        "classical → BiLSTM": ("char_ngram_logreg", "BiLSTM"),
        "CNN, no teacher → CNN (MSE)": ("CNN, no teacher", "CNN (MSE)"),
        "BiLSTM 128, no teacher → BiLSTM 128 (MSE)": ("BiLSTM 128, no teacher", "BiLSTM 128 (MSE)"),
        # chapter 2's navec BiLSTM is the twin of chapter 4's navec student
        "BiLSTM + navec → BiLSTM + navec (MSE)": ("BiLSTM + navec", "BiLSTM + navec (MSE)"),
        "BiLSTM → teacher": ("BiLSTM", "teacher"),
        "teacher → tiny": ("teacher", "tiny"),
    }
    without_twin = comparison_steps(table.drop(index="CNN, no teacher"))
    assert "CNN, no teacher → CNN (MSE)" not in without_twin and len(without_twin) == 5


def test_pareto_front_keeps_models_no_other_beats() -> None:
    f1 = pd.Series([0.9, 0.8, 0.7, 0.9])
    cost = pd.Series([10.0, 1.0, 2.0, 20.0])
    assert pareto_front(f1, cost).tolist() == [True, True, False, False]


def test_deployment_rows_join_the_table_and_gains_compare_like_with_like() -> None:
    from helpers.comparison import with_deployments
    from helpers.deployment import deployment_gains

    eager = pd.DataFrame({"chapter": ["01", "03", "05"], "kind": ["sklearn", "transformers",
                                                                   "transformers"],
                          "f1": [0.7, 0.9, 0.85], "size_mb": [1.0, 48.0, 12.0],
                          "latency_ms": [0.5, 16.0, 8.0], "standin": False},
                         index=["ngram", "teacher", "tiny"])
    onnx = pd.DataFrame({"chapter": ["05", "03"], "kind": ["onnx", "onnx"],
                         "variant": ["ONNX int8", "ONNX int8"], "f1": [0.849, 0.9],
                         "size_mb": [3.0, 12.0], "latency_ms": [2.0, 5.0], "standin": False},
                        index=["tiny [ONNX int8]", "teacher [ONNX int8]"])
    combined = with_deployments(eager, onnx)
    assert combined["variant"].tolist() == ["scikit-learn", "PyTorch eager", "PyTorch eager",
                                            "ONNX int8", "ONNX int8"]
    gains = deployment_gains(combined)
    assert "ngram" not in gains.index
    assert gains.loc["tiny [ONNX int8]", "x faster than eager"] == pytest.approx(4.0)
    assert gains.loc["tiny [ONNX int8]", "x smaller than eager"] == pytest.approx(4.0)
    assert gains.loc["tiny [ONNX int8]", "dF1 vs eager (points)"] == pytest.approx(-0.1)
    assert gains.loc["tiny [ONNX int8]", "x faster than eager teacher"] == pytest.approx(8.0)
    # served against served: the student's int8 model against the teacher's int8 model
    assert gains.loc["tiny [ONNX int8]", "x faster than int8 teacher"] == pytest.approx(2.5)
    assert gains.loc["teacher [ONNX int8]", "x faster than int8 teacher"] == pytest.approx(1.0)


def test_quality_and_cost_tables_split_the_columns_and_keep_every_model() -> None:
    table = pd.DataFrame({"chapter": ["01", "03", "05"], "kind": ["sklearn", "transformers",
                                                                  "transformers"],
                          "variant": ["scikit-learn", "PyTorch eager", "ONNX int8"],
                          "f1": [0.7, 0.9, 0.85], "macro_f1": [0.8, 0.9, 0.88],
                          "average_precision": [0.7, 0.95, 0.9], "valid_f1": [0.72, np.nan, 0.9],
                          "params": [10, 1000, 100], "size_mb": [1.0, 48.0, 3.0],
                          "latency_ms": [0.5, 16.0, 2.0], "latency_p90_ms": [0.6, 17.0, 2.5],
                          "texts_per_s": [900.0, 60.0, 400.0], "teacher": [None, "x", "x"],
                          "standin": False}, index=["ngram", "teacher", "tiny"])
    quality, cost = quality_table(table), cost_table(table)
    assert list(quality.columns) == ["chapter", "f1", "macro_f1", "average_precision", "valid_f1"]
    assert list(quality.index) == ["tiny", "ngram", "teacher"]  # best validation F1 first
    assert list(cost.columns) == ["variant", "kind", "params", "size_mb", "latency_ms",
                                  "latency_p90_ms", "texts_per_s"]
    assert list(cost.index) == ["ngram", "tiny", "teacher"]  # fastest first
    # Together they show every score and every cost, and no column twice.
    assert not set(quality.columns) & set(cost.columns)
    assert cost.loc["tiny", "latency_ms"] == 2.0 and quality.loc["tiny", "f1"] == 0.85


def test_tradeoff_plot_text_is_as_tall_as_the_body_text_on_the_page() -> None:
    """The page's column is about 690 px wide and its body text 16 px: every label of the plot,
    scaled with the figure to that width, is at least that tall (it was 8 pt on a 13-inch
    figure, 6 px on the page)."""
    table = pd.DataFrame({"valid_f1": [0.80, 0.85, 0.1], "latency_ms": [0.5, 2.0, 0.1],
                          "size_mb": [1.0, 9.0, 0.5], "standin": [False, True, False]},
                         index=["char", "bilstm", "weak"])
    axes = plot_tradeoffs(table)
    figure = axes[0].figure
    scale = 690 / (72 * figure.get_figwidth())  # points -> page pixels
    texts = [t for t in figure.findobj(plt.Text) if t.get_text().strip() and t.get_visible()]
    assert any("Not drawn" in t.get_text() for t in texts)
    small = {t.get_text()[:30]: t.get_fontsize() * scale for t in texts
             if t.get_fontsize() * scale < 16}
    assert not small, f"text under 16 px on the page: {small}"
    plt.close("all")
