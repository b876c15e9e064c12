"""The Try it page: which models it runs, what the build copies, and that the browser's answers are
the Python predictor's.

The unit tests build a manifest from a results file and fake ONNX folders in a temporary folder.
The tests marked ``site`` open the built book's page (``site``, ``server`` and ``browser`` come
from ``tests/conftest.py``; they run last, after the notebooks have exported chapter 6's models)
and compare every probability the browser computes with
:func:`helpers.predict.load_predictor`'s on the same files, one comment at a time.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers import try_it
from helpers.config import BookConfig, slug
from helpers.predict import SETTINGS_FILE, TOKENIZER_FILE, load_predictor

TOLERANCE = 1e-4
# A BERT's int8 graph quantizes its activations on the fly (DynamicQuantizeLinear): a float that
# ONNX Runtime's native and WebAssembly kernels compute a few 1e-7 apart (their float32 exports
# agree to 1.2e-7 in probability) now and then rounds to the next int8 step, which moves the
# probability by a few 1e-4 (measured: at most 6.3e-4, on 16 and 32 of 150 small-mode test
# comments for the DistilBERT-style student and the teacher; identical in Node's WebAssembly, with
# every graph optimization or none). The BiLSTMs and CNNs quantize only weights and agree to 1e-8.
INT8_STEP = 5e-3
# Typed into the page's box (the page's own examples are clicked elsewhere).
TYPED = ("Ты просто идиот", "Спасибо, очень полезная статья!", "Не согласен, но спасибо за ответ")


def rows(*specs: tuple) -> pd.DataFrame:
    """A results frame from ``(model, chapter, valid_f1, latency_ms, teacher)`` tuples."""
    return pd.DataFrame([{"model": m, "chapter": c, "kind": "transformers" if c in ("03", "05")
                          else "token_model", "valid_f1": v, "latency_ms": ms, "teacher": t,
                          "f1": v - 0.01, "standin": t is not None}
                         for m, c, v, ms, t in specs])


RESULTS = rows(("BiLSTM", "02", 0.70, 3.0, None), ("CNN distilled", "04", 0.72, 0.8, "T"),
               ("rubert-tiny teacher", "03", 0.90, 9.0, "T"),
               ("tiny BERT distilled", "05", 0.80, 4.0, "T"),
               ("tiny BERT pruned distilled", "05", 0.84, 3.5, "T"),
               ("tiny BERT no teacher", "05", 0.95, 3.5, None))
SIZES = {"BiLSTM": 3.0, "CNN distilled": 3.2, "rubert-tiny teacher": 12.0,
         "tiny BERT distilled": 6.0, "tiny BERT pruned distilled": 2.5,
         "tiny BERT no teacher": 2.4}


def test_the_page_runs_the_chosen_student_the_teacher_the_smallest_and_the_fastest() -> None:
    chosen = try_it.choose_models(RESULTS, SIZES)
    by_model = {item["model"]: item["roles"] for item in chosen}
    # Chapter 6's rule: the distilled chapter-5 student with the best validation F1 (a no-teacher
    # twin is never the chosen student, even with a higher one).
    assert by_model == {"tiny BERT pruned distilled": ["chosen student"],
                        "rubert-tiny teacher": ["teacher"], "tiny BERT no teacher": ["smallest"],
                        "CNN distilled": ["fastest"]}
    assert [item["model"] for item in chosen][:2] == ["tiny BERT pruned distilled",
                                                      "rubert-tiny teacher"]


def test_a_model_with_two_roles_is_listed_once_and_a_missing_chapter_5_falls_back() -> None:
    sizes = {**SIZES, "CNN distilled": 0.5}
    chosen = try_it.choose_models(RESULTS, sizes)
    assert {"model": "CNN distilled", "roles": ["smallest", "fastest"]} in chosen
    no_bert = RESULTS[RESULTS["chapter"] != "05"]
    assert try_it.choose_models(no_bert, sizes)[0] == {"model": "BiLSTM",
                                                       "roles": ["chosen student"]}
    assert try_it.choose_models(RESULTS[:0], {}) == []


def fake_book(tmp_path: Path, with_npm: bool = True) -> tuple[BookConfig, Path]:
    """A config whose results file has RESULTS' rows and an ONNX folder for each, and a web/."""
    config = BookConfig(data=None, teacher="T", small=True, root=tmp_path)
    config.artifacts_dir.mkdir(parents=True)
    records = RESULTS.assign(artifact="x").to_dict("records")
    config.results_path.write_text(json.dumps(records), encoding="utf-8")
    for model, size in SIZES.items():
        folder = config.artifacts_dir / "onnx" / slug(model)
        folder.mkdir(parents=True)
        (folder / "model.int8.onnx").write_bytes(b"\0" * int(size * 1000))
        (folder / TOKENIZER_FILE).write_text('{"model": {}}', encoding="utf-8")
        (folder / SETTINGS_FILE).write_text(json.dumps(
            {"kind": "bert", "max_length": 8, "pad_id": 0}), encoding="utf-8")
    web = tmp_path / "web"
    web.mkdir()
    (web / try_it.MODULE).write_text("// page", encoding="utf-8")
    if with_npm:
        for package, names in try_it.VENDORED.items():
            dist = web / "node_modules" / package / "dist"
            dist.mkdir(parents=True)
            for name in names:
                (dist / name).write_text(name, encoding="utf-8")
    return config, web


