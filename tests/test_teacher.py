"""Tests of the teacher: the stand-in (helpers.standin), loading errors (helpers.checkpoints),
fine-tuning and cached logits (helpers.teacher)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from helpers.article_bugs import logits_one_at_a_time
from helpers.batching import text_logits
from helpers.checkpoints import (
    TeacherUnavailableError,
    download_command,
    hub_reachable,
    load_teacher_classifier,
    load_teacher_mlm,
)
from helpers.config import BookConfig
from helpers.data import Splits
from helpers.encoding import choose_max_length, token_lengths
from helpers.errors import OutputPathError
from helpers.standin import (
    is_standin,
    main,
    make_standin_teacher,
    mark_standin,
    standin_models,
    standin_notice,
    standin_warning,
    teacher_fields,
    teacher_row_name,
)
from helpers.teacher import (
    INFO_FILE,
    cached_teacher_logits,
    finetune_teacher,
    get_teacher,
    teacher_logits_for_splits,
    teacher_max_length,
    weights_fingerprint,
)

TEXTS = [
    "Привет, как дела?",
    "Ты полный идиот и ничего не понимаешь в этом вопросе, даже не пытайся спорить.",
    "ок",
    "Спасибо за статью, очень полезно и подробно написано, жду продолжения!",
    "что за бред",
    "Модератор, удалите этот комментарий, пожалуйста.",
]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory, rubert_tokenizer_dir: Path) -> Path:
    """A much smaller random BERT classifier with the real tokenizer, not marked as a stand-in."""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    tokenizer = AutoTokenizer.from_pretrained(rubert_tokenizer_dir)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=128,
                        num_labels=2)
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("tiny-bert")
    BertForSequenceClassification(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture()
def tiny(tiny_dir: Path):
    return load_teacher_classifier(str(tiny_dir))


def count_forward_calls(model: torch.nn.Module, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Wrap ``model.forward`` so that every call is counted; return the counter."""
    calls = [0]
    forward = model.forward

    def counting(*args, **kwargs):
        calls[0] += 1
        return forward(*args, **kwargs)

    monkeypatch.setattr(model, "forward", counting)
    return calls


# --------------------------------------------------------------------------- the stand-in


def test_standin_is_marked_and_has_rubert_tiny_shape(standin_teacher_dir: Path) -> None:
    saved = json.loads((standin_teacher_dir / "config.json").read_text())
    assert saved["book_standin"] is True
    assert saved["architectures"] == ["BertForPreTraining"]
    tokenizer, model = load_teacher_classifier(str(standin_teacher_dir))
    assert is_standin(model) and is_standin(model.config)
    assert (model.config.hidden_size, model.config.num_hidden_layers) == (312, 3)
    assert model.config.vocab_size == len(tokenizer) == 29564
    assert model.config.num_labels == 2
    assert model.config.id2label == {0: "normal", 1: "toxic"}
    assert 11_000_000 < sum(p.numel() for p in model.parameters()) < 13_000_000


def test_standin_loads_as_masked_lm(standin_teacher_dir: Path) -> None:
    tokenizer, model = load_teacher_mlm(str(standin_teacher_dir))
    assert is_standin(model)
    inputs = tokenizer(TEXTS[:2], padding=True, return_tensors="pt")
    with torch.inference_mode():
        logits = model(**inputs).logits
    assert logits.shape == (2, inputs["input_ids"].shape[1], 29564)


def test_standin_is_reproducible_and_not_rebuilt(
    standin_teacher_dir: Path, rubert_tokenizer_dir: Path, tmp_path: Path
) -> None:
    weights = standin_teacher_dir / "model.safetensors"
    before = weights.stat().st_mtime_ns
    # The CLI that .ci/run calls, on a folder that already holds a stand-in: nothing rewritten.
    main(["--tokenizer", str(rubert_tokenizer_dir), "--out", str(standin_teacher_dir)])
    assert weights.stat().st_mtime_ns == before
    other = make_standin_teacher(rubert_tokenizer_dir, tmp_path / "again")
    assert (other / "model.safetensors").read_bytes() == weights.read_bytes()


