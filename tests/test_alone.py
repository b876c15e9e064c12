"""Each chapter opened on its own, as a Colab launch button or `jupyter execute` opens it: from a
fresh kernel and an empty artifacts folder, it either makes what it needs and runs to the end, or
stops at its first cell with one sentence naming the notebooks to run first.

Small-data mode (conftest.py), each chapter in a folder of its own, so nothing an earlier
chapter saved is there.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from helpers import chapters

ROOT = Path(__file__).resolve().parents[1]
# The chapters that cannot make what they need: chapter 6 deploys models, it trains none.
STOPS = {chapters.COMPARISON}


@pytest.mark.parametrize("chapter", chapters.CHAPTERS, ids=lambda c: c.notebook)
def test_chapter_runs_alone_or_stops_with_its_sentence(
        chapter: chapters.Chapter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOOK_ARTIFACTS", str(tmp_path))  # an empty artifacts folder
    notebook = nbformat.read(ROOT / chapter.path, as_version=4)
    client = NotebookClient(notebook, timeout=900, kernel_name="python3",
                            resources={"metadata": {"path": str(ROOT / "notebooks")}})
    if chapter not in STOPS:
        client.execute()
        return
    with pytest.raises(CellExecutionError) as stopped:
        client.execute()
    assert stopped.value.ename == "ChapterNotRun"
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    failed = next(cell for cell in code if any(out.get("output_type") == "error"
                                               for out in cell.get("outputs", [])))
    assert failed is code[1], "it must stop at its first cell after the install cell"
    needed = [c.path for c in chapters.TRAINING]
    assert all(path in stopped.value.evalue for path in needed), stopped.value.evalue
