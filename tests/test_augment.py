"""Tang et al. (2019) augmentation: determinism, each rule's behaviour, teacher labelling."""

import numpy as np
import pytest
import torch

import helpers.augment as augment
from helpers.augment import (
    MASK_TOKEN,
    PosVocabulary,
    augment_text,
    augment_texts,
    build_transfer_set,
    pos_tag,
    split_token,
    student_view,
)
from helpers.batching import EncodedDataset, pad_collate
from helpers.losses import UNLABELLED, article_loss_fn

# Sentences written for these tests (not from the dataset).
CORPUS = [
    "Кошка спит на тёплом диване.",
    "Большая собака громко лает во дворе!",
    "Мальчик быстро читает новую книгу",
    "Старый учитель медленно пишет длинное письмо.",
    "Весёлая девочка поёт красивую песню",
    "Ветер сильно качает высокие деревья",
]


@pytest.fixture(scope="module")
def vocabulary():
    return PosVocabulary.from_texts(CORPUS, progress=False)


def _normalise(text):
    return " ".join(text.split())


def test_split_token_keeps_punctuation_apart():
    assert split_token("«дурак!»") == ("«", "дурак", "!»")
    assert split_token("!!!") == ("!!!", "", "")
    assert split_token("кто-то,") == ("", "кто-то", ",")


def test_vocabulary_tags_each_distinct_word_once(monkeypatch):
    calls = []

    def counting_tag(word):
        calls.append(word)
        return "NOUN"

    monkeypatch.setattr(augment, "pos_tag", counting_tag)
    vocabulary = PosVocabulary.from_texts(["кот кот Кот кот.", "пёс кот"], progress=False)
    assert sorted(calls) == ["кот", "пёс"]
    # Unigram counts: кот 5 times, пёс once, so пёс owns the last sixth of [0, 1).
    assert vocabulary.sample("NOUN", np.array([0.0, 0.8, 0.9])).tolist() == ["кот", "кот", "пёс"]


def test_same_seed_same_output_different_seed_different(vocabulary):
    first = augment_texts(CORPUS, 5, seed=7, vocabulary=vocabulary, progress=False)
    again = augment_texts(CORPUS, 5, seed=7, vocabulary=vocabulary, progress=False)
    other = augment_texts(CORPUS, 5, seed=8, vocabulary=vocabulary, progress=False)
    assert first == again
    assert first != other
    generator = augment_texts(CORPUS, 5, seed=np.random.default_rng(7), vocabulary=vocabulary,
                              progress=False)
    assert generator == first


def test_augmented_texts_are_new_and_unique(vocabulary):
    augmented = augment_texts(CORPUS, 10, seed=0, vocabulary=vocabulary, progress=False)
    assert augmented, "expected some augmented texts"
    assert len(augmented) == len(set(augmented))
    assert len(augmented) <= 10 * len(CORPUS)
    originals = {_normalise(t) for t in CORPUS} | set(CORPUS)
    assert not originals & set(augmented)


def test_masking_rate_is_about_p_mask(vocabulary):
    words = " ".join(CORPUS).split()
    text = " ".join(words[i % len(words)] for i in range(5000))
    [candidate] = augment_text(text, vocabulary, np.random.default_rng(1), n_iter=1,
                               p_mask=0.1, p_pos=0.0, p_ng=0.0)
    tokens = candidate.split()
    assert len(tokens) == 5000  # no n-gram sampling: every word still there
    rate = np.mean([MASK_TOKEN in t for t in tokens])
    # Binomial(5000, 0.1): standard deviation 0.0042; 0.02 is almost five of them.
    assert abs(rate - 0.1) < 0.02
    # Masked words keep their punctuation; unmasked ones are unchanged.
    for old, new in zip(text.split(), tokens, strict=True):
        prefix, _, suffix = split_token(old)
        assert new in (old, f"{prefix}{MASK_TOKEN}{suffix}")


def test_pos_replacement_keeps_the_part_of_speech(vocabulary):
    text = "Старая кошка медленно читает длинную книгу"
    candidates = augment_text(text, vocabulary, np.random.default_rng(3), n_iter=20,
                              p_mask=0.0, p_pos=1.0, p_ng=0.0)
    changed = 0
    for candidate in candidates:
        for old, new in zip(text.split(), candidate.split(), strict=True):
            assert pos_tag(new) == pos_tag(old), (old, new)
            # drawn from the training words of that part of speech
            assert new.lower() == old.lower() or new.lower() in vocabulary.words[pos_tag(old)]
            assert new[0].isupper() == old[0].isupper()
            changed += new.lower() != old.lower()
    assert changed > 0


def test_words_without_part_of_speech_are_never_replaced(vocabulary):
    text = "2024 hello 777"
    [candidate] = augment_text(text, vocabulary, np.random.default_rng(0), n_iter=1,
                               p_mask=0.0, p_pos=1.0, p_ng=0.0)
    assert candidate == text


