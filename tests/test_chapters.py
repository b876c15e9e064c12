"""The chapter registry is the one list of chapters: the notebooks, the table of contents and the
package agree with it, and no chapter number is typed anywhere else."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
import yaml

from helpers import chapters
from helpers.chapters import CHAPTERS, Chapter, chapter, chapter_number

ROOT = Path(__file__).resolve().parents[1]
# A chapter number typed as a string: "04" or '05'.
NUMBER = re.compile(r"""["']0\d["']""")


def test_the_toc_lists_the_registry_in_order() -> None:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    listed = [entry["file"] for part in toc["parts"] for entry in part["chapters"]
              if entry["file"].startswith("notebooks/")]
    assert listed == [c.page for c in CHAPTERS]


def test_every_notebook_is_a_registered_chapter_with_its_title() -> None:
    on_disk = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert on_disk == sorted(c.path for c in CHAPTERS)
    for c in CHAPTERS:
        notebook = json.loads((ROOT / c.path).read_text(encoding="utf-8"))
        assert "".join(notebook["cells"][0]["source"]).strip() == c.heading, c


def test_lookup_and_validation() -> None:
    assert chapter("04") is chapters.DISTILL_SMALL and chapter(chapters.TEACHER) is chapters.TEACHER
    assert chapter_number(chapters.BILSTM) == "02"
    with pytest.raises(ValueError, match="no chapter '07'"):
        chapter("07")
    with pytest.raises(ValueError, match="records no models"):
        chapter_number(chapters.DATA, recording=True)
    with pytest.raises(ValueError, match="two digits"):
        Chapter("4", "4_x", "X")
    with pytest.raises(ValueError, match="must start with '04_'"):
        Chapter("04", "05_x", "X")


def test_chapter_numbers_are_typed_only_in_the_registry() -> None:
    found = []
    for path in sorted((ROOT / "src" / "helpers").glob("*.py")):
        if path.name == "chapters.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and re.fullmatch(r"0\d", node.value):
                found.append(f"{path.name}:{node.lineno}")
    for c in CHAPTERS:
        notebook = json.loads((ROOT / c.path).read_text(encoding="utf-8"))
        for index, cell in enumerate(notebook["cells"]):
            if cell["cell_type"] == "code" and NUMBER.search("".join(cell["source"])):
                found.append(f"{c.path}: cell {index}")
    assert not found, f"chapter numbers typed outside helpers.chapters: {found}"
