"""Chapter 4's runs: one student per recipe, the recipe chosen on validation, runs over seeds in
parallel processes giving what one process gives, and the per-seed paired interval."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from toy import tiny_config, toy_splits

from helpers import distill
from helpers.bpe import train_bpe_tokenizer
from helpers.losses import Recipe
from helpers.settings import NetworkSpec, TrainSettings
from helpers.uncertainty import seed_differences, seed_differences_table

CNN = NetworkSpec("cnn", {"embedding_dim": 8, "num_filters": 4})


@pytest.fixture(scope="module")
def toy():
    splits = toy_splits()
    tokenizer = train_bpe_tokenizer(splits.train["text"], vocab_size=300)
    labels = splits.train["label"].to_numpy()[:, None]
    teacher_logits = np.where(labels == 1, [-2.0, 2.0], [2.0, -2.0]).astype(np.float32)
    return splits, tokenizer, teacher_logits


def schedule(seed: int) -> TrainSettings:
    return TrainSettings(epochs=2, max_length=24, seed=seed)


def test_each_student_keeps_the_recipe_that_wins_on_its_validation(toy, tmp_path: Path) -> None:
    splits, tokenizer, teacher_logits = toy
    recipes = [Recipe("mse", 0.5), Recipe("kl", 0.5, 2.0)]
    runs = distill.train_recipes(tiny_config(tmp_path), splits, tokenizer, recipes,
                                 teacher_logits, name="cnn", label="CNN", schedule=schedule(0),
                                 network=CNN, workers=1)
    assert [run.name for run in runs.values()] == ["cnn_mse_a0.5", "cnn_kl_t2_a0.5"]
    assert [run.label for run in runs.values()] == ["CNN, MSE, alpha=0.5",
                                                     "CNN, KL, T=2, alpha=0.5"]
    chosen = distill.chosen_recipe(runs)
    assert runs[chosen].valid_f1 == max(run.valid_f1 for run in runs.values())
    # whichever validation F1 is higher decides, never the test F1
    fake = {r: distill.StudentRun(label=r.label, name=r.slug, history=runs[r].history,
                                  test={"f1": 1.0 - i}, test_proba=np.zeros(1), seconds=0.0,
                                  params=0, size_mb=0.0, train_rows=0, folder=tmp_path)
            for i, r in enumerate(recipes)}
    fake[recipes[0]].history = distill.History(epochs=[{"valid_f1": 0.4}], best_epoch=1)
    fake[recipes[1]].history = distill.History(epochs=[{"valid_f1": 0.6}], best_epoch=1)
    assert distill.chosen_recipe(fake) == recipes[1]
    with pytest.raises(ValueError, match="repeat"):
        distill.train_recipes(tiny_config(tmp_path), splits, tokenizer, recipes * 2,
                              teacher_logits, name="x", label="x", schedule=schedule(0),
                              network=CNN)


def test_runs_in_parallel_processes_equal_runs_in_this_one(toy, tmp_path: Path) -> None:
    splits, tokenizer, teacher_logits = toy
    specs = [distill.RunSpec(f"{kind}_seed{seed}", kind, schedule(seed), CNN,
                             None if kind == "twin" else Recipe("kl", 0.5, 2.0))
             for seed in (1, 2) for kind in ("twin", "student")]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the workers' one thread, so that the sums add up alike
    try:
        here = distill.train_runs(tiny_config(tmp_path / "here"), splits, tokenizer, specs,
                                  teacher_logits, workers=1)
    finally:
        torch.set_num_threads(threads)
    there = distill.train_runs(tiny_config(tmp_path / "there"), splits, tokenizer, specs,
                               teacher_logits, workers=2)
    assert [run.name for run in there] == [spec.name for spec in specs]
    for a, b in zip(here, there, strict=True):
        np.testing.assert_array_equal(a.test_proba, b.test_proba)
        assert a.history.epochs[-1]["steps"] == b.history.steps_run > 0
    # different seeds, different runs
    assert not np.array_equal(here[0].test_proba, here[2].test_proba)
    with pytest.raises(ValueError, match="teacher's logits"):
        distill.train_runs(tiny_config(tmp_path), splits, tokenizer, specs, None, workers=1)
    with pytest.raises(ValueError, match="own name"):
        distill.train_runs(tiny_config(tmp_path), splits, tokenizer, specs[:1] * 2,
                           teacher_logits, workers=1)


def test_seed_differences_are_paired_with_a_t_interval() -> None:
    twin = {1: 0.70, 2: 0.72, 3: 0.71, 4: 0.69, 5: 0.73}
    student = {1: 0.72, 2: 0.75, 3: 0.72, 4: 0.71, 5: 0.76}
    d = seed_differences(twin, student)
    diffs = np.array([0.02, 0.03, 0.01, 0.02, 0.03])
    assert d.mean == pytest.approx(diffs.mean()) and d.sd == pytest.approx(diffs.std(ddof=1))
    # t(4) at 97.5% is 2.776
    assert d.high - d.mean == pytest.approx(2.7764 * diffs.std(ddof=1) / np.sqrt(5), rel=1e-4)
    assert d.excludes_zero and str(d).startswith("+0.022 [")
    table = seed_differences_table({"CNN": (twin, student), "none": (twin, twin)})
    assert table.loc["CNN", "seeds"] == 5 and table.loc["CNN", "real"]
    assert not table.loc["none", "real"]
    with pytest.raises(ValueError, match="same ones"):
        seed_differences(twin, {**student, 6: 0.8})
    with pytest.raises(ValueError, match="at least 3"):
        seed_differences({1: 0.7, 2: 0.7}, {1: 0.8, 2: 0.8})


def test_pairs_repeated_over_seeds_give_paired_scores(toy, tmp_path: Path) -> None:
    splits, tokenizer, teacher_logits = toy
    config, recipe = tiny_config(tmp_path), Recipe("mse", 0.5)
    twin = distill.train_token_student(config, splits, tokenizer, distill.cross_entropy_loss,
                                       None, name="twin", label="twin", schedule=schedule(0),
                                       network=CNN)
    student = distill.train_token_student(config, splits, tokenizer, recipe.loss_fn(),
                                          teacher_logits, name="student", label="student",
                                          schedule=schedule(0), network=CNN)
    pair = distill.Pair("CNN", CNN, recipe, twin, student)
    repeats = distill.repeat_pairs(config, splits, tokenizer, teacher_logits, [pair],
                                   schedule(0), (0, 1, 2), workers=1)
    assert [run.name for run in repeats.runs] == [
        "cnn_twin_seed1", "cnn_mse_a0.5_seed1", "cnn_twin_seed2", "cnn_mse_a0.5_seed2"]
    assert repeats.scores["CNN"]["twin"][0] == twin.test["f1"]
    assert repeats.scores["CNN"]["student"][2] == repeats.runs[3].test["f1"]
    table = repeats.table()
    assert list(table.index) == [0, 1, 2] and "CNN student - twin" in table
    assert repeats.workers == 1
    differences = repeats.differences()
    assert differences.loc["CNN: twin → student", "seeds"] == 3
    with pytest.raises(ValueError, match="must include the schedule's seed"):
        distill.repeat_pairs(config, splits, tokenizer, teacher_logits, [pair], schedule(0),
                             (1, 2, 3), workers=1)
