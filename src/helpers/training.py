"""The training loop shared by every neural chapter.

Batches are dictionaries: ``batch["inputs"]`` goes to the model as keyword arguments
(``input_ids`` and ``attention_mask`` for both the BiLSTM and BERT), the other keys (``labels``,
``teacher_logits``, ``index``) are for the loss and for putting predictions back in order.
Texts of similar length are batched together and padded only to the longest in their batch
(dynamic padding), which on a CPU is several times faster than padding everything to 512.
"""

from __future__ import annotations

import copy
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from .config import SEED
from .evaluation import evaluate

Batch = dict[str, object]
LossFn = Callable[[torch.Tensor, Batch], torch.Tensor]


def set_seed(seed: int = SEED) -> None:
    """Seed Python, NumPy and PyTorch (CPU and CUDA) so that runs repeat."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """The device to train on: the one asked for, else CUDA when present, else the CPU."""
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class EncodedDataset(Dataset):
    """Token ids of each text, with its label and any per-text extras (e.g. teacher logits)."""

    def __init__(
        self,
        input_ids: Sequence[Sequence[int]],
        labels: Sequence[int] | None = None,
        extras: dict[str, np.ndarray] | None = None,
    ) -> None:
        self.input_ids = [list(ids) for ids in input_ids]
        n = len(self.input_ids)
        self.labels = None if labels is None else np.asarray(labels, dtype=np.int64)
        self.extras = {k: np.asarray(v, dtype=np.float32) for k, v in (extras or {}).items()}
        for name, values in [("labels", self.labels), *self.extras.items()]:
            if values is not None and len(values) != n:
                raise ValueError(f"{n} texts but {len(values)} {name}")

    def __len__(self) -> int:
        return len(self.input_ids)

    def __getitem__(self, i: int) -> dict[str, object]:
        item: dict[str, object] = {"input_ids": self.input_ids[i], "index": i}
        if self.labels is not None:
            item["labels"] = self.labels[i]
        for name, values in self.extras.items():
            item[name] = values[i]
        return item


def pad_collate(pad_id: int) -> Callable[[list[dict]], Batch]:
    """A collate function that pads ``input_ids`` to the longest text of the batch."""

    def collate(items: list[dict]) -> Batch:
        # At least one position, so a batch of empty texts still has a shape the models accept.
        longest = max(1, *(len(item["input_ids"]) for item in items))
        ids = torch.full((len(items), longest), pad_id, dtype=torch.long)
        mask = torch.zeros((len(items), longest), dtype=torch.long)
        for row, item in enumerate(items):
            n = len(item["input_ids"])
            ids[row, :n] = torch.tensor(item["input_ids"], dtype=torch.long)
            mask[row, :n] = 1
        batch: Batch = {
            "inputs": {"input_ids": ids, "attention_mask": mask},
            "index": torch.tensor([item["index"] for item in items]),
        }
        for key in items[0].keys() - {"input_ids", "index"}:
            batch[key] = torch.as_tensor(np.stack([item[key] for item in items]))
        return batch

    return collate


def length_batches(
    lengths: Sequence[int], batch_size: int, shuffle: bool, seed: int = SEED, pool: int = 50
) -> list[list[int]]:
    """Indices grouped into batches of similar length.

    Without shuffling, batches follow the sorted order (for prediction). With shuffling, indices
    are shuffled, sorted by length inside pools of ``pool`` batches, cut into batches and the
    batches shuffled: near-minimal padding, still a random order every epoch.
    """
    lengths = np.asarray(lengths)
    if not shuffle:
        order = np.argsort(lengths, kind="stable")
        return [order[i:i + batch_size].tolist() for i in range(0, len(order), batch_size)]
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(lengths))
    size = batch_size * pool
    pools = [order[i:i + size] for i in range(0, len(order), size)]
    pools = [chunk[np.argsort(lengths[chunk], kind="stable")] for chunk in pools]
    batches = [p[i:i + batch_size].tolist() for p in pools for i in range(0, len(p), batch_size)]
    rng.shuffle(batches)
    return batches


class _LengthBatchSampler:
    """Yields :func:`length_batches`, reshuffled with a new seed every epoch."""

    def __init__(self, lengths: Sequence[int], batch_size: int, shuffle: bool, seed: int) -> None:
        self.lengths, self.batch_size, self.shuffle, self.seed = lengths, batch_size, shuffle, seed
        self.epoch = 0

    def __iter__(self):
        seed = self.seed + self.epoch
        batches = length_batches(self.lengths, self.batch_size, self.shuffle, seed)
        self.epoch += 1
        return iter(batches)

    def __len__(self) -> int:
        return -(-len(self.lengths) // self.batch_size)


def make_loader(
    dataset: EncodedDataset, batch_size: int, shuffle: bool, pad_id: int, seed: int = SEED
) -> DataLoader:
    """A DataLoader with length-bucketed batches and dynamic padding."""
    lengths = [len(ids) for ids in dataset.input_ids]
    sampler = _LengthBatchSampler(lengths, batch_size, shuffle, seed)
    return DataLoader(dataset, batch_sampler=sampler, collate_fn=pad_collate(pad_id))


def model_logits(model: nn.Module, batch: Batch, device: torch.device) -> torch.Tensor:
    """Run ``model`` on a batch's inputs; works for plain modules and transformers models."""
    inputs = {k: v.to(device) for k, v in batch["inputs"].items()}
    output = model(**inputs)
    return output.logits if hasattr(output, "logits") else output


