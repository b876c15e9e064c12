"""The settings objects a token model trains with: checked where they are made, built by the
budgets, and one rule for the maximum length."""

from __future__ import annotations

import dataclasses

import pytest
from toy import toy_corpus

from helpers.bpe import train_bpe_tokenizer
from helpers.budgets import bilstm_epochs, bilstm_schedule, distillation_budget
from helpers.config import BookConfig
from helpers.encoding import choose_max_length, max_length_for, token_lengths
from helpers.losses import Recipe, article_loss_fn, kl_loss_fn
from helpers.settings import NetworkSpec, TrainSettings
from helpers.token_models import ARTICLE_BILSTM


@pytest.mark.parametrize(("changes", "field"), [
    ({"patience": 0}, "patience"), ({"patience": 1.5}, "patience"),
    ({"epochs": 0}, "epochs"), ({"batch_size": -1}, "batch_size"),
    ({"max_length": 0}, "max_length"), ({"lr": 0.0}, "lr"), ({"lr": -1e-3}, "lr"),
    ({"lr": float("nan")}, "lr"), ({"min_improvement": -0.1}, "min_improvement"),
    ({"min_improvement": 1.0}, "min_improvement"), ({"seed": -1}, "seed"),
])
def test_train_settings_refuse_bad_values_naming_the_field(changes: dict, field: str) -> None:
    good = TrainSettings(epochs=3, max_length=32)
    with pytest.raises(ValueError, match=rf"^{field} must be .*got {changes[field]!r}"):
        dataclasses.replace(good, **changes)


def test_network_spec_knows_the_networks_and_their_arguments() -> None:
    with pytest.raises(ValueError, match=r"^network must be one of \['bilstm', 'cnn'\], got 'gru'"):
        NetworkSpec("gru")
    with pytest.raises(ValueError, match="cnn size key must be one of .*got 'hidden_size'"):
        NetworkSpec("cnn", {"hidden_size": 8})
    with pytest.raises(ValueError, match="bilstm hidden_size must be an integer >= 1, got 0"):
        NetworkSpec("bilstm", {"hidden_size": 0})
    spec = NetworkSpec("cnn", {"embedding_dim": 8, "num_filters": 4})
    model = spec.build(50)
    assert model.hparams["num_filters"] == 4 and model.hparams["vocab_size"] == 50
    assert spec.with_size(num_filters=6) == NetworkSpec("cnn", {"embedding_dim": 8,
                                                                "num_filters": 6})
    assert ARTICLE_BILSTM.build(50).hparams["hidden_size"] == 256  # the article's defaults


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"alpha": 1.5}, r"^alpha must be in \[0, 1\], got 1.5"),
    ({"alpha": -0.1}, r"^alpha must be in \[0, 1\], got -0.1"),
    ({"loss": "kl", "temperature": 0.0}, r"^temperature \(T\) must be > 0"),
    ({"loss": "kl"}, r"^temperature \(T\) must be > 0 for the KL loss, got None"),
    ({"loss": "mse", "temperature": 2.0}, "^temperature must be None for the MSE loss"),
    ({"loss": "ce"}, "^loss must be 'mse' or 'kl', got 'ce'"),
])
def test_recipe_refuses_bad_values_naming_the_field(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Recipe(**kwargs)


def test_recipe_builds_the_chapter_losses_and_names_itself() -> None:
    import torch

    logits, teacher = torch.tensor([[0.2, -0.1], [1.0, 0.5]]), torch.tensor([[2.0, -2.0],
                                                                            [-1.0, 1.0]])
    batch = {"labels": torch.tensor([0, -1]), "teacher_logits": teacher}
    mse, kl = Recipe("mse", 0.25), Recipe("kl", 0.5, 2.0)
    assert mse.loss_fn()(logits, batch) == article_loss_fn(0.25)(logits, batch)
    assert kl.loss_fn()(logits, batch) == kl_loss_fn(2.0, 0.5)(logits, batch)
    assert (mse.label, kl.label) == ("MSE, alpha=0.25", "KL, T=2, alpha=0.5")
    assert kl.fields() == {"recipe": "KL, T=2, alpha=0.5", "alpha": 0.5, "temperature": 2.0}
    assert mse.fields() == {"recipe": "MSE, alpha=0.25", "alpha": 0.25}
    assert (kl.short, kl.slug, mse.short, mse.slug) == (
        "KL, T=2, a=0.5", "kl_t2_a0.5", "MSE, a=0.25", "mse_a0.25")


def test_one_max_length_rule_explains_chapter_2_and_chapter_4(tmp_path) -> None:
    texts = toy_corpus(200)["text"].tolist()
    tokenizer = train_bpe_tokenizer(texts, vocab_size=200)
    q95 = choose_max_length(token_lengths(tokenizer, texts))
    assert max_length_for(tokenizer, texts) == q95
    assert max_length_for(tokenizer, texts, cap=q95 - 1) == q95 - 1
    for small in (True, False):
        config = BookConfig(data=None, teacher="t", small=small, budget="cpu", root=tmp_path)
        budget = distillation_budget(config)
        schedule = budget.schedule(tokenizer, texts)
        # chapter 4: the same rule under the budget's cap; chapter 2: the rule alone
        assert schedule.max_length == min(q95, budget.length_cap)
        assert (schedule.patience, schedule.min_improvement) == (budget.patience,
                                                                 budget.min_improvement)
        assert bilstm_schedule(config, tokenizer, texts) == TrainSettings(
            epochs=bilstm_epochs(config), max_length=q95)
    full = distillation_budget(BookConfig(data=None, teacher="t", small=False, budget="cpu",
                                          root=tmp_path))
    assert (full.patience, full.min_improvement) == (5, 0.005)
