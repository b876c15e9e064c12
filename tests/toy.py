"""Toy data and tiny models shared by the tests: a corpus whose label one word decides, a small
BERT and a small BiLSTM saved the way the chapters save theirs, and a check every text classifier
must pass."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from helpers.bpe import train_bpe_tokenizer
from helpers.classifiers import TextClassifier
from helpers.config import BookConfig
from helpers.data import Splits
from helpers.token_models import BiLSTMClassifier, save_token_model

TOXIC = ["дурак", "идиот", "тупой", "мразь", "урод"]
NORMAL = ["спасибо", "хорошо", "интересно", "согласен", "отлично"]
FILLER = ["это", "был", "очень", "пост", "статья", "автор", "комментарии", "сегодня", "люди"]


def toy_corpus(n: int = 120, seed: int = 0) -> pd.DataFrame:
    """Texts of a few filler words plus one word that decides the label (every third is toxic)."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = int(i % 3 == 0)
        words = rng.sample(FILLER, rng.randint(1, 5)) + [rng.choice(TOXIC if label else NORMAL)]
        rng.shuffle(words)
        rows.append({"text": " ".join(words) + ("!" * rng.randint(0, 2)) + f" {i}",
                     "label": label})
    return pd.DataFrame(rows)


def toy_splits(n: int = 120) -> Splits:
    frame = toy_corpus(n)
    third = n // 3
    return Splits(frame.iloc[:third * 2].reset_index(drop=True),
                  frame.iloc[third * 2:third * 2 + third // 2].reset_index(drop=True),
                  frame.iloc[third * 2 + third // 2:].reset_index(drop=True))


def tiny_bert_tokenizer(folder: Path):
    """A WordPiece tokenizer over the toy corpus's words (no download needed)."""
    from transformers import BertTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    words = sorted({w for t in toy_corpus()["text"] for w in t.replace("!", " ! ").split()})
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "!", *words]
    (folder / "vocab.txt").write_text("\n".join(dict.fromkeys(vocab)) + "\n", encoding="utf-8")
    return BertTokenizer(vocab=str(folder / "vocab.txt"), do_lower_case=True)


def tiny_bert_folder(folder: Path, classifier: bool = True, seed: int = 0) -> Path:
    """A randomly initialised 1-layer BERT of width 32 and its tokenizer, saved with
    ``save_pretrained`` (a sequence classifier, or a pre-training model to fine-tune as a teacher:
    encoder, pooler and MLM head, as rubert-tiny is saved)."""
    from transformers import BertConfig, BertForPreTraining, BertForSequenceClassification

    tokenizer = tiny_bert_tokenizer(folder / "_vocab")
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=64,
                        pad_token_id=tokenizer.pad_token_id, num_labels=2)
    torch.manual_seed(seed)
    model = (BertForSequenceClassification if classifier else BertForPreTraining)(config).eval()
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


def tiny_bilstm_folder(folder: Path, max_length: int = 24, hidden: int = 16, seed: int = 0) -> Path:
    """A randomly initialised small BiLSTM and a BPE tokenizer trained on the toy corpus."""
    tokenizer = train_bpe_tokenizer(toy_corpus()["text"], vocab_size=300)
    torch.manual_seed(seed)
    model = BiLSTMClassifier(tokenizer.get_vocab_size(), embedding_dim=16,
                             hidden_size=hidden).eval()
    return save_token_model(model, tokenizer, folder, {"name": "tiny", "max_length": max_length})


def tiny_config(root: Path) -> BookConfig:
    return BookConfig(data=None, teacher="unused", small=True, root=root)


def check_predictor(classifier: TextClassifier, texts: list[str]) -> np.ndarray:
    """Shape, range, and batched == one-by-one (dynamic padding must not change a prediction)."""
    assert isinstance(classifier, TextClassifier)
    proba = classifier.predict_proba(texts)
    assert proba.shape == (len(texts),)
    assert np.all((proba >= 0) & (proba <= 1))
    one_by_one = np.array([classifier.predict_proba([text])[0] for text in texts])
    np.testing.assert_allclose(proba, one_by_one, atol=1e-5)
    assert classifier.params > 0 and classifier.size_mb > 0
    return proba


TEXTS = ["спасибо очень интересно", "ты дурак", "автор идиот!!! и урод",
         "комментарии сегодня хорошо, а вот статья " * 5, "x", ""]
