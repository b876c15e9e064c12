"""BERT students: a tiny BERT with a pruned vocabulary, a DistilBERT-style layer subset, and the
same architectures trained without a teacher.

Sources:

* The tiny-BERT recipe follows David Dale (2021), "Маленький и быстрый BERT для русского языка"
  (Habr), the article behind ``cointegrated/rubert-tiny``: prune the teacher's vocabulary to the
  tokens of the corpus, initialise the student's embeddings from the teacher's, then pretrain with
  masked-language modelling (MLM) plus the KL divergence between the student's and the teacher's
  token distributions plus the MSE between normalised [CLS] embeddings.
* The layer-subset student follows Sanh et al. (2019), "DistilBERT, a distilled version of BERT":
  the student keeps some of the teacher's layers and their weights and is trained with soft-target
  KL on MLM token distributions, the MLM loss and a cosine loss between hidden states.
* Masking follows Devlin et al. (2019), "BERT": 15% of tokens are chosen; of them 80% become
  [MASK], 10% a random token and 10% stay as they are. Redrawn for every batch (dynamic masking,
  Liu et al. 2019, "RoBERTa").

The modules used are ``transformers``' ``BertForMaskedLM`` (``.bert`` encoder and ``.cls`` MLM
head) and ``BertForSequenceClassification``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    BertConfig,
    BertForMaskedLM,
    BertTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from .config import SEED, BookConfig
from .data import Splits
from .distill import soft_target_kl
from .models import count_parameters
from .teacher import encode_texts, quiet_transformers
from .training import (
    EncodedDataset,
    History,
    LossFn,
    cross_entropy_loss,
    fit,
    logits_to_proba,
    make_loader,
    pick_device,
    predict_logits,
    set_seed,
)

MIN_COUNT = 5  # the source article keeps tokens seen more than 5 times
IGNORE = -100  # label of positions the MLM loss skips (PyTorch's cross-entropy default)


# --------------------------------------------------------------------------------------------
# Vocabulary pruning
# --------------------------------------------------------------------------------------------


@dataclass
class PrunedVocab:
    """A pruned tokenizer and the maps between the teacher's and the student's token ids.

    ``kept_ids[s]`` is the teacher id of student token ``s`` (kept ids in ascending order, so the
    special tokens, which come first in BERT vocabularies, keep their ids).
    ``teacher_to_student[t]`` is the student id of teacher token ``t``, or the student's [UNK] id
    for a dropped token: a dropped token cannot be represented any more, so it becomes unknown.
    """

    tokenizer: PreTrainedTokenizerBase
    kept_ids: torch.Tensor
    teacher_to_student: torch.Tensor
    counts: np.ndarray
    folder: Path

    @property
    def size(self) -> int:
        return len(self.kept_ids)

    def to_student(self, teacher_ids: torch.Tensor) -> torch.Tensor:
        """Student ids of teacher ids (dropped tokens become [UNK]); one indexing op."""
        return self.teacher_to_student[teacher_ids]

    def to_teacher(self, student_ids: torch.Tensor) -> torch.Tensor:
        """Teacher ids of student ids; exact, since every student token is a teacher token."""
        return self.kept_ids[student_ids]


def count_token_ids(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str]) -> np.ndarray:
    """How often each of the tokenizer's ids occurs in ``texts`` (one ``np.bincount``)."""
    ids = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    flat = np.concatenate([np.asarray(row, dtype=np.int64) for row in ids] or [np.zeros(0, int)])
    return np.bincount(flat, minlength=len(tokenizer))


def select_kept_ids(counts: np.ndarray, special_ids: Sequence[int],
                    min_count: int = MIN_COUNT) -> np.ndarray:
    """Ids seen more than ``min_count`` times, plus every special token, in ascending order."""
    keep = counts > min_count
    keep[np.asarray(list(special_ids), dtype=np.int64)] = True
    return np.flatnonzero(keep)