def test_make_standin_never_replaces_a_real_model(
    tiny_dir: Path, rubert_tokenizer_dir: Path
) -> None:
    with pytest.raises(OutputPathError, match="not a stand-in"):
        make_standin_teacher(rubert_tokenizer_dir, tiny_dir)


def test_teacher_row_is_named_after_the_teacher_used(tiny, standin_teacher_dir: Path,
                                                     tmp_path: Path) -> None:
    def config(teacher: str) -> BookConfig:
        return BookConfig(data=None, teacher=teacher, small=True, root=tmp_path)

    _, model = tiny
    assert teacher_row_name(config("cointegrated/rubert-tiny"), model) == "rubert-tiny teacher"
    assert teacher_row_name(config("cointegrated/rubert-tiny2"), model) == "rubert-tiny2 teacher"
    assert teacher_row_name(config("/models/my-bert/"), model) == "my-bert teacher"
    _, standin = load_teacher_classifier(str(standin_teacher_dir))
    assert teacher_row_name(config("cointegrated/rubert-tiny"), standin) == "stand-in teacher"


def test_is_standin_false_without_marker(tiny) -> None:
    from transformers import BertConfig

    _, model = tiny
    assert not is_standin(model)
    assert not is_standin(BertConfig())
    assert standin_warning(model) == ""


def test_standin_warning_is_loud(standin_teacher_dir: Path) -> None:
    _, model = load_teacher_classifier(str(standin_teacher_dir))
    warning = standin_warning(model)
    assert "STAND-IN" in warning and "meaningless" in warning and "BOOK_TEACHER" in warning


def test_standin_notice_names_the_rows_that_depend_on_it() -> None:
    rows = pd.DataFrame({"model": ["char", "teacher", "student"],
                         "standin": [False, True, True]})
    notice = standin_notice(rows)
    assert "STAND-IN" in notice and notice.endswith(": teacher, student.")
    assert "marked †" in notice and max(map(len, notice.splitlines())) <= 90  # fits the page
    assert standin_notice(rows.set_index("model")).endswith("teacher, student.")
    assert standin_notice(rows[rows["model"] == "char"]) == ""
    assert standin_notice(pd.DataFrame({"model": ["x"]})) == ""


def test_standin_forward_shape_and_finite_loss(standin_teacher_dir: Path) -> None:
    tokenizer, model = load_teacher_classifier(str(standin_teacher_dir))
    inputs = tokenizer(TEXTS[:3], padding=True, return_tensors="pt")
    output = model(**inputs, labels=torch.tensor([0, 1, 0]))
    assert output.logits.shape == (3, 2)
    assert torch.isfinite(output.loss)
    output.loss.backward()  # gradients reach the new head and the encoder
    assert model.classifier.weight.grad is not None
    assert model.bert.embeddings.word_embeddings.weight.grad is not None


# --------------------------------------------------------------------------- loading errors


