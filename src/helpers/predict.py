"""Serve an exported model: raw texts in, toxic-class probabilities out, without PyTorch.

A folder written by :func:`helpers.onnx_export.export_onnx` holds everything a server needs:
``model.onnx`` (float32) and/or ``model.int8.onnx`` (int8 weights), the model's own
``tokenizer.json`` and ``predictor.json`` (its kind, max length, padding id and labels). This
module reads it with ``onnxruntime``, ``tokenizers`` and ``numpy`` only, so it runs on a machine
without PyTorch or transformers::

    python -m helpers.predict --model artifacts/full/onnx/bilstm "ты дурак" "спасибо за статью"
    cat comments.txt | python -m helpers.predict --model artifacts/full/onnx/bilstm

Texts are encoded exactly as the book's PyTorch models saw them
(:func:`helpers.encoding.encode_texts` and :func:`helpers.batching.text_logits`): cut to the max
length the model was trained with (a BERT keeps its final [SEP]), an empty BiLSTM text becomes
one [PAD] token, and texts of similar length are batched and padded only to their longest.

Do not import anything from :mod:`helpers` here that imports torch.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import UserError, add_debug_flag, run_command

SETTINGS_FILE = "predictor.json"
MODEL_FILES = {"fp32": "model.onnx", "int8": "model.int8.onnx"}
TOKENIZER_FILE = "tokenizer.json"
KINDS = ("bert", "tokens")  # a transformers classifier, or a network over BPE or word ids
LABELS = ["non-toxic", "toxic"]
BATCH_SIZE = 64
# ONNX Runtime fusions the book turns off. SkipLayerNormFusion merges a transformer's residual
# addition and layer norm into one kernel, which on the book's CPU is slower than the two it
# replaces: without it, every BERT of chapter 6 ran 1.14-1.33 times faster in four full-data runs
# (int8, batch 1, one thread; helpers.deployment.fusion_table, which the chapter runs on the
# reader's machine).
DISABLED_FUSIONS = ("SkipLayerNormFusion",)
EXPORT_HINT = ("Export a saved model first: helpers.onnx_export.export_saved_model(MODEL_FOLDER, "
               "OUT_FOLDER), then pass OUT_FOLDER (see the README, 'Export and serve a model').")


class ModelFolderError(UserError, ValueError):
    """An exported model folder that is missing or incomplete; the message says how to fix it."""


def read_settings(folder: str | Path) -> dict[str, Any]:
    """``predictor.json`` of an exported model folder, checked; :class:`ModelFolderError` if the
    folder is missing, is not an exported model (e.g. a PyTorch folder) or lacks a file."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelFolderError(f"No model folder at {folder}. {EXPORT_HINT}")
    path = folder / SETTINGS_FILE
    if not path.is_file():
        found = ", ".join(sorted(p.name for p in folder.iterdir())[:6]) or "nothing"
        raise ModelFolderError(
            f"{folder} is not an exported ONNX model folder: it has no {SETTINGS_FILE} (found: "
            f"{found}). A PyTorch or transformers folder cannot be served without torch. "
            f"{EXPORT_HINT}")
    settings = json.loads(path.read_text(encoding="utf-8"))
    if settings.get("kind") not in KINDS:
        raise ModelFolderError(f"{path}: kind must be one of {KINDS}, not "
                               f"{settings.get('kind')!r}. {EXPORT_HINT}")
    if not (folder / TOKENIZER_FILE).is_file():
        raise ModelFolderError(f"{folder} has no {TOKENIZER_FILE}: the folder is incomplete. "
                               f"{EXPORT_HINT}")
    return settings


def model_file(folder: str | Path, precision: str | None = None) -> Path:
    """The ONNX file to serve: ``precision`` ``"int8"`` or ``"fp32"``; ``None``: int8 if exported,
    else fp32."""
    folder = Path(folder)
    if precision is not None and precision not in MODEL_FILES:
        raise ValueError(f"precision must be one of {tuple(MODEL_FILES)}, not {precision!r}")
    candidates = [precision] if precision else ["int8", "fp32"]
    for name in candidates:
        if (folder / MODEL_FILES[name]).is_file():
            return folder / MODEL_FILES[name]
    wanted = " or ".join(MODEL_FILES[name] for name in candidates)
    raise ModelFolderError(f"{folder} has no {wanted}. {EXPORT_HINT}"
                           + (" Quantize it with helpers.quantization.quantize_int8."
                              if precision == "int8" else ""))


def softmax_toxic(logits: np.ndarray) -> np.ndarray:
    """Probability of the toxic class (column 1) from two-column logits, in numpy."""
    logits = np.asarray(logits, dtype=np.float64)
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (shifted[:, 1] / shifted.sum(axis=1)).astype(np.float32)


