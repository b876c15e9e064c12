"""What chapter 6 deploys: every neural model exported to ONNX, made int8, checked, measured.

:func:`deploy_models` takes the BiLSTM and transformers rows of the results file, writes each model
as an ONNX folder (:func:`helpers.onnx_export.export_onnx`, under ``artifacts/<mode>/onnx``) with
an int8 copy (:func:`helpers.quantization.quantize_int8`), checks both against the PyTorch model
on the test split (:func:`helpers.onnx_export.compare_logits`) and measures them served by
:mod:`helpers.predict` exactly as :func:`helpers.comparison.compare_models` measures PyTorch
models, so that their rows join the same table. A folder newer than the model it was exported from
written by the same export code is reused, so re-running the chapter does not export again.

Where a small BERT's batch-1 time goes, measured on the machine at hand: :func:`wrapper_effect`
exports one BERT with and without :class:`helpers.onnx_export.LogitsOnly`'s ready-made inputs,
:func:`fusion_table` serves every exported BERT with and without
:data:`helpers.predict.DISABLED_FUSIONS`; both time their two sessions with
:func:`alternating_latency`.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from . import chapters
from .batching import CPU, text_logits
from .benchmark import measure_latency, measure_speed
from .classifiers import NeuralTextClassifier, load_classifier
from .config import BookConfig, get_config, slug
from .evaluation import evaluate
from .onnx_export import compare_logits, export_onnx, exporter_fingerprint
from .predict import (
    DISABLED_FUSIONS,
    MODEL_FILES,
    ModelFolderError,
    Predictor,
    inference_session,
    load_predictor,
    read_settings,
    softmax_toxic,
)
from .quantization import quantize_int8
from .results import field_value

EXPORTED_KINDS = ("token_model", "transformers")
# Variant label in the comparison table -> the precision load_predictor serves.
VARIANTS = {"ONNX fp32": "fp32", "ONNX int8": "int8"}


def onnx_folder(config: BookConfig, model: str) -> Path:
    """Where the ONNX export of the results row ``model`` is written."""
    return config.artifact("onnx", slug(model))


def _newest_mtime(path: Path) -> float:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return max((p.stat().st_mtime for p in files), default=0.0)


def export_is_current(folder: Path, source: Path) -> bool:
    """Whether ``folder`` holds both ONNX files, written by today's export code after the last
    change to ``source``."""
    files = [folder / name for name in MODEL_FILES.values()]
    try:
        written_by = read_settings(folder).get("exporter")
    except ModelFolderError:  # no folder, or an incomplete one
        return False
    return written_by == exporter_fingerprint() and all(f.is_file() for f in files) and \
        min(f.stat().st_mtime for f in files) >= _newest_mtime(source)


def deploy_models(
    config: BookConfig | None,
    results: pd.DataFrame,
    test: pd.DataFrame,
    latency_texts: Sequence[str],
    throughput_texts: Sequence[str],
    threads: int = 1,
    batch_size: int = 64,
    valid: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Export, quantize, check and measure every BiLSTM and transformers model of ``results``.

    Returns ``(rows, checks)``. ``rows`` has the columns of
    :func:`helpers.comparison.compare_models` plus ``variant``, one row per model and variant
    (named ``"<model> [ONNX fp32]"`` and ``"<model> [ONNX int8]"``): F1 and average precision
    measured on ``test``, ``size_mb`` of the ONNX file plus tokenizer and settings, speed with
    ``threads`` ONNX Runtime threads; with ``valid``, the validation F1 of each variant too (what a
    choice between variants is made on). ``checks`` has, per model and variant, the largest logit
    difference against PyTorch on ``test``, the flipped predictions and the F1 change.
    """
    config = config or get_config()
    texts, labels = test["text"].tolist(), test["label"].to_numpy()
    rows, checks = [], []
    for _, row in results[results["kind"].isin(EXPORTED_KINDS)].iterrows():
        model = str(row["model"])
        try:
            classifier = load_classifier(config, row)
        except (ValueError, FileNotFoundError):
            continue  # compare_models lists it among the skipped rows
        folder = onnx_folder(config, model)
        if not export_is_current(folder, config.artifacts_dir / str(row["artifact"])):
            export_onnx(classifier, folder)
            quantize_int8(folder)
        reference = text_logits(classifier.model, classifier.tokenizer, texts,
                                classifier.max_length, classifier.batch_size, CPU)
        for variant, precision in VARIANTS.items():
            # Scores do not depend on threads: computed with all cores; the session is dropped
            # before the timing below, which uses ``threads``.
            scorer = load_predictor(folder, precision, threads=0, batch_size=batch_size)
            exported = scorer.logits(texts)
            checks.append({"model": model, "variant": variant,
                           **compare_logits(reference, exported, labels)})
            scores = evaluate(labels, softmax_toxic(exported))
            if valid is not None:
                scores["valid_f1"] = evaluate(
                    valid["label"], scorer.predict_proba(valid["text"].tolist()))["f1"]
            del scorer
            predictor = load_predictor(folder, precision, threads=threads, batch_size=batch_size)
            rows.append({
                "model": f"{model} [{variant}]", "chapter": row["chapter"], "kind": "onnx",
                "variant": variant, **{k: scores.get(k) for k in (
                    "f1", "macro_f1", "average_precision", "valid_f1")},
                "params": int(classifier.params), "size_mb": predictor.size_mb,
                **measure_speed(predictor.predict_proba, latency_texts, throughput_texts,
                                threads=threads, batch_size=batch_size),
                "standin": bool(field_value(row, "standin", False)),
            })
    table = pd.DataFrame(rows).set_index("model") if rows else pd.DataFrame()
    return table, pd.DataFrame(checks)


