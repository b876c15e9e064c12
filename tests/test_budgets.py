"""Budget presets: the CPU preset for a laptop, the GPU preset when CUDA is there or asked for."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from helpers.budgets import (
    bilstm_epochs,
    budget_preset,
    crossfit_folds,
    distillation_budget,
    preset_table,
    student_budget,
    teacher_epochs,
)
from helpers.config import get_config
from helpers.provenance import describe


def config_for(tmp_path: Path, **env: str):
    return get_config(env, root=tmp_path)


def test_book_budget_is_read_and_checked(tmp_path: Path) -> None:
    assert config_for(tmp_path).budget == "auto"
    assert config_for(tmp_path, BOOK_BUDGET="GPU").budget == "gpu"
    with pytest.raises(ValueError, match="BOOK_BUDGET must be one of"):
        config_for(tmp_path, BOOK_BUDGET="tpu")


def test_auto_picks_the_gpu_preset_only_with_cuda(tmp_path: Path, monkeypatch) -> None:
    config = config_for(tmp_path)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert budget_preset(config) == "cpu"
    assert "CPU budget" in describe(config)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert budget_preset(config) == "gpu"
    assert budget_preset(config_for(tmp_path, BOOK_BUDGET="cpu")) == "cpu"  # overridden


def test_the_gpu_preset_trains_longer_and_small_mode_stays_small(tmp_path: Path) -> None:
    cpu, gpu = config_for(tmp_path, BOOK_BUDGET="cpu"), config_for(tmp_path, BOOK_BUDGET="gpu")
    assert teacher_epochs(gpu) > teacher_epochs(cpu) and bilstm_epochs(gpu) > bilstm_epochs(cpu)
    assert student_budget(gpu).pretrain_steps > student_budget(cpu).pretrain_steps
    g, c = distillation_budget(gpu), distillation_budget(cpu)
    assert g.epochs > c.epochs and g.n_per_text > c.n_per_text
    assert len(g.temperatures) > len(c.temperatures)
    # the main pairs' seeds: five on both presets, three (never fewer) in small-data mode
    assert len(g.seeds) >= len(c.seeds) >= 5 and len(set(c.seeds)) == len(c.seeds)
    assert crossfit_folds(gpu) > crossfit_folds(cpu) == 2
    assert g.bilstm.size["hidden_size"] == 256  # the article's BiLSTM
    small = config_for(tmp_path, BOOK_BUDGET="gpu", BOOK_SMALL="1")
    assert teacher_epochs(small) == 1 and distillation_budget(small).epochs == 2
    assert len(distillation_budget(small).seeds) == 3 and crossfit_folds(small) == 2


def test_readme_states_both_presets_as_the_budgets_define_them(tmp_path: Path) -> None:
    table = preset_table(config_for(tmp_path, BOOK_BUDGET="cpu"),
                         config_for(tmp_path, BOOK_BUDGET="gpu"))
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert table in readme, f"README.md must show the presets as helpers.budgets has them:\n{table}"
    assert "| 5: pretraining step cap / batch | 2,000 / 32 | 6,000 / 64 |" in table
