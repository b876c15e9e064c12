"""Tests of helpers.pipeline: the whole chain on a tiny CSV, and the comparison tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_inference import tiny_bert_folder, tiny_bilstm_folder, toy_corpus

from helpers.config import BookConfig
from helpers.data import DatasetError
from helpers.pipeline import (
    STEPS,
    compare_models,
    load_csv_splits,
    plot_tradeoffs,
    results_page,
    run_chain,
    standin_notice,
    step_gains,
    tradeoffs,
    update_row,
)
from helpers.results import load_results, record_result


def write_csv(path: Path, n: int = 150) -> Path:
    """The toy corpus under other column names, with an empty text and a duplicate to clean."""
    frame = toy_corpus(n).rename(columns={"text": "message", "label": "is_bad"})
    frame = pd.concat([frame, frame.iloc[[0]], pd.DataFrame({"message": ["  "], "is_bad": [0]})])
    frame.to_csv(path, index=False)
    return path


def test_run_chain_on_a_tiny_csv(tmp_path: Path) -> None:
    csv = write_csv(tmp_path / "mine.csv")
    teacher = tiny_bert_folder(tmp_path / "teacher-source", classifier=False)
    out = tmp_path / "out"
    table = run_chain(csv, "message", "is_bad", teacher=str(teacher), out_dir=out, small=True,
                      teacher_epochs=1, bilstm_kwargs={"embedding_dim": 16, "hidden_size": 16},
                      latency_texts=5)
    assert list(table.index) == ["char_ngram_logreg", "BiLSTM", "teacher", "BiLSTM distilled"]
    assert table[["f1", "macro_f1", "average_precision"]].apply(
        lambda c: c.between(0, 1)).all().all()
    assert (table["params"] > 0).all() and (table["size_mb"] > 0).all()
    assert (table["latency_ms"] > 0).all() and (table["texts_per_s"] > 0).all()
    assert table.attrs["skipped"] == {}
    assert set(table["kind"]) == {"sklearn", "bilstm", "transformers"}
    # Everything went under out_dir, in the small-data artifacts, with the measured speed.
    config = BookConfig(data=csv, teacher=str(teacher), small=True, root=out)
    results = load_results(config).set_index("model")
    assert set(table.index) <= set(results.index)
    assert results.loc["BiLSTM distilled", "artifact"] == "bilstm_distilled/model"
    assert results.loc["teacher", "artifact"] == "teacher"
    assert (results.loc[table.index, "latency_ms"] > 0).all()
    # The baseline could tell the toy classes apart: the chain really trained on the CSV.
    assert table.loc["char_ngram_logreg", "f1"] > 0.5


def test_run_chain_refuses_unknown_steps_and_bad_csv(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="Unknown step"):
        run_chain(write_csv(tmp_path / "a.csv"), "message", "is_bad", steps=("bert",),
                  out_dir=tmp_path)
    with pytest.raises(DatasetError, match="lacks the column"):
        run_chain(write_csv(tmp_path / "b.csv"), "text", "label", steps=("baseline",),
                  out_dir=tmp_path)
    assert STEPS == ("baseline", "bilstm", "teacher", "distill")


def test_load_csv_splits_cleans_and_splits(tmp_path: Path) -> None:
    splits = load_csv_splits(write_csv(tmp_path / "c.csv", n=150), "message", "is_bad")
    texts = [set(part["text"]) for _, part in splits.items()]
    assert sum(len(t) for t in texts) == 150  # the duplicate and the empty text are gone
    assert not (texts[0] & texts[2])


def _two_model_config(tmp_path: Path) -> BookConfig:
    config = BookConfig(data=None, teacher="x", small=True, root=tmp_path)
    tiny_bilstm_folder(config.artifacts_dir / "bilstm" / "model")
    tiny_bert_folder(config.artifacts_dir / "teacher")
    record_result("BiLSTM", "02", {"f1": 0.6, "macro_f1": 0.7, "average_precision": 0.7},
                  config, kind="bilstm", artifact="bilstm/model", standin=False)
    record_result("teacher", "03", {"f1": 0.8, "macro_f1": 0.8, "average_precision": 0.9},
                  config, kind="transformers", artifact="teacher", standin=True)
    record_result("old row", "01", {"f1": 0.5}, config)
    return config


def test_compare_models_measures_loadable_rows_and_lists_the_rest(tmp_path: Path) -> None:
    config = _two_model_config(tmp_path)
    texts = toy_corpus(30)["text"].tolist()
    test = toy_corpus(30)
    table = compare_models(config, latency_texts=texts[:4], throughput_texts=texts, test=test)
    assert list(table.index) == ["BiLSTM", "teacher"]
    assert "old row" in table.attrs["skipped"] and "Re-run" in table.attrs["skipped"]["old row"]
    assert table.loc["teacher", "standin"] and not table.loc["BiLSTM", "standin"]
    assert table["f1_reloaded"].between(0, 1).all()
    notice = standin_notice(table.reset_index())
    assert "STAND-IN" in notice and "teacher" in notice and "BiLSTM" not in notice.split(":")[-1]
    assert standin_notice(table.reset_index().iloc[:1]) == ""
    axes = plot_tradeoffs(table)
    assert axes[0].get_xscale() == "log" and len(axes[0].texts) == 2
    with pytest.raises(ValueError):
        compare_models(config, latency_texts=[], throughput_texts=texts)


def test_tradeoffs_and_step_gains_are_computed_from_the_table() -> None:
    table = pd.DataFrame({"f1": [0.70, 0.75, 0.90, 0.85], "latency_ms": [0.5, 2.0, 10.0, 1.5],
                          "size_mb": [1.0, 9.0, 48.0, 6.0]},
                         index=["char", "bilstm", "teacher", "student"])
    out = tradeoffs(table, reference="char")
    assert out.loc["teacher", "F1 per ms"] == pytest.approx(0.09)
    assert out.loc["bilstm", "F1 per MB"] == pytest.approx(0.75 / 9)
    assert out.loc["teacher", "dF1 per extra ms"] == pytest.approx(0.20 / 9.5)
    assert np.isnan(out.loc["char", "dF1 per extra ms"])
    # bilstm is slower than the student and worse: not on the Pareto front.
    assert out["pareto"].to_dict() == {"char": True, "bilstm": False, "student": True,
                                       "teacher": True}
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
    assert steps.loc["grow", "dF1 per MB"] == pytest.approx(0.15 / (14.3 - 11.0135))
    assert steps.loc["grow", "dF1 per ms"] == pytest.approx(0.15 / (6.0 - 4.57))
    out = tradeoffs(table, reference="twin")
    assert np.isnan(out.loc["distilled", "dF1 per extra MB"])
    assert out.loc["bigger", "dF1 per extra MB"] == pytest.approx(0.15 / (14.3 - 11.0135))


def test_update_row_and_results_page(tmp_path: Path) -> None:
    config = _two_model_config(tmp_path)
    update_row(config, "BiLSTM", latency_ms=1.5)
    results = load_results(config).set_index("model")
    assert results.loc["BiLSTM", "latency_ms"] == 1.5
    assert results.loc["BiLSTM", "kind"] == "bilstm" and results.loc["BiLSTM", "f1"] == 0.6
    page = results_page(config)
    assert list(page.index) == ["teacher", "BiLSTM", "old row"]
    with pytest.raises(KeyError):
        update_row(config, "nobody", latency_ms=1.0)
