"""The book's configuration: five environment variables, read in one place.

Readers need none of them. They exist so that CI, an offline machine or a reader with the
dataset already on disk can point the book at local copies:

``BOOK_DATA``
    Path to the dataset CSV. Without it the book uses its cache under ``data/`` and downloads the
    file (pinned URL, checked against its sha256) on first use.
``BOOK_TEACHER``
    Hugging Face hub id or local folder of the teacher model. Default: ``cointegrated/rubert-tiny``.
``BOOK_SMALL``
    ``1`` switches on small-data mode: a stratified subset of a few hundred rows, so that every
    notebook finishes in seconds (used by the tests). Default: the full data.
``BOOK_ARTIFACTS``
    The folder that holds ``artifacts/{full,small}/``, where chapters save what later chapters
    load. Default: the book's root. On Colab, where each notebook runs on its own machine, point
    it at a mounted Google Drive folder so that chapter 4 finds chapter 3's teacher.
``BOOK_BUDGET``
    ``cpu`` or ``gpu``: how long the models train (:mod:`helpers.budgets`). Default ``auto``: the
    GPU preset when CUDA is available, else the CPU preset, which fits a laptop's CPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_TEACHER = "cointegrated/rubert-tiny"
BUDGETS = ("auto", "cpu", "gpu")
SEED = 42


def find_root(start: Path | None = None) -> Path:
    """Return the book's root folder: the nearest parent of ``start`` holding ``_toc.yml``.

    Notebooks run with their own folder as working directory (Jupyter, nbmake, Jupyter Book), so
    the root is found by walking up. Outside a checkout (the package installed on its own, as in
    Colab) the working directory itself is the root.
    """
    start = (start or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        if (folder / "_toc.yml").is_file():
            return folder
    return start


@dataclass(frozen=True)
class BookConfig:
    """Where the data comes from, which teacher to use, and where artifacts go."""

    data: Path | None
    teacher: str
    small: bool
    root: Path
    artifacts_root: Path | None = None  # holds artifacts/{full,small}; None: ``root``
    budget: str = "auto"  # "cpu", "gpu" or "auto" (helpers.budgets.budget_preset)

    @property
    def data_cache_dir(self) -> Path:
        """Folder for the downloaded dataset (git-ignored)."""
        return self.root / "data"

    @property
    def artifacts_dir(self) -> Path:
        """Folder for models, caches and results; small-data runs never touch full-data ones."""
        home = self.artifacts_root or self.root
        return home / "artifacts" / ("small" if self.small else "full")

    @property
    def results_path(self) -> Path:
        """The results file every chapter appends to and the last chapter reads."""
        return self.artifacts_dir / "results.json"

    def artifact(self, *parts: str) -> Path:
        """Path of an artifact, creating its parent folder."""
        path = self.artifacts_dir.joinpath(*parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def get_config(environ: dict[str, str] | None = None, root: Path | None = None) -> BookConfig:
    """Read the configuration from ``environ`` (default: ``os.environ``)."""
    env = os.environ if environ is None else environ
    data = env.get("BOOK_DATA", "").strip()
    artifacts = env.get("BOOK_ARTIFACTS", "").strip()
    budget = env.get("BOOK_BUDGET", "").strip().lower() or "auto"
    if budget not in BUDGETS:
        raise ValueError(f"BOOK_BUDGET must be one of {BUDGETS}, not {budget!r}")
    return BookConfig(
        data=Path(data).expanduser() if data else None,
        teacher=env.get("BOOK_TEACHER", "").strip() or DEFAULT_TEACHER,
        small=_flag(env.get("BOOK_SMALL")),
        root=root or find_root(),
        artifacts_root=Path(artifacts).expanduser() if artifacts else None,
        budget=budget,
    )


def slug(name: str) -> str:
    """A file-name-safe version of a model name, for its artifact's folder or file."""
    return "".join(ch if ch.isalnum() else "_" for ch in name.lower()).strip("_")
