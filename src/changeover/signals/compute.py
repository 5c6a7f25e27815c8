"""One entry point for every deterministic signal, and the levels of combined signals.

`changeover score` (and any caller with responses in hand) computes a configured signal with
`compute_signal`, whatever its kind; when several signals inform one dimension, `combine_levels`
forms the cross product of their levels (no independence assumption), as DESIGN.md requires.
"""

from __future__ import annotations

from collections.abc import Sequence

from changeover.signals.reference import Reference, score_references
from changeover.signals.refusal import detect_refusals
from changeover.signals.result import SignalResult
from changeover.signals.settings import (
    MAX_LEVELS,
    ReferenceSignal,
    RefusalSignal,
    StyleGuide,
    StyleSignal,
)
from changeover.signals.style import check_styles

__all__ = ["LEVEL_SEPARATOR", "combine_levels", "compute_signal"]

#: Joins the levels of combined signals: "refused|fail".
LEVEL_SEPARATOR = "|"


def compute_signal(
    signal: RefusalSignal | StyleSignal | ReferenceSignal,
    responses: Sequence[str],
    *,
    references: Sequence[Reference] | None = None,
    segments: Sequence[str | None] | None = None,
    style_guide: StyleGuide | None = None,
) -> list[SignalResult]:
    """Score every response with one signal of the study.

    `references` (one per response: a string, a list of strings or None) are needed by
    reference signals, `style_guide` by style signals; `segments` choose the allowed languages.
    """
    if isinstance(signal, RefusalSignal):
        return detect_refusals(responses, settings=signal)
    if isinstance(signal, StyleSignal):
        if style_guide is None:
            raise ValueError("a style signal needs the study's style_guide; pass style_guide=")
        return check_styles(responses, style_guide, segments=segments, settings=signal)
    if references is None:
        raise ValueError("a reference signal needs the items' references; pass references=")
    return score_references(responses, references, settings=signal)


def combine_levels(*levels: Sequence[str], max_levels: int = MAX_LEVELS) -> list[str]:
    """The cross-product level of several signals, response by response: "refused|fail".

    Raises ValueError when the responses show more than `max_levels` distinct combinations, the
    most the calibration engine accepts for one dimension.
    """
    if not levels:
        raise ValueError("give the levels of at least one signal")
    sizes = {len(group) for group in levels}
    if len(sizes) != 1:
        raise ValueError(f"every signal needs one level per response (got lengths {sorted(sizes)})")
    combined = [LEVEL_SEPARATOR.join(parts) for parts in zip(*levels, strict=True)]
    distinct = len(set(combined))
    if distinct > max_levels:
        raise ValueError(
            f"the combined signals take {distinct} distinct levels, more than {max_levels}; "
            "use fewer bins or fewer signals for this dimension"
        )
    return combined