def cross_entropy_loss(logits: torch.Tensor, batch: Batch) -> torch.Tensor:
    """Cross-entropy on raw logits: softmax is inside the loss, never applied before it."""
    return F.cross_entropy(logits, batch["labels"].to(logits.device))


@torch.no_grad()
def predict_logits(model: nn.Module, loader: DataLoader, device: torch.device | None = None,
                   progress: bool = False) -> np.ndarray:
    """Logits for every example of ``loader``, in the dataset's order (batches may be sorted)."""
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    chunks, order = [], []
    for batch in tqdm(loader, desc="predict", disable=not progress, leave=False, mininterval=5):
        chunks.append(model_logits(model, batch, device).float().cpu())
        order.append(batch["index"])
    model.train(was_training)
    logits = torch.cat(chunks).numpy()
    result = np.empty_like(logits)
    result[torch.cat(order).numpy()] = logits
    return result


def logits_to_proba(logits: np.ndarray) -> np.ndarray:
    """Probability of the toxic class (column 1) from two-column logits."""
    return torch.softmax(torch.as_tensor(logits, dtype=torch.float32), dim=-1)[:, 1].numpy()


@dataclass
class History:
    """Per-epoch figures of a training run; ``best_epoch`` is the one whose weights were kept."""

    epochs: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    seconds: float = 0.0

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.epochs).set_index("epoch")

    def plot(self, title: str = "", axes=None):
        """Training loss and validation F1 per epoch, the kept epoch marked."""
        frame = self.to_frame()
        if axes is None:
            _, axes = plt.subplots(1, 2, figsize=(9, 3))
        frame["train_loss"].plot(ax=axes[0], marker="o", title="training loss")
        frame["valid_f1"].plot(ax=axes[1], marker="o", title="validation F1 (toxic)")
        axes[1].axvline(self.best_epoch, color="grey", linestyle="--", label="kept")
        axes[1].legend()
        for ax in axes:
            ax.set_xlabel("epoch")
        if title:
            axes[0].figure.suptitle(title)
        return axes


def fit(
    model: nn.Module,
    train_loader: DataLoader,
    valid_loader: DataLoader,
    valid_labels: Sequence[int],
    *,
    epochs: int,
    lr: float,
    loss_fn: LossFn = cross_entropy_loss,
    weight_decay: float = 0.01,
    warmup_ratio: float = 0.0,
    max_grad_norm: float | None = 1.0,
    patience: int = 2,
    device: str | torch.device | None = None,
    seed: int = SEED,
    desc: str = "train",
) -> History:
    """Train with AdamW and a linear schedule; stop early on validation F1; keep the best weights.

    ``loss_fn(logits, batch)`` returns the loss; the default is cross-entropy on the labels,
    distillation chapters pass their own. After ``patience`` epochs without a better validation
    F1 training stops, and the weights of the best epoch are loaded back into ``model``.
    """
    from transformers import get_linear_schedule_with_warmup

    set_seed(seed)
    device = pick_device(device)
    model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    total_steps = epochs * len(train_loader)
    scheduler = get_linear_schedule_with_warmup(
        optimizer, int(warmup_ratio * total_steps), total_steps
    )
    history = History()
    best_f1, best_state, waited = -1.0, None, 0
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        model.train()
        total, count = 0.0, 0
        # mininterval keeps the bar from writing hundreds of lines into a notebook's saved output.
        bar = tqdm(train_loader, desc=f"{desc} epoch {epoch}/{epochs}", leave=False,
                   mininterval=5)
        for batch in bar:
            loss = loss_fn(model_logits(model, batch, device), batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if max_grad_norm:
                nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
            optimizer.step()
            scheduler.step()
            total += loss.item()
            count += 1
            bar.set_postfix(loss=f"{total / count:.4f}", refresh=False)
        proba = logits_to_proba(predict_logits(model, valid_loader, device))
        scores = evaluate(valid_labels, proba)
        history.epochs.append({
            "epoch": epoch, "train_loss": total / max(count, 1), "valid_f1": scores["f1"],
            "valid_ap": scores["average_precision"], "seconds": time.perf_counter() - start,
        })
        print(f"{desc} epoch {epoch}: loss {total / max(count, 1):.4f}, "
              f"valid F1 {scores['f1']:.4f}, AP {scores['average_precision']:.4f}")
        if scores["f1"] > best_f1:
            best_f1, waited, history.best_epoch = scores["f1"], 0, epoch
            best_state = copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})
        else:
            waited += 1
            if waited >= patience:
                print(f"{desc}: no better validation F1 for {patience} epochs; stopping.")
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    history.seconds = time.perf_counter() - start
    print(f"{desc}: kept epoch {history.best_epoch} (valid F1 {best_f1:.4f}), "
          f"{history.seconds:.0f} s")
    return history