def test_the_manifest_carries_the_results_files_figures_and_the_copied_files(
        tmp_path: Path) -> None:
    config, web = fake_book(tmp_path)
    manifest = try_it.write_assets(config, tmp_path / "site", web)
    out = tmp_path / "site" / try_it.ASSETS
    assert json.loads((out / try_it.MANIFEST).read_text(encoding="utf-8")) == manifest
    assert manifest["missing"] is None and manifest["teacher"] == "T" and manifest["standin"]
    assert [m["model"] for m in manifest["models"]] == [
        "tiny BERT pruned distilled", "rubert-tiny teacher", "tiny BERT no teacher",
        "CNN distilled"]
    for model in manifest["models"]:
        row = RESULTS[RESULTS["model"] == model["model"]].iloc[0]
        assert (model["f1"], model["valid_f1"]) == (row["f1"], row["valid_f1"])
        source = config.artifacts_dir / "onnx" / slug(model["model"])
        for name, size in model["files"].items():
            copied = out / model["folder"] / name
            assert copied.read_bytes() == (source / name).read_bytes()
            assert size == copied.stat().st_size
    assert set(manifest["runtime_files"]) == {try_it.MODULE} | {
        name for names in try_it.VENDORED.values() for name in names}
    on_disk = sum(p.stat().st_size for p in out.rglob("*")
                  if p.is_file() and p.name != try_it.MANIFEST)
    assert manifest["total_bytes"] == on_disk
    teacher = manifest["models"][1]
    assert teacher["on_demand"] and not any(m["on_demand"] for m in manifest["models"][2:])
    assert manifest["first_bytes"] == on_disk - sum(teacher["files"].values())


def test_what_is_missing_is_said_plainly_and_the_build_goes_on(tmp_path: Path) -> None:
    config, web = fake_book(tmp_path, with_npm=False)
    manifest = try_it.write_assets(config, tmp_path / "site", web)
    assert "npm ci --prefix web" in manifest["missing"]
    empty = BookConfig(data=None, teacher="T", small=True, root=tmp_path / "fresh")
    manifest = try_it.write_assets(empty, tmp_path / "site2", web)
    assert manifest["models"] == [] and "run chapter 6" in manifest["missing"]


# ------------------------------------------------------------------ the page in headless Chromium

def page_api(browser, server: str, everything: bool = True) -> dict:
    """Open the page and wait for its models (with ``everything``, also click each model's "load
    it" button, the teacher's); return the manifest and the loaded models' names."""
    browser.get(f"{server}/book/try_it.html")
    browser.set_script_timeout(300)
    wait = ("const done = arguments[arguments.length - 1];"
            "const wait = () => window.tryIt ? window.tryIt.then("
            "  api => done(api && {manifest: api.manifest, loaded: api.loaded()}),"
            "  error => done({error: String(error)})) : setTimeout(wait, 50);"
            "wait();")
    api = browser.execute_async_script(wait)
    status = browser.find_element("id", "try-it-status").text
    assert api and "error" not in api, f"the page did not load its models: {status!r}"
    if everything:
        for button in browser.find_elements("css selector", "button.try-it-load"):
            button.click()
        browser.execute_async_script(
            "const [count, done] = arguments;"
            "const wait = () => window.tryIt.then(api => api.loaded().length === count"
            "  ? done() : setTimeout(wait, 50));"
            "wait();", len(api["manifest"]["models"]))
    return api


def predictors(site: Path, manifest: dict) -> dict:
    """The Python predictor of every model on the page, reading the very files it downloads."""
    return {m["model"]: load_predictor(site / try_it.ASSETS / m["folder"], "int8")
            for m in manifest["models"]}


