"""Tests of helpers.students on a tiny random BERT with the real rubert-tiny tokenizer."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

from helpers import benchmark, budgets, losses, pretraining, pruning, students
from helpers.classifiers import load_transformers_classifier
from helpers.data import Splits
from helpers.pretraining_history import PretrainHistory
from helpers.training import Plateau

# Invented sentences: frequent words repeat, "синхрофазотрон" appears once.
FREQUENT = "Кошка спит на диване и мурлычет"
TEXTS = [FREQUENT] * 7 + ["синхрофазотрон"]


@pytest.fixture(scope="module")
def teacher_tokenizer(rubert_tokenizer_dir: Path):
    return AutoTokenizer.from_pretrained(str(rubert_tokenizer_dir))


@pytest.fixture(scope="module")
def vocab(teacher_tokenizer, tmp_path_factory) -> pruning.PrunedVocab:
    return pruning.prune_vocabulary(teacher_tokenizer, TEXTS,
                                     tmp_path_factory.mktemp("vocab"), min_count=5)


@pytest.fixture(scope="module")
def teacher(teacher_tokenizer) -> BertForMaskedLM:
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(teacher_tokenizer), hidden_size=32, num_hidden_layers=3,
                        num_attention_heads=4, intermediate_size=48, max_position_embeddings=64)
    return BertForMaskedLM(config).eval()


def ids_of(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def test_pruning_keeps_specials_and_frequent_tokens_and_drops_rare(vocab, teacher_tokenizer):
    kept = set(vocab.kept_ids.tolist())
    assert set(teacher_tokenizer.all_special_ids) <= kept
    assert set(ids_of(teacher_tokenizer, FREQUENT)) <= kept  # each seen 7 times
    rare = set(ids_of(teacher_tokenizer, "синхрофазотрон")) - set(ids_of(teacher_tokenizer,
                                                                          FREQUENT))
    assert rare and not rare & kept
    assert vocab.size == len(kept) == len(vocab.tokenizer)
    # Specials keep their ids and tokens, casing is kept.
    for token in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"):
        expected = teacher_tokenizer.convert_tokens_to_ids(token)
        assert vocab.tokenizer.convert_tokens_to_ids(token) == expected
    # rubert-tiny is cased, and so must be the pruned tokenizer: lower-casing "Кошка" would give
    # pieces of "кошка", which are not in the pruned vocabulary.
    assert vocab.tokenizer.tokenize("Кошка") == teacher_tokenizer.tokenize("Кошка")
    assert teacher_tokenizer.tokenize("Кошка") != teacher_tokenizer.tokenize("кошка")


def test_counts_are_a_bincount_of_the_training_ids(vocab, teacher_tokenizer):
    ids = [i for text in TEXTS for i in ids_of(teacher_tokenizer, text)]
    expected = np.bincount(ids, minlength=len(teacher_tokenizer))
    np.testing.assert_array_equal(vocab.counts, expected)


def test_id_map_round_trip(vocab, teacher_tokenizer):
    teacher_ids = torch.tensor(teacher_tokenizer(FREQUENT + " синхрофазотрон")["input_ids"])
    student_ids = vocab.to_student(teacher_ids)
    back = vocab.to_teacher(student_ids)
    kept = torch.isin(teacher_ids, vocab.kept_ids)
    assert torch.equal(back[kept], teacher_ids[kept])
    assert (student_ids[~kept] == vocab.tokenizer.unk_token_id).all() and (~kept).any()


def test_pruned_tokenizer_encodes_in_vocab_text_as_the_mapped_ids(vocab, teacher_tokenizer,
                                                                  tmp_path):
    teacher_ids = torch.tensor(teacher_tokenizer(FREQUENT)["input_ids"])
    assert vocab.tokenizer(FREQUENT)["input_ids"] == vocab.to_student(teacher_ids).tolist()
    # The saved tokenizer loads back with AutoTokenizer and encodes the same way.
    reloaded = AutoTokenizer.from_pretrained(str(vocab.folder))
    assert reloaded(FREQUENT)["input_ids"] == vocab.tokenizer(FREQUENT)["input_ids"]


def test_unk_share_counts_unknown_tokens(vocab, teacher_tokenizer):
    assert pruning.unk_share(vocab.tokenizer, [FREQUENT]) == 0.0
    assert pruning.unk_share(teacher_tokenizer, [FREQUENT]) == 0.0
    assert pruning.dropped_token_share(vocab, teacher_tokenizer, [FREQUENT]) == 0.0
    assert pruning.dropped_token_share(vocab, teacher_tokenizer, ["синхрофазотрон"]) == 1.0


def test_embedding_initialisation_copies_the_kept_rows_and_first_columns(vocab, teacher):
    student = students.make_tiny_student(teacher, vocab, hidden_size=16, num_hidden_layers=2,
                                         num_attention_heads=2, intermediate_size=16,
                                         max_position_embeddings=40)
    t, s = teacher.state_dict(), student.state_dict()
    kept = vocab.kept_ids
    word = "bert.embeddings.word_embeddings.weight"
    assert torch.equal(s[word], t[word][kept, :16])
    assert torch.equal(student.cls.predictions.decoder.weight, t[word][kept, :16])  # tied
    assert torch.equal(s["bert.embeddings.position_embeddings.weight"],
                       t["bert.embeddings.position_embeddings.weight"][:40, :16])
    assert torch.equal(s["bert.embeddings.token_type_embeddings.weight"],
                       t["bert.embeddings.token_type_embeddings.weight"][:, :16])
    assert torch.equal(s["bert.embeddings.LayerNorm.weight"],
                       t["bert.embeddings.LayerNorm.weight"][:16])
    assert torch.equal(s["cls.predictions.bias"], t["cls.predictions.bias"][kept])
    assert torch.equal(s["cls.predictions.transform.dense.weight"],
                       t["cls.predictions.transform.dense.weight"][:16, :16])
    # Row s of the student is the teacher's row kept_ids[s], not some other row.
    row = 7
    assert torch.equal(s[word][row], t[word][kept[row], :16])
    random = students.make_tiny_student(teacher, vocab, from_teacher=False, hidden_size=16,
                                        num_hidden_layers=2, num_attention_heads=2,
                                        intermediate_size=16)
    assert not torch.equal(random.state_dict()[word], t[word][kept, :16])


def test_layer_subset_student_copies_the_chosen_layers(vocab, teacher):
    student = students.make_layer_subset_student(teacher, vocab, teacher_layers=(0, 2))
    assert student.config.num_hidden_layers == 2
    for mine, theirs in ((0, 0), (1, 2)):
        a = student.bert.encoder.layer[mine].state_dict()
        b = teacher.bert.encoder.layer[theirs].state_dict()
        assert all(torch.equal(a[name], b[name]) for name in a)
    a, b = student.bert.encoder.layer[1].state_dict(), teacher.bert.encoder.layer[1].state_dict()
    assert not all(torch.equal(a[name], b[name]) for name in a)
    word = "bert.embeddings.word_embeddings.weight"
    assert torch.equal(student.state_dict()[word], teacher.state_dict()[word][vocab.kept_ids])


def test_token_kl_at_masked_positions_matches_a_hand_computation():
    student = torch.tensor([[[0.0, 0.0], [1.0, 0.0]]])  # (batch 1, length 2, vocab 2)
    teacher = torch.tensor([[[5.0, -5.0], [0.0, math.log(3.0)]]])
    labels = torch.tensor([[losses.IGNORE, 1]])  # only position 1 is masked
    # Position 1 at T = 1: teacher p = (1/4, 3/4), student q = softmax(1, 0) = (e, 1) / (e + 1).
    p = torch.tensor([0.25, 0.75])
    q = torch.tensor([math.e, 1.0]) / (math.e + 1)
    expected = float((p * (p / q).log()).sum())
    chosen = labels != losses.IGNORE  # what the pretraining step does: masked positions only
    got = losses.soft_target_kl(student[chosen], teacher[chosen], temperature=1.0)
    assert got.item() == pytest.approx(expected, rel=1e-5)
    # T = 2 divides the logits by 2 and multiplies the KL by 4.
    p2 = torch.softmax(torch.tensor([0.0, math.log(3.0)]) / 2, -1)
    q2 = torch.softmax(torch.tensor([1.0, 0.0]) / 2, -1)
    expected2 = 4 * float((p2 * (p2 / q2).log()).sum())
    got2 = losses.soft_target_kl(student[chosen], teacher[chosen], 2.0)
    assert got2.item() == pytest.approx(expected2, rel=1e-5)


def test_cls_embedding_loss_matches_a_hand_value():
    student = torch.tensor([[3.0, 0.0], [0.0, 2.0]])
    teacher = torch.tensor([[1.0, 1.0], [0.0, 5.0]])
    # Row 1: |(1, 0) - (1, 1)/sqrt 2|^2 = 2 - sqrt 2; row 2: identical directions, 0.
    expected = (2 - math.sqrt(2)) / 2
    assert losses.cls_embedding_loss(student, teacher).item() == pytest.approx(expected)


def test_hidden_cosine_loss_skips_padding():
    student = torch.tensor([[[1.0, 0.0], [1.0, 0.0], [7.0, 7.0]]])
    teacher = torch.tensor([[[2.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert losses.hidden_cosine_loss(student, teacher, mask).item() == pytest.approx(0.5)


def test_masking_is_dynamic_and_never_touches_special_tokens(vocab):
    tok = vocab.tokenizer
    special = torch.tensor(tok.all_special_ids)
    regular = torch.arange(vocab.size)[~torch.isin(torch.arange(vocab.size), special)]
    row = tok(FREQUENT)["input_ids"]
    ids = torch.tensor([row + [tok.pad_token_id] * 3, [tok.cls_token_id, tok.unk_token_id]
                        + row[1:] + [tok.pad_token_id] * 2])
    ids = ids.repeat(200, 1)
    generator = torch.Generator().manual_seed(0)
    masked1, labels1 = pretraining.mask_tokens(ids, special, tok.mask_token_id, regular, 0.15,
                                            generator)
    masked2, labels2 = pretraining.mask_tokens(ids, special, tok.mask_token_id, regular, 0.15,
                                            generator)
    assert not torch.equal(labels1, labels2)
    is_special = torch.isin(ids, special)
    for masked, labels in ((masked1, labels1), (masked2, labels2)):
        chosen = labels != losses.IGNORE
        assert not (chosen & is_special).any()
        assert torch.equal(masked[is_special], ids[is_special])
        assert torch.equal(labels[chosen], ids[chosen])
        assert torch.equal(masked[~chosen], ids[~chosen])  # unchosen positions never change
        share = chosen.sum() / (~is_special).sum()
        assert 0.1 < share < 0.2
        replaced = masked[chosen]
        mask_share = (replaced == tok.mask_token_id).float().mean()
        assert 0.7 < mask_share < 0.9
        assert not torch.isin(replaced[replaced != tok.mask_token_id], special).any()


def test_pretraining_with_the_article_recipe_lowers_the_loss_and_leaves_the_teacher(vocab,
                                                                                   teacher):
    # A 32-wide teacher whose vocabulary is the full tokenizer's; the student pruned as above.
    student = students.make_tiny_student(teacher, vocab, hidden_size=16, num_hidden_layers=1,
                                         num_attention_heads=2, intermediate_size=16,
                                         max_position_embeddings=64)
    budget = budgets.StudentBudget(pretrain_steps=30, pretrain_batch_size=8,
                                    pretrain_max_length=32, pretrain_lr=3e-3, head_epochs=1,
                                    head_batch_size=8, head_max_length=32, head_lr=1e-3)
    loader = pretraining.pretrain_loader(vocab, [FREQUENT] * 32, budget)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    history = pretraining.pretrain_student(student, loader, vocab, steps=30, lr=3e-3,
                                        recipe=pretraining.ARTICLE_RECIPE, teacher=teacher,
                                        log_every=10)
    frame = history.to_frame()
    assert list(frame.index) == [10, 20, 30]
    assert {"mlm", "kl", "cls"} <= set(frame.columns)
    assert frame["mlm"].iloc[-1] < frame["mlm"].iloc[0]
    assert history.adapter is not None and history.adapter.out_features == 32
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())
    with pytest.raises(ValueError, match="needs a teacher"):
        pretraining.pretrain_student(student, loader, vocab, steps=1, lr=1e-3,
                                  recipe=pretraining.DISTILBERT_RECIPE)


def test_a_batch_where_nothing_is_drawn_still_masks_one_token(vocab):
    tok = vocab.tokenizer
    special, regular = pretraining.special_and_regular_ids(vocab)
    ids = torch.tensor([[tok.cls_token_id, tok.pad_token_id, tok.sep_token_id],
                        [tok.cls_token_id, regular[7].item(), tok.sep_token_id]])
    masked, labels = pretraining.mask_tokens(ids, special, tok.mask_token_id, regular,
                                             probability=0.0)
    chosen = labels != losses.IGNORE
    assert chosen.sum() == 1 and chosen[1, 1]  # the batch's only regular token
    only_special = ids[:1]
    _, labels = pretraining.mask_tokens(only_special, special, tok.mask_token_id, regular, 0.0)
    assert (labels == losses.IGNORE).all()  # nothing to predict: the step is skipped


def test_pretraining_on_very_short_texts_never_gives_nan(vocab, teacher):
    student = students.make_tiny_student(teacher, vocab, hidden_size=16, num_hidden_layers=1,
                                         num_attention_heads=2, intermediate_size=16,
                                         max_position_embeddings=64)
    budget = budgets.StudentBudget(pretrain_steps=6, pretrain_batch_size=2,
                                    pretrain_max_length=8, pretrain_lr=1e-3, head_epochs=1,
                                    head_batch_size=2, head_max_length=8, head_lr=1e-3)
    loader = pretraining.pretrain_loader(vocab, ["Кошка", "", "спит", "на"], budget)
    history = pretraining.pretrain_student(student, loader, vocab, steps=6, lr=1e-3,
                                           recipe=pretraining.ARTICLE_RECIPE, teacher=teacher,
                                           mlm_probability=0.01, log_every=2)
    frame = history.to_frame()
    assert len(frame) >= 1 and np.isfinite(frame.to_numpy()).all()


@pytest.mark.parametrize("weights, message", [
    ({"mlm": -1.0}, "must be >= 0"),
    ({"mlm": 0.0}, "at least one positive"),
    ({"temperature": 0.0}, "temperature"),
    ({"cosine": 1.0}, "needs teacher_layers"),
])
def test_recipes_are_validated(weights, message):
    with pytest.raises(ValueError, match=message):
        pretraining.PretrainRecipe("bad", **weights)


def test_cosine_recipe_needs_one_teacher_layer_per_student_layer(vocab, teacher):
    student = students.make_layer_subset_student(teacher, vocab, teacher_layers=(0, 2))
    loader = pretraining.pretrain_loader(vocab, [FREQUENT] * 4, budgets.StudentBudget(
        1, 2, 16, 1e-3, 1, 2, 16, 1e-3))
    recipe = pretraining.PretrainRecipe("three", mlm=1.0, cosine=1.0, teacher_layers=(0, 1, 2))
    with pytest.raises(ValueError, match="one per student layer"):
        pretraining.pretrain_student(student, loader, vocab, steps=1, lr=1e-3, recipe=recipe,
                                     teacher=teacher)


def test_twins_pretrained_on_one_loader_see_the_same_batches(vocab, teacher):
    """A shared loader must not advance between runs: the same student trained after another run
    used the loader ends with exactly the same weights."""
    texts = [FREQUENT, "синхрофазотрон на диване", "Кошка спит", FREQUENT + " и спит"] * 4
    loader = pretraining.pretrain_loader(vocab, texts, budgets.StudentBudget(
        5, 4, 16, 1e-3, 1, 4, 16, 1e-3))

    def run() -> dict[str, torch.Tensor]:
        student = students.make_tiny_student(teacher, vocab, hidden_size=16,
                                             num_hidden_layers=1, num_attention_heads=2,
                                             intermediate_size=16, max_position_embeddings=64)
        pretraining.pretrain_student(student, loader, vocab, steps=5, lr=1e-3,
                                     recipe=pretraining.MLM_ONLY)
        return student.state_dict()

    first, second = run(), run()
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_teacher_vocab_logits_equal_the_full_head_at_kept_ids(vocab, teacher):
    hidden = torch.randn(5, 32)
    full = teacher.cls(hidden)[:, vocab.kept_ids]
    torch.testing.assert_close(pretraining.teacher_vocab_logits(teacher, hidden, vocab.kept_ids),
                               full)


@pytest.fixture
def head_setup(vocab, teacher):
    """A one-layer student of the toy vocabulary, its (pretend) pretraining record, toy splits
    and head settings: what the classification-head tests share."""
    student = students.make_tiny_student(teacher, vocab, hidden_size=16, num_hidden_layers=1,
                                         num_attention_heads=2, intermediate_size=16,
                                         max_position_embeddings=64)
    history = PretrainHistory(pretraining.MLM_ONLY, seconds=1.5)
    frame = pd.DataFrame({"text": [FREQUENT, "синхрофазотрон"] * 6, "label": [0, 1] * 6})
    splits = Splits(frame, frame.iloc[:4], frame.iloc[:6])
    return student, history, splits, dict(max_length=16, batch_size=4, epochs=1, lr=1e-3)


@pytest.fixture
def one_thread():
    """One torch thread, as in a worker process, and the caller's setting back afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def test_classifier_head_trains_saves_and_reloads(vocab, head_setup, tmp_path):
    student, history, splits, head = head_setup
    run = students.train_classifier_head("test student", student, history, vocab.tokenizer,
                                         splits, tmp_path / "s", **head)
    assert run.test_proba.shape == (6,)
    assert run.train_seconds == pytest.approx(1.5 + run.head.seconds)
    assert run.size_mb > 0 and run.params == benchmark.count_parameters(run.model)
    loaded = load_transformers_classifier(tmp_path / "s" / "model")
    assert len(loaded.tokenizer) == vocab.size and loaded.max_length == 16
    assert loaded.model.config.id2label == {0: "normal", 1: "toxic"}
    for name, value in run.model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[name], value)
    np.testing.assert_allclose(loaded.predict_proba(splits.test["text"].tolist()),
                               run.test_proba, atol=1e-5)


