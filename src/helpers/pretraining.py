"""Pretraining a BERT student with masked-language modelling, with or without a teacher.

Masking follows Devlin et al. (2019), "BERT": 15% of tokens are chosen; of them 80% become [MASK],
10% a random token and 10% stay as they are, redrawn for every batch (dynamic masking, Liu et al.
2019, "RoBERTa"); :func:`masking_table` shows what it did to one text. With a teacher, the source
article adds the KL divergence between the student's and the teacher's token distributions and
the MSE between normalised [CLS] embeddings; DistilBERT (Sanh et al. 2019) weights KL, MLM and a
cosine loss between hidden states. A :class:`PretrainRecipe` names the weights; the losses are in
:mod:`helpers.losses`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm
from transformers import BertForMaskedLM, PreTrainedTokenizerBase

from .batching import EncodedDataset, make_loader
from .budgets import StudentBudget
from .config import SEED
from .encoding import encode_texts
from .losses import IGNORE, cls_embedding_loss, hidden_cosine_loss, soft_target_kl
from .pretraining_history import PretrainHistory
from .pruning import PrunedVocab
from .training import Plateau, make_optimizer, optimizer_step, pick_device, set_seed

logger = logging.getLogger(__name__)


def mask_tokens(input_ids: torch.Tensor, special_ids: torch.Tensor, mask_id: int,
                regular_ids: torch.Tensor, probability: float = 0.15,
                generator: torch.Generator | None = None,
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's masking, redrawn at every call: returns (masked inputs, labels).

    Each non-special token is chosen with ``probability``; a chosen token becomes [MASK] with
    probability 0.8, a random regular (non-special) token with 0.1 and stays with 0.1. Labels
    are the original ids at chosen positions and ``-100`` elsewhere. Special tokens ([CLS],
    [SEP], [PAD], [UNK]) are never chosen: predicting them teaches nothing. When the draw chooses
    nothing (a batch of very short texts), the first regular token of the batch is chosen, so the
    MLM loss is never an average over zero positions.
    """
    def draw(p: float, shape: torch.Size) -> torch.Tensor:
        return torch.rand(shape, generator=generator, device=input_ids.device) < p

    regular = ~torch.isin(input_ids, special_ids)
    chosen = draw(probability, input_ids.shape) & regular
    if not chosen.any() and regular.any():
        chosen = chosen.clone()
        chosen.view(-1)[regular.view(-1).nonzero()[0]] = True
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, IGNORE))
    to_mask = chosen & draw(0.8, input_ids.shape)
    # Half of the remaining 20%: a random token; the other half keep the original.
    to_random = chosen & ~to_mask & draw(0.5, input_ids.shape)
    random_ids = regular_ids[torch.randint(len(regular_ids), input_ids.shape,
                                           generator=generator,
                                           device=input_ids.device)]
    masked = torch.where(to_mask, torch.full_like(input_ids, mask_id), input_ids)
    masked = torch.where(to_random, random_ids, masked)
    return masked, labels


MASK_ACTIONS = ("[MASK]", "random", "kept", "not chosen")
"""What :func:`mask_tokens` did at a position, as :func:`masking_table` names it."""


def masking_table(tokenizer: PreTrainedTokenizerBase, input_ids: Sequence[int],
                  masked: Sequence[int], labels: Sequence[int]) -> pd.DataFrame:
    """One row per position of one masked text: the original token, what :func:`mask_tokens`
    did to it (one of :data:`MASK_ACTIONS`), the token the student reads and the label.

    A chosen position whose random replacement drew the original token again reads as "kept":
    the student sees the same thing either way. The label is the original id where the loss
    looks and ``-100`` where it does not.
    """
    original, masked, labels = (np.asarray(x).tolist() for x in (input_ids, masked, labels))
    if not len(original) == len(masked) == len(labels):
        raise ValueError("input_ids, masked and labels must have the same length")

    def action(token: int, seen: int, label: int) -> str:
        if label == IGNORE:
            return MASK_ACTIONS[3]
        if seen == tokenizer.mask_token_id:
            return MASK_ACTIONS[0]
        return MASK_ACTIONS[2] if seen == token else MASK_ACTIONS[1]

    return pd.DataFrame({
        "original token": tokenizer.convert_ids_to_tokens(original),
        "action": [action(*row) for row in zip(original, masked, labels, strict=True)],
        "student reads": tokenizer.convert_ids_to_tokens(masked),
        "label": labels,
    }).rename_axis("position")