def deployment_gains(table: pd.DataFrame) -> pd.DataFrame:
    """For each ONNX row of a table from :func:`helpers.comparison.with_deployments`: how much
    faster and smaller it is than the same model in PyTorch eager, and its F1 change; and for
    every neural row, how many times faster it is than the teacher (chapter 3) in PyTorch eager
    and than the teacher served the same way, by ONNX Runtime in int8 (served against served: the
    comparison a deployment makes)."""
    eager = table[table["variant"] == "PyTorch eager"]
    teachers = eager[eager["chapter"].astype(str) == chapters.TEACHER.number]
    teacher_ms = float(teachers["latency_ms"].iloc[0]) if len(teachers) else float("nan")
    served_teacher = [f"{name} [ONNX int8]" for name in teachers.index
                      if f"{name} [ONNX int8]" in table.index]
    served_ms = (float(table.loc[served_teacher[0], "latency_ms"]) if served_teacher
                 else float("nan"))
    rows = {}
    for model, row in table[table["variant"] != "scikit-learn"].iterrows():
        base = str(model).rsplit(" [", 1)[0] if row["variant"] in VARIANTS else str(model)
        same = eager.loc[base] if base in eager.index else None
        rows[model] = {
            "variant": row["variant"], "f1": row["f1"], "size_mb": row["size_mb"],
            "latency_ms": row["latency_ms"],
            "x faster than eager": None if same is None else same["latency_ms"] / row["latency_ms"],
            "x smaller than eager": None if same is None else same["size_mb"] / row["size_mb"],
            "dF1 vs eager (points)": None if same is None else 100 * (row["f1"] - same["f1"]),
            "x faster than eager teacher": teacher_ms / row["latency_ms"],
            "x faster than int8 teacher": served_ms / row["latency_ms"],
        }
    return pd.DataFrame.from_dict(rows, orient="index").sort_values("latency_ms")


def alternating_latency(predictors: dict[str, Predictor], texts: Sequence[str],
                        threads: int = 1, rounds: int = 3) -> dict[str, float]:
    """Batch-1 latency (ms, median of ``rounds`` passes over ``texts``) of several predictors,
    timed in alternation so that a change of the machine's speed affects them alike.

    Alternating sessions evict each other's data from the CPU caches, so the absolute times run
    higher than those of one model measured alone (:func:`deploy_models`); their ratios are what
    such a comparison measures.
    """
    times: dict[str, list[float]] = {name: [] for name in predictors}
    for _ in range(rounds):
        for name, predictor in predictors.items():
            times[name].append(measure_latency(predictor.predict_proba, texts,
                                               threads=threads)["latency_ms"])
    return {name: float(np.median(ms)) for name, ms in times.items()}


