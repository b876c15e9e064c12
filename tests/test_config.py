"""Tests of helpers.config: the environment variables and where artifacts go."""

from __future__ import annotations

from pathlib import Path

from helpers.config import DEFAULT_TEACHER, find_root, get_config
from helpers.provenance import describe


def test_defaults_without_any_variable(tmp_path: Path) -> None:
    config = get_config({}, root=tmp_path)
    assert config.data is None and config.teacher == DEFAULT_TEACHER and not config.small
    assert config.artifacts_root is None
    assert config.artifacts_dir == tmp_path / "artifacts" / "full"
    assert config.data_cache_dir == tmp_path / "data"
    assert "artifacts:" not in describe(config)


def test_book_artifacts_moves_every_artifact_and_nothing_else(tmp_path: Path) -> None:
    drive = tmp_path / "drive" / "book"
    env = {"BOOK_ARTIFACTS": f" {drive} ", "BOOK_SMALL": "1", "BOOK_TEACHER": "/models/t"}
    config = get_config(env, root=tmp_path / "checkout")
    assert config.artifacts_root == drive
    assert config.artifacts_dir == drive / "artifacts" / "small"
    assert config.results_path == drive / "artifacts" / "small" / "results.json"
    saved = config.artifact("teacher", "model")
    assert saved == drive / "artifacts" / "small" / "teacher" / "model" and saved.parent.is_dir()
    # The data cache stays with the book; only artifacts move.
    assert config.data_cache_dir == tmp_path / "checkout" / "data"
    assert not (tmp_path / "checkout").exists()
    assert f"artifacts: {drive / 'artifacts' / 'small'}" in describe(config)


def test_book_artifacts_expands_home_and_empty_means_default(tmp_path: Path) -> None:
    assert get_config({"BOOK_ARTIFACTS": "~/x"}, root=tmp_path).artifacts_root == (
        Path.home() / "x")
    assert get_config({"BOOK_ARTIFACTS": "  "}, root=tmp_path).artifacts_dir == (
        tmp_path / "artifacts" / "full")


def test_find_root_walks_up_to_the_toc(tmp_path: Path) -> None:
    (tmp_path / "_toc.yml").write_text("format: jb-book\n")
    (tmp_path / "notebooks").mkdir()
    assert find_root(tmp_path / "notebooks") == tmp_path.resolve()
    elsewhere = tmp_path.parent / f"{tmp_path.name}-no-book"
    elsewhere.mkdir()
    assert find_root(elsewhere) == elsewhere.resolve()
