"""The code the chapters write out by hand is the package's code: each test reads a tagged cell's
source from its notebook, runs it on toy data, and compares with the package on the same data."""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from toy import tiny_bert_tokenizer, tiny_config, toy_corpus, toy_splits
from transformers import BertConfig, BertForMaskedLM

from helpers import pretraining, pruning, students
from helpers.batching import predict_logits
from helpers.bpe import train_bpe_tokenizer
from helpers.budgets import distillation_budget, student_budget
from helpers.config import SEED
from helpers.distill import train_token_student
from helpers.losses import article_loss_fn, kl_loss_fn
from helpers.settings import NetworkSpec
from helpers.token_models import load_token_model

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def tagged_cell(notebook: str, tag: str) -> str:
    """The source of the one code cell of ``notebook`` tagged ``tag``."""
    cells = json.loads((NOTEBOOKS / notebook).read_text(encoding="utf-8"))["cells"]
    found = [cell for cell in cells if tag in cell.get("metadata", {}).get("tags", [])]
    assert len(found) == 1, f"{notebook}: {len(found)} cells tagged {tag!r}"
    source = found[0]["source"]
    return "".join(source) if isinstance(source, list) else source


@pytest.fixture(scope="module")
def chapter4(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """What chapter 4's written-out loop reads, at toy size: splits, BPE tokenizer, cached
    teacher logits and the chapter's budget with a tiny CNN."""
    config = tiny_config(tmp_path_factory.mktemp("artifacts"))
    splits = toy_splits()
    rng = np.random.default_rng(0)
    budget = dataclasses.replace(distillation_budget(config),
                                 cnn=NetworkSpec("cnn", {"embedding_dim": 16, "num_filters": 8}))
    tokenizer = train_bpe_tokenizer(toy_corpus()["text"], vocab_size=300)
    schedule = dataclasses.replace(budget.schedule(tokenizer, splits.train["text"]),
                                   batch_size=16, max_length=24)
    return {"config": config, "splits": splits, "budget": budget, "schedule": schedule,
            "SEED": SEED, "tokenizer": tokenizer,
            "teacher_logits": {"train": rng.normal(size=(len(splits.train), 2)) * 3}}


def run_written_loop(chapter4: dict, source: str) -> dict:
    namespace = dict(chapter4)
    exec(compile(source, "written-out-loop", "exec"), namespace)  # noqa: S102 - the page's code
    return namespace


def package_run(chapter4: dict, loss_fn, epochs: int, name: str):
    return train_token_student(chapter4["config"], chapter4["splits"], chapter4["tokenizer"],
                               loss_fn, chapter4["teacher_logits"]["train"], name=name,
                               label=name, network=chapter4["budget"].cnn,
                               schedule=dataclasses.replace(chapter4["schedule"], epochs=epochs),
                               device="cpu")


def assert_same_run(written: dict, run) -> None:
    """Validation F1 of every epoch, and the logits of the epoch the package kept."""
    assert written["written_f1"] == [row["valid_f1"] for row in run.history.epochs]
    kept = run.history.best_epoch
    model = load_token_model(run.folder)[0]  # the kept weights, as the package saved them
    package = torch.from_numpy(predict_logits(model, written["valid_loader"]))
    torch.testing.assert_close(written["written_logits"][kept - 1], package, rtol=0, atol=1e-6)


CELL4 = ("04_distill_bilstm.ipynb", "written-out-loop")


def test_chapter4_written_out_loop_is_the_package_mse(chapter4: dict) -> None:
    """The article's loss at alpha 0.5 with the chapter's seed: what train_token_student does."""
    written = run_written_loop(chapter4, tagged_cell(*CELL4))
    run = package_run(chapter4, article_loss_fn(0.5), written["EPOCHS"], "written_mse")
    assert_same_run(written, run)


def test_chapter4_written_out_loop_is_the_package_kl(chapter4: dict) -> None:
    """The cell's other loss, KL at T = 2 with the T**2 factor: kl_loss_fn(2.0, 0.5)."""
    source, count = re.subn(r'^(EPOCHS, LOSS, ALPHA, T = \d+, )"mse"', r'\1"kl"',
                            tagged_cell(*CELL4), flags=re.M)
    assert count == 1, "the cell's settings line has changed"
    written = run_written_loop(chapter4, source)
    run = package_run(chapter4, kl_loss_fn(2.0, 0.5), written["EPOCHS"], "written_kl")
    assert_same_run(written, run)


@pytest.fixture(scope="module")
def chapter5(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """What chapter 5's written-out step reads, at toy size: a 2-layer teacher BERT with its MLM
    head over a toy WordPiece vocabulary, the pruned vocabulary, a tiny student initialised
    from the teacher, the chapter's small budget and the toy splits."""
    folder = tmp_path_factory.mktemp("chapter5")
    teacher_tokenizer = tiny_bert_tokenizer(folder / "teacher")
    torch.manual_seed(0)
    teacher = BertForMaskedLM(BertConfig(
        vocab_size=len(teacher_tokenizer), hidden_size=32, num_hidden_layers=2,
        num_attention_heads=2, intermediate_size=48, max_position_embeddings=64)).eval()
    splits = toy_splits()
    vocab = pruning.prune_vocabulary(teacher_tokenizer, splits.train["text"], folder / "vocab",
                                     min_count=1)
    tiny = students.make_tiny_student(teacher, vocab, hidden_size=16, num_hidden_layers=1,
                                      num_attention_heads=2, intermediate_size=16,
                                      max_position_embeddings=64)
    return {"vocab": vocab, "tiny": tiny, "teacher_mlm": teacher, "splits": splits,
            "budget": student_budget(tiny_config(folder)), "pretraining": pretraining}


CELL5 = ("05_distill_tiny_bert.ipynb", "written-out-step")


def package_step(chapter5: dict) -> tuple[dict[str, float], BertForMaskedLM]:
    """One step of pretrain_student with the article's recipe on a copy of the student."""
    student = copy.deepcopy(chapter5["tiny"])
    loader = pretraining.pretrain_loader(chapter5["vocab"], chapter5["splits"].train["text"],
                                         chapter5["budget"])
    history = pretraining.pretrain_student(
        student, loader, chapter5["vocab"], steps=1, lr=chapter5["budget"].pretrain_lr,
        log_every=1, recipe=pretraining.ARTICLE_RECIPE, teacher=chapter5["teacher_mlm"],
        device="cpu")
    return history.steps[0], student


def test_chapter5_written_out_step_is_the_package_step(chapter5: dict) -> None:
    """Same mask, same three losses and sum, same weights after the step as pretrain_student
    (which masks with mask_tokens and computes pretraining_losses)."""
    before = copy.deepcopy(chapter5["tiny"].state_dict())
    written = run_written_loop(chapter5, tagged_cell(*CELL5))
    assert all(torch.equal(before[k], v) for k, v in chapter5["tiny"].state_dict().items())
    losses, student = package_step(chapter5)
    vocab = chapter5["vocab"]
    special, regular = pretraining.special_and_regular_ids(vocab)
    masked, labels = pretraining.mask_tokens(written["ids"], special, vocab.tokenizer.mask_token_id,
                                             regular, generator=torch.Generator().manual_seed(SEED))
    assert torch.equal(written["masked"], masked) and torch.equal(written["labels"], labels)
    computed = {**{k: v.item() for k, v in written["written_losses"].items()},
                "loss": written["loss"].item()}
    assert set(computed) == {"mlm", "kl", "cls", "loss"}
    for name, value in computed.items():
        assert value == pytest.approx(losses[name], rel=1e-5, abs=1e-6), name
    for mine, theirs in zip(written["student"].parameters(), student.parameters(), strict=True):
        torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-6)