def special_and_regular_ids(vocab: PrunedVocab, device: torch.device | str = "cpu"
                            ) -> tuple[torch.Tensor, torch.Tensor]:
    """Ids of the pruned tokenizer's special tokens (never masked) and of all the others (drawn as
    random replacements by :func:`mask_tokens`)."""
    special = torch.tensor(vocab.tokenizer.all_special_ids, device=device)
    regular = torch.arange(vocab.size, device=device)
    return special, regular[~torch.isin(regular, special)]


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

    def __post_init__(self) -> None:
        weights = {"mlm": self.mlm, "kl": self.kl, "cls": self.cls, "cosine": self.cosine}
        if any(w < 0 for w in weights.values()) or not any(weights.values()):
            raise ValueError(f"recipe {self.name!r}: loss weights must be >= 0 and at least one "
                             f"positive, got {weights}")
        if self.temperature <= 0:
            raise ValueError(f"recipe {self.name!r}: temperature must be positive")
        if self.cosine and not self.teacher_layers:
            raise ValueError(f"recipe {self.name!r}: the cosine loss needs teacher_layers")

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


def _cycle(loader: DataLoader):
    """Batches of ``loader`` pass after pass, from its first epoch's order: every student
    pretrained on the same loader sees the same batches."""
    if hasattr(loader.batch_sampler, "set_epoch"):
        loader.batch_sampler.set_epoch(0)
    while True:
        yield from loader


def pretraining_losses(
    student: BertForMaskedLM, masked: torch.Tensor, attention: torch.Tensor,
    labels: torch.Tensor, recipe: PretrainRecipe,
    teacher: BertForMaskedLM | None = None,
    kept_ids: torch.Tensor | None = None, adapter: nn.Module | None = None,
) -> dict[str, torch.Tensor]:
    """The losses of one pretraining batch, by name; the step minimises their weighted sum.

    The student reads the masked ids of the pruned vocabulary; the teacher reads the same tokens
    mapped to its own ids (``kept_ids[masked]``), so positions line up, under
    ``torch.inference_mode`` (it is never updated). Logits are computed at masked positions only.
    """
    chosen = labels != IGNORE
    out = student.bert(input_ids=masked, attention_mask=attention,
                       output_hidden_states=bool(recipe.cosine))
    student_logits = student.cls(out.last_hidden_state[chosen])
    parts = {"mlm": F.cross_entropy(student_logits, labels[chosen])}
    if not recipe.needs_teacher:
        return parts
    with torch.inference_mode():
        t_out = teacher.bert(input_ids=kept_ids[masked], attention_mask=attention,
                             output_hidden_states=bool(recipe.cosine))
        t_logits = (teacher_vocab_logits(teacher, t_out.last_hidden_state[chosen],
                                         kept_ids)
                    if recipe.kl else None)
    # Inference tensors cannot be saved for backward: clone them into ordinary ones.
    if recipe.kl:
        parts["kl"] = soft_target_kl(student_logits, t_logits.clone(),
                                     recipe.temperature)
    if recipe.cls:
        parts["cls"] = cls_embedding_loss(adapter(out.last_hidden_state[:, 0]),
                                          t_out.last_hidden_state[:, 0].clone())
    if recipe.cosine:
        # hidden_states[0] is the embedding output; layer i's output is [i + 1].
        parts["cosine"] = torch.stack([
            hidden_cosine_loss(out.hidden_states[i + 1],
                               t_out.hidden_states[layer + 1].clone(), attention)
            for i, layer in enumerate(recipe.teacher_layers)]).mean()
    return parts


@torch.no_grad()
def validation_mlm_loss(student: BertForMaskedLM, loader: DataLoader, vocab: PrunedVocab,
                        mlm_probability: float = 0.15, seed: int = SEED) -> float:
    """The student's MLM loss on held-out texts, per masked token, with the same masks at every
    call (the generator is reseeded and ``loader`` must not shuffle), so that calls compare.

    Only the MLM loss: it means the same for every recipe, with or without a teacher.
    """
    device = next(student.parameters()).device
    special, regular = special_and_regular_ids(vocab, device)
    generator = torch.Generator(device=device).manual_seed(seed)
    was_training = student.training
    student.eval()
    total, count = 0.0, 0
    for batch in loader:
        ids = batch["inputs"]["input_ids"].to(device)
        masked, labels = mask_tokens(ids, special, vocab.tokenizer.mask_token_id, regular,
                                     mlm_probability, generator)
        chosen = labels != IGNORE
        if not chosen.any():
            continue
        out = student.bert(input_ids=masked,
                           attention_mask=batch["inputs"]["attention_mask"].to(device))
        logits = student.cls(out.last_hidden_state[chosen])
        total += F.cross_entropy(logits, labels[chosen], reduction="sum").item()
        count += int(chosen.sum())
    student.train(was_training)
    if not count:
        raise ValueError("validation_mlm_loss: the validation texts have no token to mask")
    return total / count


