from __future__ import annotations

import pytest

from changeover.signals.text import count_words, normalise_text, strip_accents


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I’m SORRY", "i'm sorry"),
        ("Não posso, désolé, Entschuldigung für", "nao posso, desole, entschuldigung fur"),
        ("“quoted”", '"quoted"'),
        ("申し訳ございません", "申し訳ございません"),  # voiced marks survive
        ("Straße", "strasse"),
    ],
)
def test_normalise_text(text: str, expected: str) -> None:
    assert normalise_text(text) == expected


def test_strip_accents_keeps_case_and_other_scripts() -> None:
    assert strip_accents("NÃO Posso") == "NAO Posso"
    assert strip_accents("でき") == "でき"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", 0),
        ("Hello, world!", 2),
        ("It's 2024 — ok?", 3),
        ("l’homme paid 1,250.50 euros", 4),
        ("ありがとう", 3),  # five CJK characters: about three words
        ("Tokyo 東京", 2),
    ],
)
def test_count_words(text: str, expected: int) -> None:
    assert count_words(text) == expected