@pytest.mark.site
def test_the_page_shows_the_teacher_and_each_models_figures(browser, server: str) -> None:
    api = page_api(browser, server, everything=False)
    manifest = api["manifest"]
    # The teacher waits for the reader's click; the students are ready.
    assert sorted(api["loaded"]) == sorted(m["model"] for m in manifest["models"]
                                           if not m["on_demand"])
    roles = [role for model in manifest["models"] for role in model["roles"]]
    assert {"chosen student", "teacher"} <= set(roles) and len(manifest["models"]) >= 3
    text = browser.find_element("tag name", "main").text
    assert f"distilled from the teacher {manifest['teacher']}" in text
    assert ("STAND-IN" in text) == manifest["standin"]
    for model in manifest["models"]:
        assert model["model"] in text and f"{model['f1']:.3f}" in text
    assert f"downloads {manifest['first_bytes'] / 1e6:.1f} MB on opening" in text
    examples = browser.find_elements("css selector", "#try-it-examples button")
    assert len(examples) >= 3 and all(e.is_displayed() for e in examples)


@pytest.mark.site
def test_typed_comments_get_the_python_predictors_probabilities(browser, server: str,
                                                                site: Path) -> None:
    manifest = page_api(browser, server)["manifest"]
    python = predictors(site, manifest)
    box = browser.find_element("id", "try-it-text")
    for text in TYPED:
        box.clear()
        box.send_keys(text)
        browser.find_element("id", "try-it-run").click()
        browser.execute_async_script(
            "const [text, done] = arguments;"
            "const wait = () => document.getElementById('try-it').dataset.classified === text"
            "  ? done() : setTimeout(wait, 20);"
            "wait();", text)
        shown = browser.execute_script(
            "return Array.from(document.querySelectorAll('tr[data-model]')).map(row => ["
            "row.dataset.model, Number(row.querySelector('.try-it-proba').dataset.proba),"
            "row.querySelector('.try-it-ms').textContent]);")
        assert [name for name, _, _ in shown] == list(python)
        for name, proba, latency in shown:
            expected = float(python[name].predict_proba([text])[0])
            bound = INT8_STEP if python[name].settings["kind"] == "bert" else TOLERANCE
            assert abs(proba - expected) <= bound, f"{name} on {text!r}: {proba} vs {expected}"
            assert re.fullmatch(r"\d+\.\d ms", latency), f"{name}: latency shown as {latency!r}"


@pytest.mark.site
def test_the_browser_equals_python_on_the_test_comments(browser, server: str,
                                                        site: Path) -> None:
    """Token ids equal on every test comment (at least 100), each scored alone as the page scores
    it (batch 1: int8 activations are quantized per batch). Probabilities within 1e-4 on every
    comment for the token models; for a BERT on at least 100 comments, and within one int8
    rounding step (:data:`INT8_STEP`) on the others."""
    from helpers.config import get_config
    from helpers.data import load_splits

    manifest = page_api(browser, server)["manifest"]
    texts = load_splits(get_config()).test["text"].tolist()
    assert len(texts) >= 100
    scored = browser.execute_async_script(
        "const [texts, done] = arguments;"
        "window.tryIt.then(api => api.scoreTexts(texts)).then(done, e => done(String(e)));",
        texts)
    assert isinstance(scored, dict), scored
    for name, predictor in predictors(site, manifest).items():
        assert scored[name]["ids"] == predictor.encode(texts), f"{name}: token ids differ"
        expected = np.array([predictor.predict_proba([text])[0] for text in texts])
        gap = np.abs(np.array(scored[name]["proba"]) - expected)
        if predictor.settings["kind"] == "bert":
            assert (gap <= TOLERANCE).sum() >= 100 and gap.max() <= INT8_STEP, \
                f"{name}: {(gap > TOLERANCE).sum()} differences over 1e-4, largest {gap.max():.2e}"
        else:
            assert gap.max() <= TOLERANCE, f"{name}: largest difference {gap.max():.2e}"


@pytest.mark.site
def test_without_javascript_or_a_server_the_page_says_what_to_do(browser, site: Path) -> None:
    html = (site / "book" / "try_it.html").read_text(encoding="utf-8")
    notes = re.findall(r"<noscript>(.*?)</noscript>", html, flags=re.S)  # the theme has its own
    assert any("JavaScript" in note and "helpers.predict" in note for note in notes), notes
    # A downloaded copy opened from disk: browsers run no module there; the page says to serve it.
    browser.get((site / "book" / "try_it.html").as_uri())
    status = browser.find_element("id", "try-it-status").text
    assert "python -m http.server" in status, status
