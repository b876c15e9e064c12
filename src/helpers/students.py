"""BERT students: a tiny BERT over the pruned vocabulary, a DistilBERT-style layer subset, the same
architectures without a teacher, and the classification head trained on top of each.

Sources:

* The tiny-BERT recipe follows David Dale (2021), "Маленький и быстрый BERT для русского языка"
  (Habr), the article behind ``cointegrated/rubert-tiny``: prune the teacher's vocabulary to the
  tokens of the corpus (:mod:`helpers.pruning`), initialise the student's embeddings from the
  teacher's, then pretrain (:mod:`helpers.pretraining`).
* The layer-subset student follows Sanh et al. (2019), "DistilBERT, a distilled version of BERT":
  the student keeps some of the teacher's layers and their weights.

The modules used are ``transformers``' ``BertForMaskedLM`` (``.bert`` encoder and ``.cls`` MLM
head) and ``BertForSequenceClassification``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader
from transformers import (
    AutoModelForSequenceClassification,
    BertConfig,
    BertForMaskedLM,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from .batching import EncodedDataset, logits_to_proba, make_loader, predict_logits
from .benchmark import count_parameters, size_on_disk_mb
from .checkpoints import LABELS, quiet_transformers
from .config import SEED
from .data import Splits
from .encoding import MAX_LENGTH_CAP, encode_texts
from .evaluation import evaluate
from .losses import LossFn, cross_entropy_loss
from .pretraining import DISTILBERT_LAYERS
from .pretraining_history import PretrainHistory
from .pruning import PrunedVocab
from .training import History, fit, set_seed


def tiny_bert_config(vocab: PrunedVocab, hidden_size: int = 256, num_hidden_layers: int = 3,
                     num_attention_heads: int = 8, intermediate_size: int = 256,
                     max_position_embeddings: int = 512) -> BertConfig:
    """The source article's student: 3 layers of width 256 (8 heads, feed-forward 256)."""
    return BertConfig(
        vocab_size=vocab.size, hidden_size=hidden_size, num_hidden_layers=num_hidden_layers,
        num_attention_heads=num_attention_heads, intermediate_size=intermediate_size,
        max_position_embeddings=max_position_embeddings,
        pad_token_id=vocab.tokenizer.pad_token_id,
    )


@torch.no_grad()
def copy_embeddings_from_teacher(student: BertForMaskedLM, teacher: BertForMaskedLM,
                                 kept_ids: torch.Tensor) -> None:
    """Initialise the student's embeddings and MLM head from the teacher's, by slicing.

    The source article's trick: word embeddings are the teacher's rows of the kept tokens and
    their first ``hidden`` columns (``teacher_weight[kept_ids, :hidden]``); position and token-type
    embeddings, LayerNorms and the head's transform take the first ``hidden`` entries; the output
    bias takes the kept rows. The output embeddings are tied to the word embeddings, so they follow.
    A student as wide as the teacher gets exact copies.
    """
    s, t = student.state_dict(), teacher.state_dict()
    h = student.config.hidden_size
    if h > teacher.config.hidden_size:
        raise ValueError(f"student width {h} exceeds the teacher's {teacher.config.hidden_size}")
    positions = student.config.max_position_embeddings
    if positions > teacher.config.max_position_embeddings:
        raise ValueError(f"student has {positions} positions, the teacher only "
                         f"{teacher.config.max_position_embeddings}")
    sliced = {
        "bert.embeddings.word_embeddings.weight": t[
            "bert.embeddings.word_embeddings.weight"][kept_ids, :h],
        "bert.embeddings.position_embeddings.weight": t[
            "bert.embeddings.position_embeddings.weight"][:positions, :h],
        "bert.embeddings.token_type_embeddings.weight": t[
            "bert.embeddings.token_type_embeddings.weight"][:, :h],
        "cls.predictions.transform.dense.weight": t[
            "cls.predictions.transform.dense.weight"][:h, :h],
        "cls.predictions.bias": t["cls.predictions.bias"][kept_ids],
    }
    for name in ("bert.embeddings.LayerNorm.weight", "bert.embeddings.LayerNorm.bias",
                 "cls.predictions.transform.dense.bias",
                 "cls.predictions.transform.LayerNorm.weight",
                 "cls.predictions.transform.LayerNorm.bias"):
        sliced[name] = t[name][:h]
    for name, value in sliced.items():
        s[name].copy_(value)
    student.tie_weights()