def build_pruned_tokenizer(tokenizer: PreTrainedTokenizerBase, kept_ids: np.ndarray,
                           out_dir: str | Path) -> PreTrainedTokenizerBase:
    """A WordPiece tokenizer over ``kept_ids`` only, with the teacher's casing and specials.

    Writes ``vocab.txt`` in the student's order (line ``s`` is student token ``s``), builds a
    ``BertTokenizer`` from it and saves it with ``save_pretrained`` into ``out_dir``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokens = tokenizer.convert_ids_to_tokens([int(i) for i in kept_ids])
    (out_dir / "vocab.txt").write_text("\n".join(tokens) + "\n", encoding="utf-8")
    kwargs = tokenizer.init_kwargs
    pruned = BertTokenizer(
        vocab=str(out_dir / "vocab.txt"),
        do_lower_case=bool(kwargs.get("do_lower_case", False)),
        strip_accents=kwargs.get("strip_accents"),
        tokenize_chinese_chars=kwargs.get("tokenize_chinese_chars", True),
        unk_token=tokenizer.unk_token, sep_token=tokenizer.sep_token,
        pad_token=tokenizer.pad_token, cls_token=tokenizer.cls_token,
        mask_token=tokenizer.mask_token, model_max_length=tokenizer.model_max_length,
    )
    pruned.save_pretrained(str(out_dir))
    return pruned


def prune_vocabulary(tokenizer: PreTrainedTokenizerBase, train_texts: Sequence[str],
                     out_dir: str | Path, min_count: int = MIN_COUNT) -> PrunedVocab:
    """Count the teacher's tokens over the training texts, keep the frequent ones, save.

    Only training texts are counted, so the vocabulary is not chosen with the test texts.
    ``kept_ids.npy`` is saved beside the tokenizer so that the map can be rebuilt later.
    """
    counts = count_token_ids(tokenizer, train_texts)
    kept = select_kept_ids(counts, tokenizer.all_special_ids, min_count)
    pruned = build_pruned_tokenizer(tokenizer, kept, out_dir)
    np.save(Path(out_dir) / "kept_ids.npy", kept)
    kept_ids = torch.as_tensor(kept, dtype=torch.long)
    teacher_to_student = torch.full((len(tokenizer),), pruned.unk_token_id, dtype=torch.long)
    teacher_to_student[kept_ids] = torch.arange(len(kept_ids))
    return PrunedVocab(pruned, kept_ids, teacher_to_student, counts, Path(out_dir))


def unk_share(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str]) -> float:
    """Share of the tokens of ``texts`` (specials of the template excluded) that are [UNK]."""
    ids = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    flat = np.concatenate([np.asarray(row, dtype=np.int64) for row in ids])
    return float((flat == tokenizer.unk_token_id).mean())


def dropped_token_share(vocab: PrunedVocab, teacher_tokenizer: PreTrainedTokenizerBase,
                        texts: Sequence[str]) -> float:
    """Share of the teacher's tokens of ``texts`` that the pruned vocabulary no longer has."""
    ids = teacher_tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    flat = torch.as_tensor(np.concatenate([np.asarray(row, dtype=np.int64) for row in ids]))
    dropped = vocab.to_student(flat) == vocab.tokenizer.unk_token_id
    return float((dropped & (flat != teacher_tokenizer.unk_token_id)).float().mean())


def id_map_table(vocab: PrunedVocab, teacher_tokenizer: PreTrainedTokenizerBase,
                 sentence: str) -> pd.DataFrame:
    """One row per teacher token of ``sentence``: its ids in both vocabularies and back."""
    teacher_ids = torch.tensor(teacher_tokenizer(sentence)["input_ids"])
    student_ids = vocab.to_student(teacher_ids)
    return pd.DataFrame({
        "token": teacher_tokenizer.convert_ids_to_tokens(teacher_ids.tolist()),
        "teacher id": teacher_ids.numpy(),
        "count in train": vocab.counts[teacher_ids.numpy()],
        "student id": student_ids.numpy(),
        "back to teacher": vocab.to_teacher(student_ids).numpy(),
        "student token": vocab.tokenizer.convert_ids_to_tokens(student_ids.tolist()),
    })


# --------------------------------------------------------------------------------------------
# Students
# --------------------------------------------------------------------------------------------


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
        "bert.embeddings.word_embeddings.weight": t["bert.embeddings.word_embeddings.weight"][
            kept_ids, :h],
        "bert.embeddings.position_embeddings.weight": t[
            "bert.embeddings.position_embeddings.weight"][:positions, :h],
        "bert.embeddings.token_type_embeddings.weight": t[
            "bert.embeddings.token_type_embeddings.weight"][:, :h],
        "cls.predictions.transform.dense.weight": t["cls.predictions.transform.dense.weight"][
            :h, :h],
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
    """Student layer ``i`` becomes a copy of teacher layer ``teacher_layers[i]`` (DistilBERT)."""
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
                              teacher_layers: Sequence[int] = (0, 2), from_teacher: bool = True,
                              seed: int = SEED) -> BertForMaskedLM:
    """A DistilBERT-style student: the teacher's width, ``len(teacher_layers)`` layers.

    With ``from_teacher`` its layers are copies of ``teacher_layers`` and its embeddings and MLM
    head the teacher's (rows of the pruned vocabulary); otherwise all is random.
    """
    set_seed(seed)
    config = BertConfig(**{**teacher.config.to_dict(), "vocab_size": vocab.size,
                           "num_hidden_layers": len(teacher_layers)})
    student = BertForMaskedLM(config)
    if from_teacher:
        copy_embeddings_from_teacher(student, teacher, vocab.kept_ids)
        copy_layers_from_teacher(student, teacher, teacher_layers)
    return student


