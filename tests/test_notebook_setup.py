"""helpers.notebook.setup_book: the one call under each chapter's install cell."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.notebook import setup_book

# Each test starts and ends with the package's logger as Python leaves it (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("restore_package_logger")


def test_setup_book_points_the_artifacts_at_the_folder_and_says_what_it_runs_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    # setup_book sets BOOK_ARTIFACTS: set it here first, so that monkeypatch restores it after
    # the test (a variable it only deleted, being unset, would keep the test's folder).
    monkeypatch.setenv("BOOK_ARTIFACTS", str(tmp_path / "before"))
    config = setup_book(str(tmp_path / "drive"))
    assert config.artifacts_dir.is_relative_to(tmp_path / "drive")
    shown = capsys.readouterr().out
    assert shown.startswith("Data: ") and config.teacher in shown and shown.count("\n") == 1


def test_setup_book_without_a_folder_keeps_the_artifacts_and_can_be_quiet(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("BOOK_ARTIFACTS", str(tmp_path))
    config = setup_book(verbosity="warning")
    assert config.artifacts_dir.is_relative_to(tmp_path)
    assert capsys.readouterr().out == ""
    with pytest.raises(ValueError, match="level must be one of"):
        setup_book(verbosity="loud")
