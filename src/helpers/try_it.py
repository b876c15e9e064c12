"""The "Try it" page: chapter 6's int8 ONNX folders, run in the reader's browser.

A Sphinx extension (listed under ``sphinx.extra_extensions`` in ``_config.yml``): when the HTML
build has finished, :func:`write_assets` copies into the site, under :data:`ASSETS`,

* the ONNX folders of the models :func:`choose_models` picks (``model.int8.onnx``,
  ``tokenizer.json``, ``predictor.json``: the very files :func:`helpers.predict.load_predictor`
  serves);
* the page's JavaScript module (``web/try_it.js``) and the two npm packages it runs on, vendored
  from ``web/node_modules`` (``npm ci --prefix web``): ONNX Runtime Web (its WebAssembly build) and
  Hugging Face's tokenizers.js, which reads the same ``tokenizer.json``;
* ``manifest.json``: every figure the page shows besides what it measures (F1, validation F1,
  each file's size, which teacher, why each model is there), read from the results file.

What is missing (chapter 6 has not run, or ``npm ci`` has not) is written into the manifest as a
plain sentence, which the page shows instead of the text box; the build does not fail.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from . import chapters
from .comparison import chosen_student
from .config import BookConfig, get_config
from .deployment import onnx_folder
from .predict import MODEL_FILES, SETTINGS_FILE, TOKENIZER_FILE, read_settings
from .results import field_value, load_results

WEB = Path(__file__).resolve().parents[2] / "web"  # the book's web/ (the build passes its own)
ASSETS = "try_it_assets"  # folder of the built site the page reads from
MODULE = "try_it.js"
MANIFEST = "manifest.json"
SHIPPED = (MODEL_FILES["int8"], TOKENIZER_FILE, SETTINGS_FILE)
# npm package -> the files of its dist/ the page loads: ONNX Runtime Web's WebAssembly-only build
# (no WebGPU or WebGL: these models are small and the CPU path is the one Python's matches), and
# the tokenizer library's ES module.
VENDORED = {
    "onnxruntime-web": ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs",
                        "ort-wasm-simd-threaded.wasm"),
    "@huggingface/tokenizers": ("tokenizers.min.mjs",),
}
NPM_HINT = "run `npm ci --prefix web` before building the book (README, 'The Try it page')"
# Why a model is on the page, in the order the page lists them.
ROLES = ("chosen student", "teacher", "smallest", "fastest")
# Roles whose model the page downloads only when the reader asks: the teacher alone is as large as
# the WebAssembly runtime and every student together.
ON_DEMAND = ("teacher",)


def exported(config: BookConfig, results: pd.DataFrame) -> pd.DataFrame:
    """Rows of ``results`` whose int8 ONNX folder chapter 6 has written (with its files)."""
    def complete(model: str) -> bool:
        folder = onnx_folder(config, model)
        return all((folder / name).is_file() for name in SHIPPED)

    mask = [complete(str(model)) for model in results["model"]]
    return results[pd.Series(mask, index=results.index, dtype=bool)]


def choose_models(results: pd.DataFrame, shipped_mb: dict[str, float]) -> list[dict[str, Any]]:
    """The models the page runs, each ``{"model": name, "roles": [...]}`` in :data:`ROLES` order.

    ``results``: the rows that have an ONNX export; ``shipped_mb``: each one's download (ONNX
    file, tokenizer, settings). The chosen student of chapter 6
    (:func:`helpers.comparison.chosen_student`), the
    teacher (chapter 3's row), the smallest download and the fastest model (lowest ``latency_ms``
    chapter 6 measured, batch 1). A model that fills two roles is listed once with both.
    """
    by_role: dict[str, str | None] = {role: None for role in ROLES}
    if len(results):
        by_role["chosen student"] = chosen_student(results)
        teachers = results[results["chapter"] == chapters.TEACHER.number]
        by_role["teacher"] = str(teachers["model"].iloc[0]) if len(teachers) else None
        sizes = {m: shipped_mb[m] for m in results["model"] if m in shipped_mb}
        by_role["smallest"] = min(sizes, key=sizes.get) if sizes else None
        timed = results.dropna(subset=["latency_ms"]) if "latency_ms" in results else results[:0]
        if len(timed):
            by_role["fastest"] = str(timed.sort_values("latency_ms")["model"].iloc[0])
    chosen: dict[str, list[str]] = {}
    for role, model in by_role.items():
        if model is not None:
            chosen.setdefault(model, []).append(role)
    return [{"model": model, "roles": roles} for model, roles in chosen.items()]


def _teacher_line(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The teacher the students learned from, as the results rows record it."""
    for row in rows:
        teacher = field_value(row, "teacher")
        if teacher is not None:
            return {"teacher": str(teacher), "standin": bool(field_value(row, "standin", False))}
    return {"teacher": None, "standin": False}


