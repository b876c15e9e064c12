"""The source article's mistakes, each as a small demonstration the chapters run.

The article's code works end to end, but a few of its choices silently cost quality or time. Each
function here reproduces one of them next to the correct way, so the chapter can show the
difference instead of asserting it.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from .encoding import MAX_LENGTH_CAP


def sigmoid_before_cross_entropy_demo() -> pd.DataFrame:
    """Loss and gradient of cross-entropy on raw logits vs on sigmoid(logits), one text of class 1.

    Shows the source article's mistake: after a sigmoid the inputs of the loss lie in (0, 1), so
    the loss cannot go below log(1 + e^-1) ~ 0.31 however right the model is, and for a confidently
    wrong model the sigmoid's flat tails shrink the gradient almost to nothing.
    """
    rows = []
    for case, values in [("confidently right", [-4.0, 4.0]), ("unsure", [0.0, 0.0]),
                         ("confidently wrong", [4.0, -4.0])]:
        row: dict[str, Any] = {"case": case, "logits": values}
        for label, transform in [("CE(logits)", lambda z: z),
                                 ("CE(sigmoid(logits))", torch.sigmoid)]:
            logits = torch.tensor([values], requires_grad=True)
            loss = F.cross_entropy(transform(logits), torch.tensor([1]))
            loss.backward()
            row[f"loss {label}"] = round(loss.item(), 4)
            row[f"|grad| {label}"] = round(logits.grad.norm().item(), 4)
        rows.append(row)
    return pd.DataFrame(rows).set_index("case")


def logits_one_at_a_time(
    model: nn.Module, tokenizer: Any, texts: Sequence[str], max_length: int = MAX_LENGTH_CAP,
    pad_to_max_length: bool = True,
) -> np.ndarray:
    """Logits computed text by text, each padded to ``max_length`` (as in the source article).

    Kept to show what dynamic padding saves; use :func:`helpers.batching.text_logits` for real
    work.
    """
    device = next(model.parameters()).device
    model.eval()
    rows = []
    with torch.inference_mode():
        for text in texts:
            inputs = tokenizer(text, truncation=True, max_length=max_length, return_tensors="pt",
                               padding="max_length" if pad_to_max_length else False)
            inputs = {k: inputs[k].to(device) for k in ("input_ids", "attention_mask")}
            rows.append(model(**inputs).logits.float().cpu().numpy()[0])
    return np.stack(rows).astype(np.float32)


def best_model_alias_demo(weights: Sequence[float] = (0.5, 1.0, 2.0),
                          valid_f1: Sequence[float] = (0.80, 0.75, 0.70)) -> pd.DataFrame:
    """What ``best_model = model`` keeps, next to ``copy.deepcopy(model)``, on a toy "training".

    A one-weight module takes the value ``weights[e]`` in epoch ``e`` (what training would have
    changed); the first epoch has the best validation F1. The article keeps the best epoch with
    ``best_model = model``: an alias of the object that goes on training, so after the loop the
    "best" model holds the last epoch's weights. A deep copy (or a copy of the ``state_dict``, as
    :func:`helpers.training.fit` does) keeps the best epoch's.
    """
    model = nn.Linear(1, 1, bias=False)
    best_f1, aliased, copied, best_epoch = -1.0, None, None, 0
    for epoch, (weight, f1) in enumerate(zip(weights, valid_f1, strict=True), start=1):
        with torch.no_grad():
            model.weight.fill_(weight)  # stands for one epoch of training
        if f1 > best_f1:
            best_f1, best_epoch = f1, epoch
            aliased = model  # the article
            copied = copy.deepcopy(model)  # the fix
    return pd.DataFrame({
        "epoch": [best_epoch, len(weights), best_epoch, best_epoch],
        "weight": [weights[best_epoch - 1], weights[-1], aliased.weight.item(),
                   copied.weight.item()],
    }, index=["best epoch (validation F1)", "last epoch", "kept by best_model = model",
              "kept by best_model = copy.deepcopy(model)"])


def kl_over_positions_demo(batch: int = 2, positions: int = 6, vocab_size: int = 50,
                           temperature: float = 1.0, seed: int = 0) -> pd.DataFrame:
    """The token-distribution KL over the vocabulary (the book) vs over positions (the article).

    Random student and teacher MLM logits of shape ``(batch, positions, vocab_size)``. The book's
    :func:`helpers.losses.soft_target_kl` takes the softmax over the last dimension, the
    vocabulary, at every position. The article's tiny-BERT code takes it over ``dim=1``, the
    positions, so each "distribution" says where in the text a token is likely, not which token
    is likely at a position, and divides the result by the vocabulary size. The two losses differ
    in value and in what they ask of the student.
    """
    from .losses import soft_target_kl

    generator = torch.Generator().manual_seed(seed)
    student = torch.randn(batch, positions, vocab_size, generator=generator)
    teacher = torch.randn(batch, positions, vocab_size, generator=generator)
    book = soft_target_kl(student.reshape(-1, vocab_size), teacher.reshape(-1, vocab_size),
                          temperature)
    t = temperature
    article = F.kl_div(F.log_softmax(student / t, dim=1), F.softmax(teacher / t, dim=1),
                       reduction="batchmean") * t**2 / vocab_size
    sums = {dim: F.softmax(teacher / t, dim=dim).sum(dim=-1)[0, 0].item() for dim in (1, -1)}
    return pd.DataFrame({
        "softmax over": ["vocabulary (dim=-1)", "positions (dim=1)"],
        "KL": [round(book.item(), 4), round(article.item(), 4)],
        "teacher probabilities at one position, summed over the vocabulary":
            [round(sums[-1], 4), round(sums[1], 4)],
    }, index=["the book: soft_target_kl", "the article: dim=1, / vocabulary size"])
