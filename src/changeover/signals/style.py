"""Style checks: the rules of the study's style guide, applied to one response at a time.

Each configured rule (word limits, banned and required phrases, no markdown, the language of the
segment, a sign-off) is checked separately; the level is `pass`/`fail` or the number of broken
rules (capped), and the detail lists the broken rules. The language of a response is identified
offline with lingua (Peter M. Stahl, `lingua-language-detector`), whose models ship in its wheel.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, NamedTuple

from changeover.signals.result import SignalResult
from changeover.signals.settings import StyleCheck, StyleGuide, StyleSignal
from changeover.signals.text import count_words, normalise_text

if TYPE_CHECKING:
    from lingua import LanguageDetector

__all__ = [
    "COMMON_LANGUAGES",
    "StyleViolation",
    "check_style",
    "check_styles",
    "detect_language",
    "markdown_features",
    "style_violations",
]

#: Always among the candidate languages, so that a response in a language the study does not
#: allow is identified as such rather than as the closest allowed one.
COMMON_LANGUAGES: tuple[str, ...] = (
    "en", "es", "fr", "de", "pt", "it", "nl", "pl", "sv", "tr", "ru", "ar", "hi", "ja", "zh", "ko",
)  # fmt: skip
#: Responses shorter than this (in words) are too short to identify their language reliably.
MIN_WORDS_FOR_LANGUAGE = 4
#: The sign-off must appear within this many characters of the end of the response.
SIGN_OFF_WINDOW = 40

_MARKDOWN: dict[str, re.Pattern[str]] = {
    "heading": re.compile(r"^ {0,3}#{1,6}[ \t]+\S", re.MULTILINE),
    "bold": re.compile(r"(\*\*|__)(?=\S)[^\n]+?(?<=\S)\1"),
    "bullet list": re.compile(r"^[ \t]*[-*+][ \t]+\S", re.MULTILINE),
    "code": re.compile(r"```|`[^`\n]+`"),
    "link": re.compile(r"\[[^\]\n]+\]\([^)\s]+\)"),
    "table": re.compile(r"^\s*\|?\s*:?-{3,}:?\s*\|", re.MULTILINE),
    "blockquote": re.compile(r"^[ \t]*>[ \t]", re.MULTILINE),
}
_STRIP_FOR_LANGUAGE = re.compile(r"```.*?```|`[^`\n]*`|https?://\S+|\S+@\S+", re.DOTALL)


class StyleViolation(NamedTuple):
    """One broken rule of the style guide."""

    check: StyleCheck
    message: str


def markdown_features(text: str) -> list[str]:
    """The markdown constructs used in `text` (headings, bold, lists, code, links, tables)."""
    return [name for name, pattern in _MARKDOWN.items() if pattern.search(text)]


def _phrase_pattern(phrase: str) -> re.Pattern[str]:
    norm = " ".join(normalise_text(phrase).split())
    body = r"\s+".join(re.escape(word) for word in norm.split(" "))
    left = r"(?<!\w)" if norm[0].isascii() and norm[0].isalnum() else ""
    right = r"(?!\w)" if norm[-1].isascii() and norm[-1].isalnum() else ""
    return re.compile(left + body + right)


@lru_cache(maxsize=1024)
def _compiled_phrase(phrase: str) -> re.Pattern[str]:
    return _phrase_pattern(phrase)


@lru_cache(maxsize=8)
def _language_detector(codes: frozenset[str]) -> LanguageDetector:
    from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

    languages = [Language.from_iso_code_639_1(getattr(IsoCode639_1, c.upper())) for c in codes]
    return LanguageDetectorBuilder.from_languages(*languages).build()


def detect_language(text: str, *, candidates: Sequence[str] = COMMON_LANGUAGES) -> str | None:
    """The ISO 639-1 code of the language `text` is written in, or None when unsure or too short.

    Code, URLs and e-mail addresses are left out; `candidates` are the languages considered
    (at least two).
    """
    cleaned = _STRIP_FOR_LANGUAGE.sub(" ", text)
    if count_words(cleaned) < MIN_WORDS_FOR_LANGUAGE:
        return None
    detector = _language_detector(frozenset(c.lower() for c in candidates))
    language = detector.detect_language_of(cleaned)
    return None if language is None else language.iso_code_639_1.name.lower()


def style_violations(
    text: str,
    guide: StyleGuide,
    *,
    segment: str | None = None,
    checks: Sequence[StyleCheck] | None = None,
) -> list[StyleViolation]:
    """The rules of `guide` that `text` breaks, in the guide's order.

    `checks` limits the rules (default: every rule the guide sets); `segment` chooses the allowed
    languages. A rule the guide does not set is never broken.
    """
    active = guide.configured_checks if checks is None else tuple(checks)
    out: list[StyleViolation] = []
    norm = " ".join(normalise_text(text).split())
    words = count_words(text)
    if "max_words" in active and guide.max_words is not None and words > guide.max_words:
        out.append(StyleViolation("max_words", f"{words} words > {guide.max_words}"))
    if "min_words" in active and guide.min_words is not None and words < guide.min_words:
        out.append(StyleViolation("min_words", f"{words} words < {guide.min_words}"))
    if "banned_phrases" in active:
        found = [p for p in guide.banned_phrases if _compiled_phrase(p).search(norm)]
        if found:
            out.append(StyleViolation("banned_phrases", "uses " + ", ".join(map(repr, found))))
    if "required_phrases" in active:
        missing = [p for p in guide.required_phrases if not _compiled_phrase(p).search(norm)]
        if missing:
            out.append(StyleViolation("required_phrases", "lacks " + ", ".join(map(repr, missing))))
    if "markdown" in active and guide.markdown is False:
        features = markdown_features(text)
        if features:
            out.append(StyleViolation("markdown", "uses markdown: " + ", ".join(features)))
    if "language" in active:
        allowed = guide.languages_for(segment)
        if allowed is not None:
            candidates = tuple({*COMMON_LANGUAGES, *(a.lower() for a in allowed)})
            found_language = detect_language(text, candidates=candidates)
            if found_language is not None and found_language not in {a.lower() for a in allowed}:
                where = f" in segment {segment}" if segment is not None else ""
                out.append(
                    StyleViolation(
                        "language",
                        f"written in {found_language}, expected {'/'.join(allowed)}{where}",
                    )
                )
    if "sign_off" in active and guide.sign_off is not None:
        sign_off = " ".join(normalise_text(guide.sign_off).split()).strip(" .!")
        tail = norm.rstrip(" .!")[-(len(sign_off) + SIGN_OFF_WINDOW) :]
        if sign_off not in tail:
            out.append(StyleViolation("sign_off", f"does not end with {guide.sign_off!r}"))
    return out


def _level(violations: int, settings: StyleSignal) -> str:
    if settings.scale == "pass_fail":
        return "pass" if violations == 0 else "fail"
    cap = settings.max_violations
    return f"{cap}+" if violations >= cap else str(violations)


def check_style(
    text: str,
    guide: StyleGuide,
    *,
    segment: str | None = None,
    settings: StyleSignal | None = None,
) -> SignalResult:
    """Score one response against the style guide: value = number of broken rules."""
    settings = settings if settings is not None else StyleSignal()
    violations = style_violations(text, guide, segment=segment, checks=settings.checks)
    detail = "; ".join(f"{v.check}: {v.message}" for v in violations) or "all rules met"
    return SignalResult(float(len(violations)), _level(len(violations), settings), detail)


def check_styles(
    texts: Sequence[str],
    guide: StyleGuide,
    *,
    segments: Sequence[str | None] | None = None,
    settings: StyleSignal | None = None,
) -> list[SignalResult]:
    """Score many responses; `segments` (one per response) choose the allowed languages."""
    if segments is not None and len(segments) != len(texts):
        raise ValueError(
            f"got {len(texts)} responses and {len(segments)} segments; give one segment each"
        )
    segs: Sequence[str | None] = segments if segments is not None else [None] * len(texts)
    return [
        check_style(text, guide, segment=seg, settings=settings)
        for text, seg in zip(texts, segs, strict=True)
    ]
