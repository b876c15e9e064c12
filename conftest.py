"""Tests run in small-data mode unless told otherwise, so the notebooks finish in seconds.

The variable is set here, before nbmake starts any kernel, and kernels inherit it.
"""

import os

import pytest

os.environ.setdefault("BOOK_SMALL", "1")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--site", default=None, metavar="DIR",
                     help="check this built book (e.g. _build/html) instead of building one")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the exercises after the notebooks (they load the chapters' artifacts), and the
    rendered-site tests last: building the book reuses the notebooks' artifacts."""
    items.sort(key=lambda item: (item.get_closest_marker("site") is not None,
                                 item.path.name == "test_exercises.py"))
