"""Int8 dynamic quantization of the neural models, measured before and after.

Dynamic quantization stores weights as 8-bit integers and quantizes activations on the fly, so it
needs no calibration data and no retraining. Two ways are measured side by side:

* **torchao** ``quantize_(model, Int8DynamicActivationInt8WeightConfig())``: the API current PyTorch
  recommends. It replaces the weight of every ``nn.Linear`` with an int8 tensor subclass; it does
  not handle ``nn.LSTM`` (so of the BiLSTM only the output layer is quantized) nor embeddings.
  In eager mode on an x86 CPU its int8 matmuls are not faster than fp32 ones: its speed comes with
  ``torch.compile`` and on GPUs.
* ``torch.ao.quantization.quantize_dynamic``: the older path, **deprecated** (PyTorch says it will
  be removed and points to torchao), kept here because its fbgemm kernels are still the fast x86
  CPU kernels for ``nn.Linear`` and the only int8 kernels for ``nn.LSTM``.

Sizes are those of ``torch.save(state_dict)`` files actually written (safetensors cannot hold the
int8 tensor subclasses), the fp32 model saved the same way for a like-for-like comparison.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
import warnings
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from .benchmark import measure_speed, size_on_disk_mb, torch_threads
from .classifiers import NeuralTextClassifier
from .config import slug
from .evaluation import evaluate

FP32 = "fp32"
TORCHAO = "int8 torchao quantize_ (recommended API)"
DEPRECATED = "int8 quantize_dynamic (deprecated, fbgemm)"
DEPRECATION_NOTE = (
    "Note: torch.ao.quantization.quantize_dynamic is deprecated and will be removed from PyTorch "
    "(it points to torchao); it is used here only for comparison, because its fbgemm kernels are "
    "still the fast int8 kernels for nn.LSTM and nn.Linear on x86 CPUs."
)


@contextlib.contextmanager
def _quiet_torchao_import() -> Iterator[None]:
    """Silence the log lines torchao writes when imported on a CPU-only PyTorch.

    It reports that its CUDA-only kernel libraries cannot be loaded and that an Enum registration
    is redundant; both are harmless here and would otherwise fill the notebook's output.
    """
    loggers = [logging.getLogger(name) for name in ("torchao", "torch.utils._pytree")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def quantize_torchao(model: nn.Module) -> nn.Module:
    """An int8 copy of ``model``: torchao's ``quantize_`` with
    ``Int8DynamicActivationInt8WeightConfig`` on every ``nn.Linear`` (its default filter).

    The original is left untouched. Needs the ``torchao`` package.
    """
    with _quiet_torchao_import():
        from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

    quantized = copy.deepcopy(model).eval()
    quantize_(quantized, Int8DynamicActivationInt8WeightConfig())
    return quantized


def quantize_deprecated(
    model: nn.Module, modules: Iterable[type[nn.Module]] = (nn.LSTM, nn.Linear),
    verbose: bool = True,
) -> nn.Module:
    """An int8 copy of ``model`` by the deprecated ``torch.ao.quantization.quantize_dynamic``.

    Quantizes every module of the types in ``modules`` (``nn.LSTM`` and ``nn.Linear`` by default)
    with fbgemm's dynamic int8 kernels. Prints :data:`DEPRECATION_NOTE` once per call when
    ``verbose``, instead of PyTorch's long deprecation warnings, which are filtered by message so
    that any other warning still shows.
    """
    if verbose:
        print(DEPRECATION_NOTE)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"torch\.ao\.quantization is deprecated",
                                category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=r"torch\.quantize_per_tensor",
                                category=UserWarning)
        return torch.ao.quantization.quantize_dynamic(
            copy.deepcopy(model).eval(), set(modules), dtype=torch.qint8
        )


def saved_size_mb(model: nn.Module, path: str | Path) -> float:
    """Save ``model.state_dict()`` with ``torch.save`` to ``path``; return the file's size in MB."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    return size_on_disk_mb(path)


def load_quantized(fp32_model: nn.Module, path: str | Path, method: str) -> nn.Module:
    """Load a state dict saved by :func:`saved_size_mb` from a model quantized by ``method``.

    The module structure comes from quantizing a copy of ``fp32_model`` the same way (``method``
    is :data:`TORCHAO` or :data:`DEPRECATED`), then the saved int8 weights replace its own.
    ``weights_only=False``: the int8 weights are tensor subclasses and packed parameters, which the
    safe unpickler does not know; load only files you saved yourself.
    """
    if method == TORCHAO:
        skeleton = quantize_torchao(fp32_model)
    elif method == DEPRECATED:
        skeleton = quantize_deprecated(fp32_model, verbose=False)
    else:
        raise ValueError(f"method must be {TORCHAO!r} or {DEPRECATED!r}, not {method!r}")
    with _quiet_torchao_import(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"torch\.quantize_per_tensor",
                                category=UserWarning)
        # fbgemm's packed weights are pickled through the old storage API, which warns on load.
        warnings.filterwarnings("ignore", message="TypedStorage is deprecated",
                                category=UserWarning)
        state = torch.load(path, map_location="cpu", weights_only=False)
        skeleton.load_state_dict(state)
    return skeleton.eval()


def quantized_variants(classifier: NeuralTextClassifier) -> dict[str, NeuralTextClassifier]:
    """The fp32 classifier and its two int8 versions, same tokenizer and max length."""
    variants = {FP32: classifier}
    for method, quantize in ((TORCHAO, quantize_torchao), (DEPRECATED, quantize_deprecated)):
        variants[method] = dataclasses.replace(
            classifier, model=quantize(classifier.model), name=f"{classifier.name} [{method}]"
        )
    return variants


def compare_quantization(
    classifier: NeuralTextClassifier,
    test_texts: Sequence[str],
    test_labels: Sequence[int],
    latency_texts: Sequence[str],
    out_dir: str | Path,
    threads: int = 1,
    throughput_texts: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Size, CPU speed and test scores of ``classifier`` in fp32 and after each int8 path.

    Each variant's weights are saved under ``out_dir`` (``torch.save`` of its state dict) to
    measure its size. Speed is :func:`helpers.benchmark.measure_speed` with ``threads`` threads
    (the test predictions run with as many);
    ``max |dp|`` is the largest change of a test probability against fp32, ``flips`` how many test
    predictions changed side of the 0.5 threshold.
    """
    test_texts = list(test_texts)
    out_dir = Path(out_dir)
    rows, reference = [], None
    for method, variant in quantized_variants(classifier).items():
        with torch_threads(threads):
            proba = variant.predict_proba(test_texts)
        if reference is None:
            reference = proba
        scores = evaluate(test_labels, proba)
        file = out_dir / f"{slug(classifier.name)}-{slug(method)}.pt"
        speed = measure_speed(variant.predict_proba, latency_texts,
                              throughput_texts or test_texts, threads=threads)
        rows.append({
            "model": classifier.name, "variant": method,
            "size_mb": saved_size_mb(variant.model, file),
            "latency_ms": speed["latency_ms"], "texts_per_s": speed["texts_per_s"],
            "f1": scores["f1"], "average_precision": scores["average_precision"],
            "max |dp|": float(np.max(np.abs(proba - reference))) if len(proba) else 0.0,
            "flips": int(((proba >= 0.5) != (reference >= 0.5)).sum()),
        })
    return pd.DataFrame(rows).set_index(["model", "variant"])
