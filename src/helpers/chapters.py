"""The book's chapters, defined once: number, notebook, title and what each records.

Everything that needs to know the chapters reads them here: the results file (which chapter
recorded a row), chapter 6 (which chapters have not run yet, which rows are the teacher, the
students and their twins), the own-data pipeline (which chapter's row each step writes), the
tests of the notebooks, the table of contents and the rendered site. Adding a chapter means adding
one :class:`Chapter` to :data:`CHAPTERS` (and its notebook to ``_toc.yml``, which a test checks).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Chapter:
    """One chapter: its two-digit ``number``, notebook stem, title and what it records.

    ``records`` names, in a few words, the models the chapter writes to the results file
    (:mod:`helpers.results`); empty for a chapter that records none.
    """

    number: str
    notebook: str
    title: str
    records: str = ""

    def __post_init__(self) -> None:
        if len(self.number) != 2 or not self.number.isdigit():
            raise ValueError(f"a chapter number has two digits, not {self.number!r}")
        if not self.notebook.startswith(f"{self.number}_"):
            raise ValueError(f"chapter {self.number}'s notebook must start with "
                             f"'{self.number}_', not {self.notebook!r}")

    @property
    def page(self) -> str:
        """The page's path in the book, as ``_toc.yml`` lists it."""
        return f"notebooks/{self.notebook}"

    @property
    def path(self) -> str:
        """The notebook's path from the repository's root."""
        return f"{self.page}.ipynb"

    @property
    def heading(self) -> str:
        """The notebook's first line: ``# 4. Distilling BERT into small students``."""
        return f"# {int(self.number)}. {self.title}"

    def __str__(self) -> str:
        return f"chapter {int(self.number)} ({self.path})"


DATA = Chapter("00", "00_data", "The data")
BASELINES = Chapter("01", "01_classical_baselines", "Classical baselines",
                    "classical baselines")
BILSTM = Chapter("02", "02_bilstm", "A BiLSTM baseline", "BiLSTM")
TEACHER = Chapter("03", "03_teacher", "The teacher: fine-tuning rubert-tiny", "teacher")
DISTILL_SMALL = Chapter("04", "04_distill_bilstm", "Distilling BERT into small students",
                        "BERT -> BiLSTM")
DISTILL_TINY_BERT = Chapter("05", "05_distill_tiny_bert", "Distilling BERT into a tiny BERT",
                            "BERT -> tiny BERT")
COMPARISON = Chapter("06", "06_comparison", "Comparison and deployment", "comparison")

CHAPTERS: tuple[Chapter, ...] = (DATA, BASELINES, BILSTM, TEACHER, DISTILL_SMALL,
                                 DISTILL_TINY_BERT, COMPARISON)
# The chapters whose models chapter 6 compares (it records [CLS] models of its own too).
TRAINING = tuple(chapter for chapter in CHAPTERS if chapter.records and chapter is not COMPARISON)


class ChapterNotRun(RuntimeError):
    """A chapter needs what earlier chapters save, and they have not run (or not here).

    Raised at a chapter's first cell, so that a notebook opened on its own stops with one
    sentence that names the notebooks to run instead of a traceback further down.
    """

    def _render_traceback_(self) -> list[str]:
        # IPython shows these lines instead of the traceback: the sentence is the whole story.
        return [f"{type(self).__name__}: {self}"]


def require_run(needed: tuple[Chapter, ...] | list[Chapter], by: Chapter) -> None:
    """Stop ``by`` with :class:`ChapterNotRun` naming ``needed`` (the chapters it lacks), if any."""
    if needed:
        paths = ", ".join(c.path for c in needed)
        raise ChapterNotRun(f"{by.title} needs what earlier chapters save: run {paths} first "
                            f"(in this order, with the same artifacts folder), then this "
                            f"notebook again.")


def chapter(number: str | Chapter) -> Chapter:
    """The chapter numbered ``number`` ("04"); a :class:`Chapter` is returned as it is."""
    if isinstance(number, Chapter):
        return number
    for candidate in CHAPTERS:
        if candidate.number == number:
            return candidate
    raise ValueError(f"no chapter {number!r}: the chapters are "
                     f"{[c.number for c in CHAPTERS]} (helpers.chapters.CHAPTERS)")


def chapter_number(which: str | Chapter, recording: bool = False) -> str:
    """The two-digit number of ``which`` (a :class:`Chapter` or its number), as the results file
    stores it; with ``recording``, only a chapter that records models is accepted."""
    found = chapter(which)
    if recording and not found.records:
        raise ValueError(f"{found} records no models; the chapters that do: "
                         f"{[c.number for c in CHAPTERS if c.records]}")
    return found.number


def numbers(*which: Chapter) -> tuple[str, ...]:
    """The two-digit numbers of ``which``, as the results file stores them."""
    return tuple(c.number for c in which)
