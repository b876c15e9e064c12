"""Tests of helpers.quantization: int8 models stay close to fp32 and are smaller on disk."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from toy import TEXTS, tiny_bert_folder, tiny_bilstm_folder, toy_corpus

from helpers.classifiers import load_token_classifier, load_transformers_classifier
from helpers.quantization import (
    DEPRECATED,
    DEPRECATION_NOTE,
    FP32,
    TORCHAO,
    compare_quantization,
    load_quantized,
    quantize_deprecated,
    quantize_torchao,
    quantized_variants,
    saved_size_mb,
)

BATCH = toy_corpus(40)["text"].tolist() + TEXTS[:4]


@pytest.fixture(scope="module")
def bilstm(tmp_path_factory: pytest.TempPathFactory):
    # Wide enough that the weights, not the file's fixed overhead, dominate its size.
    folder = tmp_path_factory.mktemp("bilstm") / "model"
    return load_token_classifier(tiny_bilstm_folder(folder, hidden=64))


@pytest.fixture(scope="module")
def bert(tmp_path_factory: pytest.TempPathFactory):
    return load_transformers_classifier(tiny_bert_folder(tmp_path_factory.mktemp("bert")),
                                        max_length=32)


def test_deprecated_path_quantizes_lstm_and_linear(bilstm, capsys) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # PyTorch's own warning is handled
        quantized = quantize_deprecated(bilstm.model)
    assert DEPRECATION_NOTE in capsys.readouterr().out
    assert isinstance(quantized.lstm, torch.ao.nn.quantized.dynamic.LSTM)
    assert isinstance(quantized.classifier, torch.ao.nn.quantized.dynamic.Linear)
    assert isinstance(bilstm.model.lstm, nn.LSTM)  # the original is untouched


def test_torchao_path_quantizes_linear_only(bilstm, bert) -> None:
    from torchao.quantization import Int8Tensor

    quantized = quantize_torchao(bilstm.model)
    assert isinstance(quantized.classifier.weight, Int8Tensor)
    assert type(quantized.lstm) is nn.LSTM  # torchao has no LSTM support
    bert_q = quantize_torchao(bert.model)
    linears = [m for m in bert_q.modules() if isinstance(m, nn.Linear)]
    assert linears and all(isinstance(m.weight, Int8Tensor) for m in linears)
    assert not isinstance(bert.model.classifier.weight, Int8Tensor)


@pytest.mark.parametrize("which", ["bilstm", "bert"])
def test_int8_probabilities_are_close_and_files_smaller(which, request, tmp_path: Path) -> None:
    classifier = request.getfixturevalue(which)
    variants = quantized_variants(classifier)
    assert list(variants) == [FP32, TORCHAO, DEPRECATED]
    reference = classifier.predict_proba(BATCH)
    fp32_mb = saved_size_mb(classifier.model, tmp_path / "fp32.pt")
    for method in (TORCHAO, DEPRECATED):
        proba = variants[method].predict_proba(BATCH)
        assert np.max(np.abs(proba - reference)) < 0.05, method
        size = saved_size_mb(variants[method].model, tmp_path / f"{method}.pt")
        if which == "bert" or method == DEPRECATED:
            # The BERT's Linear layers, or the whole LSTM: weights shrink about 4x.
            assert size < 0.8 * fp32_mb, (method, size, fp32_mb)
        else:
            # torchao leaves the LSTM in fp32: only the tiny output layer shrinks.
            assert size <= fp32_mb * 1.01


@pytest.mark.parametrize("method", [TORCHAO, DEPRECATED])
def test_saved_int8_weights_load_back(bert, method, tmp_path: Path) -> None:
    quantized = quantized_variants(bert)[method]
    path = tmp_path / "int8.pt"
    saved_size_mb(quantized.model, path)
    reloaded = load_quantized(bert.model, path, method)
    with torch.inference_mode():
        inputs = bert.tokenizer(BATCH[:5], padding=True, return_tensors="pt")
        inputs = {k: inputs[k] for k in ("input_ids", "attention_mask")}
        np.testing.assert_allclose(reloaded(**inputs).logits, quantized.model(**inputs).logits,
                                   atol=1e-6)


def test_compare_quantization_table(bilstm, tmp_path: Path) -> None:
    labels = toy_corpus(40)["label"].tolist() + [0, 1, 1, 0]
    table = compare_quantization(bilstm, BATCH, labels, BATCH[:5], tmp_path, threads=1)
    assert list(table.index.get_level_values("variant")) == [FP32, TORCHAO, DEPRECATED]
    assert (table["latency_ms"] > 0).all() and (table["texts_per_s"] > 0).all()
    assert table.loc[(bilstm.name, FP32), "max |dp|"] == 0
    assert table.loc[(bilstm.name, DEPRECATED), "size_mb"] < table.loc[(bilstm.name, FP32),
                                                                        "size_mb"]
    assert len(list(tmp_path.glob("*.pt"))) == 3
