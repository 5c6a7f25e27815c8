"""Automated signals: judges and detectors that turn a response into a discrete level.

Deterministic signals, pure functions of strings (no API needed):

* `detect_refusal` / `detect_refusals`: refusal phrases in six languages and structural cues →
  `complied` / `partial` / `refused`;
* `check_style` / `check_styles`: the rules of the study's style guide → `pass` / `fail` or the
  number of broken rules;
* `score_reference` / `score_references`: exact match, containment, token F1 and recall against
  the reference answer(s) → binned levels.

Each returns `SignalResult(value, level, detail)`. LLM judges come next.
"""

from changeover.signals.compute import combine_levels, compute_signal
from changeover.signals.reference import (
    ReferenceScores,
    bin_values,
    normalise_answer,
    quantile_edges,
    quantile_levels,
    reference_scores,
    score_reference,
    score_references,
    split_references,
)
from changeover.signals.refusal import RefusalDetector, detect_refusal, detect_refusals
from changeover.signals.result import SignalResult
from changeover.signals.settings import (
    ReferenceSignal,
    RefusalPatterns,
    RefusalSignal,
    SignalsSettings,
    StyleGuide,
    StyleSignal,
    check_signals,
)
from changeover.signals.style import (
    StyleViolation,
    check_style,
    check_styles,
    detect_language,
    style_violations,
)

__all__ = [
    "ReferenceScores",
    "ReferenceSignal",
    "RefusalDetector",
    "RefusalPatterns",
    "RefusalSignal",
    "SignalResult",
    "SignalsSettings",
    "StyleGuide",
    "StyleSignal",
    "StyleViolation",
    "bin_values",
    "check_signals",
    "check_style",
    "check_styles",
    "combine_levels",
    "compute_signal",
    "detect_language",
    "detect_refusal",
    "detect_refusals",
    "normalise_answer",
    "quantile_edges",
    "quantile_levels",
    "reference_scores",
    "score_reference",
    "score_references",
    "split_references",
    "style_violations",
]
