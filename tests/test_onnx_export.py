"""Tests of helpers.onnx_export and helpers.quantization: exported and int8 models give the
PyTorch model's outputs, from folders that hold everything needed to serve them."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnx.numpy_helper
import pytest
import torch
from toy import TEXTS, tiny_bert_folder, tiny_bilstm_folder, toy_corpus

from helpers.batching import CPU, text_logits
from helpers.classifiers import load_token_classifier, load_transformers_classifier
from helpers.deployment import export_is_current, fusion_effect, wrapper_effect
from helpers.onnx_export import (
    ExportableBiLSTM,
    LogitsOnly,
    check_export,
    export_onnx,
    export_saved_model,
)
from helpers.predict import (
    DISABLED_FUSIONS,
    MODEL_FILES,
    SETTINGS_FILE,
    TOKENIZER_FILE,
    inference_session,
    load_predictor,
)
from helpers.quantization import quantize_int8

BATCH = toy_corpus(40)["text"].tolist() + TEXTS
LABELS = toy_corpus(40)["label"].tolist() + [0, 1, 1, 0, 0, 0]


@pytest.fixture(scope="module")
def bilstm(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("bilstm") / "model"
    return load_token_classifier(tiny_bilstm_folder(folder, max_length=12, hidden=64))


@pytest.fixture(scope="module")
def bert(tmp_path_factory: pytest.TempPathFactory):
    return load_transformers_classifier(tiny_bert_folder(tmp_path_factory.mktemp("bert")),
                                        max_length=12)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory, bilstm, bert) -> dict[str, Path]:
    folders = {}
    for name, classifier in (("bilstm", bilstm), ("bert", bert)):
        folders[name] = export_onnx(classifier, tmp_path_factory.mktemp("onnx") / name)
        quantize_int8(folders[name])
    return folders


def test_logits_only_hands_bert_its_ids_and_mask_with_the_same_logits(bert) -> None:
    """The export wrapper builds positions, token types and the additive mask itself: a padded
    batch gives the logits the model computes from its own, and padding still has no weight."""
    torch.manual_seed(0)
    model = bert.model.eval()
    ids = torch.randint(5, model.config.vocab_size, (4, 8))
    mask = torch.zeros_like(ids)
    for row, length in enumerate([8, 1, 3, 6]):
        mask[row, :length] = 1
    changed = ids.clone()
    changed[mask == 0] = 7  # other tokens under the padding: the logits must not move
    wrapper = LogitsOnly(model)
    assert wrapper.takes_positions and wrapper.takes_token_types
    with torch.inference_mode():
        expected = model(input_ids=ids, attention_mask=mask).logits
        got, got_changed = wrapper(ids, mask), wrapper(changed, mask)
    np.testing.assert_allclose(got.numpy(), expected.numpy(), atol=1e-5)
    np.testing.assert_allclose(got_changed.numpy(), expected.numpy(), atol=1e-5)


def test_exportable_bilstm_gives_the_packed_logits(bilstm) -> None:
    torch.manual_seed(0)
    model = bilstm.model
    ids = torch.randint(1, model.embedding.num_embeddings, (5, 9))
    mask = torch.zeros_like(ids)
    for row, length in enumerate([9, 1, 4, 7, 0]):  # mixed lengths, and an empty (all-padding) text
        mask[row, :length] = 1
    ids[mask == 0] = model.hparams["pad_id"]
    with torch.inference_mode():
        expected, got = model(ids, mask), ExportableBiLSTM(model)(ids, mask)
    np.testing.assert_allclose(got.numpy(), expected.numpy(), atol=1e-5)


@pytest.mark.parametrize("kind", ["bilstm", "bert"])
def test_export_writes_a_self_contained_folder(exported, kind) -> None:
    folder = exported[kind]
    assert {p.name for p in folder.iterdir()} == {*MODEL_FILES.values(), TOKENIZER_FILE,
                                                  SETTINGS_FILE}
    settings = json.loads((folder / SETTINGS_FILE).read_text(encoding="utf-8"))
    assert settings["kind"] == {"bilstm": "tokens", "bert": "bert"}[kind]
    assert settings["max_length"] == 12
    int8, fp32 = (weight_bytes(folder / MODEL_FILES[p]) for p in ("int8", "fp32"))
    # The weights became 8-bit: about a quarter of the bytes, almost no float32 left. (The file
    # of a toy model this small is mostly graph, so its size would not show it.)
    assert sum(int8.values()) < 0.35 * fp32[onnx.TensorProto.FLOAT]
    assert int8.get(onnx.TensorProto.FLOAT, 0) < 0.05 * fp32[onnx.TensorProto.FLOAT]


def weight_bytes(path) -> dict[int, int]:
    """Bytes of an ONNX file's initializers, by element type."""
    totals: dict[int, int] = {}
    for tensor in onnx.load(str(path)).graph.initializer:
        size = onnx.numpy_helper.to_array(tensor).nbytes
        totals[tensor.data_type] = totals.get(tensor.data_type, 0) + size
    return totals


