"""Tests of helpers.pipeline (the whole chain on a tiny CSV) and of reading your own CSV."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from toy import tiny_bert_folder, toy_corpus

from helpers.config import BookConfig
from helpers.data import DatasetError, load_csv_splits
from helpers.pipeline import STEPS, run_chain
from helpers.results import load_results


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
    assert set(table["kind"]) == {"sklearn", "token_model", "transformers"}
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
