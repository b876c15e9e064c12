"""The chapters' diagrams: drawn by helpers.diagrams, committed under book/figures/."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image as mpimg

from helpers.diagrams import DIAGRAMS, save_diagrams

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ROOT / "book" / "figures"


def test_every_diagram_is_committed_as_drawn(tmp_path: Path) -> None:
    """Each PNG is in book/figures/ and has the shape the drawing code gives it now (rerun
    ``python -m helpers.diagrams`` after changing a drawing)."""
    for path in save_diagrams(tmp_path):
        committed = FIGURES / path.name
        assert committed.is_file(), f"{committed} missing: run python -m helpers.diagrams"
        assert mpimg.imread(committed).shape == mpimg.imread(path).shape, path.name


def test_every_diagram_is_shown_by_a_chapter() -> None:
    chapters = "".join(p.read_text(encoding="utf-8") for p in (ROOT / "notebooks").glob("*.ipynb"))
    for name in DIAGRAMS:
        assert f"../book/figures/{name}" in chapters, f"no chapter shows {name}"