def test_plateau_keeps_the_best_weights_and_stops_after_patience_small_gains():
    model = torch.nn.Linear(1, 1)
    plateau = Plateau(patience=3, min_improvement=0.01, higher_is_better=False, relative=True)
    stops = []
    for step, loss in enumerate([10.0, 9.0, 8.95, 8.94, 8.93, 8.0]):
        with torch.no_grad():
            model.weight.fill_(loss)  # the weights say which measurement they belong to
        stops.append(plateau.update(step, loss, model))
        if stops[-1]:
            break
    # 8.95, 8.94, 8.93 are each under 1% better than 9.0: the third of them ends the run.
    assert stops == [False, False, False, False, True]
    with torch.no_grad():
        model.weight.fill_(0.0)
    assert plateau.restore(model) == 4 and model.weight.item() == pytest.approx(8.93)


def test_pretraining_stops_on_the_validation_plateau_with_the_best_weights(vocab, teacher):
    student = students.make_tiny_student(teacher, vocab, hidden_size=16, num_hidden_layers=1,
                                         num_attention_heads=2, intermediate_size=16,
                                         max_position_embeddings=64)
    budget = budgets.StudentBudget(200, 8, 32, 3e-3, 1, 8, 32, 1e-3)
    texts = [FREQUENT, "Кошка спит на диване", FREQUENT + " и спит"] * 8
    loader = pretraining.pretrain_loader(vocab, texts, budget)
    valid = pretraining.pretrain_loader(vocab, texts[:6], budget, shuffle=False)
    first = pretraining.validation_mlm_loss(student, valid, vocab)
    assert pretraining.validation_mlm_loss(student, valid, vocab) == first  # same masks
    history = pretraining.pretrain_student(student, loader, vocab, steps=200, lr=3e-3,
                                           recipe=pretraining.MLM_ONLY, valid=valid,
                                           eval_every=5, patience=2, min_improvement=0.05)
    curve = history.valid_frame()["valid_mlm"]
    assert curve.index[0] == 0 and curve.iloc[0] == pytest.approx(first)
    assert history.steps_run < 200  # a toy corpus is learnt long before the cap
    assert history.stopped_by == "plateau rule" and history.steps_cap == 200
    assert history.best_step == curve.idxmin() and curve.min() < first
    assert pretraining.validation_mlm_loss(student, valid, vocab) == pytest.approx(curve.min())
    capped = pretraining.pretrain_student(student, loader, vocab, steps=3, lr=3e-3,
                                          recipe=pretraining.MLM_ONLY, valid=valid,
                                          eval_every=5, patience=2)
    assert capped.steps_run == 3 and capped.stopped_by == "step cap"
    with pytest.raises(ValueError, match="needs a validation loader"):
        pretraining.pretrain_student(student, loader, vocab, steps=2, lr=1e-3,
                                     recipe=pretraining.MLM_ONLY, patience=2)


