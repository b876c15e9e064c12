"""Tests of helpers.pipeline (the whole chain on a tiny CSV) and of reading your own CSV."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from toy import tiny_bert_folder, toy_corpus

from helpers.checkpoints import TeacherUnavailableError
from helpers.config import BookConfig
from helpers.data import DatasetError, load_csv_splits
from helpers.pipeline import refuse_book_artifacts, run_chain, run_chain_cli
from helpers.results import load_results
from helpers.teacher import INFO_FILE


def write_csv(path: Path, n: int = 150) -> Path:
    """The toy corpus under other column names, with an empty text and a duplicate to clean."""
    frame = toy_corpus(n).rename(columns={"text": "message", "label": "is_bad"})
    frame = pd.concat([frame, frame.iloc[[0]], pd.DataFrame({"message": ["  "], "is_bad": [0]})])
    frame.to_csv(path, index=False)
    return path


def test_run_chain_on_a_tiny_csv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    csv = write_csv(tmp_path / "mine.csv")
    teacher = tiny_bert_folder(tmp_path / "teacher-source", classifier=False)
    out = tmp_path / "out"
    monkeypatch.setenv("BOOK_TEACHER", str(teacher))  # teacher=None: the book's configured one
    table = run_chain(csv, "message", "is_bad", out_dir=out, small=True,
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
    info = json.loads((config.artifacts_dir / "teacher" / INFO_FILE).read_text(encoding="utf-8"))
    assert info["source"] == str(teacher)
    assert sorted(p.name for p in out.iterdir()) == ["artifacts"]  # nothing written elsewhere
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.csv", "out", "teacher-source"]
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


def test_run_chain_honours_book_teacher_and_an_explicit_teacher_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    csv = write_csv(tmp_path / "d.csv")
    monkeypatch.setenv("BOOK_TEACHER", str(tmp_path / "configured-teacher"))
    with pytest.raises(TeacherUnavailableError, match="configured-teacher does not exist"):
        run_chain(csv, "message", "is_bad", out_dir=tmp_path / "o", small=True, steps=("teacher",))
    with pytest.raises(TeacherUnavailableError, match="explicit-teacher does not exist"):
        run_chain(csv, "message", "is_bad", str(tmp_path / "explicit-teacher"),
                  out_dir=tmp_path / "o", small=True, steps=("teacher",))


def test_run_chain_never_writes_into_the_books_artifacts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    book = tmp_path / "book"
    (book / "notebooks").mkdir(parents=True)
    (book / "_toc.yml").write_text("format: jb-book\n")
    monkeypatch.chdir(book / "notebooks")
    monkeypatch.delenv("BOOK_ARTIFACTS", raising=False)
    csv = write_csv(tmp_path / "e.csv")
    for out in (book, "..", book / "artifacts", book / "artifacts" / "small"):
        with pytest.raises(ValueError, match="book's own artifacts"):
            run_chain(csv, "message", "is_bad", out_dir=out, steps=("baseline",))
    assert not (book / "artifacts").exists()
    # BOOK_ARTIFACTS (e.g. a Drive folder) is the book's too.
    drive = tmp_path / "drive"
    monkeypatch.setenv("BOOK_ARTIFACTS", str(drive))
    with pytest.raises(ValueError, match="book's own artifacts"):
        refuse_book_artifacts(drive)
    # A folder of one's own, even inside the checkout, is fine: nothing is written elsewhere.
    assert refuse_book_artifacts(book / "my_run") == (book / "my_run").resolve()
    assert refuse_book_artifacts("my_run") == (book / "notebooks" / "my_run").resolve()
    with pytest.raises(TypeError):
        run_chain(csv, "message", "is_bad", steps=("baseline",))  # out_dir must be given


def test_command_line_runs_the_chain_into_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = write_csv(tmp_path / "f.csv")
    out = tmp_path / "cli-run"
    table = run_chain_cli([str(csv), "--text-column", "message", "--label-column", "is_bad",
                           "--out", str(out), "--small", "--steps", "baseline", "bilstm"])
    assert list(table.index) == ["char_ngram_logreg", "BiLSTM"]
    printed = capsys.readouterr().out
    assert "char_ngram_logreg" in printed and "BiLSTM" in printed
    assert (out / "artifacts" / "small" / "results.json").is_file()
    # Small mode narrows the BiLSTM as chapter 4 does (the full size has ~2.4M parameters).
    assert table.loc["BiLSTM", "params"] < 300_000
    with pytest.raises(SystemExit):
        run_chain_cli([str(csv)])  # --out is required


def test_python_m_helpers_pipeline_is_a_command() -> None:
    done = subprocess.run([sys.executable, "-m", "helpers.pipeline", "--help"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    for option in ("--text-column", "--label-column", "--out", "--teacher", "--small"):
        assert option in done.stdout


def test_load_csv_splits_cleans_and_splits(tmp_path: Path) -> None:
    splits = load_csv_splits(write_csv(tmp_path / "c.csv", n=150), "message", "is_bad")
    texts = [set(part["text"]) for _, part in splits.items()]
    assert sum(len(t) for t in texts) == 150  # the duplicate and the empty text are gone
    assert not (texts[0] & texts[2])
