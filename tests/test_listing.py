"""The listings the chapters show are the package's own source, read at display time."""

from __future__ import annotations

import inspect
import textwrap

import pytest

from helpers.listing import show_source, source_listing
from helpers.losses import soft_target_kl
from helpers.students import copy_layers_from_teacher
from helpers.token_models import BiLSTMClassifier
from helpers.training import fit


def test_a_whole_listing_is_the_source_itself() -> None:
    assert source_listing(soft_target_kl) == inspect.getsource(soft_target_kl)
    method = textwrap.dedent(inspect.getsource(BiLSTMClassifier.forward))
    assert source_listing(BiLSTMClassifier.forward) == method
    assert method.startswith("def forward(")


def test_the_docstring_can_be_left_out_and_nothing_else() -> None:
    full = inspect.getsource(soft_target_kl).splitlines()
    short = source_listing(soft_target_kl, docstring=False).splitlines()
    assert soft_target_kl.__doc__.split("\n")[0] not in "\n".join(short)
    assert '"""' not in "\n".join(short)
    assert short[0] == full[0] and short[-1] == full[-1]
    assert [line for line in full if line in short] == short  # lines kept in order, unchanged
    removed = [line for line in full if line not in short]
    assert removed[0].strip().startswith('"""') and removed[-1].strip().endswith('"""')


def test_an_excerpt_runs_from_one_marker_to_the_next() -> None:
    excerpt = source_listing(fit, start="for batch in train_loader",
                             stop="optimizer_step(").splitlines()
    assert excerpt[0] == "for batch in train_loader:"
    assert "optimizer_step(loss" in excerpt[-1] and len(excerpt) == 3
    body = textwrap.dedent(inspect.getsource(fit))
    assert textwrap.indent("\n".join(excerpt), " " * 8) in body


def test_a_marker_that_is_gone_is_an_error() -> None:
    with pytest.raises(ValueError, match="no line contains"):
        source_listing(fit, start="this line does not exist")


def test_show_source_displays_the_listing_as_a_python_block() -> None:
    shown = show_source(soft_target_kl, docstring=False)
    listing = source_listing(soft_target_kl, docstring=False)
    assert f"```python\n{listing}```" in shown.data
    assert shown.data.startswith("`helpers.losses.soft_target_kl` (src/helpers/losses.py, line ")
    excerpt = show_source(fit, start="for batch in train_loader", stop="count += 1").data
    line = int(excerpt.split(", line ")[1].split(")")[0])
    lines, first = inspect.getsourcelines(fit)
    assert lines[line - first].strip() == "for batch in train_loader:" and "excerpt" in excerpt


def test_a_decorated_function_is_captioned_with_its_own_file() -> None:
    shown = show_source(copy_layers_from_teacher).data
    assert shown.startswith("`helpers.students.copy_layers_from_teacher` (src/helpers/students.py")
    assert "@torch.no_grad()" in shown
