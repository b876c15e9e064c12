"""The source article's mistakes, each as a small demonstration the chapters run.

The article's code works end to end, but a few of its choices silently cost quality or time. Each
function here reproduces one of them next to the correct way, so the chapter can show the
difference instead of asserting it.
"""

from __future__ import annotations

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
