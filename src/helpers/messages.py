"""What the package tells its reader, and how much of it a notebook or script shows.

Every module logs to its own logger (``logging.getLogger(__name__)``), all under the package's
logger ``helpers``; none prints, except the command-line entry points. :func:`set_verbosity`
chooses what is shown:

* ``"info"`` (what the chapters use): what was loaded, reused or computed, and one line per
  training run (epochs run, kept epoch and its validation F1, what stopped it, wall time);
* ``"warning"``: only what may be wrong; ``"error"``: errors only;
* ``"debug"``: everything, e.g. every epoch's loss and validation figures.

The lines go to standard output, one message a line, so a notebook shows them as it shows printed
lines (the book's build drops standard error, where the progress bars go). Without
:func:`set_verbosity`, Python's default applies: warnings and errors on standard error, nothing
else. The full per-epoch figures of a run are always in its history (``History.to_frame()``).
"""

from __future__ import annotations

import logging
import sys

PACKAGE_LOGGER = "helpers"
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
          "error": logging.ERROR}


class _StdoutHandler(logging.StreamHandler):
    """A handler writing to whatever ``sys.stdout`` is when a message comes (a notebook
    kernel's, a test's capture), not to the stream that was current when it was made."""

    @property
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, value) -> None:
        """``StreamHandler.__init__`` assigns a stream; this handler always follows stdout."""


def set_verbosity(level: str | int = "info") -> logging.Logger:
    """Show the package's messages of ``level`` and above on standard output, one per line.

    ``level`` is ``"debug"``, ``"info"``, ``"warning"`` or ``"error"`` (or a ``logging`` level
    number). Calling it again only changes the level: the handler is added once. Returns the
    package's logger, e.g. to add a handler that also writes to a file.
    """
    if isinstance(level, str):
        if level.lower() not in LEVELS:
            raise ValueError(f"level must be one of {list(LEVELS)}, not {level!r}")
        level = LEVELS[level.lower()]
    logger = logging.getLogger(PACKAGE_LOGGER)
    logger.setLevel(level)
    if not any(isinstance(handler, _StdoutHandler) for handler in logger.handlers):
        handler = _StdoutHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    return logger