def _check_pretraining(student: BertForMaskedLM, recipe: PretrainRecipe,
                       teacher: BertForMaskedLM | None, steps: int) -> None:
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    if recipe.needs_teacher and teacher is None:
        raise ValueError(f"recipe {recipe.name!r} needs a teacher")
    if recipe.cosine:
        n_student, n_teacher = student.config.num_hidden_layers, teacher.config.num_hidden_layers
        if len(recipe.teacher_layers) != n_student or max(recipe.teacher_layers) >= n_teacher:
            raise ValueError(f"recipe {recipe.name!r} aligns teacher layers "
                             f"{recipe.teacher_layers}: it needs one per student layer "
                             f"({n_student}), each below {n_teacher}")


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
    valid: DataLoader | None = None,
    eval_every: int = 100,
    patience: int | None = None,
    min_improvement: float = 0.01,
    device: str | torch.device | None = None,
    seed: int = SEED,
) -> PretrainHistory:
    """Masked-language-model pretraining of ``student`` for at most ``steps`` batches.

    Every batch is masked anew (:func:`mask_tokens`) and its losses computed by
    :func:`pretraining_losses`; the loss is ``recipe.mlm * MLM + recipe.kl * KL +
    recipe.cls * [CLS] MSE + recipe.cosine * hidden-state cosine``, minimised by the optimizer
    step the classification training uses (:func:`helpers.training.optimizer_step`). A batch with
    no regular token at all (nothing to predict) is skipped.

    With ``valid`` (an unshuffled loader of held-out texts), the validation MLM loss
    (:func:`validation_mlm_loss`) is measured before the first step and every ``eval_every``
    steps. With ``patience`` too, pretraining stops on a plateau: after ``patience`` measurements
    none of which beat the best one by ``min_improvement`` (relative), and the weights of the
    best measurement are loaded back. ``steps`` is then a cap, and also the length of the
    learning-rate schedule, so that every run's schedule is the same wherever it stops.
    """
    _check_pretraining(student, recipe, teacher, steps)
    if patience is not None and valid is None:
        raise ValueError("pretrain_student: patience needs a validation loader (valid=...)")
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
    special, regular = special_and_regular_ids(vocab, device)
    kept_ids = vocab.kept_ids.to(device)
    generator = torch.Generator(device=device).manual_seed(seed)
    optimizer, scheduler = make_optimizer(params, lr=lr, weight_decay=weight_decay,
                                          warmup_ratio=warmup_ratio, total_steps=steps)
    weights = {"mlm": recipe.mlm, "kl": recipe.kl, "cls": recipe.cls, "cosine": recipe.cosine}
    sums: dict[str, float] = {}
    count = 0
    start = time.perf_counter()
    plateau = Plateau(patience, min_improvement, higher_is_better=False, relative=True)

    def measure(step: int) -> bool:
        """The validation MLM loss at ``step``, recorded; True when pretraining should stop."""
        loss = validation_mlm_loss(student, valid, vocab, mlm_probability)
        history.valid.append({"step": step, "valid_mlm": loss})
        return plateau.update(step, loss, student)

    if valid is not None:
        measure(0)
    history.steps_cap = steps
    batches = _cycle(loader)
    bar = tqdm(range(1, steps + 1), desc=recipe.name, leave=False, mininterval=5)
    for step in bar:
        batch = next(batches)
        ids = batch["inputs"]["input_ids"].to(device)
        attention = batch["inputs"]["attention_mask"].to(device)
        masked, labels = mask_tokens(ids, special, vocab.tokenizer.mask_token_id, regular,
                                     mlm_probability, generator)
        if (labels != IGNORE).any():
            parts = pretraining_losses(student, masked, attention, labels, recipe, teacher,
                                       kept_ids, history.adapter)
            loss = sum(weights[name] * value for name, value in parts.items())
            optimizer_step(loss, optimizer, scheduler, max_grad_norm=1.0)
            for name, value in {"loss": loss, **parts}.items():
                sums[name] = sums.get(name, 0.0) + value.item()
            count += 1
        if (step % log_every == 0 or step == steps) and count:
            row = {"step": step, **{k: v / count for k, v in sums.items()},
                   "seconds": time.perf_counter() - start}
            history.steps.append(row)
            bar.set_postfix(loss=f"{row['loss']:.3f}", refresh=False)
            sums, count = {}, 0
        history.steps_run = step
        if valid is not None and (step % eval_every == 0 or step == steps) and measure(step):
            break
    bar.close()
    history.best_step = plateau.restore(student) if valid is not None else history.steps_run
    history.seconds = time.perf_counter() - start
    student.eval()
    logger.info(history.summary())
    return history


def pretrain_loader(vocab: PrunedVocab, texts: Sequence[str], budget: StudentBudget,
                    seed: int = SEED, shuffle: bool = True) -> DataLoader:
    """Length-bucketed batches of ``texts`` in the student's ids, for pretraining (shuffled)
    or for :func:`validation_mlm_loss` (``shuffle=False``)."""
    ids = encode_texts(vocab.tokenizer, texts, budget.pretrain_max_length)
    return make_loader(EncodedDataset(ids), budget.pretrain_batch_size, shuffle,
                       vocab.tokenizer.pad_token_id, seed)
