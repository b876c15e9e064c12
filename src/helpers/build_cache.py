"""Keeps the book's execution cache honest: a chapter is re-executed when what it ran on changes.

Jupyter Book's ``execute_notebooks: cache`` reuses a notebook's outputs as long as its code cells
are unchanged. A change to ``src/helpers``, to the data or to the teacher would otherwise leave
every cached chapter showing figures made by other code on other data. This Sphinx extension
(listed under ``sphinx.extra_extensions`` in ``_config.yml``) computes, before the notebooks are
read, a fingerprint of what each chapter depends on:

* the source of every ``helpers`` module the notebook imports, and of the modules those import;
* the dataset's sha256, the teacher's source and the small-data flag (:mod:`helpers.config`);
* the fingerprints and code of every earlier chapter, since later chapters read their artifacts
  (chapter 4 reuses chapter 3's teacher, chapter 6 every row of the results file).

A cached chapter whose fingerprint changed is removed from the cache and re-read, so the build
executes it again; the others are reused. The fingerprints are kept beside the cache.
"""

from __future__ import annotations

import ast
import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from .config import BookConfig, get_config

PACKAGE = Path(__file__).parent
STAMP_FILE = "book_fingerprints.json"


def module_imports(source: str) -> set[str]:
    """The ``helpers`` modules a piece of code imports (absolute or, inside the package,
    relative imports)."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module:  # from .data import ...
                names.add(node.module.split(".")[0])
            elif node.module == "helpers" or (node.level == 1 and not node.module):
                names.update(alias.name for alias in node.names)
            elif node.module and node.module.startswith("helpers."):
                names.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            names.update(a.name.split(".")[1] for a in node.names
                         if a.name.startswith("helpers."))
    return {name for name in names if (PACKAGE / f"{name}.py").is_file()}


def module_closure(names: Iterable[str]) -> list[str]:
    """``names`` and every helpers module they import, directly or not, sorted."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += module_imports((PACKAGE / f"{name}.py").read_text(encoding="utf-8"))
    return sorted(seen)


def notebook_code(path: Path) -> str:
    """The code cells of a notebook (``.ipynb``) or of a MyST notebook page (``.md``)."""
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    text, blocks, inside = path.read_text(encoding="utf-8"), [], False
    for line in text.splitlines():
        if line.startswith("```{code-cell}"):
            inside = True
        elif inside and line.startswith("```"):
            inside = False
        elif inside:
            blocks.append(line)
    return "\n".join(blocks)


def _python_only(code: str) -> str:
    """Code with IPython's magics and shell escapes turned into the Python calls IPython makes of
    them, so that ``ast`` can parse it (IPython's own transformer: a continuation line such as
    ``!= b`` or ``% n`` stays Python)."""
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager().transform_cell(code)


def data_fingerprint(config: BookConfig) -> str:
    """sha256 of the dataset file the book would read (``BOOK_DATA`` or the verified cache);
    ``"missing"`` when there is none yet (the build's first chapter downloads it)."""
    from .data import dataset_sha256

    try:
        return dataset_sha256(config)
    except FileNotFoundError:
        return "missing"


def chapter_fingerprints(root: Path, pages: list[str], config: BookConfig) -> dict[str, str]:
    """A fingerprint per page (a ``_toc.yml`` entry), chained in book order as described above."""
    context = f"{data_fingerprint(config)}|{config.teacher}|{config.small}"
    fingerprints, chain = {}, hashlib.sha256(context.encode())
    for page in pages:
        path = next((root / f"{page}{s}" for s in (".ipynb", ".md")
                     if (root / f"{page}{s}").is_file()), None)
        if path is None:
            continue
        code = notebook_code(path)
        modules = module_closure(module_imports(_python_only(code)))
        for name in modules:
            chain.update(name.encode() + (PACKAGE / f"{name}.py").read_bytes())
        fingerprints[page] = chain.hexdigest()
        chain.update(code.encode())  # later chapters depend on this one's code too
    return fingerprints


def toc_pages(root: Path) -> list[str]:
    """The pages of ``_toc.yml`` in reading (and execution) order."""
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    pages = [toc["root"]]
    for part in toc.get("parts", []) or [toc]:  # a book with parts, or chapters at the top
        pages += [chapter["file"] for chapter in part.get("chapters", [])]
    return pages


def invalidate_stale(cache_dir: Path, root: Path, config: BookConfig) -> list[str]:
    """Remove the cached executions whose chapter fingerprint changed; return those pages."""
    from jupyter_cache import get_cache

    current = chapter_fingerprints(root, toc_pages(root), config)
    stamp = Path(cache_dir) / STAMP_FILE
    previous = json.loads(stamp.read_text(encoding="utf-8")) if stamp.is_file() else {}
    cache = get_cache(str(cache_dir))
    stale = []
    for record in cache.list_cache_records():
        uri = Path(record.uri).resolve()
        page = next((p for p in current if uri.with_suffix("") == (root / p).resolve()), None)
        if page is not None and previous.get(page) != current[page]:
            cache.remove_cache(record.pk)
            stale.append(page)
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(json.dumps(current, indent=1), encoding="utf-8")
    return stale


def _on_builder_inited(app: Any) -> None:
    root = Path(app.srcdir)
    cache_dir = Path(app.env.mystnb_config.execution_cache_path)
    stale = invalidate_stale(cache_dir, root, get_config(root=root))
    app.env.book_stale_pages = stale
    if stale:  # Sphinx's own logger: the line shows in the build's output, not in a page
        from sphinx.util import logging as sphinx_logging

        sphinx_logging.getLogger(__name__).info(
            "helpers.build_cache: re-executing %s (the code, data or teacher they depend on "
            "changed)", ", ".join(stale))


def _on_env_get_outdated(app: Any, env: Any, added, changed, removed) -> list[str]:
    return [page for page in getattr(env, "book_stale_pages", []) if page in env.all_docs]


def setup(app: Any) -> dict[str, Any]:
    """Sphinx entry point: runs after myst-nb has set the cache path (priority 600 > 500)."""
    app.connect("builder-inited", _on_builder_inited, priority=600)
    app.connect("env-get-outdated", _on_env_get_outdated)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