@pytest.mark.parametrize("kind", ["bilstm", "bert"])
def test_exported_fp32_matches_pytorch_and_int8_stays_close(exported, bilstm, bert, kind) -> None:
    classifier = {"bilstm": bilstm, "bert": bert}[kind]
    fp32 = check_export(classifier, exported[kind], BATCH, LABELS, precision="fp32")
    assert fp32["max |dlogit|"] < 1e-4 and fp32["flips"] == 0 and fp32["dF1"] == 0
    int8 = check_export(classifier, exported[kind], BATCH, precision="int8")
    assert 0 < int8["max |dlogit|"] < 0.1  # int8 weights do change the logits, a little


@pytest.mark.parametrize("kind", ["bilstm", "bert"])
def test_predictor_probabilities_match_pytorch(exported, bilstm, bert, kind) -> None:
    """Tolerance: 1e-5 on probabilities for float32 ONNX against PyTorch eager."""
    classifier = {"bilstm": bilstm, "bert": bert}[kind]
    predictor = load_predictor(exported[kind], "fp32", batch_size=8)
    proba = predictor.predict_proba(BATCH)
    np.testing.assert_allclose(proba, classifier.predict_proba(BATCH), atol=1e-5)
    # One text at a time (the unbatched path of both, as a server calls them): the same numbers.
    one_by_one = [predictor.predict_proba([text])[0] for text in BATCH]
    np.testing.assert_allclose(one_by_one, proba, atol=1e-5)
    np.testing.assert_allclose([classifier.predict_proba([text])[0] for text in BATCH], proba,
                               atol=1e-5)


def test_disabled_fusion_leaves_the_graph_onnx_runtime_runs_and_keeps_the_logits(
        exported, tmp_path: Path) -> None:
    """ONNX Runtime ignores an unknown optimizer name without a word: check that the names in
    DISABLED_FUSIONS do remove SkipLayerNormalization from the int8 graph it runs (the fusion
    applies there), and that serving without it moves the logits by rounding only."""
    def optimized_ops(disabled: tuple[str, ...]) -> set[str]:
        optimized = tmp_path / f"optimized{len(disabled)}.onnx"
        inference_session(exported["bert"] / MODEL_FILES["int8"], disabled_fusions=disabled,
                          optimized_model_path=optimized)
        return {node.op_type for node in onnx.load(str(optimized)).graph.node}

    assert "SkipLayerNormalization" in optimized_ops(())
    assert "SkipLayerNormalization" not in optimized_ops(DISABLED_FUSIONS)
    effect = fusion_effect(exported["bert"], BATCH, precision="int8", rounds=1)
    assert effect["max |dlogit| between the two"] < 0.01
    assert all(value > 0 for name, value in effect.items() if name.endswith(" ms"))


def test_handing_bert_its_inputs_shrinks_the_graph_and_keeps_the_logits(bert) -> None:
    """wrapper_effect exports the toy BERT both ways: the wrapper's graph has fewer nodes and runs
    fewer kernels, and both give PyTorch's float32 logits."""
    table = wrapper_effect(bert, BATCH, rounds=1)
    derived, handed = table.loc["derived by transformers"], table.loc["handed in (LogitsOnly)"]
    assert handed["nodes"] < derived["nodes"]
    assert handed["kernels per call"] < derived["kernels per call"]
    assert (table["fp32 max |dlogit| vs PyTorch"] < 1e-4).all()
    assert (table["int8 latency_ms"] > 0).all()


