"""Tests of helpers.predict: an exported folder is served without torch, from Python or the
command line, and a wrong folder gets an error that says what to do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from toy import TEXTS, tiny_bert_folder

from helpers.classifiers import load_transformers_classifier
from helpers.onnx_export import export_onnx
from helpers.predict import (
    ModelFolderError,
    load_predictor,
    model_file,
    predict_command,
    softmax_toxic,
)
from helpers.quantization import quantize_int8

SRC = str(Path(__file__).resolve().parents[1] / "src")


@pytest.fixture(scope="module")
def pytorch_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_bert_folder(tmp_path_factory.mktemp("bert"))


@pytest.fixture(scope="module")
def onnx_folder(tmp_path_factory: pytest.TempPathFactory, pytorch_folder: Path) -> Path:
    classifier = load_transformers_classifier(pytorch_folder, max_length=16)
    folder = export_onnx(classifier, tmp_path_factory.mktemp("onnx") / "bert")
    quantize_int8(folder)
    return folder


def run_python(code: str, stdin: str = "") -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": SRC}
    return subprocess.run([sys.executable, "-c", code], input=stdin, capture_output=True,
                          text=True, env=env, timeout=120)


def test_predictor_runs_without_importing_torch(onnx_folder: Path, pytorch_folder: Path) -> None:
    code = (
        "import sys\n"
        "from helpers.predict import load_predictor\n"
        f"p = load_predictor({str(onnx_folder)!r}, 'fp32')\n"
        f"print([float(x) for x in p.predict_proba({TEXTS!r})])\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "assert 'transformers' not in sys.modules, 'transformers was imported'\n"
    )
    done = run_python(code)
    assert done.returncode == 0, done.stderr
    served = np.array(json.loads(done.stdout.strip()))
    expected = load_transformers_classifier(pytorch_folder, max_length=16).predict_proba(TEXTS)
    np.testing.assert_allclose(served, expected, atol=1e-5)  # fp32 ONNX vs PyTorch eager


def test_command_line_reads_arguments_and_stdin(onnx_folder: Path) -> None:
    predictor = load_predictor(onnx_folder)  # int8 by default
    assert model_file(onnx_folder).name == "model.int8.onnx"
    expected = predictor.predict_proba(["ты дурак", "спасибо"])
    cli = "import sys; from helpers.predict import predict_command; sys.exit(predict_command())"
    # Blank lines of standard input (a trailing one, one between paragraphs, spaces, a Windows
    # line end) are skipped, not scored as texts.
    for args, stdin in ((["ты дурак", "спасибо"], ""),
                        ([], "ты дурак\n\n   \r\nспасибо\r\n\n")):
        done = subprocess.run([sys.executable, "-c", cli, "--model", str(onnx_folder), *args],
                              input=stdin, capture_output=True, text=True, timeout=120,
                              env={**os.environ, "PYTHONPATH": SRC})
        assert done.returncode == 0, done.stderr
        lines = done.stdout.strip().splitlines()
        assert [line.split("\t")[1] for line in lines] == ["ты дурак", "спасибо"]
        np.testing.assert_allclose([float(line.split("\t")[0]) for line in lines], expected,
                                   atol=1e-4)


def test_python_dash_m_entry_point(onnx_folder: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "helpers.predict", "--model", str(onnx_folder),
                           "--precision", "fp32", "ты дурак"], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": SRC})
    assert done.returncode == 0, done.stderr
    assert 0 <= float(done.stdout.split("\t")[0]) <= 1


def test_missing_folder_names_the_problem_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ModelFolderError, match="No model folder") as error:
        load_predictor(tmp_path / "nowhere")
    assert "export_saved_model" in str(error.value)


def test_pytorch_folder_is_refused_with_the_fix(pytorch_folder: Path, capsys) -> None:
    with pytest.raises(ModelFolderError, match="not an exported ONNX model folder") as error:
        load_predictor(pytorch_folder)
    assert "predictor.json" in str(error.value) and "export_saved_model" in str(error.value)
    assert predict_command(["--model", str(pytorch_folder), "text"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("python -m helpers.predict: error: ") and err.count("\n") == 1
    assert "not an exported ONNX model folder" in err


def test_folder_without_the_asked_precision(onnx_folder: Path, tmp_path: Path) -> None:
    import shutil

    copy = Path(shutil.copytree(onnx_folder, tmp_path / "copy"))
    (copy / "model.int8.onnx").unlink()
    assert model_file(copy).name == "model.onnx"  # falls back to fp32
    with pytest.raises(ModelFolderError, match="quantize_int8"):
        load_predictor(copy, "int8")
    with pytest.raises(ValueError, match="precision must be"):
        model_file(copy, "int4")


def test_softmax_toxic_is_a_probability() -> None:
    proba = softmax_toxic(np.array([[0.0, 0.0], [1000.0, 0.0], [-3.0, 2.0]]))
    np.testing.assert_allclose(proba, [0.5, 0.0, 1 / (1 + np.exp(-5))], atol=1e-6)
