"""The book's own code on its pages: a package function's real source as a highlighted block.

A chapter that explains an idea shows the code that runs it, read from the installed package with
:func:`inspect.getsource`, never a copy that could drift from what the tests check.
:func:`source_listing` returns the text (the whole object, or the lines from one marker to
another, with or without the docstring); :func:`show_source` displays it in a notebook as a Python
code block under a caption naming the function and its file, which the built book renders with
syntax highlighting.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from pathlib import Path
from typing import Any

from IPython.display import Markdown


def _docstring_lines(source: str) -> set[int]:
    """0-based line numbers of the docstring of the (dedented) function or class in ``source``."""
    node = ast.parse(source).body[0]
    body = getattr(node, "body", [])
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        return set(range(body[0].lineno - 1, body[0].end_lineno))
    return set()


def _marker_line(lines: list[str], marker: str, after: int, name: str) -> int:
    """Index of the first line at or after ``after`` that contains ``marker``."""
    for index in range(after, len(lines)):
        if marker in lines[index]:
            return index
    raise ValueError(f"{name}: no line contains {marker!r}")


def _excerpt(obj: Any, start: str | None, stop: str | None, docstring: bool) -> tuple[str, int]:
    """The listing of :func:`source_listing` and the index of its first line in the source."""
    source = textwrap.dedent(inspect.getsource(obj))
    lines = source.splitlines()
    name = getattr(obj, "__qualname__", repr(obj))
    first = _marker_line(lines, start, 0, name) if start else 0
    last = _marker_line(lines, stop, first, name) if stop else len(lines) - 1
    skip = set() if docstring else _docstring_lines(source)
    kept = [line for index, line in enumerate(lines) if first <= index <= last
            and index not in skip]
    return textwrap.dedent("\n".join(kept)) + "\n", first


def source_listing(obj: Any, start: str | None = None, stop: str | None = None,
                   docstring: bool = True) -> str:
    """The source of ``obj`` (function, method or class), dedented, as the package holds it.

    ``start``/``stop`` keep only the lines from the first one containing ``start`` to the first
    one after it containing ``stop`` (both included); ``docstring=False`` drops the docstring.
    Markers, not line numbers, so that a listing follows the code when lines move; a marker that
    no longer occurs raises ``ValueError``.
    """
    return _excerpt(obj, start, stop, docstring)[0]


def _caption(obj: Any, offset: int) -> str:
    """``helpers.module.name``, its file and the line the listing starts at."""
    module = inspect.getmodule(inspect.unwrap(obj))  # a decorated function's own module
    path = Path(inspect.getsourcefile(inspect.unwrap(obj)) or "")
    line = inspect.getsourcelines(obj)[1] + offset
    where = f"src/helpers/{path.name}" if module and module.__name__.startswith("helpers") \
        else path.name
    return f"`{module.__name__ if module else ''}.{obj.__qualname__}` ({where}, line {line})"


def show_source(obj: Any, start: str | None = None, stop: str | None = None,
                docstring: bool = True) -> Markdown:
    """Display :func:`source_listing` of ``obj`` as a highlighted Python block under a caption.

    Use it as a cell's last expression: ``show_source(soft_target_kl)``. The arguments are those
    of :func:`source_listing`; an excerpt says so in its caption, with the line it starts at.
    """
    code, first = _excerpt(obj, start, stop, docstring)
    fence = "````" if "```" in code else "```"
    part = ", excerpt" if start or stop else ""
    return Markdown(f"{_caption(obj, first)}{part}:\n\n{fence}python\n{code}{fence}\n")
