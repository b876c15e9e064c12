"""Real checkpoint shapes through the teacher's and the BERT students' code paths.

Only a random stand-in of rubert-tiny's exact structure (``BertForPreTraining`` with its ``cls.*``
heads and its config) can be built here, so these tests build the shapes readers will load: that
one, a rubert-tiny2-shaped checkpoint (vocabulary 83,828, 2,048 positions) and a checkpoint saved
without its MLM head, and run chapters 3 and 5's functions on them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from helpers import pretraining, pruning, students
from helpers.budgets import StudentBudget
from helpers.checkpoints import MissingHeadError, load_teacher_classifier, load_teacher_mlm
from helpers.classifiers import load_transformers_classifier
from helpers.config import BookConfig
from helpers.data import Splits
from helpers.teacher import finetune_teacher

TINY2_VOCAB = 83_828
TINY2_POSITIONS = 2_048
TOXIC = ["ты идиот", "что за бред, автор дебил", "заткнись уже", "урод ты"]
NORMAL = ["спасибо за статью", "хороший день сегодня", "согласен с вами", "интересная мысль"]


def splits() -> Splits:
    frame = pd.DataFrame({"text": TOXIC + NORMAL, "label": [1] * 4 + [0] * 4})
    return Splits(train=frame, valid=frame.iloc[::-1].reset_index(drop=True), test=frame)


@pytest.fixture(scope="module")
def tiny2_dir(tmp_path_factory: pytest.TempPathFactory, rubert_tokenizer_dir: Path) -> Path:
    """A random checkpoint of rubert-tiny2's shape: rubert-tiny's tokenizer grown to 83,828
    tokens and 2,048 positions, a ``BertForPreTraining`` with its heads."""
    from transformers import AutoConfig, BertForPreTraining, BertTokenizer

    out = tmp_path_factory.mktemp("tiny2")
    vocab = (rubert_tokenizer_dir / "vocab.txt").read_text(encoding="utf-8").splitlines()
    vocab += [f"[unused{i}]" for i in range(TINY2_VOCAB - len(vocab))]
    (out / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = BertTokenizer(vocab=str(out / "vocab.txt"), do_lower_case=False,
                              model_max_length=TINY2_POSITIONS)
    config = AutoConfig.from_pretrained(rubert_tokenizer_dir)
    config.vocab_size, config.max_position_embeddings = TINY2_VOCAB, TINY2_POSITIONS
    torch.manual_seed(0)
    BertForPreTraining(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def test_tiny2_shaped_teacher_fine_tunes(tiny2_dir: Path, tmp_path: Path) -> None:
    config = BookConfig(data=None, teacher=str(tiny2_dir), small=True, root=tmp_path)
    tokenizer, model, history = finetune_teacher(config, splits())
    assert model.config.vocab_size == TINY2_VOCAB == len(tokenizer)
    assert model.config.id2label == {0: "normal", 1: "toxic"} and len(history.epochs) == 1
    saved = json.loads((config.artifact("teacher") / "teacher_info.json").read_text())
    assert 3 <= saved["max_length"] <= TINY2_POSITIONS


@pytest.mark.parametrize("source", ["standin", "tiny2"])
def test_bert_students_of_real_shapes_save_with_their_own_position_limit(
    source: str, standin_teacher_dir: Path, tiny2_dir: Path, tmp_path: Path
) -> None:
    folder = standin_teacher_dir if source == "standin" else tiny2_dir
    teacher_tokenizer, teacher = load_teacher_mlm(str(folder))
    data = splits()
    vocab = pruning.prune_vocabulary(teacher_tokenizer, data.train["text"].tolist() * 6,
                                     tmp_path / "v")
    student = students.make_tiny_student(teacher, vocab, hidden_size=64, num_hidden_layers=1,
                                         num_attention_heads=2, intermediate_size=64)
    assert student.config.max_position_embeddings == 512
    budget = StudentBudget(2, 4, 32, 1e-3, 1, 4, 32, 1e-3)
    loader = pretraining.pretrain_loader(vocab, data.train["text"], budget)
    history = pretraining.pretrain_student(student, loader, vocab, steps=2, lr=1e-3,
                                           recipe=pretraining.ARTICLE_RECIPE, teacher=teacher)
    run = students.train_classifier_head("s", student, history, vocab.tokenizer, data,
                                         tmp_path / "s", max_length=32, batch_size=4, epochs=1,
                                         lr=1e-3)
    loaded = load_transformers_classifier(run.folder / "model")
    assert loaded.tokenizer.model_max_length == 512  # the student's limit, not the teacher's
    assert loaded.model.config.id2label == {0: "normal", 1: "toxic"}
    # A comment longer than any position the student has still gets a probability.
    proba = loaded.predict_proba(["очень " * 3000, "спасибо"])
    assert proba.shape == (2,)
    long_ids = loaded.tokenizer("очень " * 3000, truncation=True)["input_ids"]
    assert len(long_ids) == 512


def test_a_checkpoint_without_its_mlm_head_stops_chapter_five(tmp_path: Path,
                                                              tiny2_dir: Path) -> None:
    # Saved as a classifier: the encoder is there, the MLM head is not.
    tokenizer, classifier = load_teacher_classifier(str(tiny2_dir))
    classifier.save_pretrained(tmp_path / "classifier")
    tokenizer.save_pretrained(tmp_path / "classifier")
    with pytest.raises(MissingHeadError, match=r"no masked-language-model head: cls\.predictions"):
        load_teacher_mlm(str(tmp_path / "classifier"))
    # The real structure (the stand-in has rubert-tiny's heads) loads without complaint.
    load_teacher_mlm(str(tiny2_dir))


def test_the_layer_subset_student_keeps_only_the_positions_the_book_uses(
    tiny2_dir: Path, tmp_path: Path
) -> None:
    from transformers import AutoModelForSequenceClassification

    teacher_tokenizer, teacher = load_teacher_mlm(str(tiny2_dir))
    vocab = pruning.prune_vocabulary(teacher_tokenizer, splits().train["text"].tolist() * 6,
                                     tmp_path / "v")
    student = students.make_layer_subset_student(teacher, vocab, teacher_layers=(0, 2))
    assert student.config.max_position_embeddings == 512
    rows = student.bert.embeddings.position_embeddings.weight
    assert rows.shape == (512, 312)
    torch.testing.assert_close(rows, teacher.bert.embeddings.position_embeddings.weight[:512])
    # The 1,536 positions of rubert-tiny2 beyond 512, 312 wide, are gone.
    full = students.make_layer_subset_student(teacher, vocab, teacher_layers=(0, 2),
                                              max_position_embeddings=TINY2_POSITIONS)
    assert sum(p.numel() for p in full.parameters()) - sum(
        p.numel() for p in student.parameters()) == 479_232
    # Saved and loaded back (as chapter 5's head does), the config and the weights agree.
    student.save_pretrained(tmp_path / "s")
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "s", num_labels=2)
    assert loaded.config.max_position_embeddings == 512
    assert loaded.bert.embeddings.position_embeddings.weight.shape == (512, 312)