# --------------------------------------------------------------------------------------------
# Masking and pretraining losses
# --------------------------------------------------------------------------------------------


def mask_tokens(input_ids: torch.Tensor, special_ids: torch.Tensor, mask_id: int,
                regular_ids: torch.Tensor, probability: float = 0.15,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's masking, redrawn at every call: returns (masked inputs, labels).

    Each non-special token is chosen with ``probability``; a chosen token becomes [MASK] with
    probability 0.8, a random regular (non-special) token with 0.1 and stays with 0.1. Labels
    are the original ids at chosen positions and ``-100`` elsewhere. Special tokens ([CLS],
    [SEP], [PAD], [UNK]) are never chosen: predicting them teaches nothing.
    """
    def draw(p: float, shape: torch.Size) -> torch.Tensor:
        return torch.rand(shape, generator=generator, device=input_ids.device) < p

    chosen = draw(probability, input_ids.shape) & ~torch.isin(input_ids, special_ids)
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, IGNORE))
    to_mask = chosen & draw(0.8, input_ids.shape)
    # Half of the remaining 20%: a random token; the other half keep the original.
    to_random = chosen & ~to_mask & draw(0.5, input_ids.shape)
    random_ids = regular_ids[torch.randint(len(regular_ids), input_ids.shape,
                                           generator=generator, device=input_ids.device)]
    masked = torch.where(to_mask, torch.full_like(input_ids, mask_id), input_ids)
    masked = torch.where(to_random, random_ids, masked)
    return masked, labels


def masked_token_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                    labels: torch.Tensor, temperature: float) -> torch.Tensor:
    """Soft-target KL (Hinton et al. 2015) between token distributions at masked positions.

    Logits are ``(batch, length, vocab)``; positions with ``labels == -100`` are left out, the
    others are flattened into the batch dimension of :func:`helpers.distill.soft_target_kl`.
    """
    chosen = labels != IGNORE
    return soft_target_kl(student_logits[chosen], teacher_logits[chosen], temperature)


def cls_embedding_loss(student_cls: torch.Tensor, teacher_cls: torch.Tensor) -> torch.Tensor:
    """MSE between L2-normalised sentence embeddings, as in the source article.

    Summed over dimensions and averaged over the batch, i.e. ``|u - v|^2 = 2 - 2 cos(u, v)``, so
    the scale does not shrink with the width. ``student_cls`` should already have gone through
    the linear adapter to the teacher's width.
    """
    diff = F.normalize(student_cls, dim=-1) - F.normalize(teacher_cls, dim=-1)
    return diff.pow(2).sum(-1).mean()


def hidden_cosine_loss(student_hidden: torch.Tensor, teacher_hidden: torch.Tensor,
                       attention_mask: torch.Tensor) -> torch.Tensor:
    """DistilBERT's cosine embedding loss: mean of ``1 - cos`` over the real (non-pad) tokens."""
    cos = F.cosine_similarity(student_hidden, teacher_hidden, dim=-1)
    real = attention_mask.bool()
    return (1.0 - cos[real]).mean()


@torch.no_grad()
def teacher_vocab_logits(teacher: BertForMaskedLM, hidden: torch.Tensor,
                         kept_ids: torch.Tensor) -> torch.Tensor:
    """The teacher's MLM logits restricted to the kept tokens.

    Same as ``teacher.cls(hidden)[:, kept_ids]`` but multiplies by the kept rows of the output
    matrix only, which on a CPU is several times cheaper than the full vocabulary.
    """
    head = teacher.cls.predictions
    weight = head.decoder.weight[kept_ids]
    return F.linear(head.transform(hidden), weight, head.bias[kept_ids])


# --------------------------------------------------------------------------------------------
# Pretraining
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PretrainRecipe:
    """Weights of the pretraining losses; a zero weight switches a loss (and its work) off.

    ``teacher_layers[i]`` is the teacher layer whose output student layer ``i`` is aligned with
    by the cosine loss.
    """

    name: str
    mlm: float = 1.0
    kl: float = 0.0
    cls: float = 0.0
    cosine: float = 0.0
    temperature: float = 2.0
    teacher_layers: tuple[int, ...] = ()

    @property
    def needs_teacher(self) -> bool:
        return bool(self.kl or self.cls or self.cosine)


# The article: MLM + token-distribution KL + [CLS] MSE, equal weights.
ARTICLE_RECIPE = PretrainRecipe("article: MLM + KL + [CLS] MSE", mlm=1.0, kl=1.0, cls=1.0)
# DistilBERT's weights (alpha_ce=5, alpha_mlm=2, alpha_cos=1, T=2) from its training script.
DISTILBERT_LAYERS = (0, 2)
DISTILBERT_RECIPE = PretrainRecipe("DistilBERT: KL + MLM + cosine", mlm=2.0, kl=5.0, cosine=1.0,
                                   teacher_layers=DISTILBERT_LAYERS)
MLM_ONLY = PretrainRecipe("MLM only (no teacher)", mlm=1.0)


@dataclass
class PretrainHistory:
    """Losses every ``log_every`` steps, wall time, and the [CLS] adapter if one was trained."""

    recipe: PretrainRecipe
    steps: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    adapter: nn.Module | None = None

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.steps).set_index("step")

    def plot(self, title: str = "", ax=None):
        """Each loss component over the pretraining steps."""
        if ax is None:
            _, ax = plt.subplots(figsize=(6, 3))
        self.to_frame().drop(columns=["seconds"], errors="ignore").plot(ax=ax, marker=".")
        ax.set_xlabel("step")
        ax.set_title(title or self.recipe.name)
        return ax