def graph_size(path: str | Path, disabled_fusions: Sequence[str] = DISABLED_FUSIONS
               ) -> dict[str, int]:
    """Nodes of an ONNX file, and the kernels ONNX Runtime runs per call once its graph
    optimizations have rewritten it (one per node of the optimized graph), in the session
    :func:`helpers.predict.inference_session` serves it with."""
    import onnx

    with tempfile.TemporaryDirectory() as scratch:
        optimized = Path(scratch) / "optimized.onnx"
        inference_session(path, disabled_fusions=disabled_fusions, optimized_model_path=optimized)
        kernels = len(onnx.load(str(optimized)).graph.node)
    return {"nodes": len(onnx.load(str(path)).graph.node), "kernels per call": kernels}


def wrapper_effect(classifier: NeuralTextClassifier, texts: Sequence[str], threads: int = 1,
                   rounds: int = 3) -> pd.DataFrame:
    """A BERT exported twice, with transformers deriving its positions, token types and mask from
    the input's shape, and with :class:`helpers.onnx_export.LogitsOnly` handing them in: per
    export, the int8 graph's :func:`graph_size`, its batch-1 latency (:func:`alternating_latency`)
    and the largest float32 logit difference from the PyTorch model on ``texts``."""
    texts = list(texts)
    reference = text_logits(classifier.model, classifier.tokenizer, texts,
                            classifier.max_length, classifier.batch_size, CPU)
    exports = {"derived by transformers": False, "handed in (LogitsOnly)": True}
    with tempfile.TemporaryDirectory() as scratch:
        rows, predictors = {}, {}
        for name, prepared in exports.items():
            folder = export_onnx(classifier, Path(scratch) / str(prepared), prepared)
            quantize_int8(folder)
            fp32 = load_predictor(folder, "fp32", threads=0).logits(texts)
            rows[name] = {**graph_size(folder / MODEL_FILES["int8"]),
                          "fp32 max |dlogit| vs PyTorch": float(np.abs(fp32 - reference).max())}
            predictors[name] = load_predictor(folder, "int8", threads=threads)
        latency = alternating_latency(predictors, texts, threads=threads, rounds=rounds)
    for name in rows:
        rows[name]["int8 latency_ms"] = latency[name]
    return pd.DataFrame.from_dict(rows, orient="index")


def fusion_effect(folder: str | Path, texts: Sequence[str], threads: int = 1,
                  precision: str | None = None, rounds: int = 3) -> dict[str, float]:
    """Batch-1 latency of one exported model with all of ONNX Runtime's graph optimizations and
    with :data:`helpers.predict.DISABLED_FUSIONS` turned off, on this machine
    (:func:`alternating_latency`), how many times faster the second is, and the largest
    difference between the two sessions' logits: a fusion changes rounding only (in an int8
    model, also which integers the activations round to).
    """
    without = "without " + ", ".join(DISABLED_FUSIONS)
    predictors = {"all optimizations": load_predictor(folder, precision, threads=threads,
                                                      disabled_fusions=()),
                  without: load_predictor(folder, precision, threads=threads)}
    latency = alternating_latency(predictors, texts, threads=threads, rounds=rounds)
    fused, unfused = (latency[name] for name in predictors)
    logits = [predictor.logits(list(texts)) for predictor in predictors.values()]
    return {"all optimizations ms": fused, f"{without} ms": unfused,
            "x faster without it": fused / unfused,
            "max |dlogit| between the two": float(np.abs(logits[0] - logits[1]).max())}


def fusion_table(config: BookConfig | None, results: pd.DataFrame, texts: Sequence[str],
                 threads: int = 1, precision: str = "int8") -> pd.DataFrame:
    """:func:`fusion_effect` for every transformers model of ``results`` already exported by
    :func:`deploy_models`, one row per model."""
    config = config or get_config()
    rows = {}
    for model in results.loc[results["kind"] == "transformers", "model"].astype(str):
        folder = onnx_folder(config, model)
        if (folder / MODEL_FILES[precision]).is_file():
            rows[model] = fusion_effect(folder, texts, threads=threads, precision=precision)
    return pd.DataFrame.from_dict(rows, orient="index")
