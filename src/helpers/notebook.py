"""A chapter's one setup call: where its artifacts go, what it shows, what it runs on.

Every notebook starts with ``config = setup_book(ARTIFACTS_ON_DRIVE)`` after its install cell
(fastbook's ``setup_book()``): the package's messages are shown one line each
(:func:`helpers.messages.set_verbosity`), a Google Drive folder named in Colab is mounted and holds
the artifacts (Colab gives each notebook a machine of its own, so what chapter 3 saves is gone when
chapter 4 opens), and the line that says which data, mode and teacher the chapter runs on is shown.
"""

from __future__ import annotations

import logging
import os
import sys

from .config import BookConfig, get_config
from .messages import set_verbosity
from .provenance import describe

logger = logging.getLogger(__name__)
DRIVE = "/content/drive"


def use_drive(folder: str) -> None:
    """Keep the book's artifacts in ``folder`` (``BOOK_ARTIFACTS``); in Colab, mount Google Drive
    first when ``folder`` is on it."""
    if "google.colab" in sys.modules and folder.startswith(DRIVE):
        from google.colab import drive  # only in Colab

        drive.mount(DRIVE)
    os.environ["BOOK_ARTIFACTS"] = folder


def setup_book(artifacts_on_drive: str = "", verbosity: str = "info") -> BookConfig:
    """Set a chapter up and return its configuration (:func:`helpers.config.get_config`).

    ``artifacts_on_drive``: a folder (in Colab, e.g. ``/content/drive/MyDrive/distillation-book``)
    that keeps what the chapters save, so that the next chapter finds it; empty: the book's own
    ``artifacts/`` (or ``BOOK_ARTIFACTS``). ``verbosity``: what the package shows
    (:func:`helpers.messages.set_verbosity`; ``"warning"`` hides the one-line run records).
    """
    set_verbosity(verbosity)
    if artifacts_on_drive:
        use_drive(artifacts_on_drive)
    config = get_config()
    logger.info(describe(config))
    return config