def _cycle(loader: DataLoader):
    while True:
        yield from loader


def pretrain_student(
    student: BertForMaskedLM,
    loader: DataLoader,
    vocab: PrunedVocab,
    *,
    steps: int,
    lr: float,
    recipe: PretrainRecipe,
    teacher: BertForMaskedLM | None = None,
    mlm_probability: float = 0.15,
    warmup_ratio: float = 0.06,
    weight_decay: float = 0.01,
    log_every: int = 10,
    device: str | torch.device | None = None,
    seed: int = SEED,
) -> PretrainHistory:
    """Masked-language-model pretraining of ``student`` for exactly ``steps`` batches.

    Every batch is masked anew (:func:`mask_tokens`). The student sees the pruned tokenizer's ids,
    i.e. exactly what it will see when classifying; the teacher sees the same tokens mapped to its
    own ids (``vocab.to_teacher``), so positions line up (where the pruned tokenizer wrote [UNK],
    the teacher sees [UNK] too). The loss is ``recipe.mlm * MLM + recipe.kl * KL +
    recipe.cls * [CLS] MSE + recipe.cosine * hidden-state cosine``; the teacher runs under
    ``torch.inference_mode`` and is never updated. Logits are computed only at masked positions:
    the other 85% would not be used.
    """
    from transformers import get_linear_schedule_with_warmup

    if recipe.needs_teacher and teacher is None:
        raise ValueError(f"recipe {recipe.name!r} needs a teacher")
    set_seed(seed)
    device = pick_device(device)
    student.to(device).train()
    history = PretrainHistory(recipe)
    params = list(student.parameters())
    if recipe.cls:
        # A linear map from the student's [CLS] to the teacher's width (256 -> 312).
        history.adapter = nn.Linear(student.config.hidden_size, teacher.config.hidden_size)
        history.adapter.to(device)
        params += list(history.adapter.parameters())
    if teacher is not None:
        teacher.to(device).eval()
    tok = vocab.tokenizer
    special = torch.tensor(tok.all_special_ids, device=device)
    regular = torch.arange(vocab.size, device=device)
    regular = regular[~torch.isin(regular, special)]
    kept_ids = vocab.kept_ids.to(device)
    generator = torch.Generator(device=device).manual_seed(seed)
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(warmup_ratio * steps), steps)
    need_hidden = bool(recipe.cosine)
    sums: dict[str, float] = {}
    start = time.perf_counter()
    batches = _cycle(loader)
    bar = tqdm(range(1, steps + 1), desc=recipe.name, leave=False)
    for step in bar:
        batch = next(batches)
        ids = batch["inputs"]["input_ids"].to(device)
        attention = batch["inputs"]["attention_mask"].to(device)
        for _ in range(10):  # a batch of very short texts can draw no position at all
            masked, labels = mask_tokens(ids, special, tok.mask_token_id, regular,
                                         mlm_probability, generator)
            chosen = labels != IGNORE
            if chosen.any():
                break
        out = student.bert(input_ids=masked, attention_mask=attention,
                           output_hidden_states=need_hidden)
        student_logits = student.cls(out.last_hidden_state[chosen])
        parts = {"mlm": F.cross_entropy(student_logits, labels[chosen])}
        if teacher is not None and recipe.needs_teacher:
            with torch.inference_mode():
                t_out = teacher.bert(input_ids=kept_ids[masked], attention_mask=attention,
                                     output_hidden_states=need_hidden)
                t_logits = teacher_vocab_logits(teacher, t_out.last_hidden_state[chosen],
                                                kept_ids) if recipe.kl else None
            # Inference tensors cannot be saved for backward: clone them into ordinary ones.
            if recipe.kl:
                parts["kl"] = soft_target_kl(student_logits, t_logits.clone(), recipe.temperature)
            if recipe.cls:
                parts["cls"] = cls_embedding_loss(
                    history.adapter(out.last_hidden_state[:, 0]),
                    t_out.last_hidden_state[:, 0].clone())
            if recipe.cosine:
                # hidden_states[0] is the embedding output; layer i's output is [i + 1].
                parts["cosine"] = torch.stack([
                    hidden_cosine_loss(out.hidden_states[i + 1],
                                       t_out.hidden_states[layer + 1].clone(), attention)
                    for i, layer in enumerate(recipe.teacher_layers)]).mean()
        weights = {"mlm": recipe.mlm, "kl": recipe.kl, "cls": recipe.cls, "cosine": recipe.cosine}
        loss = sum(weights[name] * value for name, value in parts.items())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        scheduler.step()
        for name, value in {"loss": loss, **parts}.items():
            sums[name] = sums.get(name, 0.0) + value.item()
        if step % log_every == 0 or step == steps:
            count = log_every if step % log_every == 0 else step % log_every
            row = {"step": step, **{k: v / count for k, v in sums.items()},
                   "seconds": time.perf_counter() - start}
            history.steps.append(row)
            bar.set_postfix(loss=f"{row['loss']:.3f}", refresh=False)
            sums = {}
    history.seconds = time.perf_counter() - start
    student.eval()
    return history


