"""Every chapter's exercises run: the code of each statement and of its answer, in small mode.

The exercises are markdown (the book build does not execute them), so nothing else would notice
an answer that no longer runs. Each chapter's blocks run in one fresh Python process, as a reader
pastes them into a fresh kernel after running the chapter (``conftest.py`` orders these tests
after the notebooks, whose artifacts they load). A block whose first line is
``# not run by the tests: <why>`` is skipped; keep that rare.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
NOT_RUN = "# not run by the tests:"
ITEM = re.compile(r"^(\d+)\. ", re.MULTILINE)
TIME = re.compile(r"^   Time: (under a second|(about \d+(\.\d)?) (s|min)) on the full data",
                  re.MULTILINE)
FENCE = re.compile(r"^( *)```python\n(.*?)^\1```", re.MULTILINE | re.DOTALL)

# Runs in the child process: one namespace per exercise (its statement's blocks, then its
# answer's), so an exercise sees nothing another one defined; prints one JSON line per exercise.
RUNNER = r'''
import json, sys, time, traceback
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
from IPython.display import display

for number, blocks in json.load(open(sys.argv[1], encoding="utf-8")):
    namespace = {"__name__": "__main__", "display": display}
    start, error = time.perf_counter(), None
    for index, code in enumerate(blocks, 1):
        try:
            exec(compile(code, f"<exercise {number}, block {index}>", "exec"), namespace)
        except BaseException:
            error = f"block {index}:\n" + traceback.format_exc(limit=-4)
            break
    plt.close("all")
    print("EXERCISE " + json.dumps({"number": number, "seconds": time.perf_counter() - start,
                                    "error": error}), flush=True)
'''


def exercises_cell(path: Path) -> str:
    notebook = nbformat.read(path, as_version=4)
    cells = [c.source for c in notebook.cells
             if c.cell_type == "markdown" and c.source.startswith("## Exercises")]
    assert len(cells) == 1, f"{path.name}: {len(cells)} Exercises cells"
    return cells[0]


def exercise_items(source: str) -> list[tuple[int, str]]:
    """The numbered items of the Exercises cell: (number, its markdown, answer included)."""
    starts = list(ITEM.finditer(source))
    ends = [m.start() for m in starts[1:]] + [len(source)]
    return [(int(m.group(1)), source[m.start():end]) for m, end in zip(starts, ends, strict=True)]


def python_blocks(item: str) -> list[str]:
    """The fenced python blocks of one item, dedented, in order; skipped ones left out."""
    blocks = [textwrap.dedent(match.group(2)) for match in FENCE.finditer(item)]
    return [code for code in blocks if not code.lstrip().startswith(NOT_RUN)]


def ids(paths: list[Path]) -> list[str]:
    return [p.name for p in paths]


def test_blocks_are_found() -> None:
    item = ("1. **Two.** Text.\n\n   ```python\n   x = 1\n   if x:\n       y = 2\n   ```\n\n"
            "   :::{dropdown} Answer\n   ```python\n   # not run by the tests: a demo\n   z\n   ```"
            "\n   ```python\n   print(y)\n   ```\n   :::\n")
    assert exercise_items(item + item.replace("1.", "2.", 1))[1][0] == 2
    assert python_blocks(item) == ["x = 1\nif x:\n    y = 2\n", "print(y)\n"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids(NOTEBOOKS))
def test_every_exercise_has_code_and_an_answer(path: Path) -> None:
    items = exercise_items(exercises_cell(path))
    assert 3 <= len(items) <= 5, f"{path.name}: {len(items)} exercises"
    assert [n for n, _ in items] == list(range(1, len(items) + 1)), path.name
    for number, item in items:
        assert python_blocks(item), f"{path.name} exercise {number}: no code"
        assert item.count(":::{dropdown} Answer") == 1, f"{path.name} exercise {number}: answer"
        statement = item.split(":::{dropdown}")[0]
        assert "from helpers" in statement, f"{path.name} exercise {number}: no imports"
        assert "record_result" not in item and "forget_chapter" not in item, (
            f"{path.name} exercise {number} would change the chapter's results")
        # What it costs, measured on the full data (each block timed as test_exercises_run runs
        # it, BOOK_SMALL unset), at most about two minutes.
        time = TIME.search(statement)
        assert time, f"{path.name} exercise {number}: no full-data time"
        assert time.group(4) != "min" or float(time.group(2)[6:]) <= 2.5, (
            f"{path.name} exercise {number} takes {time.group(2)}: cut it to about 2 minutes")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids(NOTEBOOKS))
def test_exercises_run(path: Path, tmp_path: Path) -> None:
    items = [(n, python_blocks(item)) for n, item in exercise_items(exercises_cell(path))]
    spec = tmp_path / "blocks.json"
    spec.write_text(json.dumps(items), encoding="utf-8")
    env = {**os.environ, "BOOK_SMALL": os.environ.get("BOOK_SMALL", "1"), "MPLBACKEND": "Agg"}
    done = subprocess.run([sys.executable, "-c", RUNNER, str(spec)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=1200)
    reports = [json.loads(line.removeprefix("EXERCISE ")) for line in done.stdout.splitlines()
               if line.startswith("EXERCISE ")]
    assert done.returncode == 0 and len(reports) == len(items), (
        f"{path.name}: the runner stopped (rc {done.returncode}):\n{done.stderr[-3000:]}")
    for report in reports:
        print(f"{path.name} exercise {report['number']}: {report['seconds']:.1f} s")
    failed = [f"{path.name} exercise {r['number']} failed, {r['error']}"
              for r in reports if r["error"]]
    assert not failed, "\n".join(failed)
