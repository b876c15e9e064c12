"""Tests of helpers.results: the results file every chapter writes to."""

from __future__ import annotations

import json
from pathlib import Path

from helpers.config import get_config
from helpers.results import COLUMNS, load_results, record_result, size_on_disk_mb


def make_config(tmp_path: Path):
    return get_config({"BOOK_SMALL": "1"}, root=tmp_path)


def test_load_results_when_empty(tmp_path: Path) -> None:
    frame = load_results(make_config(tmp_path))
    assert frame.empty
    assert list(frame.columns) == COLUMNS


def test_record_result_upserts_by_model(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    record_result("a", "01", {"f1": 0.5}, config, params=10, teacher=None)
    record_result("b", "02", {"f1": 0.6}, config, params=20, teacher="t")
    row = record_result("a", "01", {"f1": 0.7}, config, params=11, teacher=None)
    assert row == {"model": "a", "chapter": "01", "f1": 0.7, "params": 11, "teacher": None}
    frame = load_results(config)
    assert sorted(frame["model"]) == ["a", "b"]
    assert frame.set_index("model").loc["a", "f1"] == 0.7
    assert frame.set_index("model").loc["b", "teacher"] == "t"
    stored = json.loads(config.results_path.read_text(encoding="utf-8"))
    assert len(stored) == 2
    assert list(frame.columns[: len(COLUMNS)]) == COLUMNS


def test_small_and_full_results_are_separate(tmp_path: Path) -> None:
    small = make_config(tmp_path)
    full = get_config({}, root=tmp_path)
    record_result("a", "01", {"f1": 0.5}, small)
    assert load_results(full).empty


def test_size_on_disk_mb(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "a.bin").write_bytes(b"x" * 1_500_000)
    (tmp_path / "model" / "sub").mkdir()
    (tmp_path / "model" / "sub" / "b.bin").write_bytes(b"x" * 500_000)
    assert size_on_disk_mb(tmp_path / "model") == 2.0
    assert size_on_disk_mb(tmp_path / "model" / "a.bin") == 1.5
