"""Text helpers shared by the detectors: normalisation and word counts in any script."""

from __future__ import annotations

import re
import unicodedata

__all__ = ["CJK_CHARACTER", "count_words", "normalise_text", "strip_accents"]

CJK_CHARACTER = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff\uac00-\ud7af]")
_WORD = re.compile(r"[^\W\d_]+(?:['\u2019][^\W\d_]+)*|\d+(?:[.,]\d+)*")


def strip_accents(text: str) -> str:
    """Latin letters without their accents ("não" → "nao"); other scripts untouched, so that
    Japanese voiced marks survive."""
    out: list[str] = []
    for char in unicodedata.normalize("NFD", text):
        if unicodedata.combining(char) and out and ord(out[-1]) < 0x250:
            continue
        out.append(char)
    return unicodedata.normalize("NFC", "".join(out))


def normalise_text(text: str) -> str:
    """Case-folded, with straight apostrophes and quotes, and Latin letters without accents."""
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u02bc", "'")
    text = text.replace("\u201c", '"').replace("\u201d", '"')
    return strip_accents(text.casefold())


def count_words(text: str) -> int:
    """Words of a text; CJK text, written without spaces, counts one word per two characters."""
    cjk = len(CJK_CHARACTER.findall(text))
    return len(_WORD.findall(CJK_CHARACTER.sub(" ", text))) + (cjk + 1) // 2
