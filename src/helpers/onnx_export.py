"""The book's neural models as ONNX files, for ONNX Runtime to serve without PyTorch.

:func:`export_onnx` writes a self-contained folder for any BiLSTM or transformers classifier of
the book (:class:`helpers.classifiers.NeuralTextClassifier`): ``model.onnx``, the model's own
``tokenizer.json`` and ``predictor.json`` (what :mod:`helpers.predict` needs to encode texts as the
model was trained). Every model goes through one exporter, ``torch.onnx.export(...,
dynamo=False)``, with dynamic batch and sequence axes. A transformers model is exported through
:class:`LogitsOnly`, which hands it ready-made positions, token types and mask, and with its plain
("eager") attention. Measured on the book's tiny BERT with that wrapper (full data, int8, batch 1,
one thread, served by :mod:`helpers.predict`; three passes over 200 test comments): 0.78-0.82 ms
for this export, 0.76-0.83 ms for ``dynamo=True`` with the same attention (the same speed), and
0.82-0.88 ms for ``dynamo=True`` with PyTorch's fused attention (``sdpa``). All three compute the
same function; only the graph differs.

The BiLSTM's ``forward`` packs its batch (``pack_padded_sequence``), which ONNX cannot express.
:class:`ExportableBiLSTM` computes the same logits from the padded batch: the forward direction
runs over the padded sequence and is read at each text's last real token; the backward direction
runs over each text reversed within its own length (a gather), so it too starts at the last real
token. :func:`check_export` measures how close an exported file is to the PyTorch model.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import logging
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer
from torch import nn

from .batching import CPU, text_logits
from .classifiers import NeuralTextClassifier
from .encoding import pad_token_id
from .evaluation import evaluate
from .predict import (
    LABELS,
    MODEL_FILES,
    SETTINGS_FILE,
    TOKENIZER_FILE,
    load_predictor,
    softmax_toxic,
)
from .token_models import BiLSTMClassifier, CNNClassifier

OPSET = 18


class LogitsOnly(nn.Module):
    """A transformers sequence classifier whose forward returns the logits tensor only.

    Left to itself, a BERT derives its position ids, token types and attention mask from the
    input's shape, and each derivation is exported as a chain of small operations (shape, gather,
    range, expand, compare...) that ONNX Runtime then runs on every call. Handed in ready-made
    (positions ``0..n-1``, token type 0 as a single-segment text has, and the additive mask the
    attention adds to its scores), they cost a few operations, with the same logits
    (:func:`helpers.deployment.wrapper_effect` measures both graphs). ``prepared_inputs=False``
    passes ``input_ids`` and ``attention_mask`` alone, to export the graph transformers builds.
    """

    def __init__(self, model: nn.Module, prepared_inputs: bool = True) -> None:
        super().__init__()
        self.model = model
        self.prepared_inputs = prepared_inputs
        accepted = inspect.signature(model.forward).parameters
        self.takes_positions = "position_ids" in accepted
        self.takes_token_types = "token_type_ids" in accepted

    def forward(self, input_ids: torch.Tensor,
                attention_mask: torch.Tensor) -> torch.Tensor:
        if not self.prepared_inputs:
            return self.model(input_ids=input_ids, attention_mask=attention_mask).logits
        # (batch, 1, 1, sequence): 0 where a token is real, the lowest float where it is
        # padding, so that softmax gives padding no weight (the mask transformers itself
        # would build).
        blocked = 1.0 - attention_mask[:, None, None, :].to(torch.float32)
        extra = {}
        if self.takes_positions:
            extra["position_ids"] = torch.arange(input_ids.shape[1],
                                                 device=input_ids.device).unsqueeze(0)
        if self.takes_token_types:
            extra["token_type_ids"] = torch.zeros_like(input_ids)
        return self.model(input_ids=input_ids, attention_mask=blocked *
                          torch.finfo(torch.float32).min, **extra).logits


def _one_direction(lstm: nn.LSTM, suffix: str) -> nn.LSTM:
    """A one-directional LSTM with the weights of one direction of a bidirectional ``lstm``."""
    single = nn.LSTM(lstm.input_size, lstm.hidden_size, batch_first=True)
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        getattr(single, f"{name}_l0").data.copy_(getattr(lstm, f"{name}_l0{suffix}").data)
    return single.eval()


class ExportableBiLSTM(nn.Module):
    """The logits of a :class:`helpers.token_models.BiLSTMClassifier` without packed
    sequences."""

    def __init__(self, model: BiLSTMClassifier) -> None:
        super().__init__()
        if model.lstm.num_layers != 1 or not model.lstm.bidirectional:
            raise ValueError("ExportableBiLSTM expects the book's one-layer bidirectional LSTM")
        self.embedding = model.embedding
        self.forward_lstm = _one_direction(model.lstm, "")
        self.backward_lstm = _one_direction(model.lstm, "_reverse")
        self.classifier = model.classifier

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        lengths = attention_mask.sum(dim=1).clamp(min=1).unsqueeze(1)  # (batch, 1)
        embedded = self.embedding(input_ids)
        positions = torch.arange(input_ids.shape[1], device=input_ids.device).unsqueeze(0)
        last = lengths - 1
        # Position t of the reversed text is position length-1-t of the text; padding stays put.
        reverse = torch.where(positions < lengths, last - positions, positions)
        index = reverse.unsqueeze(-1).expand(-1, -1, embedded.shape[-1])
        forward_out, _ = self.forward_lstm(embedded)
        backward_out, _ = self.backward_lstm(torch.gather(embedded, 1, index))
        at_last = last.unsqueeze(-1).expand(-1, 1, forward_out.shape[-1])
        features = torch.cat([forward_out.gather(1, at_last).squeeze(1),
                              backward_out.gather(1, at_last).squeeze(1)], dim=1)
        return self.classifier(features)


def exportable(model: nn.Module, prepared_inputs: bool = True) -> tuple[nn.Module, str]:
    """The module to export for a book model, and its kind for ``predictor.json`` (``"tokens"``: a
    network over the ids of a ``tokenizers`` tokenizer, BPE or words; ``"bert"``: a transformers
    classifier, wrapped in :class:`LogitsOnly` with ``prepared_inputs``)."""
    if isinstance(model, BiLSTMClassifier):
        return ExportableBiLSTM(model).eval(), "tokens"
    if isinstance(model, CNNClassifier):
        return model.eval(), "tokens"
    if hasattr(model, "config") and hasattr(model.config, "num_labels"):
        return LogitsOnly(model, prepared_inputs).eval(), "bert"
    raise TypeError(f"Cannot export a {type(model).__name__}: only the book's BiLSTM, CNN and "
                    "transformers sequence classifiers are exported")


@contextlib.contextmanager
def quiet_export() -> Iterator[None]:
    """Silence the exporter's progress lines and its internal deprecation notices.

    They concern PyTorch's own code, not the model; whether the export is right is measured by
    :func:`check_export` instead.
    """
    names = ("torch.onnx", "torch.export", "torch._dynamo", "torch.fx", "onnxscript")
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(None):
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


@contextlib.contextmanager
def eager_attention(model: nn.Module) -> Iterator[None]:
    """Run the block with a transformers model's plain attention, then restore its own.

    Models without an attention implementation (the BiLSTM, the CNN) are left as they are.
    """
    previous = getattr(getattr(model, "config", None), "_attn_implementation", None)
    if previous in (None, "eager") or not hasattr(model, "set_attn_implementation"):
        yield
        return
    model.set_attn_implementation("eager")
    try:
        yield
    finally:
        model.set_attn_implementation(previous)


def exporter_fingerprint() -> str:
    """A short hash of the code that writes ONNX folders (this module and the int8 step).

    Stored in ``predictor.json``: a folder written by other code is exported again.
    """
    from . import quantization

    digest = hashlib.sha256()
    for module in (__file__, quantization.__file__):
        digest.update(Path(module).read_bytes())
    return digest.hexdigest()[:16]


def _save_tokenizer(tokenizer, path: Path) -> None:
    """The tokenizer as a ``tokenizers`` JSON file (a transformers tokenizer: its fast backend)."""
    backend = tokenizer if isinstance(tokenizer, Tokenizer) else tokenizer.backend_tokenizer
    backend.save(str(path))


def export_onnx(classifier: NeuralTextClassifier, folder: str | Path,
                prepared_inputs: bool = True) -> Path:
    """Write ``classifier`` as a folder :func:`helpers.predict.load_predictor` serves.

    ``model.onnx`` (opset :data:`OPSET`, inputs ``input_ids`` and ``attention_mask`` of shape
    batch x sequence, output ``logits``), ``tokenizer.json`` and ``predictor.json`` (kind, max
    length, padding id, labels, name). A classifier with a ``head`` (logistic regression on
    frozen embeddings) is not exported: its head is scikit-learn, not part of the network.
    ``prepared_inputs``: see :class:`LogitsOnly` (a BERT only).
    """
    if classifier.head is not None:
        raise ValueError(f"{classifier.name}: a model with a scikit-learn head is not exported")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    module, kind = exportable(classifier.model, prepared_inputs)
    pad = pad_token_id(classifier.tokenizer)
    # A sample batch with padding, so that no masking path is traced away.
    ids = torch.full((2, 6), pad, dtype=torch.long)
    ids[:, 0] = 1 if pad != 1 else 2
    mask = torch.zeros_like(ids)
    mask[0, :] = 1
    mask[1, :3] = 1
    path, names = str(folder / MODEL_FILES["fp32"]), ["input_ids", "attention_mask"]
    axes = {name: {0: "batch", 1: "sequence"} for name in names}
    with quiet_export(), eager_attention(classifier.model):
        torch.onnx.export(module, (ids, mask), path, dynamo=False, input_names=names,
                          output_names=["logits"], dynamic_axes=axes, opset_version=OPSET)
    _save_tokenizer(classifier.tokenizer, folder / TOKENIZER_FILE)
    settings = {"kind": kind, "name": classifier.name, "max_length": int(classifier.max_length),
                "pad_id": pad, "labels": LABELS, "exporter": exporter_fingerprint()}
    (folder / SETTINGS_FILE).write_text(json.dumps(settings, ensure_ascii=False, indent=1),
                                        encoding="utf-8")
    return folder


def compare_logits(reference: np.ndarray, exported: np.ndarray,
                   labels: Sequence[int] | None = None) -> dict[str, float]:
    """How far ``exported`` logits are from the PyTorch model's ``reference`` logits.

    ``max |dlogit|``: the largest difference of a logit; ``flips``: texts whose predicted class
    (toxic probability 0.5) changed; with ``labels``, ``dF1`` is the exported F1 minus PyTorch's.
    """
    proba, reference_proba = softmax_toxic(exported), softmax_toxic(reference)
    check = {"max |dlogit|": float(np.abs(exported - reference).max()) if len(exported) else 0.0,
             "flips": int(((proba >= 0.5) != (reference_proba >= 0.5)).sum())}
    if labels is not None:
        check["dF1"] = evaluate(labels, proba)["f1"] - evaluate(labels, reference_proba)["f1"]
    return check


def check_export(classifier: NeuralTextClassifier, folder: str | Path, texts: Sequence[str],
                 labels: Sequence[int] | None = None, precision: str = "fp32") -> dict[str, float]:
    """:func:`compare_logits` of the exported ``precision`` model and PyTorch's on ``texts``."""
    texts = list(texts)
    reference = text_logits(classifier.model, classifier.tokenizer, texts, classifier.max_length,
                            classifier.batch_size, CPU)
    return compare_logits(reference, load_predictor(folder, precision).logits(texts), labels)


def export_saved_model(source: str | Path, folder: str | Path, int8: bool = True) -> Path:
    """Export a model folder saved by the book (a BiLSTM or CNN folder of
    :func:`helpers.token_models.save_token_model` or a transformers folder) to ``folder``, with
    its int8 copy unless ``int8`` is false."""
    from .classifiers import load_token_classifier, load_transformers_classifier
    from .quantization import quantize_int8

    source = Path(source)
    if not source.is_dir():
        raise FileNotFoundError(f"No saved model folder at {source}")
    is_token_model = (source / "model.pt").is_file()
    classifier = (load_token_classifier if is_token_model else
                  load_transformers_classifier)(source)
    export_onnx(classifier, folder)
    if int8:
        quantize_int8(folder)
    return Path(folder)
