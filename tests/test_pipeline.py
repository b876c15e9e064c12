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


class Captured(Exception):
    """Raised by a stand-in training function once it has seen what run_chain passes."""


@pytest.mark.parametrize("small", [True, False])
def test_run_chain_trains_with_the_objects_of_chapters_2_and_4(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, small: bool
) -> None:
    """The BiLSTM step gets chapter 2's schedule, the distillation step chapter 4's schedule
    (patience 5, minimum gain 0.005 on the full data), BiLSTM and recipe: the very objects."""
    import helpers.pipeline as pipeline
    from helpers.budgets import bilstm_schedule, distillation_budget
    from helpers.losses import Recipe
    from helpers.token_models import ARTICLE_BILSTM

    csv = write_csv(tmp_path / "mine.csv")
    teacher = tiny_bert_folder(tmp_path / "teacher-source", classifier=False)
    seen: dict = {}

    def capture(step: str):
        def fake(config, splits, tokenizer, *args, **kwargs):
            seen[step] = {"config": config, "splits": splits, "tokenizer": tokenizer,
                          "args": args, **kwargs}
            raise Captured
        return fake

    monkeypatch.setattr(pipeline, "train_token_model", capture("bilstm"))
    monkeypatch.setattr(pipeline, "train_token_student", capture("distill"))
    for step in ("bilstm", "distill"):
        with pytest.raises(Captured):
            run_chain(csv, "message", "is_bad", str(teacher), out_dir=tmp_path / "out",
                      small=small, steps=(step,), teacher_epochs=1)
    bilstm, distill = seen["bilstm"], seen["distill"]
    config = bilstm["config"]
    assert config == BookConfig(data=csv, teacher=str(teacher), small=small,
                                root=(tmp_path / "out").resolve())
    texts = bilstm["splits"].train["text"]
    budget = distillation_budget(config)
    schedule, network = bilstm["args"]
    assert schedule == bilstm_schedule(config, bilstm["tokenizer"], texts)
    assert network == (budget.bilstm if small else ARTICLE_BILSTM)
    assert distill["schedule"] == budget.schedule(distill["tokenizer"], texts)
    assert distill["network"] == budget.bilstm
    assert distill["label"] == Recipe("mse", 0.5).label
    if not small:
        assert (distill["schedule"].patience, distill["schedule"].min_improvement) == (5, 0.005)


def test_run_chain_distils_end_to_end_with_chapter_4_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import helpers.pipeline as pipeline
    from helpers.budgets import distillation_budget

    csv = write_csv(tmp_path / "mine.csv")
    teacher = tiny_bert_folder(tmp_path / "teacher-source", classifier=False)
    real, seen = pipeline.train_token_student, []

    def spy(*args, **kwargs):
        seen.append((args, kwargs))
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "train_token_student", spy)
    table = run_chain(csv, "message", "is_bad", str(teacher), out_dir=tmp_path / "out",
                      small=True, steps=("distill",), teacher_epochs=1, latency_texts=5)
    assert list(table.index) == ["BiLSTM distilled"] and table.loc["BiLSTM distilled", "f1"] >= 0
    (args, kwargs), = seen
    config, splits, tokenizer = args[:3]
    budget = distillation_budget(config)
    assert kwargs["schedule"] == budget.schedule(tokenizer, splits.train["text"])
    assert kwargs["network"] == budget.bilstm
    meta = json.loads((config.artifacts_dir / "bilstm_distilled" / "model" / "config.json")
                      .read_text(encoding="utf-8"))
    assert meta["meta"]["max_length"] == kwargs["schedule"].max_length
    assert meta["meta"]["epochs"] == budget.epochs
    assert meta["architecture"]["hidden_size"] == budget.bilstm.size["hidden_size"]
    assert load_results(config).set_index("model").loc["BiLSTM distilled", "alpha"] == 0.5