@torch.no_grad()
def copy_layers_from_teacher(student: BertForMaskedLM, teacher: BertForMaskedLM,
                             teacher_layers: Sequence[int]) -> None:
    """Student layer ``i`` becomes a copy of teacher layer ``teacher_layers[i]``
    (DistilBERT)."""
    for target, source in zip(student.bert.encoder.layer, teacher_layers, strict=True):
        target.load_state_dict(teacher.bert.encoder.layer[source].state_dict())


def make_tiny_student(teacher: BertForMaskedLM, vocab: PrunedVocab, from_teacher: bool = True,
                      seed: int = SEED, **config_kwargs: int) -> BertForMaskedLM:
    """The article's tiny BERT over the pruned vocabulary; embeddings from the teacher or random.

    The encoder layers are always random: they are narrower than the teacher's (256 vs 312 wide,
    8 vs 12 heads), so the article does not slice them.
    """
    set_seed(seed)
    student = BertForMaskedLM(tiny_bert_config(vocab, **config_kwargs))
    if from_teacher:
        copy_embeddings_from_teacher(student, teacher, vocab.kept_ids)
    return student


def make_layer_subset_student(teacher: BertForMaskedLM, vocab: PrunedVocab,
                              teacher_layers: Sequence[int] = DISTILBERT_LAYERS,
                              from_teacher: bool = True,
                              seed: int = SEED,
                              max_position_embeddings: int = MAX_LENGTH_CAP) -> BertForMaskedLM:
    """A DistilBERT-style student: the teacher's width, ``len(teacher_layers)`` layers.

    With ``from_teacher`` its layers are copies of ``teacher_layers`` and its embeddings and MLM
    head the teacher's (rows of the pruned vocabulary); otherwise all is random. Its positions stop
    at ``max_position_embeddings`` (the book never feeds a text longer than
    :data:`helpers.encoding.MAX_LENGTH_CAP` tokens), or at the teacher's if it has fewer: a
    rubert-tiny2 teacher's 2,048 positions would add 1,536 unused rows (479,232 parameters).
    """
    set_seed(seed)
    positions = min(max_position_embeddings, teacher.config.max_position_embeddings)
    config = BertConfig(**{**teacher.config.to_dict(), "vocab_size": vocab.size,
                           "num_hidden_layers": len(teacher_layers),
                           "max_position_embeddings": positions})
    student = BertForMaskedLM(config)
    if from_teacher:
        copy_embeddings_from_teacher(student, teacher, vocab.kept_ids)
        copy_layers_from_teacher(student, teacher, teacher_layers)
    return student


# --------------------------------------------------------------------------- classification head


@dataclass
class BertStudentRun:
    """A trained BERT student: where it is saved and what it cost."""

    name: str
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    folder: Path
    pretrain: PretrainHistory
    head: History
    test_proba: np.ndarray
    params: int
    size_mb: float
    test_metrics: dict[str, float]

    @property
    def train_seconds(self) -> float:
        """Pretraining plus the classification head."""
        return self.pretrain.seconds + self.head.seconds

    def as_result(self) -> dict[str, Any]:
        """The fields :func:`helpers.results.record_result` needs, besides name and chapter."""
        return {"metrics": self.test_metrics, "kind": "transformers",
                "artifact": self.folder / "model", "params": self.params,
                "train_seconds": self.train_seconds, "valid_f1": self.head.best_valid_f1,
                "pretrain_seconds": round(self.pretrain.seconds, 1),
                "head_seconds": round(self.head.seconds, 1),
                "pretrain_recipe": self.pretrain.recipe.name}


