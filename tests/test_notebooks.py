"""Checks of the notebooks as files: no outputs committed, the Colab cell, listed in _toc.yml."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
# The install cell CONTRIBUTING.md prescribes, identical in every notebook.
INSTALL_CELL = '''import subprocess
import sys

REPO_URL = "https://github.com/distillation-book/rubert-toxic-distillation"
if "google.colab" in sys.modules:  # Colab: install the book's helpers
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", f"git+{REPO_URL}"], check=True)'''


def ids(paths: list[Path]) -> list[str]:
    return [p.name for p in paths]


def test_there_are_notebooks() -> None:
    assert NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids(NOTEBOOKS))
def test_no_outputs_committed(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    for number, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name} cell {number} has outputs"
            assert cell.execution_count is None, f"{path.name} cell {number} has a count"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids(NOTEBOOKS))
def test_title_badge_and_install_cell(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    first, second = notebook.cells[0], notebook.cells[1]
    assert first.cell_type == "markdown" and re.match(r"# \d+\. \S", first.source)
    assert second.cell_type == "markdown" and "colab.research.google.com" in second.source
    assert path.name in second.source
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and code[0].source.strip() == INSTALL_CELL


def test_every_notebook_is_in_the_toc() -> None:
    toc = (ROOT / "_toc.yml").read_text(encoding="utf-8")
    listed = set(re.findall(r"file:\s*(\S+)", toc))
    missing = [p.name for p in NOTEBOOKS if f"notebooks/{p.stem}" not in listed]
    assert not missing, f"notebooks not listed in _toc.yml: {missing}"
