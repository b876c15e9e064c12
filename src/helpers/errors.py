"""Errors a reader can act on, and how the package's commands report them.

A :class:`UserError` is a mistake in what the reader asked for (a missing file, a wrong column, a
folder that cannot be written): its message says what is wrong and what to do. The commands
(``python -m helpers.pipeline``, ``helpers.predict``, ``helpers.standin``, ``helpers.diagrams``)
run through :func:`run_command`, which prints such an error as one line on standard error and
exits with status 2; the traceback, useful only to a developer, comes with ``--debug``. Any other
exception is a bug and keeps its traceback.

Imports nothing heavy: :mod:`helpers.predict` uses it on servers without PyTorch.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

EXIT_USER_ERROR = 2


class UserError(Exception):
    """A mistake in the reader's input; the message says what is wrong and what to do."""


class OutputPathError(UserError, ValueError):
    """A place to write to that cannot be used (a file, the book's own artifacts, read-only)."""


def one_line(error: BaseException) -> str:
    """The error's message on one line (its own line breaks become spaces)."""
    return " ".join(str(error).split())


def add_debug_flag(parser: argparse.ArgumentParser) -> None:
    """``--debug``: show the full traceback of an error instead of its one-line message."""
    parser.add_argument("--debug", action="store_true",
                        help="on an error, show the full traceback instead of one line")


def run_command(main: Callable[[Sequence[str]], object], argv: Sequence[str] | None = None,
                prog: str = "helpers") -> int:
    """Run a command's ``main(argv)``; a :class:`UserError` becomes ``error: MESSAGE`` on stderr
    and exit status 2, unless ``--debug`` is among the arguments (then it is raised as it is).
    Returns ``main``'s status (an int), else 0."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        status = main(argv)
    except UserError as error:
        if "--debug" in argv:
            raise
        print(f"{prog}: error: {one_line(error)}", file=sys.stderr)
        return EXIT_USER_ERROR
    return status if isinstance(status, int) else 0


def check_writable_dir(folder: str | Path, what: str = "output folder") -> Path:
    """``folder`` resolved, if it is (or can be made) a folder this process can write into.

    Checked before any work starts, so that a run does not fail at its end: no part of the path
    may be a file, and the deepest existing folder must be writable. Nothing is created here.
    """
    path = Path(folder).expanduser().resolve()
    for place in (path, *path.parents):
        if not place.exists():
            continue
        if not place.is_dir():
            where = "" if place == path else f" (part of {path})"
            raise OutputPathError(
                f"the {what} {place}{where} is a file, not a folder; name a folder (new or "
                "existing) instead")
        if not os.access(place, os.W_OK | os.X_OK):
            raise OutputPathError(
                f"cannot write into {place}, so the {what} {path} cannot be made there; choose "
                "a folder you can write to")
        break
    return path
