"""Automated signals: judges and detectors that turn a response into a discrete level.

Deterministic signals, pure functions of strings (no API needed):

* `detect_refusal` / `detect_refusals`: refusal phrases in six languages and structural cues →
  `complied` / `partial` / `refused`;
* `check_style` / `check_styles`: the rules of the study's style guide → `pass` / `fail` or the
  number of broken rules;
* `score_reference` / `score_references`: exact match, containment, token F1 and recall against
  the reference answer(s) → binned levels.

LLM judges (`judge.py`): a model of the study grades each response by a rubric (correctness,
refusal, style) → `correct`/`incorrect` or `1`..`5`, `complied`/`partial`/`refused`,
`adheres`/`violates`, plus `unparseable` and `error`.

Each returns `SignalResult(value, level, detail)`. `score` (`changeover.signals.scoring`,
loaded on first use: it needs the generation machinery) computes every signal of a study for
every response of the workspace.
"""

from typing import TYPE_CHECKING, Any

from changeover.signals.compute import combine_levels, compute_signal
from changeover.signals.judge import (
    JudgeInput,
    build_judge_request,
    judge_responses,
    parse_judgement,
    render_rubric,
)
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
    JudgeSignal,
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

if TYPE_CHECKING:
    from changeover.signals.scoring import ScoreSummary, score, score_responses


def __getattr__(name: str) -> Any:
    # scoring.py imports the generation machinery, which imports the study, which imports these
    # settings: loaded on first use to keep the import graph acyclic.
    if name in ("score", "score_responses", "ScoreSummary"):
        from changeover.signals import scoring

        return getattr(scoring, name)
    raise AttributeError(f"module 'changeover.signals' has no attribute '{name}'")


__all__ = [
    "JudgeInput",
    "JudgeSignal",
    "ReferenceScores",
    "ReferenceSignal",
    "RefusalDetector",
    "RefusalPatterns",
    "RefusalSignal",
    "ScoreSummary",
    "SignalResult",
    "SignalsSettings",
    "StyleGuide",
    "StyleSignal",
    "StyleViolation",
    "bin_values",
    "build_judge_request",
    "check_signals",
    "check_style",
    "check_styles",
    "combine_levels",
    "compute_signal",
    "detect_language",
    "detect_refusal",
    "detect_refusals",
    "judge_responses",
    "normalise_answer",
    "parse_judgement",
    "quantile_edges",
    "quantile_levels",
    "reference_scores",
    "render_rubric",
    "score",
    "score_reference",
    "score_references",
    "score_responses",
    "split_references",
    "style_violations",
]
