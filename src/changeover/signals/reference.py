"""Reference-based correctness: how well does the response agree with the reference answer(s)?

The lexical metrics of extractive QA (SQuAD, Rajpurkar et al. 2016; the containment "lexical
match" of EVOUNA, Wang et al. 2023), computed against every reference and keeping the best:

* `exact_match`: the normalised response equals a normalised reference;
* `containment`: a normalised reference appears in the normalised response, as whole words;
* `token_f1`: harmonic mean of token precision and recall (SQuAD F1);
* `token_recall`: the share of a reference's tokens found in the response, which forgives
  long, chatty answers that F1 punishes.

Normalisation lower-cases, drops accents, punctuation and articles (English, Spanish, French,
German, Portuguese) and a plural -s on longer words, joins digit groups ("1,000" → "1000") and
writes English number words as digits ("twenty-one" → "21"), so that formatting is not mistaken
for content. Chinese, Japanese and Korean characters are tokens of their own, as in the
character-level scoring of multilingual QA (MLQA, Lewis et al. 2020).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from changeover.signals.result import SignalResult
from changeover.signals.settings import BINARY_METRICS, ReferenceSignal, bin_labels
from changeover.signals.text import CJK_CHARACTER, normalise_text

__all__ = [
    "ReferenceScores",
    "bin_values",
    "normalise_answer",
    "quantile_edges",
    "quantile_levels",
    "reference_scores",
    "score_reference",
    "score_references",
    "split_references",
]

Reference = str | Sequence[str] | None

_ARTICLES = frozenset(
    ["a", "an", "the", "el", "la", "los", "las", "un", "una", "unos", "unas", "le", "les", "l",
     "une", "des", "der", "die", "das", "ein", "eine", "o", "os", "as", "um", "uma"]
)  # fmt: skip
_DIGIT_GROUPS = re.compile(r"(?<=\d)[,\u00a0 ](?=\d{3}\b)")
_PUNCT = re.compile(r"[^\w\s]|_")
_UNITS = {
    w: i
    for i, w in enumerate(
        ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
         "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
         "eighteen", "nineteen"]
    )
}  # fmt: skip
_TENS = {
    w: 10 * (i + 2)
    for i, w in enumerate(
        ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
    )
}
_SCALES = {"hundred": 100, "thousand": 1_000, "million": 1_000_000, "billion": 1_000_000_000}


def _numbers_as_digits(tokens: list[str]) -> list[str]:
    """Replace runs of English number words by their value: ["twenty", "one"] → ["21"]."""
    out: list[str] = []
    total = current = 0
    in_number = False

    def flush() -> None:
        nonlocal total, current, in_number
        if in_number:
            out.append(str(total + current))
        total = current = 0
        in_number = False

    for token in tokens:
        if token in _UNITS:
            current += _UNITS[token]
        elif token in _TENS:
            current += _TENS[token]
        elif token in _SCALES and in_number:
            if _SCALES[token] == 100:
                current *= 100
            else:
                total += current * _SCALES[token]
                current = 0
        elif token == "and" and in_number:
            continue
        else:
            flush()
            out.append(token)
            continue
        in_number = True
    flush()
    return out


def _singular(token: str) -> str:
    """A light plural fold: "confederates" → "confederate" (words over four letters, not -ss)."""
    if len(token) > 4 and token.endswith("s") and not token.endswith("ss"):
        return token[:-1]
    return token


def answer_tokens(text: str) -> list[str]:
    """The tokens a reference metric compares (see `normalise_answer`)."""
    text = _DIGIT_GROUPS.sub("", normalise_text(text))
    text = CJK_CHARACTER.sub(r" \g<0> ", text)  # CJK is written without spaces: one per character
    tokens = [_singular(t) for t in _PUNCT.sub(" ", text).split() if t not in _ARTICLES]
    return _numbers_as_digits(tokens)


def normalise_answer(text: str) -> str:
    """Lower case, no accents, punctuation or articles, numbers as digits, single spaces."""
    return " ".join(answer_tokens(text))


def split_references(reference: Reference, separator: str | None = None) -> list[str]:
    """The non-blank references of an item: a list as is, or a string cut at `separator`."""
    if reference is None:
        return []
    if isinstance(reference, str):
        parts = reference.split(separator) if separator is not None else [reference]
    else:
        parts = list(reference)
    return [p.strip() for p in parts if p is not None and p.strip()]


class ReferenceScores(NamedTuple):
    """Every lexical metric of one response, each the best over the references."""

    exact_match: float
    containment: float
    token_f1: float
    token_recall: float
    best_reference: str
    """The reference that gave the best token F1."""


def _contains(haystack: list[str], needle: list[str]) -> bool:
    if not needle:
        return False
    n = len(needle)
    first = needle[0]
    return any(
        haystack[i] == first and haystack[i : i + n] == needle for i in range(len(haystack) - n + 1)
    )


def reference_scores(response: str, references: Sequence[str]) -> ReferenceScores:
    """Compare one response with its references (already split); all zero without references."""
    got = answer_tokens(response)
    got_counts = Counter(got)
    exact = contained = recall_best = 0.0
    f1_best, best_ref = -1.0, ""
    for reference in references:
        want = answer_tokens(reference)
        if not want:
            continue
        if got == want:
            exact = 1.0
        if _contains(got, want):
            contained = 1.0
        common = sum((got_counts & Counter(want)).values())
        recall = common / len(want)
        precision = common / len(got) if got else 0.0
        f1 = 2 * precision * recall / (precision + recall) if common else 0.0
        if f1 > f1_best:
            f1_best, best_ref = f1, reference
        recall_best = max(recall_best, recall)
    return ReferenceScores(exact, contained, max(f1_best, 0.0), recall_best, best_ref)


def quantile_edges(values: Sequence[float] | np.ndarray, num_levels: int) -> tuple[float, ...]:
    """The `num_levels - 1` interior edges at the quantiles of `values` (non-decreasing).

    Edges may coincide when many responses share a value (e.g. F1 = 0); see `quantile_levels`.
    """
    if num_levels < 2:
        raise ValueError(f"num_levels must be at least 2 (got {num_levels})")
    array = np.asarray(values, dtype=float)
    array = array[np.isfinite(array)]
    if array.size == 0:
        raise ValueError("no finite values to take quantiles of")
    qs = np.quantile(array, np.arange(1, num_levels) / num_levels)
    return tuple(round(float(q), 6) for q in qs)


def quantile_levels(values: Sequence[float] | np.ndarray, edges: Sequence[float]) -> list[str]:
    """Levels `q1` (lowest) to `qK` for values cut at quantile edges: bin i holds
    `edge_(i-1) < value <= edge_i`, so tied values share the lowest bin their value reaches and a
    level may stay empty."""
    index = np.searchsorted(np.asarray(edges, dtype=float), np.asarray(values), side="left")
    return [f"q{i + 1}" for i in index]


def bin_values(values: Sequence[float] | np.ndarray, edges: Sequence[float]) -> list[str]:
    """The level of each value: the bin `[edge_i, edge_i+1)` it falls in, named by its bounds."""
    edge_list = list(edges)
    if any(b <= a for a, b in zip(edge_list, edge_list[1:], strict=False)):
        raise ValueError(f"bin edges must be strictly increasing (got {edge_list})")
    labels = bin_labels(edge_list)
    index = np.searchsorted(np.asarray(edge_list, dtype=float), np.asarray(values), side="right")
    return [labels[i] for i in index]


def _level(value: float, settings: ReferenceSignal, edges: Sequence[float]) -> str:
    if settings.metric in BINARY_METRICS:
        return BINARY_METRICS[settings.metric][int(value >= 0.5)]
    if settings.quantiles is not None:
        return quantile_levels([value], edges)[0]
    return bin_values([value], edges)[0]


def score_references(
    responses: Sequence[str],
    references: Sequence[Reference],
    *,
    settings: ReferenceSignal | None = None,
) -> list[SignalResult]:
    """Score many responses against their items' references.

    With `quantiles: K` in the settings, the levels `q1`..`qK` are cut at the quantiles of these
    responses' values (items without a reference left out): score all responses of a study
    together.
    """
    if len(responses) != len(references):
        raise ValueError(
            f"got {len(responses)} responses and {len(references)} references; "
            "give one reference (or list of references) per response"
        )
    settings = settings if settings is not None else ReferenceSignal()
    metric = settings.metric
    rows: list[tuple[float, str] | None] = []
    for response, reference in zip(responses, references, strict=True):
        refs = split_references(reference, settings.separator)
        if not refs:
            rows.append(None)
            continue
        scores = reference_scores(response, refs)
        rows.append((float(getattr(scores, metric)), scores.best_reference))
    edges = settings.edges
    cut = ""
    if edges is None:
        assert settings.quantiles is not None
        present = [row[0] for row in rows if row is not None]
        edges = quantile_edges(present, settings.quantiles) if present else ()
        cut = "; quantile edges " + "/".join(f"{e:.3g}" for e in edges)
    out: list[SignalResult] = []
    for row in rows:
        if row is None:
            out.append(SignalResult(None, "no_reference", "the item has no reference answer"))
            continue
        value, best = row
        detail = f"{metric} {value:.3g} (best reference {best!r}{cut})"
        out.append(SignalResult(value, _level(value, settings, edges), detail))
    return out


def score_reference(
    response: str, reference: Reference, *, settings: ReferenceSignal | None = None
) -> SignalResult:
    """Score one response against its reference(s) (fixed bins only, not quantiles)."""
    if settings is not None and settings.quantiles is not None:
        raise ValueError(
            "quantile bins depend on all responses; use score_references for the whole set"
        )
    return score_references([response], [reference], settings=settings)[0]
