"""Tests of helpers.results: the results file every chapter writes to, through one function."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers.benchmark import size_on_disk_mb
from helpers.config import get_config
from helpers.results import (
    COLUMNS,
    forget_chapter,
    load_results,
    record_result,
    results_page,
    rows_table,
    update_row,
)


def make_config(tmp_path: Path):
    return get_config({"BOOK_SMALL": "1"}, root=tmp_path)


def make_artifact(config, name: str, size: int = 1000) -> Path:
    path = config.artifact(name, "weights.bin")
    path.write_bytes(b"x" * size)
    return path.parent


def record(config, model: str, chapter: str = "02", f1: float = 0.5, **fields):
    fields = {"kind": "token_model", "params": 10, "train_seconds": 1.25, "valid_f1": 0.5, **fields}
    if "artifact" not in fields:
        fields["artifact"] = make_artifact(config, model)
    metrics = fields.pop("metrics", {"f1": f1, "macro_f1": f1, "average_precision": f1})
    return record_result(config, model, chapter, metrics, **fields)


def test_load_results_when_empty(tmp_path: Path) -> None:
    frame = load_results(make_config(tmp_path))
    assert frame.empty
    assert list(frame.columns) == COLUMNS


def test_every_row_has_the_same_fields_with_measured_size(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    artifact = make_artifact(config, "a", size=2_500_000)
    row = record(config, "a", artifact=artifact)
    assert row["size_mb"] == 2.5  # measured from the artifact, not passed in
    assert row["artifact"] == "a"  # relative to the artifacts folder
    assert row["teacher"] is None and row["standin"] is False
    assert row["train_seconds"] == round(1.25, 1)
    other = record(config, "b", chapter="04", teacher="cointegrated/rubert-tiny", standin=True,
                   alpha=0.5)
    assert set(COLUMNS) <= set(row) and set(COLUMNS) <= set(other)
    assert other["teacher"] == "cointegrated/rubert-tiny" and other["alpha"] == 0.5


def test_record_result_upserts_by_model(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    record(config, "a", f1=0.5)
    record(config, "b", f1=0.6, teacher="t")
    record(config, "a", f1=0.7)
    frame = load_results(config).set_index("model")
    assert sorted(frame.index) == ["a", "b"]
    assert frame.loc["a", "f1"] == 0.7
    assert frame.loc["b", "teacher"] == "t"
    assert len(json.loads(config.results_path.read_text(encoding="utf-8"))) == 2


@pytest.mark.parametrize("fields, message", [
    ({"chapter": "02_bilstm"}, "no chapter .02_bilstm."),
    ({"kind": "pickle"}, "kind must be one of"),
    ({"standin": True}, "must name its teacher"),
    ({"metrics": {"f1": 0.5}}, "metrics lack"),
])
def test_record_result_rejects_inconsistent_rows(tmp_path: Path, fields, message) -> None:
    config = make_config(tmp_path)
    chapter = fields.pop("chapter", "02")
    with pytest.raises(ValueError, match=message):
        record(config, "a", chapter=chapter, **fields)
    assert load_results(config).empty


def test_record_result_rejects_artifacts_outside_the_artifacts_folder(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    outside = tmp_path / "elsewhere.bin"
    outside.write_bytes(b"x")
    with pytest.raises(ValueError, match="is not under"):
        record(config, "a", artifact=outside)


def test_update_row_adds_fields_and_keeps_the_rest(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    record(config, "a")
    row = update_row(config, "a", latency_ms=1.5)
    assert row["latency_ms"] == 1.5 and row["f1"] == 0.5
    with pytest.raises(KeyError, match="No row 'zzz'"):
        update_row(config, "zzz", latency_ms=1.0)


def test_forget_chapter_removes_only_that_chapter(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    record(config, "old name", chapter="04")
    record(config, "kept", chapter="02")
    assert forget_chapter(config, "04") == ["old name"]
    assert load_results(config)["model"].tolist() == ["kept"]


def test_tables_of_rows(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    rows = [record(config, "a", f1=0.51234), record(config, "b", f1=0.9, alpha=0.25)]
    table = rows_table(rows, extra=("alpha",))
    assert list(table.index) == ["a", "b"]
    assert table.loc["a", "f1"] == 0.5123
    assert table.loc["b", "alpha"] == 0.25
    assert list(results_page(config).index) == ["b", "a"]  # best F1 first


def test_small_and_full_results_are_separate(tmp_path: Path) -> None:
    small = make_config(tmp_path)
    full = get_config({}, root=tmp_path)
    record(small, "a")
    assert load_results(full).empty


def test_size_on_disk_mb(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "a.bin").write_bytes(b"x" * 1_500_000)
    (tmp_path / "model" / "sub").mkdir()
    (tmp_path / "model" / "sub" / "b.bin").write_bytes(b"x" * 500_000)
    assert size_on_disk_mb(tmp_path / "model") == 2.0
    assert size_on_disk_mb(tmp_path / "model" / "a.bin") == 1.5
    with pytest.raises(FileNotFoundError):
        size_on_disk_mb(tmp_path / "missing")