# --------------------------------------------------------------------------------------------
# Classification head
# --------------------------------------------------------------------------------------------


@dataclass
class StudentRun:
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

    @property
    def train_seconds(self) -> float:
        """Pretraining plus the classification head."""
        return self.pretrain.seconds + self.head.seconds


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
    teacher_logits: dict[str, np.ndarray] | None = None,
    loss_fn: LossFn | None = None,
    seed: int = SEED,
) -> StudentRun:
    """Put a classification head on a pretrained student, train it with ``fit``, save it.

    The encoder is saved, then loaded back as ``AutoModelForSequenceClassification`` (the MLM head
    is dropped, a pooler and a 2-way classifier are added), so the result loads anywhere with
    ``from_pretrained``. With ``teacher_logits`` each batch carries ``"teacher_logits"`` for
    ``loss_fn``. The final model and its tokenizer are saved to ``folder``.
    """
    from .results import size_on_disk_mb

    encoder_dir = folder / "encoder"
    encoder.save_pretrained(str(encoder_dir))
    set_seed(seed)
    with quiet_transformers():  # the new pooler and classifier are expected to be random
        model = AutoModelForSequenceClassification.from_pretrained(str(encoder_dir), num_labels=2)

    def loader(split: str, shuffle: bool) -> DataLoader:
        frame = getattr(splits, split)
        extras = None if teacher_logits is None else {"teacher_logits": teacher_logits[split]}
        dataset = EncodedDataset(encode_texts(tokenizer, frame["text"], max_length),
                                 frame["label"].to_numpy(), extras)
        return make_loader(dataset, batch_size, shuffle, tokenizer.pad_token_id, seed)

    head = fit(model, loader("train", True), loader("valid", False), splits.valid["label"],
               epochs=epochs, lr=lr, loss_fn=loss_fn or cross_entropy_loss, warmup_ratio=0.1,
               seed=seed, desc=name)
    model.save_pretrained(str(folder / "model"))
    tokenizer.save_pretrained(str(folder / "model"))
    (folder / "model" / "training.json").write_text(json.dumps({
        "pretrain_recipe": pretrain.recipe.name, "pretrain_seconds": pretrain.seconds,
        "head_seconds": head.seconds, "best_epoch": head.best_epoch,
        "max_length": max_length}, indent=1))
    test_proba = logits_to_proba(predict_logits(model, loader("test", False)))
    return StudentRun(name, model, tokenizer, folder, pretrain, head, test_proba,
                      count_parameters(model), size_on_disk_mb(folder / "model"))


