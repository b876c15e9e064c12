"""The shape of the helpers package: one idea per module, one name per concept."""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import helpers

PACKAGE = Path(helpers.__file__).parent
MODULES = sorted(p for p in PACKAGE.glob("*.py") if p.name != "__init__.py")
MAX_LINES = 400


def top_level_names(path: Path) -> list[str]:
    """Functions and classes a module defines at its top level."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [node.name for node in tree.body
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)]


def test_modules_are_small() -> None:
    sizes = {p.name: len(p.read_text(encoding="utf-8").splitlines()) for p in MODULES}
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}


# Names a protocol fixes: a command's entry point (python -m helpers.X) and a Sphinx extension's.
PROTOCOL_NAMES = {"main", "setup"}


def test_no_name_is_defined_in_two_modules() -> None:
    where = defaultdict(list)
    for path in MODULES:
        for name in top_level_names(path):
            if not name.startswith("_") and name not in PROTOCOL_NAMES:
                where[name].append(path.stem)
    assert {name: mods for name, mods in where.items() if len(mods) > 1} == {}


def test_the_package_map_names_every_module_and_no_grab_bag() -> None:
    described = set(re.findall(r"``(\w+)``", helpers.__doc__))
    modules = {p.stem for p in MODULES}
    assert modules - described == set(), "add each module to the map in helpers/__init__.py"
    assert not modules & {"utils", "util", "misc", "common", "helpers"}
