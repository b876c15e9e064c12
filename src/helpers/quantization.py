"""Int8 models: ONNX Runtime's dynamic quantization of an exported model.

Dynamic quantization stores weights as 8-bit integers and quantizes activations on the fly, so it
needs no calibration data and no retraining. :func:`quantize_int8` applies ONNX Runtime's
``quantize_dynamic`` with signed 8-bit weights (``QInt8``) to a folder written by
:func:`helpers.onnx_export.export_onnx`: matrix products, the LSTM and the embedding tables
(``Gather``) become int8, and ``model.int8.onnx`` is written beside ``model.onnx``, so that
:func:`helpers.predict.load_predictor` serves it by default. The model is first pre-processed as
ONNX Runtime advises (``quant_pre_process``: shape inference and constant folding); without it the
LSTM's weights, which the exporter reorders with a few operations, are not constants and the LSTM
would stay float32.

PyTorch's own int8 paths are not used by the book: the one current PyTorch recommends (torchao's
``quantize_``) is slower than float32 in eager mode on a CPU (its speed comes with
``torch.compile`` and on GPUs), and ``torch.ao.quantization.quantize_dynamic`` is deprecated.

:func:`int8_round_trip` spells out what quantization does to one tensor (scale, zero point,
rounding) in numpy, so that chapter 6 can show the error it makes on a real weight matrix
(:func:`largest_weight_matrix`).
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .predict import MODEL_FILES


@contextlib.contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """ONNX Runtime's quantization tools log advice and progress through the root logger."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def quantize_int8(folder: str | Path) -> Path:
    """Write ``model.int8.onnx`` (int8 weights, dynamic int8 activations) from ``model.onnx``."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    folder = Path(folder)
    source = folder / MODEL_FILES["fp32"]
    if not source.is_file():
        raise FileNotFoundError(f"No {source}: export the model first "
                                "(helpers.onnx_export.export_onnx)")
    target = folder / MODEL_FILES["int8"]
    with _quiet_root_logger(), tempfile.TemporaryDirectory() as scratch:
        prepared = str(Path(scratch) / "prepared.onnx")
        quant_pre_process(str(source), prepared, skip_symbolic_shape=True)
        quantize_dynamic(prepared, str(target), weight_type=QuantType.QInt8)
    return target


@dataclass(frozen=True)
class Int8RoundTrip:
    """A tensor quantized to int8 and back: ``q = round(x / scale) + zero_point``, clipped to
    int8, and ``restored = scale * (q - zero_point)``."""

    scale: float
    zero_point: int
    q: np.ndarray
    restored: np.ndarray


def int8_round_trip(x: np.ndarray, symmetric: bool = False) -> Int8RoundTrip:
    """Quantize ``x`` to int8 with one scale for the whole tensor, and dequantize it.

    Asymmetric: ``[min(x), max(x)]`` (widened to hold 0, so that 0 stays exact) is spread over
    the 256 levels -128..127, and ``zero_point`` is the level of 0. Symmetric (what ONNX
    Runtime does to int8 weights): ``[-max|x|, max|x|]`` over -127..127, ``zero_point = 0``.
    """
    x = np.asarray(x, dtype=np.float32)
    if symmetric:
        qmin, low, high = -127, -float(np.abs(x).max()), float(np.abs(x).max())
    else:
        qmin, low, high = -128, min(float(x.min()), 0.0), max(float(x.max()), 0.0)
    scale = (high - low) / (127 - qmin) or 1.0  # an all-zero tensor: any scale is exact
    zero_point = int(round(qmin - low / scale))
    q = np.clip(np.round(x / scale) + zero_point, qmin, 127).astype(np.int8)
    restored = (scale * (q.astype(np.float32) - zero_point)).astype(np.float32)
    return Int8RoundTrip(scale, zero_point, q, restored)


def largest_weight_matrix(model: Any) -> tuple[str, np.ndarray]:
    """The name and values of a PyTorch model's largest 2-D weight outside its embedding
    tables: one of the matrices whose products int8 quantization speeds up."""
    name, weight = max(((n, p) for n, p in model.named_parameters()
                        if p.ndim == 2 and "embeddings" not in n), key=lambda item: item[1].numel())
    return name, weight.detach().cpu().numpy()