def test_ngram_sampling_returns_a_contiguous_run_of_words(vocabulary):
    text = "раз два три четыре пять шесть семь восемь девять десять"
    words = text.split()
    candidates = augment_text(text, vocabulary, np.random.default_rng(5), n_iter=200,
                              p_mask=0.0, p_pos=0.0, p_ng=1.0)
    sizes = set()
    for candidate in candidates:
        piece = candidate.split()
        sizes.add(len(piece))
        starts = [i for i in range(len(words)) if words[i:i + len(piece)] == piece]
        assert starts, candidate
    assert sizes == {1, 2, 3, 4, 5}


def test_invalid_probabilities_raise(vocabulary):
    with pytest.raises(ValueError):
        augment_texts(CORPUS, 2, seed=0, p_mask=0.6, p_pos=0.6, vocabulary=vocabulary)
    with pytest.raises(ValueError):
        augment_texts(CORPUS, 2, seed=0, p_ng=1.5, vocabulary=vocabulary)


def test_the_student_reads_the_mask_as_its_one_unknown_token():
    from helpers.bpe import UNK_TOKEN, train_bpe_tokenizer

    tokenizer = train_bpe_tokenizer(CORPUS * 3, vocab_size=300)
    unk = tokenizer.token_to_id(UNK_TOKEN)
    masked = f"ты {MASK_TOKEN}!"
    # Raw, the BPE tokenizer would cut "[MASK]" into punctuation and letter pieces ...
    assert unk not in tokenizer.encode(masked).ids
    assert len(tokenizer.encode(masked).ids) > len(tokenizer.encode("ты !").ids) + 1
    # ... the student's view has one [UNK] in its place and the rest of the text unchanged.
    (view,) = student_view([masked])
    ids = tokenizer.encode(view).ids
    assert ids.count(unk) == 1
    assert tokenizer.decode([i for i in ids if i != unk]).replace(" ", "") == "ты!"


class FakeTeacher:
    """Stands for ``cached_teacher_logits``: logits from the text's length, calls recorded."""

    def __init__(self):
        self.calls = []

    def __call__(self, texts):
        self.calls.append(list(texts))
        return np.array([[0.0, float(len(t))] for t in texts], dtype=np.float32)


def test_augmented_texts_are_labelled_by_the_teacher_only(vocabulary):
    texts, labels = CORPUS[:3], np.array([0, 1, 0])
    gold_logits = np.array([[1.0, -1.0], [-1.0, 1.0], [2.0, 0.0]], dtype=np.float32)
    augmented = augment_texts(texts, 3, seed=0, vocabulary=vocabulary, progress=False)
    teacher = FakeTeacher()
    transfer = build_transfer_set(texts, labels, gold_logits, augmented, teacher)

    assert teacher.calls == [augmented]  # the teacher saw exactly the augmented texts, once
    n = len(texts)
    assert transfer.texts == texts + augmented
    assert transfer.labels[:n].tolist() == labels.tolist()
    assert (transfer.labels[n:] == UNLABELLED).all()
    np.testing.assert_array_equal(transfer.teacher_logits[:n], gold_logits)
    np.testing.assert_array_equal(transfer.teacher_logits[n:], teacher(augmented))
    assert transfer.is_augmented.tolist() == [False] * n + [True] * len(augmented)
    assert (transfer.frame()["label"] == transfer.labels).all()

    # Through the shared loop's batches, the loss trains augmented rows on the teacher alone:
    # with alpha = 1 (cross-entropy only) they get no gradient.
    dataset = EncodedDataset([[1]] * len(transfer.texts), transfer.labels,
                             extras={"teacher_logits": transfer.teacher_logits})
    batch = pad_collate(0)([dataset[i] for i in range(len(dataset))])
    logits = torch.zeros(len(dataset), 2, requires_grad=True)
    article_loss_fn(1.0)(logits, batch).backward()
    assert torch.all(logits.grad[n:] == 0) and torch.any(logits.grad[:n] != 0)


def test_transfer_set_rejects_mismatched_lengths():
    with pytest.raises(ValueError):
        build_transfer_set(["a", "b"], [0], np.zeros((2, 2)), [], FakeTeacher())
    with pytest.raises(ValueError, match="shape"):
        build_transfer_set(["a"], [0], np.zeros((1, 2)), ["b"], lambda t: np.zeros((2, 2)))


def test_step_matched_control_repeats_the_originals_to_the_augmented_size():
    texts, labels = ["a", "b", "c", "d"], np.array([0, 1, 0, 1])
    logits = np.arange(8, dtype=np.float32).reshape(4, 2)
    transfer = build_transfer_set(texts, labels, logits, ["x", "y", "z", "w", "v", "u"],
                                  lambda t: np.full((len(t), 2), -9.0, dtype=np.float32))
    control = transfer.step_matched_control(seed=0)
    assert len(control.texts) == len(transfer.texts) == 10  # same rows, so same steps an epoch
    assert not control.is_augmented.any() and (control.labels >= 0).all()
    assert control.texts[:8] == texts + texts  # two whole copies, then 2 of the 4 drawn once
    assert len(set(control.texts[8:])) == 2 and set(control.texts[8:]) <= set(texts)
    for text, label, row in zip(control.texts, control.labels, control.teacher_logits,
                                strict=True):  # each row keeps its own label and logits
        i = texts.index(text)
        assert label == labels[i] and (row == logits[i]).all()
    again = transfer.step_matched_control(seed=0)
    assert again.texts == control.texts  # seeded