def test_heads_repeated_over_seeds_start_from_the_same_encoder(vocab, head_setup, one_thread,
                                                                tmp_path):
    from helpers.config import SEED

    student, history, splits, head = head_setup
    run = students.train_classifier_head("s", student, history, vocab.tokenizer, splits,
                                         tmp_path / "s", **head)
    here = students.repeat_heads([run], splits, (SEED, 1), workers=1, **head)
    assert set(here["s"]) == {SEED, 1} and here["s"][SEED] == run.test_metrics["f1"]
    assert (tmp_path / "s_seed1" / "model" / "config.json").is_file()
    # the seed-1 head is a head trained with seed 1 on the saved encoder, and a worker agrees
    encoder = BertForMaskedLM.from_pretrained(str(tmp_path / "s" / "encoder"))
    again = students.train_classifier_head("s", encoder, history, vocab.tokenizer, splits,
                                           tmp_path / "check", seed=1, **head)
    assert here["s"][1] == again.test_metrics["f1"]
    there = students.repeat_heads([run], splits, (SEED, 1, 2), workers=2, **head)
    assert there["s"][1] == here["s"][1] and set(there["s"]) == {SEED, 1, 2}
    with pytest.raises(ValueError, match="must include the book's seed"):
        students.repeat_heads([run], splits, (1, 2), workers=1, **head)
