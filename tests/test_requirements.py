"""The two lists of dependencies agree: requirements.txt pins what the book is tested with,
pyproject.toml gives the ranges a plain ``pip install .`` (Colab) accepts, and the Python versions
the documents state are the ones both allow."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]


def pins(text: str) -> dict[str, Version]:
    """``name==version`` lines of a requirements file, comments and blank lines ignored."""
    found: dict[str, Version] = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        requirement = Requirement(line)
        (spec,) = requirement.specifier  # exactly one specifier per line ...
        assert spec.operator == "==", f"requirements.txt must pin exactly: {line!r}"  # ... a pin
        name = canonicalize_name(requirement.name)
        assert name not in found, f"{name} is pinned twice"
        found[name] = Version(spec.version)
    return found


def ranges(project: dict) -> dict[str, SpecifierSet]:
    """Every dependency of pyproject.toml (required and optional) with its range."""
    listed = list(project["dependencies"])
    for group in project.get("optional-dependencies", {}).values():
        listed += group
    found: dict[str, SpecifierSet] = {}
    for line in listed:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name not in found, f"{name} is listed twice in pyproject.toml"
        found[name] = requirement.specifier
    return found


PINS = pins((ROOT / "requirements.txt").read_text(encoding="utf-8"))
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
RANGES = ranges(PROJECT)


def test_requirements_txt_pins_every_line() -> None:
    """Every requirement line of the real file is one exact pin (``pins`` raises otherwise)."""
    lines = [line.split("#", 1)[0].strip()
             for line in (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines()]
    lines = [line for line in lines if line]
    assert len(PINS) == len(lines) and len(lines) >= 10


def test_versions_the_documents_name_are_the_pins() -> None:
    """A command in README.md or setup.md that installs ``name==version`` (the CPU torch, the
    server's onnxruntime, tokenizers and numpy) installs what requirements.txt pins."""
    named = 0
    for doc in (ROOT / "README.md", ROOT / "book" / "setup.md"):
        for name, version in re.findall(r"([A-Za-z][\w.-]*)==(\d[\w.]*)",
                                        doc.read_text(encoding="utf-8")):
            assert PINS.get(canonicalize_name(name)) == Version(version), (
                f"{doc.name} installs {name}=={version}, requirements.txt pins "
                f"{PINS.get(canonicalize_name(name))}")
            named += 1
    assert named >= 4  # torch in both documents, the server's three packages


def test_every_dependency_is_in_both_files() -> None:
    assert set(PINS) - set(RANGES) == set(), "pinned but not in pyproject.toml"
    assert set(RANGES) - set(PINS) == set(), "in pyproject.toml but not pinned"
    # The runtime packages the notebooks import are required, not optional.
    required = {canonicalize_name(Requirement(r).name) for r in PROJECT["dependencies"]}
    assert {"torch", "transformers", "pandas", "numpy", "scikit-learn", "onnxruntime"} <= required
    # Jupyter to open the notebooks, ipywidgets for tqdm's bars: installed by the set-up command.
    assert {"jupyterlab", "ipywidgets", "ipykernel", "jupyter-book"} <= set(PINS)


def test_every_pin_lies_inside_pyproject_bounds() -> None:
    outside = {name: f"{version} not in {RANGES[name]}" for name, version in PINS.items()
               if name in RANGES and not RANGES[name].contains(version, prereleases=True)}
    assert outside == {}


def test_every_runtime_range_is_bounded_below() -> None:
    """A bare name would let pip pick any old release, a combination nothing ever ran."""
    for line in PROJECT["dependencies"]:
        requirement = Requirement(line)
        assert any(spec.operator in (">=", "==", "~=") for spec in requirement.specifier), line


def stated_python(text: str) -> str:
    """The Python versions a document states, e.g. ``3.11 to 3.14``."""
    found = re.search(r"Python (3\.\d+) to (3\.\d+)", text)
    assert found, "the document does not say which Python versions work"
    return f"{found[1]} to {found[2]}"


def test_python_versions_agree_everywhere() -> None:
    requires = SpecifierSet(PROJECT["requires-python"])
    readme = stated_python((ROOT / "README.md").read_text(encoding="utf-8"))
    setup = stated_python((ROOT / "book" / "setup.md").read_text(encoding="utf-8"))
    assert readme == setup
    low, high = (Version(v) for v in readme.split(" to "))
    assert str(requires) == f">={low}", "requires-python and the documents disagree"
    assert Version("3.10") not in requires  # transformers 5 and pandas 3 have no 3.10 release
    assert high >= low and Version(f"{sys.version_info.major}.{sys.version_info.minor}") in requires
    ruff = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["ruff"]
    assert ruff["target-version"] == f"py{low.major}{low.minor}"