def test_bert_predictor_encodes_like_the_book(exported, bert) -> None:
    from helpers.encoding import encode_texts

    predictor = load_predictor(exported["bert"])
    texts = [*TEXTS, "спасибо " * 40, "Hello, WORLD 🙂 дурак", "   ", "🙂"]
    assert predictor.encode(texts) == encode_texts(bert.tokenizer, texts, 12)


def test_pytorch_logits_of_empty_bilstm_text_are_served_the_same(exported, bilstm) -> None:
    expected = text_logits(bilstm.model, bilstm.tokenizer, ["", "x"], 12, 64, CPU)
    np.testing.assert_allclose(load_predictor(exported["bilstm"], "fp32").logits(["", "x"]),
                               expected, atol=1e-5)


def test_quantize_needs_an_exported_model(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="export the model first"):
        quantize_int8(tmp_path)


def test_a_model_with_a_scikit_learn_head_is_not_exported(bert, tmp_path: Path) -> None:
    import dataclasses

    with pytest.raises(ValueError, match="scikit-learn head"):
        export_onnx(dataclasses.replace(bert, head=lambda x: x), tmp_path)


def test_export_saved_model_from_a_saved_folder(tmp_path: Path) -> None:
    from helpers.onnx_export import export_saved_model

    source = tiny_bilstm_folder(tmp_path / "bilstm", max_length=12)
    folder = export_saved_model(source, tmp_path / "served")
    assert (folder / MODEL_FILES["int8"]).is_file()
    expected = load_token_classifier(source).predict_proba(BATCH)
    np.testing.assert_allclose(load_predictor(folder, "fp32").predict_proba(BATCH), expected,
                               atol=1e-5)
    with pytest.raises(FileNotFoundError, match="No saved model folder"):
        export_saved_model(tmp_path / "nowhere", tmp_path / "x")


def test_the_cnn_student_exports_and_serves_without_torch(tmp_path):
    """Chapter 4's CNN goes through the same export and predictor as the BiLSTM."""
    from helpers.bpe import train_bpe_tokenizer
    from helpers.token_models import CNNClassifier, save_token_model

    tokenizer = train_bpe_tokenizer(BATCH * 3, vocab_size=300)
    torch.manual_seed(0)
    model = CNNClassifier(tokenizer.get_vocab_size(), embedding_dim=16, num_filters=8).eval()
    source = save_token_model(model, tokenizer, tmp_path / "cnn", {"max_length": 12})
    folder = export_saved_model(source, tmp_path / "onnx")
    expected = load_token_classifier(source).predict_proba(BATCH)
    np.testing.assert_allclose(load_predictor(folder, "fp32").predict_proba(BATCH), expected,
                               atol=1e-5)
    assert json.loads((folder / "predictor.json").read_text())["kind"] == "tokens"


def test_bert_is_exported_with_plain_attention_and_keeps_its_own(bert, tmp_path: Path) -> None:
    bert.model.set_attn_implementation("sdpa")
    export_onnx(bert, tmp_path / "sdpa")
    assert bert.model.config._attn_implementation == "sdpa"  # restored after the export
    ops = {node.op_type for node in onnx.load(str(tmp_path / "sdpa" / "model.onnx")).graph.node}
    assert "Softmax" in ops and "IsNaN" not in ops  # the plain graph, not sdpa's masking
    check = check_export(bert, tmp_path / "sdpa", BATCH, LABELS)
    assert check["max |dlogit|"] < 1e-4 and check["flips"] == 0


def test_an_export_by_other_code_is_not_current(exported, bert, tmp_path: Path) -> None:
    folder = shutil.copytree(exported["bert"], tmp_path / "copy")
    source = tmp_path / "source.txt"
    source.write_text("model", encoding="utf-8")
    os.utime(source, (0, 0))  # older than the export
    assert export_is_current(folder, source)
    settings = json.loads((folder / SETTINGS_FILE).read_text(encoding="utf-8"))
    settings["exporter"] = "0" * 16
    (folder / SETTINGS_FILE).write_text(json.dumps(settings), encoding="utf-8")
    assert not export_is_current(folder, source)
