"""Tests of helpers.text: normalisation, the lemmatizer's cache, stop words, preprocessing."""

from __future__ import annotations

import pytest

from helpers.text import (
    Lemmatizer,
    normalize_for_classical,
    preprocess_for_classical,
    russian_stop_words,
)


@pytest.fixture(scope="module")
def morph() -> Lemmatizer:
    return Lemmatizer(backend="pymorphy3", verbose=False)


@pytest.mark.parametrize(("text", "expected"), [
    ("Привет,МИР!", "привет мир"),
    ("  Ёжик\n\tв   тумане  ", "ёжик в тумане"),
    ("abc 123 :) 😀", ""),
    ("Всё-таки ЕЩЁ", "всё таки ещё"),
    ("x2ч Двач", "ч двач"),
])
def test_normalize_for_classical(text: str, expected: str) -> None:
    assert normalize_for_classical(text) == expected


def test_known_lemmas_with_pymorphy3(morph: Lemmatizer) -> None:
    assert morph.backend == "pymorphy3"
    assert morph.lemmatize("кошки бегали по крышам") == "кошка бегать по крыша"
    assert morph.lemmatize_words(["людьми", "хорошие"]) == ["человек", "хороший"]


def test_each_distinct_word_is_lemmatized_once() -> None:
    lemmatizer = Lemmatizer(backend="pymorphy3", verbose=False)
    assert lemmatizer.lemmatize("кот кот коты кот") == "кот кот кот кот"
    assert lemmatizer.backend_calls == 2  # "кот" and "коты"
    lemmatizer.lemmatize("коты и кот")
    assert lemmatizer.backend_calls == 3  # only "и" is new
    assert set(lemmatizer.cache) == {"кот", "коты", "и"}


def test_unknown_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="backend"):
        Lemmatizer(backend="spacy")


def test_auto_backend_names_itself_and_why(caplog) -> None:
    caplog.set_level("INFO", logger="helpers")
    lemmatizer = Lemmatizer()
    assert lemmatizer.backend in {"mystem", "pymorphy3"}
    assert lemmatizer.reason
    assert f"Lemmatizer: {lemmatizer.backend} ({lemmatizer.reason})" in caplog.messages
    assert lemmatizer.lemmatize("кошки") == "кошка"


def test_russian_stop_words() -> None:
    stop = russian_stop_words()
    assert {"и", "не", "в", "что"} <= stop
    assert "дурак" not in stop
    assert len(stop) > 100


def test_preprocess_for_classical(morph: Lemmatizer) -> None:
    texts = ["Кошки НЕ бегали!!!", "и 123", "Собаки и кошки"]
    result = preprocess_for_classical(texts, morph, russian_stop_words(), progress=False)
    assert result == ["кошка бегать", "", "собака кошка"]
    assert preprocess_for_classical(texts[:1], morph, progress=False) == ["кошка не бегать"]


class FakeMystem:
    """Answers like ``pymystem3.Mystem.analyze``: words with analyses, separators without."""

    LEMMAS = {"кошки": "кошка", "Бегали": "бегать"}

    def __init__(self, entire_input: bool = True) -> None:
        self.calls = 0

    def analyze(self, text: str) -> list[dict]:
        self.calls += 1
        tokens: list[dict] = []
        for word in text.split("\n"):
            analysis = [{"lex": self.LEMMAS[word]}] if word in self.LEMMAS else []
            tokens += [{"text": word, "analysis": analysis}, {"text": "\n"}]
        return tokens


def test_mystem_output_is_matched_back_to_words(monkeypatch) -> None:
    import pymystem3

    from helpers import text

    monkeypatch.setattr(text, "_mystem_reachable", lambda: (True, "test"))
    monkeypatch.setattr(pymystem3, "Mystem", FakeMystem)
    lemmatizer = Lemmatizer(verbose=False)
    assert lemmatizer.backend == "mystem"
    # A word without an analysis (unknown to mystem) stays as it is.
    assert lemmatizer.lemmatize("кошки Бегали ъъъ") == "кошка бегать ъъъ"
    assert lemmatizer._mystem.calls == 2  # the start-up check, then one call for all words


def test_unreachable_mystem_falls_back_to_pymorphy3(monkeypatch) -> None:
    from helpers import text

    monkeypatch.setattr(text, "_mystem_reachable", lambda: (False, "no network"))
    lemmatizer = Lemmatizer(verbose=False)
    assert lemmatizer.backend == "pymorphy3" and "no network" in lemmatizer.reason
    with pytest.raises(RuntimeError, match="no network"):
        Lemmatizer(backend="mystem", verbose=False)
