"""Same seed, same inputs, same figures: a small training run twice in separate processes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent

SCRIPT = r"""
import hashlib, json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[2])
import numpy as np
import torch
from toy import tiny_bert_folder, toy_splits
from helpers.settings import NetworkSpec, TrainSettings
from helpers.token_models import train_token_model
from helpers.bpe import train_bpe_tokenizer
from helpers.config import BookConfig
from helpers.teacher import finetune_teacher, teacher_logits_for_splits, weights_fingerprint

torch.set_num_threads(1)
root = Path(sys.argv[1])
splits = toy_splits()
teacher_source = tiny_bert_folder(root / "source", classifier=False)
config = BookConfig(data=None, teacher=str(teacher_source), small=True, root=root)
# The teacher first, from an unseeded state, as in a fresh notebook kernel.
torch.seed()
_, teacher, _ = finetune_teacher(config, splits, epochs=1, lr=1e-3, batch_size=8)
tokenizer = train_bpe_tokenizer(splits.train["text"], vocab_size=300)
run = train_token_model(config, splits, tokenizer, TrainSettings(epochs=2, max_length=24),
                        NetworkSpec("bilstm", {"embedding_dim": 16, "hidden_size": 16}))
model, history, metrics = run.model, run.history, run.test
logits = teacher_logits_for_splits(config, splits)
state = b"".join(v.numpy().tobytes() for v in model.state_dict().values())
print(json.dumps({
    "bilstm": hashlib.sha256(state).hexdigest(),
    "losses": [e["train_loss"] for e in history.epochs],
    "f1": metrics["f1"],
    "teacher": weights_fingerprint(teacher),
    "teacher_logits": hashlib.sha256(logits["test"].tobytes()).hexdigest(),
}))
"""


def run_once(tmp: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp), str(TESTS)], check=True,
                         capture_output=True, text=True, timeout=300)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_training_repeats_exactly_in_separate_processes(tmp_path: Path) -> None:
    first = run_once(tmp_path / "a")
    second = run_once(tmp_path / "b")
    assert first == second
    assert len(first["losses"]) == 2 and first["bilstm"] and first["teacher"]
