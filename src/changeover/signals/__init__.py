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

Each returns `SignalResult(value, level, detail)`; `signal_health` says when a signal's share of
`error` or `unparseable` levels is too high to pass without a warning. The stage
`changeover.score` computes every signal of a study for every response of the workspace.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from changeover.signals.compute import combine_levels, compute_signal
    from changeover.signals.health import SignalHealth, signal_health
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
    )
    from changeover.signals.style import (
        StyleViolation,
        check_style,
        check_styles,
        detect_language,
        style_violations,
    )

# Loaded on first use: importing one submodule (a stage needs only `labels`, say) must not
# load every other one.
_EXPORTS = {
    "JudgeInput": "changeover.signals.judge",
    "JudgeSignal": "changeover.signals.settings",
    "ReferenceScores": "changeover.signals.reference",
    "ReferenceSignal": "changeover.signals.settings",
    "RefusalDetector": "changeover.signals.refusal",
    "RefusalPatterns": "changeover.signals.settings",
    "RefusalSignal": "changeover.signals.settings",
    "SignalHealth": "changeover.signals.health",
    "SignalResult": "changeover.signals.result",
    "SignalsSettings": "changeover.signals.settings",
    "StyleGuide": "changeover.signals.settings",
    "StyleSignal": "changeover.signals.settings",
    "StyleViolation": "changeover.signals.style",
    "bin_values": "changeover.signals.reference",
    "build_judge_request": "changeover.signals.judge",
    "check_style": "changeover.signals.style",
    "check_styles": "changeover.signals.style",
    "combine_levels": "changeover.signals.compute",
    "compute_signal": "changeover.signals.compute",
    "detect_language": "changeover.signals.style",
    "detect_refusal": "changeover.signals.refusal",
    "detect_refusals": "changeover.signals.refusal",
    "judge_responses": "changeover.signals.judge",
    "normalise_answer": "changeover.signals.reference",
    "parse_judgement": "changeover.signals.judge",
    "quantile_edges": "changeover.signals.reference",
    "quantile_levels": "changeover.signals.reference",
    "reference_scores": "changeover.signals.reference",
    "render_rubric": "changeover.signals.judge",
    "score_reference": "changeover.signals.reference",
    "score_references": "changeover.signals.reference",
    "signal_health": "changeover.signals.health",
    "split_references": "changeover.signals.reference",
    "style_violations": "changeover.signals.style",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        from importlib import import_module

        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "JudgeInput",
    "JudgeSignal",
    "ReferenceScores",
    "ReferenceSignal",
    "RefusalDetector",
    "RefusalPatterns",
    "RefusalSignal",
    "SignalHealth",
    "SignalResult",
    "SignalsSettings",
    "StyleGuide",
    "StyleSignal",
    "StyleViolation",
    "bin_values",
    "build_judge_request",
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
    "score_reference",
    "score_references",
    "signal_health",
    "split_references",
    "style_violations",
]
