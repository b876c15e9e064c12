"""The book's diagrams: what the teacher sees, what the student sees, which loss matches what.

Each diagram is drawn with matplotlib boxes and arrows by one function (:data:`DIAGRAMS`) and
saved as a PNG into ``book/figures/``, where the chapters include it as an image. The PNGs are
committed; after changing a drawing, regenerate them with ``python -m helpers.diagrams`` (from the
repository's root; ``--out DIR`` writes elsewhere).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch

from .errors import add_debug_flag, check_writable_dir, run_command

COLOURS = {"data": "#eeeeee", "teacher": "#fbd9b5", "student": "#c6dbef", "loss": "#f4c2c2",
           "output": "#ffffff"}
# Boxes in data units, laid out on a grid of at most three columns COLUMN apart.
WIDTH, HEIGHT, COLUMN = 3.3, 1.55, 4.4
# The page's text column is about 690 px wide and its body text 16 px: a figure FIG_WIDTH inches
# wide is shown at the column's width, where FONT points are at least as tall as the body text
# (13 * 690 / (72 * 7.5) = 16.6 px). Box lines stay under about 19 characters to fit WIDTH.
FIG_WIDTH = 7.5
FONT = 13
TITLE_FONT = 14
COLUMN_PX = 690

# name -> (text, x centre, y centre, kind); arrows are (from, to, label), straight, or
# (from, to, label, "elbow"): out of the top or bottom of the box, then across, or
# (from, to, label, "side"): out of the side of the box, then up or down into the target.
Boxes = dict[str, tuple[str, float, float, str]]
Arrows = list[tuple[str, ...]]


def draw_flow(boxes: Boxes, arrows: Arrows, title: str, note: str = "",
              size: tuple[float, float] | None = None) -> Figure:
    """A figure of labelled boxes (coloured by kind) joined by labelled arrows.

    Its width is :data:`FIG_WIDTH` and its height follows the layout (one data unit is as long
    across as up), unless ``size`` is given. Each box and its text share the ``gid``
    ``"box:<name>"``, so that a test can check that the text stays inside its box.
    """
    xs = [x for _, x, _, _ in boxes.values()]
    ys = [y for _, _, y, _ in boxes.values()]
    note_space = 0.35 + 0.45 * (note.count("\n") + 1) if note else 0.2
    xlim = (min(xs) - WIDTH / 2 - 0.2, max(xs) + WIDTH / 2 + 0.2)
    ylim = (min(ys) - HEIGHT / 2 - note_space, max(ys) + HEIGHT / 2 + 0.2)
    if size is None:
        inches_per_unit = FIG_WIDTH / (xlim[1] - xlim[0])
        size = (FIG_WIDTH, (ylim[1] - ylim[0]) * inches_per_unit + 0.5)  # + the title
    fig, ax = plt.subplots(figsize=size)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.axis("off")
    for name, (text, x, y, kind) in boxes.items():
        ax.add_patch(FancyBboxPatch((x - WIDTH / 2, y - HEIGHT / 2), WIDTH, HEIGHT,
                                    boxstyle="round,pad=0.05", facecolor=COLOURS[kind],
                                    edgecolor="#444444", linewidth=1.0, gid=f"box:{name}"))
        ax.text(x, y, text, ha="center", va="center", fontsize=FONT, gid=f"box:{name}")
    for start, end, label, *bend in arrows:
        _, x0, y0, _ = boxes[start]
        _, x1, y1, _ = boxes[end]
        if bend == ["side"]:  # out of the box's side, across, then into the target's top/bottom
            begin = (x0 + (WIDTH / 2 + 0.08) * (1 if x1 > x0 else -1), y0)
            finish = (x1, y1 + (HEIGHT / 2 + 0.08) * (1 if y0 > y1 else -1))
            style, at = "angle,angleA=0,angleB=90,rad=0", ((x0 + x1) / 2, y0)
        elif bend:  # out of the box's top or bottom, then across into the target's side
            begin = (x0, y0 + (HEIGHT / 2 + 0.08) * (1 if y1 > y0 else -1))
            finish = (x1 - (WIDTH / 2 + 0.08) * (1 if x1 > x0 else -1), y1)
            style, at = "angle,angleA=90,angleB=0,rad=0", (x0 + 1.0, y1)
        else:
            begin, finish = _edge(x0, y0, x1, y1), _edge(x1, y1, x0, y0)
            style, at = "arc3", ((x0 + x1) / 2, (y0 + y1) / 2)
        ax.annotate("", xy=finish, xytext=begin, arrowprops={
            "arrowstyle": "-|>", "color": "#333333", "lw": 1.2, "connectionstyle": style})
        if label:
            ax.text(at[0], at[1] + 0.12, label, ha="center", va="bottom", fontsize=FONT,
                    color="#333333", style="italic",
                    bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.5})
    if note:
        ax.text(sum(ax.get_xlim()) / 2, ax.get_ylim()[0] + 0.15, note, ha="center",
                va="bottom", fontsize=FONT)
    ax.set_title(title, fontsize=TITLE_FONT)
    fig.tight_layout()
    return fig


def _edge(x: float, y: float, towards_x: float, towards_y: float) -> tuple[float, float]:
    """Where the line from box centre (x, y) towards another point leaves the box."""
    dx, dy = towards_x - x, towards_y - y
    scale = min((WIDTH / 2 + 0.08) / abs(dx) if dx else float("inf"),
                (HEIGHT / 2 + 0.08) / abs(dy) if dy else float("inf"))
    return x + dx * scale, y + dy * scale


# Grid positions: three columns, rows ROW apart.
C0, C1, C2 = 0.0, COLUMN, 2 * COLUMN
ROW = 2.7


def teacher_finetuning_diagram() -> Figure:
    """Chapter 3: the teacher reads WordPiece ids; its logits are trained on labels, then cached."""
    boxes: Boxes = {
        "text": ("comment text\n(WordPiece ids)", C0, ROW, "data"),
        "teacher": ("rubert-tiny:\n3 layers, 312 wide\n+ new 2-way head", C1, ROW, "teacher"),
        "logits": ("teacher logits $z^t$\n(normal, toxic)", C2, ROW, "output"),
        "label": ("gold label $y$", C0, 0.0, "data"),
        "ce": ("cross-entropy\n$\\mathrm{CE}(z^t, y)$", C1, 0.0, "loss"),
        "cache": ("cached on disk\nfor every split", C2, 0.0, "output"),
    }
    arrows: Arrows = [("text", "teacher", ""), ("teacher", "logits", ""),
                      ("logits", "ce", ""), ("label", "ce", ""),
                      ("logits", "cache", "")]
    return draw_flow(boxes, arrows, "Chapter 3: fine-tuning the teacher",
                     note="the cached logits are the soft targets\nof chapters 4 and 5")


def logit_distillation_diagram() -> Figure:
    """Chapter 4: teacher and student read the same text; logits matched by MSE or KL."""
    boxes: Boxes = {
        "teacher": ("rubert-tiny teacher\n(fine-tuned, frozen;\nWordPiece ids)",
                    C1, 2 * ROW, "teacher"),
        "t_logits": ("teacher logits $z^t$\n(computed once,\ncached)", C2, 2 * ROW, "output"),
        "text": ("comment text\n(or an augmented\none)", C0, ROW, "data"),
        "match": ("teacher term:\n" r"$\mathrm{MSE}(z^s, z^t)$ or" "\n"
                  r"$T^2\,\mathrm{KL}(p^t_T\,\|\,p^s_T)$", C2, ROW, "loss"),
        "student": ("student: CNN or\nBiLSTM on BPE ids\n([MASK] → [UNK])", C1, 0.0,
                    "student"),
        "s_logits": ("student logits $z^s$", C2, 0.0, "output"),
        "label": ("gold label $y$\n(-1: augmented,\nno label)", C1, -ROW, "data"),
        "ce": ("$\\mathrm{CE}(z^s, y)$\nlabelled rows only", C2, -ROW, "loss"),
    }
    arrows: Arrows = [("text", "teacher", ""), ("text", "student", ""),
                      ("teacher", "t_logits", ""), ("student", "s_logits", ""),
                      ("t_logits", "match", ""), ("s_logits", "match", ""),
                      ("s_logits", "ce", ""), ("label", "ce", "")]
    return draw_flow(boxes, arrows, "Chapter 4: distilling the teacher's logits\ninto a small "
                     "student", note=r"loss $= \alpha\,\mathrm{CE} + (1 - \alpha)\,$teacher term"
                     "\n" r"$\alpha = 1$: the no-teacher twin")


def pretraining_distillation_diagram() -> Figure:
    """Chapter 5: both BERTs read the same masked tokens; three losses (four with DistilBERT's)."""
    boxes: Boxes = {
        "text": ("comment text", C0, 3 * ROW, "data"),
        "masked": ("masked ids (pruned\nvocabulary;\nmask_tokens, 15%)", C1, 3 * ROW, "data"),
        "teacher": ("teacher BERT +\nMLM head (frozen,\ninference_mode)", C0, 2 * ROW,
                    "teacher"),
        "kl": ("KL at temperature $T$\nbetween token logits\nat masked positions", C1, ROW,
               "loss"),
        "cls": ("[CLS] loss:\n$\\|u/\\|u\\| - v/\\|v\\|\\|^2$\nadapter 256 → 312", C2, 0.0,
                "loss"),
        "student": ("student BERT +\nMLM head: tiny, or\nteacher layers 0, 2", C0, 0.0,
                    "student"),
        "labels": ("original tokens\nat masked positions", C0, -ROW, "data"),
        "mlm": ("MLM:\ncross-entropy", C1, -ROW, "loss"),
    }
    arrows: Arrows = [("text", "masked", ""), ("masked", "teacher", "kept_ids[masked]"),
                      ("masked", "student", ""), ("teacher", "kl", ""),
                      ("student", "kl", ""), ("teacher", "cls", "[CLS]", "side"),
                      ("student", "cls", "[CLS]"), ("student", "mlm", ""),
                      ("labels", "mlm", "")]
    return draw_flow(boxes, arrows, "Chapter 5: distillation pretraining\nof a BERT student",
                     note="article: 1 MLM + 1 KL + 1 [CLS]\nDistilBERT: 2 MLM + 5 KL + 1 cosine "
                     "between\nhidden states of aligned layers (no [CLS] term)")


DIAGRAMS: dict[str, Callable[[], Figure]] = {
    "teacher_finetuning.png": teacher_finetuning_diagram,
    "logit_distillation.png": logit_distillation_diagram,
    "pretraining_distillation.png": pretraining_distillation_diagram,
}
"""File name in ``book/figures/`` -> the function that draws it."""


def save_diagrams(out_dir: str | Path = Path("book") / "figures", dpi: int = 110) -> list[Path]:
    """Draw every diagram of :data:`DIAGRAMS` into ``out_dir`` as a PNG; returns the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, draw in DIAGRAMS.items():
        fig = draw()
        path = out_dir / name
        fig.savefig(path, dpi=dpi, metadata={"Software": None})
        plt.close(fig)
        paths.append(path)
    return paths


def _main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m helpers.diagrams",
                                     description="Draw the book's diagrams into book/figures/.")
    parser.add_argument("--out", default=str(Path("book") / "figures"))
    add_debug_flag(parser)
    out = check_writable_dir(parser.parse_args(argv).out)
    for path in save_diagrams(out):
        print(path)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m helpers.diagrams [--out DIR]``; an unusable ``--out`` is one line on stderr."""
    return run_command(_main, argv, prog="python -m helpers.diagrams")


# --------------------------------------------------------------------------- chapter 5's maps
# Drawn 6.3 inches wide (about 690 pixels at save_diagrams' dpi, the width of a page's column), so
# that 13-point text is shown at least as large as the page's own text.
MAP_WIDTH, MAP_FONT = 6.3, 13

# An invented eight-token vocabulary with training counts: the pruning rule of helpers.pruning
# (specials always kept, other tokens seen more than MIN_COUNT = 5 times) applied to it.
EXAMPLE_VOCAB = (("[PAD]", 0), ("[UNK]", 0), ("[CLS]", 40), ("[SEP]", 40), ("кот", 12),
                 ("синхро", 1), ("##ка", 9), ("фазо", 2))
EXAMPLE_SPECIALS = 4


def vocab_map_diagram(vocab: tuple[tuple[str, int], ...] = EXAMPLE_VOCAB,
                      specials: int = EXAMPLE_SPECIALS, min_count: int = 5) -> Figure:
    """Chapter 5: which teacher ids the pruned vocabulary keeps, the student id each gets
    (``kept_ids[student] = teacher``), and where a dropped token goes (``[UNK]``)."""
    kept = [t for t, (_, count) in enumerate(vocab) if t < specials or count > min_count]
    to_student = [kept.index(t) if t in kept else kept.index(1) for t in range(len(vocab))]
    fig, ax = plt.subplots(figsize=(MAP_WIDTH, 0.55 * len(vocab) + 2.6))
    ax.set_xlim(0, 10)
    ax.set_ylim(-3.9, len(vocab) + 0.2)
    ax.axis("off")
    top = len(vocab) - 0.5
    ax.text(1.9, top + 0.45, "teacher id, token (count)", ha="center", fontsize=MAP_FONT)
    ax.text(8.1, top + 0.45, "student id, token", ha="center", fontsize=MAP_FONT)
    for t, (token, count) in enumerate(vocab):
        y = top - t
        dropped = t not in kept
        ax.text(1.9, y, f"{t}  {token}  ({count})", ha="center", va="center", fontsize=MAP_FONT,
                color="#888888" if dropped else "black",
                bbox={"boxstyle": "round,pad=0.25", "facecolor": COLOURS["teacher"],
                      "edgecolor": "#444444", "alpha": 0.45 if dropped else 1.0})
        s = to_student[t]
        ax.annotate("", xy=(6.7, top - s), xytext=(3.4, y), arrowprops={
            "arrowstyle": "-|>", "lw": 1.2, "color": "#999999" if dropped else "#333333",
            "linestyle": "--" if dropped else "-"})
    for s, t in enumerate(kept):
        ax.text(8.1, top - s, f"{s}  {vocab[t][0]}", ha="center", va="center", fontsize=MAP_FONT,
                bbox={"boxstyle": "round,pad=0.25", "facecolor": COLOURS["student"],
                      "edgecolor": "#444444"})
    ax.text(5.0, -1.0, f"kept_ids = {kept}", ha="center", fontsize=MAP_FONT, family="monospace")
    ax.text(5.0, -1.9, f"teacher_to_student = {to_student}", ha="center", fontsize=MAP_FONT,
            family="monospace")
    ax.text(5.0, -2.5, f"kept: the specials and tokens seen more than {min_count} times;\n"
            "a dropped token (dashed arrow) becomes [UNK]", ha="center", va="top",
            fontsize=MAP_FONT)
    ax.set_title("Pruning an (invented) vocabulary: the two id maps", fontsize=MAP_FONT)
    fig.tight_layout()
    return fig


def layer_copy_diagram(teacher_layers: tuple[int, ...] | None = None,
                       teacher_depth: int = 3) -> Figure:
    """Chapter 5: the DistilBERT-style student's layers, each a copy of one teacher layer
    (counted from 0 in both), and the pruned rows of the embeddings and the MLM head."""
    from .pretraining import DISTILBERT_LAYERS

    teacher_layers = DISTILBERT_LAYERS if teacher_layers is None else teacher_layers
    fig, ax = plt.subplots(figsize=(MAP_WIDTH, 1.0 * teacher_depth + 3.4))
    ax.set_xlim(0, 10)
    ax.set_ylim(-0.9, teacher_depth + 2.6)
    ax.axis("off")

    def box(x: float, y: float, text: str, kind: str, faded: bool = False) -> None:
        ax.add_patch(FancyBboxPatch((x - 1.7, y - 0.32), 3.4, 0.64, boxstyle="round,pad=0.04",
                                    facecolor=COLOURS[kind], edgecolor="#444444",
                                    alpha=0.4 if faded else 1.0))
        ax.text(x, y, text, ha="center", va="center", fontsize=MAP_FONT,
                color="#888888" if faded else "black")

    def arrow(y0: float, y1: float, label: str = "") -> None:
        ax.annotate("", xy=(6.2, y1), xytext=(3.8, y0), arrowprops={
            "arrowstyle": "-|>", "lw": 1.3, "color": "#333333"})
        if label:
            ax.text(5.0, (y0 + y1) / 2 + 0.12, label, ha="center", va="bottom",
                    fontsize=MAP_FONT, style="italic")

    head, student_depth = teacher_depth + 1, len(teacher_layers)
    ax.text(2.0, teacher_depth + 2.0, "teacher", ha="center", fontsize=MAP_FONT, weight="bold")
    ax.text(8.0, teacher_depth + 2.0, "student", ha="center", fontsize=MAP_FONT, weight="bold")
    box(2.0, 0, "embeddings", "teacher")
    box(8.0, 0, "embeddings", "student")
    arrow(0, 0, "kept rows")
    for layer in range(teacher_depth):
        box(2.0, layer + 1, f"layer {layer}", "teacher", faded=layer not in teacher_layers)
    for layer, source in enumerate(teacher_layers):
        y = 1 + layer * (teacher_depth - 1) / max(student_depth - 1, 1)
        box(8.0, y, f"layer {layer}", "student")
        arrow(source + 1, y, "copy")
    box(2.0, head, "MLM head", "teacher")
    box(8.0, head, "MLM head", "student")
    arrow(head, head, "kept rows")
    ax.text(5.0, -0.75, "layers counted from 0; a faded layer is not copied",
            ha="center", fontsize=MAP_FONT)
    ax.set_title(f"DistilBERT-style student: teacher layers {', '.join(map(str, teacher_layers))}"
                 " copied", fontsize=MAP_FONT)
    fig.tight_layout()
    return fig


DIAGRAMS.update({"vocab_map.png": vocab_map_diagram, "layer_copy.png": layer_copy_diagram})


if __name__ == "__main__":
    sys.exit(main())
