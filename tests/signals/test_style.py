from __future__ import annotations

import csv

import pytest

from changeover.signals.settings import StyleGuide, StyleSignal
from changeover.signals.style import (
    check_style,
    check_styles,
    detect_language,
    markdown_features,
    style_violations,
)
from tests.conftest import shared_dataset

GUIDE = StyleGuide(
    max_words=40,
    min_words=3,
    banned_phrases=("as an AI language model", "unfortunately"),
    required_phrases=("thank you",),
    markdown=False,
    languages={"emea": ("en", "de", "fr"), "latam": ("es", "pt"), "apac": ("ja",)},
    sign_off="The Acme team",
)

GOOD = "Thank you for your message. Your parcel left our warehouse today.\n\nThe Acme team"


def _checks(text: str, **kwargs: object) -> list[str]:
    return [v.check for v in style_violations(text, GUIDE, **kwargs)]  # type: ignore[arg-type]


def test_a_compliant_response_passes() -> None:
    result = check_style(GOOD, GUIDE, segment="emea")
    assert result == (0.0, "pass", "all rules met")


def test_word_limits() -> None:
    long = "Thank you. " + "word " * 60 + "The Acme team"
    assert _checks(long) == ["max_words"]
    assert "words > 40" in style_violations(long, GUIDE)[0].message
    assert _checks("Thanks!") == ["min_words", "required_phrases", "sign_off"]


def test_phrases_match_whole_words_case_and_spacing_insensitive() -> None:
    text = "Thank   you. As an AI  Language Model, I think so. The Acme team"
    violations = style_violations(text, GUIDE)
    assert [v.check for v in violations] == ["banned_phrases"]
    assert "'as an AI language model'" in violations[0].message
    # "thank you" is required as words: "thank yourself" does not count.
    assert "required_phrases" in _checks("You should thank yourself. The Acme team")


def test_japanese_phrases_need_no_word_boundaries() -> None:
    guide = StyleGuide(banned_phrases=("申し訳",))
    assert [v.check for v in style_violations("申し訳ありません。", guide)] == ["banned_phrases"]


@pytest.mark.parametrize(
    ("text", "feature"),
    [
        ("## Steps\nDo this.", "heading"),
        ("This is **important**.", "bold"),
        ("Options:\n- one\n- two", "bullet list"),
        ("Run `ls` now.", "code"),
        ("See [the docs](https://example.com).", "link"),
        ("| a | b |\n|---|---|\n| 1 | 2 |", "table"),
        ("> quoted", "blockquote"),
    ],
)
def test_markdown_features(text: str, feature: str) -> None:
    assert feature in markdown_features(text)


def test_plain_text_has_no_markdown() -> None:
    plain = "Step 1. Open the box. Step 2. Plug it in - it beeps. 3 * 4 = 12. Use snake_case."
    assert markdown_features(plain) == []
    assert "markdown" in _checks("Thank you, **done**. The Acme team")


def test_markdown_allowed_is_not_checked() -> None:
    guide = StyleGuide(markdown=True, max_words=100)
    assert style_violations("## Heading\n**bold**", guide) == []


def test_language_of_the_segment() -> None:
    german = "Vielen Dank für Ihre Nachricht. Ihr Paket hat unser Lager heute verlassen."
    spanish = "Gracias por su mensaje. Su paquete salió de nuestro almacén hoy por la mañana."
    assert "language" not in _checks(german, segment="emea")
    assert "language" in _checks(spanish, segment="emea")
    assert "language" not in _checks(spanish, segment="latam")
    violation = [
        v for v in style_violations(spanish, GUIDE, segment="apac") if v.check == "language"
    ]
    assert violation[0].message == "written in es, expected ja in segment apac"
    # A segment without a language (and no "*") is not checked.
    assert "language" not in _checks(spanish, segment="unknown")


def test_detect_language() -> None:
    assert (
        detect_language("お問い合わせいただきありがとうございます。商品は本日発送されました。")
        == "ja"
    )
    assert detect_language("Obrigado pela sua mensagem, o seu pedido já foi enviado hoje.") == "pt"
    assert detect_language("OK thanks") is None  # too short to tell
    code = (
        "Run this:\n```\nimport os\nprint(os.getcwd())\n```\n"
        "C'est tout, merci beaucoup pour votre patience."
    )
    assert detect_language(code) == "fr"


def test_sign_off() -> None:
    assert "sign_off" not in _checks("Thank you for asking.\nThe Acme Team.")
    assert "sign_off" in _checks("The Acme team says thank you for asking, see you soon, bye now!")


def test_checks_subset_and_count_levels() -> None:
    text = "## Unfortunately no"
    all_rules = check_style(text, GUIDE)
    assert all_rules.level == "fail"
    assert all_rules.value == 5.0
    assert "banned_phrases: uses 'unfortunately'" in all_rules.detail
    counted = StyleSignal(scale="count", max_violations=3)
    assert check_style(text, GUIDE, settings=counted).level == "3+"
    only = StyleSignal(scale="count", checks=("markdown", "max_words"))
    result = check_style(text, GUIDE, settings=only)
    assert (result.value, result.level) == (1.0, "1")
    assert result.detail == "markdown: uses markdown: heading"


def test_check_styles_vectorised() -> None:
    texts = [GOOD, "## no"]
    results = check_styles(texts, GUIDE, segments=["emea", "emea"])
    assert [r.level for r in results] == ["pass", "fail"]
    with pytest.raises(ValueError, match="2 responses and 1 segments"):
        check_styles(texts, GUIDE, segments=["emea"])


def test_real_assistant_answers_are_identified_as_english() -> None:
    path = shared_dataset("xstest")
    with path.open(newline="", encoding="utf-8") as handle:
        texts = [row["response"] for i, row in enumerate(csv.DictReader(handle)) if i % 25 == 0]
    guide = StyleGuide(languages={"*": ("en",)})
    results = check_styles(texts, guide, settings=StyleSignal(checks=("language",)))
    assert len(results) == 90
    assert sum(r.level == "pass" for r in results) >= 88