def train_classifier_head(
    name: str,
    encoder: BertForMaskedLM,
    pretrain: PretrainHistory,
    tokenizer: PreTrainedTokenizerBase,
    splits: Splits,
    folder: Path,
    *,
    max_length: int,
    batch_size: int,
    epochs: int,
    lr: float,
    patience: int = 2,
    teacher_logits: dict[str, np.ndarray] | None = None,
    loss_fn: LossFn | None = None,
    seed: int = SEED,
) -> BertStudentRun:
    """Put a classification head on a pretrained student, train it with ``fit`` (at most
    ``epochs``, stopping after ``patience`` epochs without a better validation F1), save it.

    The encoder is saved, then loaded back as ``AutoModelForSequenceClassification`` (the MLM head
    is dropped, a pooler and a 2-way classifier are added), so the result loads anywhere with
    ``from_pretrained``. With ``teacher_logits`` each batch carries ``"teacher_logits"`` for
    ``loss_fn``. The final model and its tokenizer are saved to ``folder``.
    """
    encoder_dir = folder / "encoder"
    encoder.save_pretrained(str(encoder_dir))
    set_seed(seed)
    with quiet_transformers():  # the new pooler and classifier are expected to be random
        model = AutoModelForSequenceClassification.from_pretrained(
            str(encoder_dir), num_labels=len(LABELS), id2label=LABELS,
            label2id={v: k for k, v in LABELS.items()})

    def loader(split: str, shuffle: bool) -> DataLoader:
        frame = getattr(splits, split)
        extras = None if teacher_logits is None else {"teacher_logits": teacher_logits[split]}
        dataset = EncodedDataset(encode_texts(tokenizer, frame["text"], max_length),
                                 frame["label"].to_numpy(), extras)
        return make_loader(dataset, batch_size, shuffle, tokenizer.pad_token_id, seed)

    head = fit(model, loader("train", True), loader("valid", False), splits.valid["label"],
               epochs=epochs, lr=lr, loss_fn=loss_fn or cross_entropy_loss, warmup_ratio=0.1,
               patience=patience, seed=seed, desc=name)
    model.save_pretrained(str(folder / "model"))
    # The tokenizer may come from a teacher with more positions (rubert-tiny2: 2,048); the saved
    # student must not accept texts longer than its own position embeddings.
    tokenizer.model_max_length = min(tokenizer.model_max_length,
                                     model.config.max_position_embeddings)
    tokenizer.save_pretrained(str(folder / "model"))
    (folder / "model" / "training.json").write_text(json.dumps({
        "pretrain_recipe": pretrain.recipe.name, "pretrain_seconds": pretrain.seconds,
        "head_seconds": head.seconds, "best_epoch": head.best_epoch,
        "max_length": max_length}, indent=1))
    test_proba = logits_to_proba(predict_logits(model, loader("test", False)))
    return BertStudentRun(name, model, tokenizer, folder, pretrain, head, test_proba,
                          count_parameters(model), size_on_disk_mb(folder / "model"),
                          evaluate(splits.test["label"], test_proba))


@dataclass
class HeadRepeat:
    """One classification head trained again with another seed on a run's pretrained encoder."""

    name: str
    seed: int
    head: History
    test_metrics: dict[str, float]
    test_proba: np.ndarray


def _head_with_seed(run_name: str, encoder_dir: Path, pretrain: PretrainHistory,
                    tokenizer: PreTrainedTokenizerBase, splits: Splits, folder: Path,
                    head: dict[str, Any], seed: int) -> HeadRepeat:
    with quiet_transformers():
        encoder = BertForMaskedLM.from_pretrained(str(encoder_dir))
    run = train_classifier_head(f"{run_name}, seed {seed}", encoder, pretrain, tokenizer, splits,
                                folder, seed=seed, **head)
    return HeadRepeat(run_name, seed, run.head, run.test_metrics, run.test_proba)


def repeat_heads(runs: Sequence[BertStudentRun], splits: Splits, seeds: Sequence[int], *,
                 workers: int | None = None, **head: Any) -> dict[str, dict[int, float]]:
    """Test F1 of each run's classification head per seed: the run itself for :data:`SEED`, and
    for every other seed of ``seeds`` a head trained again (new head weights, batch order and
    dropout) on the same pretrained encoder, with the same ``head`` settings
    (:func:`train_classifier_head`'s ``max_length``, ``batch_size``, ``epochs``, ``lr``,
    ``patience``; labels only), saved beside the run as ``<folder>_seed<seed>``. The heads train in
    parallel worker processes of one thread each on a CPU (:mod:`helpers.parallel`). Pretraining
    is not repeated: these seeds measure the heads' noise, not the pretraining's."""
    from .parallel import run_parallel

    if SEED not in seeds:
        raise ValueError(f"seeds {list(seeds)} must include the book's seed {SEED}, whose heads "
                         "are the runs given")
    extra = [seed for seed in seeds if seed != SEED]
    calls = [(run.name, run.folder / "encoder", run.pretrain, run.tokenizer, splits,
              run.folder.with_name(f"{run.folder.name}_seed{seed}"), head, seed)
             for run in runs for seed in extra]
    repeats = run_parallel(_head_with_seed, calls, workers=workers)
    scores = {run.name: {SEED: run.test_metrics["f1"]} for run in runs}
    for repeat in repeats:
        scores[repeat.name][repeat.seed] = repeat.test_metrics["f1"]
    return scores
