"""helpers.pretraining's masking table: what mask_tokens did at every position of one text."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from toy import tiny_bert_tokenizer

from helpers import pretraining
from helpers.losses import IGNORE


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory):
    return tiny_bert_tokenizer(Path(tmp_path_factory.mktemp("vocab")))


def test_each_action_is_named_with_its_label(tokenizer) -> None:
    ids = tokenizer("спасибо автор дурак очень хорошо")["input_ids"]  # [CLS] five words [SEP]
    other = tokenizer.convert_tokens_to_ids("идиот")
    masked = list(ids)
    masked[1], masked[2] = tokenizer.mask_token_id, other  # [MASK], then a random token
    labels = [IGNORE] * len(ids)
    labels[1], labels[2], labels[3] = ids[1], ids[2], ids[3]  # position 3: chosen, kept
    table = pretraining.masking_table(tokenizer, ids, masked, labels)
    assert list(table.columns) == ["original token", "action", "student reads", "label"]
    assert table.index.name == "position" and list(table.index) == list(range(len(ids)))
    assert list(table["action"]) == ["not chosen", "[MASK]", "random", "kept", "not chosen",
                                     "not chosen", "not chosen"]
    assert list(table["original token"][:4]) == ["[CLS]", "спасибо", "автор", "дурак"]
    assert list(table["student reads"][1:3]) == ["[MASK]", "идиот"]
    assert list(table["label"]) == labels


def test_the_table_of_a_real_masking_agrees_with_it(tokenizer) -> None:
    ids = torch.tensor([tokenizer("это был очень интересно пост спасибо автор")["input_ids"]])
    special = torch.tensor(tokenizer.all_special_ids)
    regular = torch.arange(len(tokenizer))[~torch.isin(torch.arange(len(tokenizer)), special)]
    masked, labels = pretraining.mask_tokens(ids, special, tokenizer.mask_token_id, regular,
                                             probability=0.6,
                                             generator=torch.Generator().manual_seed(3))
    table = pretraining.masking_table(tokenizer, ids[0], masked[0], labels[0])
    chosen = table["action"] != "not chosen"
    assert chosen.any()
    assert (table.loc[~chosen, "label"] == IGNORE).all()
    assert (table.loc[chosen, "label"] == ids[0].numpy()[chosen.to_numpy()]).all()
    assert (table.loc[table["action"] == "[MASK]", "student reads"] == "[MASK]").all()
    unchanged = table["original token"] == table["student reads"]
    assert set(table.loc[unchanged, "action"]) <= {"kept", "not chosen"}
    assert set(table.loc[~unchanged, "action"]) <= {"[MASK]", "random"}


def test_lengths_must_agree(tokenizer) -> None:
    with pytest.raises(ValueError, match="same length"):
        pretraining.masking_table(tokenizer, [2, 5, 3], [2, 4], [IGNORE, 5, IGNORE])
