"""Tests run in small-data mode unless told otherwise, so the notebooks finish in seconds.

The variable is set here, before nbmake starts any kernel, and kernels inherit it.
"""

import os

os.environ.setdefault("BOOK_SMALL", "1")
