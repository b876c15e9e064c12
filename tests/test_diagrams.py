"""The chapters' diagrams: drawn by helpers.diagrams, committed under book/figures/."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image as mpimg
import numpy as np

from helpers.diagrams import DIAGRAMS, save_diagrams

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ROOT / "book" / "figures"


def test_every_diagram_is_committed_as_drawn(tmp_path: Path) -> None:
    """Each PNG in book/figures/ is, pixel for pixel, what the drawing code draws now: a change
    to a drawing (a label, a colour, a font) that was not redrawn with ``python -m
    helpers.diagrams`` fails here."""
    for path in save_diagrams(tmp_path):
        committed = FIGURES / path.name
        assert committed.is_file(), f"{committed} missing: run python -m helpers.diagrams"
        fresh, saved = mpimg.imread(path), mpimg.imread(committed)
        assert fresh.shape == saved.shape, path.name
        changed = float(np.abs(fresh - saved).max(axis=-1).astype(bool).mean())
        assert changed == 0, (f"{path.name}: {changed:.2%} of its pixels differ from a fresh "
                              "drawing; run python -m helpers.diagrams")


def test_every_diagram_is_shown_by_a_chapter() -> None:
    chapters = "".join(p.read_text(encoding="utf-8") for p in (ROOT / "notebooks").glob("*.ipynb"))
    for name in DIAGRAMS:
        assert f"../book/figures/{name}" in chapters, f"no chapter shows {name}"