def _vendor(web: Path, out: Path) -> tuple[list[str], str | None]:
    """Copy the npm files the page loads from ``web/node_modules`` into ``out``; their names, or
    why they are missing."""
    copied = []
    for package, names in VENDORED.items():
        for name in names:
            source = web / "node_modules" / package / "dist" / name
            if not source.is_file():
                return copied, f"The JavaScript libraries are missing from this build: {NPM_HINT}."
            shutil.copy2(source, out / name)
            copied.append(name)
    return copied, None


def build_manifest(config: BookConfig, out: Path) -> dict[str, Any]:
    """Copy the chosen models' folders into ``out/models`` and return the page's manifest."""
    results = load_results(config)
    ready = exported(config, results)
    shipped = {str(m): sum((onnx_folder(config, str(m)) / n).stat().st_size for n in SHIPPED)
               / 1e6 for m in ready["model"]}
    models = []
    for item in choose_models(ready, shipped):
        row = ready[ready["model"] == item["model"]].iloc[0].to_dict()
        source = onnx_folder(config, item["model"])
        target = out / "models" / source.name
        target.mkdir(parents=True, exist_ok=True)
        files = {}
        for name in SHIPPED:
            shutil.copy2(source / name, target / name)
            files[name] = (target / name).stat().st_size
        settings = read_settings(target)
        models.append({
            **item, "folder": f"models/{source.name}", "files": files,
            "kind": settings["kind"], "max_length": int(settings["max_length"]),
            "pad_id": int(settings["pad_id"]), "chapter": str(row["chapter"]),
            "f1": field_value(row, "f1"), "valid_f1": field_value(row, "valid_f1"),
            "python_latency_ms": field_value(row, "latency_ms"),
            "teacher": field_value(row, "teacher"),
            "standin": bool(field_value(row, "standin", False)),
            "on_demand": all(role in ON_DEMAND for role in item["roles"]),
        })
    rows = [row for _, row in results.iterrows()]
    missing = None if models else (
        "No exported model was found: run chapter 6 (notebooks/06_comparison.ipynb), which "
        "exports every neural model to ONNX, then build the book again.")
    return {"small": config.small, **_teacher_line([r.to_dict() for r in rows]),
            "models": models, "missing": missing}


def write_assets(config: BookConfig, site: str | Path, web: str | Path = WEB) -> dict[str, Any]:
    """Write the page's folder (:data:`ASSETS`) into the built ``site`` from the book's ``web``
    folder and ``config``'s artifacts; return its manifest."""
    web, out = Path(web), Path(site) / ASSETS
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    shutil.copy2(web / MODULE, out / MODULE)
    vendored, npm_missing = _vendor(web, out)
    manifest = build_manifest(config, out)
    manifest["missing"] = " ".join(filter(None, [manifest["missing"], npm_missing])) or None
    manifest["runtime_files"] = {name: (out / name).stat().st_size
                                 for name in [MODULE, *vendored]}
    runtime = sum(manifest["runtime_files"].values())
    manifest["first_bytes"] = runtime + sum(  # what opening the page downloads
        size for model in manifest["models"] if not model["on_demand"]
        for size in model["files"].values())
    manifest["total_bytes"] = runtime + sum(
        size for model in manifest["models"] for size in model["files"].values())
    (out / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=1),
                                encoding="utf-8")
    return manifest


def _build_finished(app: Any, exception: Exception | None) -> None:
    if exception is None and app.builder.format == "html":
        manifest = write_assets(get_config(), app.outdir, Path(app.srcdir) / "web")
        from sphinx.util import logging

        logging.getLogger(__name__).info(
            f"Try it page: {len(manifest['models'])} models, "
            f"{manifest['first_bytes'] / 1e6:.1f} MB on opening, "
            f"{manifest['total_bytes'] / 1e6:.1f} MB in all"
            + (f" ({manifest['missing']})" if manifest["missing"] else ""))


def setup(app: Any) -> dict[str, Any]:
    """Register the copy with Sphinx (``_config.yml``, ``sphinx.extra_extensions``)."""
    app.connect("build-finished", _build_finished)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
