"""Chapters 3 and 5's loading code on checkpoints in the hub's OLDER layout.

``cointegrated/rubert-tiny`` and ``rubert-tiny2`` were saved by transformers 4.x: a
``pytorch_model.bin`` whose state dict holds the ``bert.embeddings.position_ids`` buffer and the
MLM decoder as ``cls.predictions.decoder.weight`` / ``.bias``, a ``config.json`` with keys today's
``BertConfig`` no longer writes (``emb_size``, ``gradient_checkpointing``), and a
``tokenizer_config.json`` without ``tokenizer_class`` (no ``tokenizer.json``). ``save_pretrained``
writes none of that, so these fixtures write it by hand: small random weights in the two models'
shapes, the real tokenizer files copied from the shared folder into a temporary one.
"""

from __future__ import annotations

import fnmatch
import json
import shutil
from pathlib import Path

import pytest
import torch

from helpers import pruning, students
from helpers.checkpoints import (
    DOWNLOAD_FILES,
    MissingHeadError,
    MissingWeightsError,
    download_command,
    load_teacher_classifier,
    load_teacher_mlm,
)

SHAPES = {  # vocabulary, positions (both 312 wide, 3 layers, 12 heads, feed-forward 600)
    "rubert-tiny": (29_564, 512),
    "rubert-tiny2": (83_828, 2_048),
}
TEXTS = ["ты идиот", "что за бред, автор дебил", "спасибо за статью", "хороший день сегодня"] * 6


def old_config(vocab: int, positions: int) -> dict:
    """config.json as the hub has it for these models (transformers 4.x keys included)."""
    return {
        "_name_or_path": "cointegrated/rubert-tiny", "architectures": ["BertForPreTraining"],
        "attention_probs_dropout_prob": 0.1, "emb_size": 312, "gradient_checkpointing": False,
        "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "hidden_size": 312,
        "initializer_range": 0.02, "intermediate_size": 600, "layer_norm_eps": 1e-12,
        "max_position_embeddings": positions, "model_type": "bert", "num_attention_heads": 12,
        "num_hidden_layers": 3, "output_past": True, "pad_token_id": 0,
        "position_embedding_type": "absolute", "transformers_version": "4.6.1",
        "type_vocab_size": 2, "use_cache": True, "vocab_size": vocab,
    }


