"""The book's execution cache re-executes a chapter when its code, helpers or data change."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pytest

from helpers import build_cache
from helpers.config import BookConfig

ROOT = Path(__file__).resolve().parents[1]


def test_module_imports_and_closure() -> None:
    code = ("from helpers.token_models import train_token_model\nimport helpers.results\n"
            "from helpers import data")
    assert build_cache.module_imports(code) == {"token_models", "results", "data"}
    closure = build_cache.module_closure({"token_models"})
    # token_models imports training, which imports losses: indirect dependencies count.
    assert {"token_models", "training", "losses", "batching", "config"} <= set(closure)
    assert "comparison" not in closure


def make_book(tmp_path: Path) -> Path:
    """A two-chapter book: the first imports helpers.token_models, the second helpers.comparison."""
    (tmp_path / "notebooks").mkdir(parents=True)
    for name, module in (("a", "token_models"), ("b", "comparison")):
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell(f"from helpers.{module} import *\nx = 1")]
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                     "language": "python"}
        nbformat.write(nb, tmp_path / "notebooks" / f"{name}.ipynb")
    (tmp_path / "intro.md").write_text("# Intro\n", encoding="utf-8")
    (tmp_path / "_toc.yml").write_text(
        "format: jb-book\nroot: intro\nparts:\n  - caption: C\n    chapters:\n"
        "      - file: notebooks/a\n      - file: notebooks/b\n", encoding="utf-8")
    return tmp_path


def test_fingerprints_follow_helpers_data_teacher_and_earlier_chapters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_book(tmp_path / "book")
    config = BookConfig(data=None, teacher="t", small=True, root=root)
    pages = build_cache.toc_pages(root)
    assert pages == ["intro", "notebooks/a", "notebooks/b"]
    base = build_cache.chapter_fingerprints(root, pages, config)
    assert base == build_cache.chapter_fingerprints(root, pages, config)  # deterministic
    other_teacher = build_cache.chapter_fingerprints(
        root, pages, BookConfig(data=None, teacher="u", small=True, root=root))
    assert all(other_teacher[p] != base[p] for p in pages)
    # A copy of the package with one changed module: only chapters that import it (directly or
    # through an earlier chapter) change.
    package = tmp_path / "pkg"
    shutil.copytree(build_cache.PACKAGE, package)
    monkeypatch.setattr(build_cache, "PACKAGE", package)
    assert build_cache.chapter_fingerprints(root, pages, config) == base
    (package / "comparison.py").write_text("# changed\n", encoding="utf-8")
    changed = build_cache.chapter_fingerprints(root, pages, config)
    assert changed["notebooks/a"] == base["notebooks/a"]
    assert changed["notebooks/b"] != base["notebooks/b"]
    (package / "token_models.py").write_text("# changed\n", encoding="utf-8")
    again = build_cache.chapter_fingerprints(root, pages, config)
    assert again["notebooks/a"] != base["notebooks/a"] and again["notebooks/b"] != changed[
        "notebooks/b"]


def test_invalidate_stale_removes_only_changed_chapters(tmp_path: Path) -> None:
    from jupyter_cache import get_cache

    root = make_book(tmp_path / "book")
    data = tmp_path / "data.csv"
    data.write_text("comment,toxic\na,0\n", encoding="utf-8")
    config = BookConfig(data=data, teacher="t", small=True, root=root)
    cache_dir = tmp_path / "cache"
    cache = get_cache(str(cache_dir))
    for name in ("a", "b"):
        cache.cache_notebook_file(root / "notebooks" / f"{name}.ipynb", check_validity=False)
    # First build with the extension: no fingerprints recorded yet, so nothing can be trusted.
    assert sorted(build_cache.invalidate_stale(cache_dir, root, config)) == [
        "notebooks/a", "notebooks/b"]
    for name in ("a", "b"):
        cache.cache_notebook_file(root / "notebooks" / f"{name}.ipynb", check_validity=False)
    assert build_cache.invalidate_stale(cache_dir, root, config) == []
    assert len(cache.list_cache_records()) == 2
    stamps = json.loads((cache_dir / build_cache.STAMP_FILE).read_text(encoding="utf-8"))
    assert set(stamps) == {"intro", "notebooks/a", "notebooks/b"}
    # The data changes (three labels flipped, say): every chapter runs again.
    data.write_text("comment,toxic\na,1\n", encoding="utf-8")
    assert sorted(build_cache.invalidate_stale(cache_dir, root, config)) == [
        "notebooks/a", "notebooks/b"]
    assert cache.list_cache_records() == []


def test_the_book_uses_the_extension() -> None:
    config = (ROOT / "_config.yml").read_text(encoding="utf-8")
    assert "helpers.build_cache" in config and "execute_notebooks: cache" in config
    pages = build_cache.toc_pages(ROOT)
    assert pages[:2] == ["book/intro", "book/setup"] and "notebooks/06_comparison" in pages


def test_a_real_build_reexecutes_a_chapter_when_its_data_changes(tmp_path: Path) -> None:
    """Jupyter Book with the extension: a rebuild reuses the cache until the data changes."""
    import os
    import subprocess
    import sys

    book = tmp_path / "book"
    (book / "notebooks").mkdir(parents=True)
    log = tmp_path / "executions.log"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# A chapter"), nbformat.v4.new_code_cell(
        "import helpers.data\n"
        f"open({str(log)!r}, 'a').write('executed\\n')")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, book / "notebooks" / "a.ipynb")
    (book / "intro.md").write_text("# Intro\n", encoding="utf-8")
    (book / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n"
                                   "  - file: notebooks/a\n", encoding="utf-8")
    (book / "_config.yml").write_text(
        "title: t\nexecute:\n  execute_notebooks: cache\n"
        "sphinx:\n  extra_extensions:\n    - helpers.build_cache\n", encoding="utf-8")
    data = tmp_path / "data.csv"
    data.write_text("comment,toxic\nпривет,0\n", encoding="utf-8")
    env = {**os.environ, "BOOK_DATA": str(data), "BOOK_SMALL": "1"}

    # The console script installed beside this Python (jupyter_book has no ``__main__``).
    command = shutil.which("jupyter-book", path=str(Path(sys.executable).parent)) or "jupyter-book"

    def build() -> int:
        done = subprocess.run([command, "build", str(book)], env=env, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        return log.read_text(encoding="utf-8").count("executed") if log.exists() else 0

    assert build() == 1
    assert build() == 1  # nothing changed: the cached execution is reused
    data.write_text("comment,toxic\nпривет,1\n", encoding="utf-8")  # one label flipped
    assert build() == 2  # the data changed: the chapter ran again


def test_continuation_lines_that_look_like_shell_or_magic_stay_python() -> None:
    import ast

    from helpers.build_cache import _python_only

    code = ("import helpers.teacher\nx = ((a > b)\n     != (c > d)).mean()\n%time y = 1\n"
            "!ls\nz = (5\n     % 3)\n")
    tree = ast.parse(_python_only(code))  # was: "'(' was never closed"
    assert any(isinstance(node, ast.Compare) for node in ast.walk(tree))