@pytest.fixture()
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hub offline, so a missing model fails at once instead of after network retries."""
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # huggingface_hub reads the variable at import time; its constant is what it checks.
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)


@pytest.fixture()
def no_network(monkeypatch: pytest.MonkeyPatch) -> str:
    """A machine without network, as the probe sees it: the hub's address refuses connections.

    ``HF_HUB_OFFLINE`` stays unset, so the loader has to find out by itself, and fast.
    """
    import socket

    from huggingface_hub import constants

    with socket.socket() as sock:  # a local port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{sock.getsockname()[1]}"
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    return endpoint


HINTS = ("BOOK_TEACHER", "python -m helpers.standin --tokenizer DIR --out DIR", "meaningless")


def assert_helpful(message: str, download: str = "cointegrated/rubert-tiny") -> None:
    for hint in (*HINTS, download_command(download)):
        assert hint in message
    assert "huggingface-cli" not in message  # not installed by the pinned hub client


@pytest.mark.parametrize("loader", [load_teacher_classifier, load_teacher_mlm])
def test_unreachable_hub_fails_fast_with_its_own_message(no_network: str, loader) -> None:
    import time

    name = "nobody-here/no-such-model-xyz"
    started = time.perf_counter()
    with pytest.raises(TeacherUnavailableError) as caught:
        loader(name)
    assert time.perf_counter() - started < 15  # not the client's minute of retries
    message = str(caught.value)
    assert f"the Hugging Face hub ({no_network}) cannot be reached" in message
    assert "not in the local Hugging Face cache" in message
    assert_helpful(message, download=name)
    assert "does not exist" not in message and "has no" not in message
    assert isinstance(caught.value, RuntimeError)


def test_hub_reachable_probe(no_network: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from huggingface_hub import constants

    assert not hub_reachable(timeout=2)

    class NotFound(BaseHTTPRequestHandler):
        def do_HEAD(self) -> None:  # any answer means the hub is there
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{server.server_port}")
        assert hub_reachable(timeout=2)
    finally:
        server.shutdown()
        server.server_close()


def test_offline_mode_is_named_in_the_error(offline) -> None:
    with pytest.raises(TeacherUnavailableError, match="HF_HUB_OFFLINE is set") as caught:
        load_teacher_classifier("nobody-here/no-such-model-xyz")
    assert_helpful(str(caught.value), download="nobody-here/no-such-model-xyz")


@pytest.mark.parametrize("loader", [load_teacher_classifier, load_teacher_mlm])
def test_missing_folder_has_its_own_message(no_network: str, tmp_path: Path, loader) -> None:
    for folder in (tmp_path / "missing", "./no-such-teacher", "~/no/such/teacher"):
        with pytest.raises(TeacherUnavailableError) as caught:
            loader(str(folder))
        message = str(caught.value)
        assert "does not exist" in message and str(Path(folder).expanduser()) in message
        assert "hub" not in message.split("\n")[0]  # a folder, not a hub id
        assert_helpful(message)


def test_folder_without_weights_or_config_has_its_own_message(
    no_network: str, tmp_path: Path, rubert_tokenizer_dir: Path
) -> None:
    import shutil

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(TeacherUnavailableError) as caught:
        load_teacher_classifier(str(empty))
    first = str(caught.value).splitlines()[0]
    assert f"the folder {empty} has no config.json and no weights" in first
    assert "holds nothing" in first
    assert_helpful(str(caught.value))

    tokenizer_only = shutil.copytree(rubert_tokenizer_dir, tmp_path / "tokenizer-only")
    with pytest.raises(TeacherUnavailableError) as caught:
        load_teacher_mlm(str(tokenizer_only))
    first = str(caught.value).splitlines()[0]
    assert "has no weights (model.safetensors or pytorch_model.bin)" in first
    assert "config.json" in first and "has no config.json" not in first  # it has one
    assert "does not exist" not in first

    # Config and a weights file, but the weights are not a model: the library's error is named.
    (tokenizer_only / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(TeacherUnavailableError) as caught:
        load_teacher_classifier(str(tokenizer_only))
    first = str(caught.value).splitlines()[0]
    assert f"the folder {tokenizer_only} holds no usable model (SafetensorError" in first
    assert_helpful(str(caught.value))


# --------------------------------------------------------------------------- lengths and logits


def test_choose_max_length_is_a_capped_percentile(tiny) -> None:
    tokenizer, _ = tiny
    lengths = token_lengths(tokenizer, TEXTS)
    assert lengths.min() >= 3  # [CLS] text [SEP]
    assert choose_max_length(lengths) == int(np.ceil(np.percentile(lengths, 95)))
    assert choose_max_length(lengths, cap=5) == 5
    assert choose_max_length(lengths, quantile=1.0) == lengths.max()


def test_dynamic_padding_gives_the_same_logits_as_one_at_a_time(tiny) -> None:
    tokenizer, model = tiny
    batched = text_logits(model, tokenizer, TEXTS, max_length=64, batch_size=4)
    padded = logits_one_at_a_time(model, tokenizer, TEXTS, max_length=64)
    unpadded = logits_one_at_a_time(model, tokenizer, TEXTS, max_length=64,
                                    pad_to_max_length=False)
    assert batched.shape == (len(TEXTS), 2) and batched.dtype == np.float32
    np.testing.assert_allclose(batched, padded, atol=1e-5)
    np.testing.assert_allclose(batched, unpadded, atol=1e-5)
    assert not np.allclose(batched[0], batched[1])  # rows are really per text, in order


def test_cached_logits_are_reused_and_invalidated(
    tiny, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tokenizer, model = tiny
    calls = count_forward_calls(model, monkeypatch)
    first = cached_teacher_logits(model, tokenizer, TEXTS, tmp_path, max_length=32, batch_size=4)
    assert first.shape == (len(TEXTS), 2) and first.dtype == np.float32
    assert calls[0] == 2  # 6 texts in batches of 4
    assert len(list(tmp_path.glob("*.npy"))) == 1

    again = cached_teacher_logits(model, tokenizer, TEXTS, tmp_path, max_length=32, batch_size=4)
    assert calls[0] == 2, "the second call must read the cache, not run the model"
    np.testing.assert_array_equal(first, again)

    cached_teacher_logits(model, tokenizer, TEXTS[:-1], tmp_path, max_length=32)
    assert calls[0] == 3, "other texts must be computed afresh"
    cached_teacher_logits(model, tokenizer, TEXTS, tmp_path, max_length=16)
    assert calls[0] == 4, "another max length must be computed afresh"

    with torch.no_grad():
        model.classifier.bias += 1.0
    changed = cached_teacher_logits(model, tokenizer, TEXTS, tmp_path, max_length=32)
    assert calls[0] == 5, "other weights must be computed afresh"
    np.testing.assert_allclose(changed, first + 1.0, atol=1e-5)
    assert len(list(tmp_path.glob("*.npy"))) == 4


def test_weights_fingerprint_follows_the_weights(tiny, tiny_dir: Path) -> None:
    _, model = tiny
    _, same = load_teacher_classifier(str(tiny_dir))
    assert weights_fingerprint(model) == weights_fingerprint(same)
    with torch.no_grad():
        same.bert.encoder.layer[0].attention.self.query.weight[0, 0] += 1e-3
    assert weights_fingerprint(model) != weights_fingerprint(same)


# --------------------------------------------------------------------------- fine-tuning


def tiny_splits() -> Splits:
    toxic = ["ты идиот", "что за бред, автор дебил", "заткнись уже", "урод ты"]
    normal = ["спасибо за статью", "хороший день сегодня", "согласен с вами", "интересная мысль"]
    frame = pd.DataFrame({"text": toxic + normal, "label": [1] * 4 + [0] * 4})
    return Splits(train=frame, valid=frame.iloc[::-1].reset_index(drop=True), test=frame)


def test_finetune_save_get_teacher_and_split_logits(
    tiny_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Mark the tiny model as a stand-in: the mark must survive fine-tuning and saving.
    source = tmp_path / "source"
    tokenizer, model = load_teacher_classifier(str(tiny_dir))
    model.config.book_standin = True
    model.save_pretrained(source)
    tokenizer.save_pretrained(source)

    config = BookConfig(data=None, teacher=str(source), small=True, root=tmp_path)
    splits = tiny_splits()
    tokenizer, model, history = finetune_teacher(config, splits)  # the book's hyper-parameters
    assert len(history.epochs) == 1  # small-data mode: one epoch
    saved = config.artifact("teacher")
    info = json.loads((saved / INFO_FILE).read_text())
    assert info["source"] == str(source) and info["standin"] is True
    assert info["max_length"] == teacher_max_length(config) == choose_max_length(
        token_lengths(tokenizer, splits.train["text"]))
    assert info["train_seconds"] > 0 and len(info["history"]) == 1
    assert is_standin(model)
    fields = teacher_fields(config, model)
    assert fields == {"teacher": str(source), "standin": True}

    # Later chapters load what was saved instead of training again.
    def no_training(*args, **kwargs):
        raise AssertionError("get_teacher must reuse the saved teacher")

    monkeypatch.setattr("helpers.teacher.finetune_teacher", no_training)
    _, loaded = get_teacher(config, splits)
    assert is_standin(loaded) and not loaded.training
    assert weights_fingerprint(loaded) == weights_fingerprint(model)

    logits = teacher_logits_for_splits(config, splits)
    assert {k: v.shape for k, v in logits.items()} == {
        "train": (8, 2), "valid": (8, 2), "test": (8, 2)}
    # valid holds the training texts in reverse order: rows follow the texts.
    np.testing.assert_allclose(logits["valid"], logits["train"][::-1], atol=1e-5)
    assert len(list(config.artifact("teacher_cache").glob("*.npy"))) == 2  # train == test texts


def test_get_teacher_never_reuses_a_teacher_made_from_other_data_or_source(
    tiny_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = BookConfig(data=None, teacher=str(tiny_dir), small=True, root=tmp_path)
    splits = tiny_splits()
    finetune_teacher(config, splits)
    called = []

    def fake_finetune(config, splits):
        called.append(True)
        return "tok", torch.nn.Linear(1, 1), None

    monkeypatch.setattr("helpers.teacher.finetune_teacher", fake_finetune)
    get_teacher(config, splits)
    assert called == []  # same source, texts, labels and hyper-parameters: reused
    flipped = Splits(splits.train.assign(label=1 - splits.train["label"]), splits.valid,
                     splits.test)
    get_teacher(config, flipped)  # the labels changed (another BOOK_DATA): fine-tuned again
    assert called == [True]
    other = BookConfig(data=None, teacher="some/other-model", small=True, root=tmp_path)
    get_teacher(other, splits)
    assert called == [True, True]


def test_mark_standin_marks_every_row_that_names_a_dependent_model() -> None:
    table = pd.DataFrame({"f1": [0.8, 0.7, 0.6, 0.5]}, index=[
        "student", "student [ONNX int8]", "twin → student", "char"])
    marked = mark_standin(table, standin_models(
        pd.DataFrame({"model": ["student", "char"], "standin": [True, False]})))
    assert list(marked.index) == ["† student", "† student [ONNX int8]", "† twin → student", "char"]
    assert list(table.index)[0] == "student"  # the table itself is left as it was


def test_crossfit_logits_come_from_teachers_that_never_saw_the_text(
    tiny_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from helpers import teacher as teacher_module

    config = BookConfig(data=None, teacher=str(tiny_dir), small=True, root=tmp_path)
    splits = tiny_splits()
    crossfit = teacher_module.crossfit_teacher_logits(config, splits, k=2)
    assert crossfit.logits.shape == (8, 2) and sorted(set(crossfit.folds.tolist())) == [0, 1]
    # stratified: each fold holds two toxic and two normal texts
    labels = splits.train["label"].to_numpy()
    assert [int(labels[crossfit.folds == f].sum()) for f in (0, 1)] == [2, 2]
    assert [info["train_texts"] for info in crossfit.fold_info] == [4, 4]
    # fold 0's rows: the logits of a teacher fine-tuned on fold 1's rows only, in the same way
    held_out = crossfit.folds == 0
    tokenizer, model, _, length = teacher_module._finetune(
        config, splits.train[~held_out], splits.valid, epochs=1, lr=teacher_module.LR,
        batch_size=teacher_module.BATCH_SIZE, max_length=None, patience=2, desc="check")
    expected = text_logits(model, tokenizer, splits.train["text"][held_out].tolist(), length)
    np.testing.assert_allclose(crossfit.logits[held_out], expected, atol=1e-5)
    # a teacher fine-tuned on every text gives other logits
    _, full, _ = finetune_teacher(config, splits)
    assert weights_fingerprint(full) != weights_fingerprint(model)

    def no_training(*args, **kwargs):
        raise AssertionError("the cached cross-fitted logits must be reused")

    monkeypatch.setattr(teacher_module, "_finetune", no_training)
    # finetune_teacher saved a teacher, whose max length is now part of the key: computed again
    with pytest.raises(AssertionError, match="reused"):
        teacher_module.crossfit_teacher_logits(config, splits, k=2)
    monkeypatch.undo()
    again = teacher_module.crossfit_teacher_logits(config, splits, k=2)
    monkeypatch.setattr(teacher_module, "_finetune", no_training)
    np.testing.assert_array_equal(
        teacher_module.crossfit_teacher_logits(config, splits, k=2).logits, again.logits)
    with pytest.raises(ValueError, match="k must be an integer >= 2"):
        teacher_module.crossfit_teacher_logits(config, splits, k=1)
