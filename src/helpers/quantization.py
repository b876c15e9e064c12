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
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path

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
