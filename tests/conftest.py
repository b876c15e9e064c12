"""Shared pytest fixtures (small-data mode is set by the root ``conftest.py``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Where .ci/run finds the real rubert-tiny tokenizer and config (no weights) offline.
SHARED_TOKENIZER = ROOT.parent / "shared" / "models" / "rubert-tiny-tokenizer"


@pytest.fixture(scope="session")
def rubert_tokenizer_dir() -> Path:
    """A folder with rubert-tiny's tokenizer and config: the shared copy, else ``BOOK_TEACHER``."""
    # A git worktree of the checkout lies deeper: the shared folder is then a level further up.
    candidates = [SHARED_TOKENIZER, ROOT.parents[1] / "shared" / "models" / "rubert-tiny-tokenizer"]
    teacher = os.environ.get("BOOK_TEACHER", "").strip()
    if teacher:
        candidates.append(Path(teacher).expanduser())
    for folder in candidates:
        if (folder / "config.json").is_file() and (folder / "tokenizer_config.json").is_file():
            return folder
    pytest.skip(f"no rubert-tiny tokenizer folder found (looked in {candidates})")


@pytest.fixture(scope="session")
def standin_teacher_dir(
    tmp_path_factory: pytest.TempPathFactory, rubert_tokenizer_dir: Path
) -> Path:
    """A stand-in teacher (random rubert-tiny-shaped BertForPreTraining plus the real tokenizer)."""
    from helpers.standin import make_standin_teacher

    return make_standin_teacher(rubert_tokenizer_dir, tmp_path_factory.mktemp("standin-teacher"))
