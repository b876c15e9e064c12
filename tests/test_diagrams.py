"""The chapters' diagrams: drawn by helpers.diagrams, committed under book/figures/."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import matplotlib.text
import numpy as np

from helpers.diagrams import COLUMN_PX, DIAGRAMS, save_diagrams

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


# Drawn without draw_flow's boxes (their boxes are the texts' own frames).
MAPS = ("vocab_map.png", "layer_copy.png")


def _box_parts(figure) -> dict[str, dict[str, object]]:
    """Each box's patch and text, paired by the gid ``box:<name>`` draw_flow gives both."""
    parts: dict[str, dict[str, object]] = {}
    for artist in figure.findobj(lambda a: (a.get_gid() or "").startswith("box:")):
        kind = "text" if isinstance(artist, matplotlib.text.Text) else "patch"
        parts.setdefault(artist.get_gid(), {})[kind] = artist
    return parts


def test_diagram_text_is_body_sized_on_the_page_and_stays_in_its_boxes() -> None:
    """Shown at the page column's width (COLUMN_PX), every text of a diagram is at least as tall
    as the body text (16 px; it was 9 pt on an 11-inch figure, 8 px), and each box's text lies
    inside its box."""
    for name, draw in DIAGRAMS.items():
        figure = draw()
        figure.canvas.draw()
        scale = COLUMN_PX / (72 * figure.get_figwidth())  # points -> page pixels
        texts = [t for ax in figure.axes for t in (*ax.texts, ax.title) if t.get_text().strip()]
        assert len(texts) >= 6, f"{name}: texts not found"
        small = [t.get_text()[:20] for t in texts if t.get_fontsize() * scale < 16]
        assert not small, f"{name}: text under 16 px on the page: {small}"
        parts = _box_parts(figure)
        if name in MAPS:  # chapter 5's id maps and layer copy: text boxes, not draw_flow's
            continue
        assert len(parts) >= 5, f"{name}: boxes not found"
        renderer = figure.canvas.get_renderer()
        for gid, part in parts.items():
            inner = part["text"].get_window_extent(renderer)
            outer = part["patch"].get_window_extent(renderer)
            assert outer.x0 <= inner.x0 and inner.x1 <= outer.x1, f"{name} {gid}: text too wide"
            assert outer.y0 <= inner.y0 and inner.y1 <= outer.y1, f"{name} {gid}: text too tall"
        plt.close(figure)
