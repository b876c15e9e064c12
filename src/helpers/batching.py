"""Batches of texts: dynamic padding, length buckets, and batched prediction.

Batches are dictionaries: ``batch["inputs"]`` goes to the model as keyword arguments
(``input_ids`` and ``attention_mask`` for both the BiLSTM and BERT), the other keys (``labels``,
``teacher_logits``, ``index``) are for the loss and for putting predictions back in order.
Texts of similar length are batched together and padded only to the longest in their batch
(dynamic padding), which on a CPU is several times faster than padding everything to 512.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from .config import SEED
from .encoding import encode_texts, pad_token_id

Batch = dict[str, object]
CPU = torch.device("cpu")


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


class LengthBatchSampler:
    """Yields :func:`length_batches`, reshuffled with the seed ``seed + epoch`` every epoch.

    The epoch counter advances at every pass; :meth:`set_epoch` sets it, so that two trainings
    sharing one loader (a student and its twin) see exactly the same batches in the same order.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, shuffle: bool, seed: int) -> None:
        self.lengths, self.batch_size, self.shuffle, self.seed = lengths, batch_size, shuffle, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """The next pass uses the order of epoch ``epoch`` (counted from 0)."""
        self.epoch = epoch

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
    """A DataLoader with length-bucketed batches and dynamic padding (its ``batch_sampler`` is a
    :class:`LengthBatchSampler`)."""
    lengths = [len(ids) for ids in dataset.input_ids]
    sampler = LengthBatchSampler(lengths, batch_size, shuffle, seed)
    return DataLoader(dataset, batch_sampler=sampler, collate_fn=pad_collate(pad_id))


def model_logits(model: nn.Module, batch: Batch, device: torch.device) -> torch.Tensor:
    """Run ``model`` on a batch's inputs; works for plain modules and transformers models."""
    inputs = {k: v.to(device) for k, v in batch["inputs"].items()}
    output = model(**inputs)
    return output.logits if hasattr(output, "logits") else output


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


def text_logits(model: nn.Module, tokenizer: Any, texts: Sequence[str], max_length: int,
                batch_size: int = 64, device: torch.device | None = None,
                progress: bool = False) -> np.ndarray:
    """Logits of raw ``texts`` in their order: encode, bucket by length, pad per batch, predict.

    Works for every neural model of the book with its tokenizer (BPE or BERT). An empty text
    (no BPE token) gets one [PAD] step, as it would inside a longer batch.
    """
    texts = list(texts)
    pad = pad_token_id(tokenizer)
    ids = [row or [pad] for row in encode_texts(tokenizer, texts, max_length)]
    if len(ids) == 1:  # one request, as a server sees it: no sampler, loader or padding
        return _one_text_logits(model, ids[0], device)
    loader = make_loader(EncodedDataset(ids), batch_size, shuffle=False, pad_id=pad)
    with torch.inference_mode():
        return predict_logits(model, loader, device, progress=progress).astype(np.float32)


def _one_text_logits(model: nn.Module, ids: list[int], device: torch.device | None
                     ) -> np.ndarray:
    """Logits of one encoded text, shape ``(1, 2)``: the same numbers as inside a batch (the
    models ignore padding), without the batching machinery that costs a large share of a
    single short text's time."""
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    input_ids = torch.tensor([ids], dtype=torch.long, device=device)
    batch = {"inputs": {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}}
    with torch.inference_mode():
        logits = model_logits(model, batch, device).float().cpu().numpy()
    model.train(was_training)
    return logits


def padding_summary(lengths: Sequence[int], max_length: int, batch_size: int = 64) -> pd.DataFrame:
    """Token positions a model steps through per epoch, under three ways of padding.

    ``512`` pads every text to BERT's limit; ``max length`` pads every text to the chosen cut;
    ``dynamic + buckets`` pads each batch of similar-length texts only to its longest one.
    """
    cut = np.minimum(np.asarray(lengths), max_length)
    real = int(cut.sum())
    bucketed = sum(len(b) * int(cut[b].max()) for b in length_batches(cut, batch_size, True))
    rows = {
        "pad to 512": len(cut) * 512,
        f"pad to max length ({max_length})": len(cut) * max_length,
        "dynamic padding + length buckets": bucketed,
    }
    frame = pd.DataFrame({"positions": rows})
    frame["share real tokens"] = (real / frame["positions"]).round(3)
    return frame
