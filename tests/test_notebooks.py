"""Checks of the notebooks as files: no outputs committed, the Colab cell, listed in _toc.yml."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
# The repository's address lives in one place, _config.yml; every notebook's badge and install
# cell must agree with it (a fork changes that one line and reruns the badge/cell update).
BOOK_CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
REPO_URL = BOOK_CONFIG["repository"]["url"].rstrip("/")
BRANCH = BOOK_CONFIG["repository"].get("branch", "main")
# The install cell CONTRIBUTING.md prescribes, identical in every notebook but for REPO_URL.
INSTALL_CELL = r'''import subprocess
import sys

REPO_URL = "@REPO_URL@"
ARTIFACTS_ON_DRIVE = ""  # Colab: a Drive folder, e.g. "/content/drive/MyDrive/distillation-book"
if "google.colab" in sys.modules:  # install the book there, keeping Colab's own (CUDA) torch
    import torch

    pip = ["pip", "install", "-q", f"git+{REPO_URL}", "torch==" + torch.__version__.split("+")[0]]
    done = subprocess.run([sys.executable, "-m", *pip], capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"pip could not install the book from {REPO_URL} (a fork sets its "
                           f"address in _config.yml):\n{done.stderr}")'''
INSTALL_CELL = INSTALL_CELL.replace("@REPO_URL@", REPO_URL)


def ids(paths: list[Path]) -> list[str]:
    return [p.name for p in paths]


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
    assert code and code[0] is notebook.cells[2] and code[0].source.strip() == INSTALL_CELL


def colab_link(notebook: str) -> str:
    slug = REPO_URL.removeprefix("https://github.com/")
    return f"https://colab.research.google.com/github/{slug}/blob/{BRANCH}/notebooks/{notebook}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids(NOTEBOOKS))
def test_repository_url_agrees_with_config(path: Path) -> None:
    """The badge, the Colab link and REPO_URL all name _config.yml's repository."""
    assert REPO_URL.startswith("https://github.com/") and REPO_URL.count("/") == 4
    notebook = nbformat.read(path, as_version=4)
    badge, install = notebook.cells[1].source, notebook.cells[2].source
    assert re.findall(r'^REPO_URL = "(.*)"$', install, flags=re.M) == [REPO_URL]
    links = re.findall(r"https://colab\.research\.google\.com/github/[^)\s]+", badge)
    assert links and set(links) == {colab_link(path.name)}, links
    others = set(re.findall(r"https://github\.com/[\w.-]+/[\w.-]+", badge + install))
    assert others <= {REPO_URL}


def test_install_cell_fails_clearly_when_the_repository_cannot_be_reached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Colab branch of the cell, run against an address with no repository behind it."""
    import sys
    import types

    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    missing = (tmp_path / "no-such-repository").as_uri()
    cell = INSTALL_CELL.replace(f'REPO_URL = "{REPO_URL}"', f'REPO_URL = "{missing}"')
    assert missing in cell
    with pytest.raises(RuntimeError, match="pip could not install the book from") as caught:
        exec(compile(cell, "install-cell", "exec"), {})
    assert missing in str(caught.value) and "_config.yml" in str(caught.value)