def old_state_dict(vocab: int, positions: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """A BertForPreTraining state dict under the old checkpoints' key names, small random values."""
    generator = torch.Generator().manual_seed(seed)

    def rand(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator) * 0.02

    h, ff = 312, 600
    state = {
        "bert.embeddings.position_ids": torch.arange(positions).unsqueeze(0),
        "bert.embeddings.word_embeddings.weight": rand(vocab, h),
        "bert.embeddings.position_embeddings.weight": rand(positions, h),
        "bert.embeddings.token_type_embeddings.weight": rand(2, h),
        "bert.embeddings.LayerNorm.weight": torch.ones(h),
        "bert.embeddings.LayerNorm.bias": torch.zeros(h),
        "bert.pooler.dense.weight": rand(h, h), "bert.pooler.dense.bias": rand(h),
        "cls.predictions.bias": rand(vocab),
        "cls.predictions.transform.dense.weight": rand(h, h),
        "cls.predictions.transform.dense.bias": rand(h),
        "cls.predictions.transform.LayerNorm.weight": torch.ones(h),
        "cls.predictions.transform.LayerNorm.bias": torch.zeros(h),
        "cls.seq_relationship.weight": rand(2, h), "cls.seq_relationship.bias": rand(2),
    }
    state["cls.predictions.decoder.weight"] = state["bert.embeddings.word_embeddings.weight"]
    state["cls.predictions.decoder.bias"] = state["cls.predictions.bias"]
    for i in range(3):
        layer = f"bert.encoder.layer.{i}."
        for name, shape in (("attention.self.query", (h, h)), ("attention.self.key", (h, h)),
                            ("attention.self.value", (h, h)), ("attention.output.dense", (h, h)),
                            ("intermediate.dense", (ff, h)), ("output.dense", (h, ff))):
            state[f"{layer}{name}.weight"] = rand(*shape)
            state[f"{layer}{name}.bias"] = rand(shape[0])
        for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
            state[f"{layer}{norm}.weight"] = torch.ones(h)
            state[f"{layer}{norm}.bias"] = torch.zeros(h)
    return state


def write_old_checkpoint(out: Path, tokenizer_dir: Path, shape: str,
                         drop: tuple[str, ...] = ()) -> dict[str, torch.Tensor]:
    """Write a checkpoint of ``shape`` in the old layout into ``out``; keys starting with one of
    ``drop`` are left out. Returns the state dict written."""
    vocab, positions = SHAPES[shape]
    out.mkdir(parents=True)
    words = (tokenizer_dir / "vocab.txt").read_text(encoding="utf-8").splitlines()
    words += [f"[unused{i}]" for i in range(vocab - len(words))]
    (out / "vocab.txt").write_text("\n".join(words) + "\n", encoding="utf-8")
    shutil.copy(tokenizer_dir / "special_tokens_map.json", out)
    old_tokenizer = {"do_lower_case": False, "model_max_length": positions,
                     "special_tokens_map_file": None, "name_or_path": "cointegrated/rubert-tiny"}
    (out / "tokenizer_config.json").write_text(json.dumps(old_tokenizer), encoding="utf-8")
    (out / "config.json").write_text(json.dumps(old_config(vocab, positions)), encoding="utf-8")
    state = {k: v for k, v in old_state_dict(vocab, positions).items() if not k.startswith(drop)}
    torch.save(state, out / "pytorch_model.bin")
    return state


@pytest.fixture(scope="module", params=list(SHAPES))
def old_checkpoint(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                   rubert_tokenizer_dir: Path) -> tuple[Path, dict[str, torch.Tensor]]:
    out = tmp_path_factory.mktemp("old") / request.param
    return out, write_old_checkpoint(out, rubert_tokenizer_dir, request.param)


def test_chapter_three_loads_every_encoder_weight_from_the_old_file(
    old_checkpoint, rubert_tokenizer_dir: Path
) -> None:
    from transformers import AutoTokenizer

    folder, state = old_checkpoint
    assert "tokenizer_class" not in json.loads((folder / "tokenizer_config.json").read_text())
    tokenizer, model = load_teacher_classifier(str(folder))
    assert len(tokenizer) == model.config.vocab_size == state["cls.predictions.bias"].numel()
    # The old tokenizer_config.json (no tokenizer_class) gives rubert-tiny's own tokenization.
    text = "Привет, ты полный идиот!"
    assert tokenizer(text)["input_ids"] == AutoTokenizer.from_pretrained(
        rubert_tokenizer_dir)(text)["input_ids"]
    loaded = model.state_dict()
    for key, value in state.items():
        if key.startswith("bert.") and key != "bert.embeddings.position_ids":
            torch.testing.assert_close(loaded[key], value, msg=key)
    assert model.config.id2label == {0: "normal", 1: "toxic"}


def test_chapter_five_loads_the_mlm_head_and_builds_students_from_it(
    old_checkpoint, tmp_path: Path
) -> None:
    folder, state = old_checkpoint
    tokenizer, teacher = load_teacher_mlm(str(folder))
    torch.testing.assert_close(teacher.cls.predictions.bias, state["cls.predictions.bias"])
    torch.testing.assert_close(teacher.cls.predictions.transform.dense.weight,
                               state["cls.predictions.transform.dense.weight"])
    vocab = pruning.prune_vocabulary(tokenizer, TEXTS, tmp_path / "vocab")
    kept = vocab.kept_ids
    words = state["bert.embeddings.word_embeddings.weight"]
    tiny = students.make_tiny_student(teacher, vocab)
    torch.testing.assert_close(tiny.bert.embeddings.word_embeddings.weight, words[kept, :256])
    torch.testing.assert_close(tiny.cls.predictions.bias, state["cls.predictions.bias"][kept])
    distil = students.make_layer_subset_student(teacher, vocab, teacher_layers=(0, 2))
    torch.testing.assert_close(distil.bert.embeddings.word_embeddings.weight, words[kept])
    assert distil.config.max_position_embeddings == 512
    torch.testing.assert_close(distil.bert.encoder.layer[1].output.dense.weight,
                               state["bert.encoder.layer.2.output.dense.weight"])
    # The student saves and loads back as chapter 5 does.
    distil.save_pretrained(tmp_path / "distil")
    from transformers import BertForMaskedLM

    again = BertForMaskedLM.from_pretrained(tmp_path / "distil")
    torch.testing.assert_close(again.bert.embeddings.position_embeddings.weight,
                               state["bert.embeddings.position_embeddings.weight"][:512])


@pytest.mark.parametrize(("drop", "loader", "error", "named"), [
    (("bert.pooler.",), load_teacher_classifier, MissingWeightsError, "bert.pooler.dense.bias"),
    (("bert.encoder.layer.1.",), load_teacher_classifier, MissingWeightsError,
     "bert.encoder.layer.1.attention"),
    (("cls.predictions.",), load_teacher_mlm, MissingHeadError, "cls.predictions.bias"),
])
def test_what_must_come_from_the_file_is_checked(drop, loader, error, named, tmp_path: Path,
                                                 rubert_tokenizer_dir: Path) -> None:
    folder = tmp_path / "partial"
    write_old_checkpoint(folder, rubert_tokenizer_dir, "rubert-tiny", drop=drop)
    with pytest.raises(error, match="missing from the checkpoint") as raised:
        loader(str(folder))
    assert named in str(raised.value)


def test_the_suggested_download_holds_what_both_chapters_load(
    old_checkpoint, tmp_path: Path
) -> None:
    folder, _ = old_checkpoint
    # What the hub's repository holds besides: a second copy of the weights, other frameworks.
    extra = {"model.safetensors": None, "tf_model.h5": b"", "flax_model.msgpack": b"",
             "README.md": b""}
    source = tmp_path / "repo"
    shutil.copytree(folder, source)
    from transformers import BertForPreTraining

    BertForPreTraining.from_pretrained(folder).save_pretrained(tmp_path / "st")
    extra["model.safetensors"] = (tmp_path / "st" / "model.safetensors").read_bytes()
    for name, content in extra.items():
        (source / name).write_bytes(content)
    fetched = tmp_path / "fetched"
    fetched.mkdir()
    for path in source.iterdir():
        if any(fnmatch.fnmatch(path.name, pattern) for pattern in DOWNLOAD_FILES):
            shutil.copy(path, fetched)
    names = sorted(p.name for p in fetched.iterdir())
    assert names == ["config.json", "model.safetensors", "special_tokens_map.json",
                     "tokenizer_config.json", "vocab.txt"]  # one weight file, no other framework
    load_teacher_classifier(str(fetched))
    load_teacher_mlm(str(fetched))
    assert download_command("cointegrated/rubert-tiny").startswith(
        "hf download cointegrated/rubert-tiny --local-dir DIR --include config.json ")

