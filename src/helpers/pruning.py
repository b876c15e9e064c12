"""Vocabulary pruning: keep only the teacher's tokens that the training texts use.

rubert-tiny's vocabulary has about 30,000 tokens, most of them never seen in these comments, and
its embedding matrix is most of the model's parameters. The source article keeps the tokens seen
more than :data:`MIN_COUNT` times in the training texts (plus the special tokens), builds a
WordPiece tokenizer over them, and maps ids between the two vocabularies by indexing
(:class:`PrunedVocab`). Only training texts are counted, so the test texts choose nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from transformers import BertTokenizer, PreTrainedTokenizerBase

MIN_COUNT = 5  # the source article keeps tokens seen more than 5 times


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


def _token_ids(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str]) -> list[list[int]]:
    """Every token id of each text, no special tokens, nothing cut: tokens are counted here, not
    fed to a model, so the tokenizer's "longer than the maximum length" warning is switched off."""
    return tokenizer(list(texts), add_special_tokens=False, verbose=False)["input_ids"]


def count_token_ids(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str]) -> np.ndarray:
    """How often each of the tokenizer's ids occurs in ``texts`` (one ``np.bincount``)."""
    ids = _token_ids(tokenizer, texts)
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
    teacher_to_student = torch.full((len(tokenizer),), pruned.unk_token_id,
                                    dtype=torch.long)
    teacher_to_student[kept_ids] = torch.arange(len(kept_ids))
    return PrunedVocab(pruned, kept_ids, teacher_to_student, counts, Path(out_dir))


def unk_share(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str]) -> float:
    """Share of the tokens of ``texts`` (specials of the template excluded) that are [UNK]."""
    ids = _token_ids(tokenizer, texts)
    flat = np.concatenate([np.asarray(row, dtype=np.int64) for row in ids])
    return float((flat == tokenizer.unk_token_id).mean())


def dropped_token_share(vocab: PrunedVocab, teacher_tokenizer: PreTrainedTokenizerBase,
                        texts: Sequence[str]) -> float:
    """Share of the teacher's tokens of ``texts`` that the pruned vocabulary no longer has."""
    ids = _token_ids(teacher_tokenizer, texts)
    flat = torch.as_tensor(np.concatenate([np.asarray(row, dtype=np.int64) for row in ids]))
    dropped = vocab.to_student(flat) == vocab.tokenizer.unk_token_id
    return float((dropped & (flat != teacher_tokenizer.unk_token_id)).float().mean())


def id_map_table(vocab: PrunedVocab, teacher_tokenizer: PreTrainedTokenizerBase,
                 sentence: str) -> pd.DataFrame:
    """One row per teacher token of ``sentence``: its ids in both vocabularies and back."""
    teacher_ids = torch.tensor(teacher_tokenizer(sentence, verbose=False)["input_ids"])
    student_ids = vocab.to_student(teacher_ids)
    return pd.DataFrame({
        "token": teacher_tokenizer.convert_ids_to_tokens(teacher_ids.tolist()),
        "teacher id": teacher_ids.numpy(),
        "count in train": vocab.counts[teacher_ids.numpy()],
        "student id": student_ids.numpy(),
        "back to teacher": vocab.to_teacher(student_ids).numpy(),
        "student token": vocab.tokenizer.convert_ids_to_tokens(student_ids.tolist()),
    })