@dataclass
class Predictor:
    """An ONNX Runtime session with the tokenizer and settings of its exported folder."""

    session: Any
    tokenizer: Any
    settings: dict[str, Any]
    name: str
    size_mb: float
    batch_size: int = BATCH_SIZE

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text, cut as the model was trained (see the module docstring)."""
        max_length, pad = int(self.settings["max_length"]), int(self.settings["pad_id"])
        rows = [enc.ids for enc in self.tokenizer.encode_batch(list(texts))]
        if self.settings["kind"] == "bert":  # [CLS] ... [SEP]: cut inside, keep the last [SEP]
            return [ids if len(ids) <= max_length else ids[:max_length - 1] + ids[-1:]
                    for ids in rows]
        return [ids[:max_length] or [pad] for ids in rows]

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        """Two-column logits of ``texts`` in their order, in length-sorted, padded batches."""
        ids = self.encode(texts)
        if len(ids) == 1:  # one request: no sorting, padding or copying into batches
            row = np.asarray(ids, dtype=np.int64)
            return self.session.run(["logits"], {"input_ids": row,
                                                 "attention_mask": np.ones_like(row)})[0]
        out = np.zeros((len(ids), len(self.settings.get("labels", LABELS))), dtype=np.float32)
        order = np.argsort([len(row) for row in ids], kind="stable")
        pad = int(self.settings["pad_id"])
        for start in range(0, len(order), self.batch_size):
            chosen = order[start:start + self.batch_size]
            longest = max(1, *(len(ids[i]) for i in chosen))
            input_ids = np.full((len(chosen), longest), pad, dtype=np.int64)
            mask = np.zeros((len(chosen), longest), dtype=np.int64)
            for row, i in enumerate(chosen):
                input_ids[row, :len(ids[i])] = ids[i]
                mask[row, :len(ids[i])] = 1
            out[chosen] = self.session.run(
                ["logits"], {"input_ids": input_ids, "attention_mask": mask})[0]
        return out

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Probability of the toxic class for each text, in the order given."""
        if len(texts) == 0:
            return np.zeros(0, dtype=np.float32)
        return softmax_toxic(self.logits(texts))


def inference_session(path: str | Path, threads: int = 1,
                      disabled_fusions: Sequence[str] = DISABLED_FUSIONS,
                      optimized_model_path: str | Path | None = None) -> Any:
    """An ONNX Runtime CPU session for the ONNX file ``path`` with the book's serving settings:
    ``threads`` intra-op threads (0: one per core), one inter-op thread, errors-only logging,
    every default graph optimization except ``disabled_fusions``. With ``optimized_model_path``
    the graph it runs, once optimized, is also written there."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only
    if optimized_model_path is not None:
        options.optimized_model_filepath = str(optimized_model_path)
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"],
                                disabled_optimizers=list(disabled_fusions))


def load_predictor(folder: str | Path, precision: str | None = None, threads: int = 1,
                   batch_size: int = BATCH_SIZE,
                   disabled_fusions: Sequence[str] = DISABLED_FUSIONS) -> Predictor:
    """A :class:`Predictor` for an exported folder, on the CPU with ``threads`` threads (0: ONNX
    Runtime's default, one per core).

    ``precision``: see :func:`model_file`. ``disabled_fusions``: ONNX Runtime graph optimizers
    not to apply (``()``: all of its default optimizations; see :data:`DISABLED_FUSIONS`).
    ``size_mb`` counts what a deployment ships: the ONNX file, the tokenizer and the settings.
    """
    from tokenizers import Tokenizer

    folder = Path(folder)
    settings = read_settings(folder)
    path = model_file(folder, precision)
    session = inference_session(path, threads, disabled_fusions)
    tokenizer = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
    tokenizer.no_truncation()  # cut by Predictor.encode, exactly as in training
    tokenizer.no_padding()
    shipped = [path, folder / TOKENIZER_FILE, folder / SETTINGS_FILE]
    size_mb = sum(p.stat().st_size for p in shipped) / 1e6
    return Predictor(session, tokenizer, settings, settings.get("name", folder.name), size_mb,
                     batch_size)


def predict_command(argv: Sequence[str] | None = None) -> int:
    """Command line: print one ``probability<TAB>text`` line per text (arguments, or one per
    line of standard input, blank lines skipped); a folder that cannot be served is one line on
    standard error and exit status 2 (:func:`helpers.errors.run_command`)."""
    return run_command(_predict, argv, prog="python -m helpers.predict")


def _predict(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m helpers.predict",
        description="Toxic-class probability of each text, from an exported ONNX model folder.")
    parser.add_argument("--model", required=True, help="folder written by export_onnx")
    parser.add_argument("--precision", choices=tuple(MODEL_FILES), default=None,
                        help="int8 or fp32 (default: int8 if the folder has it)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("texts", nargs="*", help="texts to classify (default: one per stdin line)")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    # The model first: a wrong folder is reported before the command waits on standard input.
    predictor = load_predictor(args.model, args.precision, args.threads)
    # A blank line separates texts, it is not one: scoring it would print a probability of nothing.
    texts = args.texts or [line.rstrip("\r\n") for line in sys.stdin if line.strip()]
    for text, proba in zip(texts, predictor.predict_proba(texts), strict=True):
        print(f"{proba:.4f}\t{text}")
    return 0


if __name__ == "__main__":
    sys.exit(predict_command())