def load_student(folder: str | Path) -> tuple[PreTrainedTokenizerBase, PreTrainedModel]:
    """A saved student classifier and its tokenizer."""
    folder = Path(folder) / "model"
    return (AutoTokenizer.from_pretrained(str(folder)),
            AutoModelForSequenceClassification.from_pretrained(str(folder)))


# --------------------------------------------------------------------------------------------
# Budget
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StudentBudget:
    """How much each student trains; every student and its no-teacher twin get the same."""

    pretrain_steps: int
    pretrain_batch_size: int
    pretrain_max_length: int
    pretrain_lr: float
    head_epochs: int
    head_batch_size: int
    head_max_length: int
    head_lr: float


def student_budget(config: BookConfig) -> StudentBudget:
    """The chapter's budget: seconds in small-data mode, under ~45 minutes on 2 CPU cores."""
    if config.small:
        return StudentBudget(pretrain_steps=6, pretrain_batch_size=16, pretrain_max_length=64,
                             pretrain_lr=5e-4, head_epochs=1, head_batch_size=32,
                             head_max_length=64, head_lr=2e-4)
    # Measured on 2 busy CPU cores: ~0.65 s per pretraining step of 32 texts (with or without
    # the teacher's forward), ~3 minutes per head epoch: 4 pretrainings of 400 steps (~1.3 passes
    # over the training texts) and 5 one-epoch heads take ~35 minutes.
    return StudentBudget(pretrain_steps=400, pretrain_batch_size=32, pretrain_max_length=128,
                         pretrain_lr=5e-4, head_epochs=1, head_batch_size=32,
                         head_max_length=128, head_lr=2e-4)


def pretrain_loader(vocab: PrunedVocab, texts: Sequence[str], budget: StudentBudget,
                    seed: int = SEED) -> DataLoader:
    """Length-bucketed batches of the training texts in the student's ids, for pretraining."""
    ids = encode_texts(vocab.tokenizer, texts, budget.pretrain_max_length)
    return make_loader(EncodedDataset(ids), budget.pretrain_batch_size, True,
                       vocab.tokenizer.pad_token_id, seed)


def summary_table(runs: Sequence[StudentRun], y_test: Sequence[int]) -> pd.DataFrame:
    """Test scores and costs of the students, one row each (scores via ``evaluate``)."""
    from .evaluation import evaluate

    rows = []
    for run in runs:
        scores = evaluate(y_test, run.test_proba)
        rows.append({"model": run.name, "f1": scores["f1"],
                     "average_precision": scores["average_precision"], "params": run.params,
                     "size_mb": round(run.size_mb, 2),
                     "pretrain_s": round(run.pretrain.seconds), "head_s": round(run.head.seconds),
                     "train_seconds": round(run.train_seconds)})
    return pd.DataFrame(rows).set_index("model")


def record_student(run: StudentRun, splits: Splits, config: BookConfig,
                   teacher: dict[str, object], chapter: str = "05") -> dict[str, object]:
    """Evaluate ``run`` on the test split and write its row to the results file.

    ``teacher`` holds the ``teacher``/``standin`` fields (:func:`helpers.teacher.teacher_fields`,
    or ``{"teacher": "none", "standin": False}`` for a student trained without one).
    """
    from .evaluation import evaluate
    from .results import record_result

    scores = evaluate(splits.test["label"], run.test_proba)
    return record_result(
        run.name, chapter, scores, config, params=run.params, size_mb=round(run.size_mb, 2),
        train_seconds=round(run.train_seconds, 1), pretrain_seconds=round(run.pretrain.seconds, 1),
        head_seconds=round(run.head.seconds, 1), pretrain_recipe=run.pretrain.recipe.name,
        kind="transformers", artifact=run.folder / "model", **teacher)
