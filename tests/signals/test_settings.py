from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from changeover import StudyError, parse_study
from changeover.signals.settings import (
    MAX_LEVELS,
    JudgeSignal,
    ReferenceSignal,
    RefusalSignal,
    SignalsSettings,
    StyleGuide,
    StyleSignal,
)
from tests.conftest import MINIMAL_STUDY

FULL = {
    "signals": {
        "refusal_phrases": {"kind": "refusal", "languages": ["en", "es"]},
        "answer_overlap": {"kind": "reference", "metric": "token_f1", "bins": [0.3, 0.6]},
        "answer_contained": {"kind": "reference", "metric": "containment", "separator": "/"},
        "house_style": {"kind": "style", "scale": "count", "max_violations": 2},
    },
    "style_guide": {
        "text": "Be brief and friendly. Answer in the customer's language.",
        "max_words": 200,
        "banned_phrases": ["as an AI language model"],
        "markdown": False,
        "languages": {"na": ["en", "es"], "emea": ["en", "de", "fr"], "*": "ja"},
        "sign_off": "The Acme team",
    },
}


def _study(**extra: Any) -> dict[str, Any]:
    """The minimal study with `extra`; its gates declared as dimensions, so that a study with
    signals for only some of them stays valid."""
    data = yaml.safe_load(MINIMAL_STUDY)
    data["dimensions"] = sorted(
        {gate["dimension"] for gate in data["gates"]} | {"style", "helpfulness"}
    )
    data.update(extra)
    return data


def _error(data: dict[str, Any]) -> str:
    with pytest.raises(StudyError) as info:
        parse_study(data, source="study.yaml")
    message = str(info.value)
    assert message.startswith("study.yaml: ")
    assert "\n" not in message
    return message


def test_minimal_study_has_no_signals() -> None:
    study = parse_study(_study())
    assert study.signals is None and study.style_guide is None


def test_full_signals_section() -> None:
    study = parse_study(_study(**FULL))
    assert study.signals is not None and study.style_guide is not None
    assert list(study.signals) == [
        "refusal_phrases",
        "answer_overlap",
        "answer_contained",
        "house_style",
    ]
    refusal = study.signals["refusal_phrases"]
    assert isinstance(refusal, RefusalSignal) and refusal.dimension == "refusal"
    overlap = study.signals["answer_overlap"]
    assert isinstance(overlap, ReferenceSignal) and overlap.dimension == "correctness"
    assert overlap.levels == ("0-0.3", "0.3-0.6", "0.6-1")
    assert study.signals["answer_contained"].levels == ("not_contained", "contained")
    style = study.signals["house_style"]
    assert isinstance(style, StyleSignal) and style.levels == ("0", "1", "2+")
    assert study.signals.dimensions == ["refusal", "correctness", "style"]
    assert list(study.signals.for_dimension("correctness")) == [
        "answer_overlap",
        "answer_contained",
    ]
    guide = study.style_guide
    assert guide.languages_for("na") == ("en", "es")
    assert guide.languages_for("apac") == ("ja",)
    assert guide.configured_checks == (
        "max_words",
        "banned_phrases",
        "markdown",
        "language",
        "sign_off",
    )


def test_defaults() -> None:
    assert ReferenceSignal().levels == ("0-0.25", "0.25-0.5", "0.5-0.75", "0.75-1")
    assert ReferenceSignal(quantiles=3).levels == ("q1", "q2", "q3")
    assert RefusalSignal().levels == ("complied", "partial", "refused")
    assert StyleSignal().levels == ("pass", "fail")
    assert len(SignalsSettings.model_validate({"a": {"kind": "refusal"}})) == 1


@pytest.mark.parametrize(
    ("signals", "expected"),
    [
        ({"x": {"kind": "bleu"}}, "signals.x.kind: unknown signal 'bleu'; choose one of"),
        (
            {"x": {"kind": "llm"}},
            "signals.x.kind: unknown signal 'llm'; choose one of refusal, style, reference, judge",
        ),
        ({"x": {"metric": "token_f1"}}, "signals.x.kind: missing"),
        ({"x": "refusal"}, "signals.x: expected a mapping"),
        (
            {"x": {"kind": "reference", "bins": [0.6, 0.3]}},
            "signals.x.bins: edges must be strictly increasing",
        ),
        (
            {"x": {"kind": "reference", "bins": [0.3, 0.3]}},
            "signals.x.bins: edges must be strictly increasing",
        ),
        (
            {"x": {"kind": "reference", "bins": [0.5, 1.5]}},
            "signals.x.bins: edge 1.5 is outside (0, 1)",
        ),
        ({"x": {"kind": "reference", "bins": []}}, "signals.x.bins: is empty"),
        (
            {"x": {"kind": "reference", "bins": [0.5], "quantiles": 3}},
            "signals.x: give bins or quantiles, not both",
        ),
        (
            {"x": {"kind": "reference", "metric": "exact_match", "bins": [0.5]}},
            "signals.x: metric exact_match is 0 or 1",
        ),
        ({"x": {"kind": "reference", "metric": "bleu"}}, "signals.x.metric: Input should be"),
        ({"x": {"kind": "reference", "quantiles": 1}}, "signals.x.quantiles"),
        (
            {"x": {"kind": "reference", "binz": [0.5]}},
            "signals.x.binz: unknown key; check the spelling",
        ),
        (
            {"x": {"kind": "refusal", "languages": ["xx"]}},
            "signals.x.languages: no built-in refusal phrases for language 'xx'",
        ),
        (
            {"x": {"kind": "refusal", "patterns": {"refused": ["ok", "(unclosed"]}}},
            "signals.x.patterns.refused: entry [1] '(unclosed' is not a valid regular expression",
        ),
        (
            {"x": {"kind": "refusal", "patterns": {"denied": ["x"]}}},
            "signals.x.patterns.denied: unknown key",
        ),
        (
            {"x": {"kind": "refusal", "builtin_patterns": False}},
            "signals.x: builtin_patterns is false and patterns.refused is empty",
        ),
        ({"x": {"kind": "style", "scale": "stars"}}, "signals.x.scale"),
        ({"1x": {"kind": "refusal"}}, "signals.1x: a signal name is a word"),
        (
            {"x": {"kind": "refusal", "dimension": "safety"}},
            "signals.x.dimension: 'safety' is not among dimensions",
        ),
    ],
)
def test_bad_signal_names_the_key(signals: dict[str, Any], expected: str) -> None:
    data = _study(signals=signals, dimensions=["correctness", "refusal", "style"])
    assert expected in _error(data)


def test_signals_must_be_a_mapping() -> None:
    assert "signals: expected a mapping of signal names" in _error(_study(signals=["refusal"]))


def test_style_signal_needs_the_style_guide() -> None:
    message = _error(_study(signals={"house_style": {"kind": "style"}}))
    assert "signals.house_style: a style signal checks the rules of the style guide" in message
    assert "add one" in message


def test_style_signal_needs_a_rule() -> None:
    message = _error(_study(signals={"s": {"kind": "style"}}, style_guide={"text": "Be nice."}))
    assert "signals.s: style_guide sets no rule to check" in message


def test_style_check_must_be_set_in_the_guide() -> None:
    data = _study(
        signals={"s": {"kind": "style", "checks": ["max_words", "sign_off"]}},
        style_guide={"max_words": 100},
    )
    assert "signals.s.checks[1]: 'sign_off' is not set in style_guide" in _error(data)


@pytest.mark.parametrize(
    ("guide", "expected"),
    [
        ({"max_words": 10, "min_words": 20}, "style_guide.min_words: 20 is above max_words"),
        ({"max_words": 0}, "style_guide.max_words"),
        ({"maxwords": 10}, "unknown key 'style_guide.maxwords'"),
        ({"banned_phrases": ["ok", " "]}, "entry [1] is empty"),
        (
            {"banned_phrases": ["Hi"], "required_phrases": ["hi"]},
            "style_guide.required_phrases: ['hi'] also banned",
        ),
        (
            {"languages": {"na": ["en"], "emea": ["en"], "apac": ["klingon"]}},
            "style_guide.languages.apac: 'klingon' is not the ISO 639-1 code",
        ),
        ({"languages": {"na": [], "*": "en"}}, "style_guide.languages.na: no language"),
        (
            {"languages": {"latam": "es", "*": "en"}},
            "style_guide.languages.latam: 'latam' is not a segment",
        ),
        (
            {"languages": {"na": "en"}},
            "style_guide.languages: no language for segment(s) emea, apac",
        ),
        ({"sign_off": "  "}, "style_guide.sign_off"),
    ],
)
def test_bad_style_guide_names_the_key(guide: dict[str, Any], expected: str) -> None:
    assert expected in _error(_study(style_guide=guide))


def test_too_many_combined_levels() -> None:
    signals = {
        "a": {"kind": "reference", "quantiles": 5},
        "b": {"kind": "reference", "metric": "token_recall", "bins": [0.2, 0.4, 0.6, 0.8]},
    }
    message = _error(_study(signals=signals))
    assert "signals: dimension 'correctness' combines a, b into 25 levels" in message
    assert str(MAX_LEVELS) in message


def test_settings_are_hashable() -> None:
    assert hash(RefusalSignal()) == hash(RefusalSignal())
    assert hash(StyleGuide(max_words=3)) == hash(StyleGuide(max_words=3))


def test_the_documented_example_is_valid() -> None:
    docs = Path(__file__).resolve().parents[2] / "docs" / "signals.md"
    block = docs.read_text(encoding="utf-8").split("```yaml\n")[1].split("```")[0]
    study = parse_study(_study(**yaml.safe_load(block)))
    assert study.signals is not None and len(study.signals) == 3
    assert study.style_guide is not None and study.style_guide.languages_for("apac") == ("ja",)


# -- kind: judge --------------------------------------------------------------------------------

GRADER = {"provider": "openai", "model": "gpt-judge", "base_url": "http://127.0.0.1:9/v1"}
MODELS = {
    "legacy": {"provider": "replay", "file": "legacy.jsonl"},
    "cand-a": {"provider": "replay", "file": "a.jsonl"},
    "cand-b": {"provider": "replay", "file": "b.jsonl"},
    "grader": GRADER,
}


def _judged(signals: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return _study(**{"models": MODELS, "signals": signals, **extra})


def test_judges_take_their_defaults_from_the_rubric() -> None:
    study = parse_study(
        _judged(
            {
                "right": {"kind": "judge", "rubric": "correctness", "model": "grader"},
                "graded": {"kind": "judge", "rubric": "correctness", "model": "grader",
                           "scale": "1-5", "dimension": "helpfulness"},
                "refuses": {"kind": "judge", "rubric": "refusal", "model": "grader",
                            "scale": "binary", "refusal_levels": ["refused"]},
                "styled": {"kind": "judge", "rubric": "style", "model": "legacy2"},
                "detector": {"kind": "refusal"},
            },
            models=MODELS | {"legacy2": GRADER},
            style_guide={"text": "Friendly and brief."},
        )
    )  # fmt: skip
    assert study.signals is not None
    right, graded, refuses, styled = (
        study.signals[n] for n in ("right", "graded", "refuses", "styled")
    )
    assert isinstance(right, JudgeSignal) and isinstance(refuses, JudgeSignal)
    assert (right.dimension, right.scale) == ("correctness", "binary")
    assert right.levels == ("correct", "incorrect", "unparseable", "error")
    assert graded.dimension == "helpfulness"
    assert graded.levels == ("1", "2", "3", "4", "5", "unparseable", "error")
    assert refuses.levels == ("complied", "refused", "unparseable", "error")
    assert refuses.counts_as_refusal == ("refused",)
    assert styled.levels == ("adheres", "violates", "unparseable", "error")
    assert study.signals.for_dimension("refusal") == {
        "refuses": refuses,
        "detector": study.signals["detector"],
    }


@pytest.mark.parametrize(
    ("signal", "expected"),
    [
        ({"rubric": "correctness"}, "signals.j.model: missing required key"),
        ({"model": "grader"}, "signals.j.rubric: missing required key"),
        ({"rubric": "tone", "model": "grader"}, "signals.j.rubric: Input should be"),
        ({"rubric": "correctness", "model": "gpt-9"},
         "signals.j.model: unknown model 'gpt-9'; the study's models are legacy, cand-a, cand-b, "
         "grader"),
        ({"rubric": "correctness", "model": "cand-a"},
         "signals.j.model: 'cand-a' replays recorded responses (provider replay) and cannot judge"),
        ({"rubric": "correctness", "model": "grader", "scale": "1-10"},
         "signals.j.scale: unknown scale '1-10' for a correctness judge; choose binary or 1-5"),
        ({"rubric": "refusal", "model": "grader", "scale": "1-5"},
         "signals.j.scale: unknown scale '1-5' for a refusal judge; choose three_way or binary"),
        ({"rubric": "style", "model": "grader", "scale": "count"},
         "signals.j.scale: unknown scale 'count' for a style judge; choose binary"),
        ({"rubric": "style", "model": "grader"},
         "signals.j: a style judge grades adherence to the style guide, and the study has no "
         "style_guide"),
        ({"rubric": "correctness", "model": "grader", "refusal_levels": ["refused"]},
         "signals.j.refusal_levels: is only for rubric: refusal"),
        ({"rubric": "refusal", "model": "grader", "refusal_levels": ["complied"]},
         "signals.j.refusal_levels[0]: Input should be 'partial' or 'refused'"),
        ({"rubric": "refusal", "model": "grader", "refusal_levels": []},
         "signals.j.refusal_levels: is empty"),
        ({"rubric": "correctness", "model": "grader", "template": "/nowhere/rubric.j2"},
         "signals.j.template: file /nowhere/rubric.j2 not found"),
        ({"rubric": "correctness", "model": "grader", "temperature": 0},
         "signals.j.temperature: unknown key"),
    ],
)  # fmt: skip
def test_bad_judge_names_the_key(signal: dict[str, Any], expected: str) -> None:
    assert expected in _error(_judged({"j": {"kind": "judge", **signal}}))


def test_a_judge_needs_the_models_section() -> None:
    message = _error(
        _study(signals={"j": {"kind": "judge", "rubric": "refusal", "model": "grader"}})
    )
    assert (
        "signals.j.model: the study has no models: section; add the judging model 'grader'"
        in message
    )


def test_a_style_judge_needs_text_or_rules() -> None:
    signals = {"j": {"kind": "judge", "rubric": "style", "model": "grader"}}
    assert "style_guide has neither text nor rules" in _error(_judged(signals, style_guide={}))
    parse_study(_judged(signals, style_guide={"max_words": 50}))


def test_a_judge_template_is_checked_at_validation(tmp_path: Path) -> None:
    template = tmp_path / "rubric.j2"
    signals = {
        "j": {
            "kind": "judge",
            "rubric": "correctness",
            "model": "grader",
            "template": str(template),
        }
    }
    template.write_text("Grade it. {% if scale == 'binary' %}Say correct or incorrect.")
    assert "line 1: Unexpected end of template" in _error(_judged(signals))
    template.write_text("Grade it on {{ scael }}.")
    assert "'scael' is undefined; a rubric template may use rubric, scale" in _error(
        _judged(signals)
    )
    template.write_text("Grade it ({{ scale }}): {{ verdicts | join(', ') }}.")
    parse_study(_judged(signals))


def test_a_judge_counts_its_failure_levels_in_the_cross_product() -> None:
    signals = {
        "j": {"kind": "judge", "rubric": "correctness", "model": "grader", "scale": "1-5"},
        "overlap": {"kind": "reference", "bins": [0.5, 0.8]},
    }
    parse_study(_judged(signals))  # 7 x 3 = 21 levels
    signals["overlap"]["bins"] = [0.3, 0.6, 0.8]
    assert "combines j, overlap into 28 levels" in _error(_judged(signals))


def test_the_documented_judges_are_valid() -> None:
    docs = Path(__file__).resolve().parents[2] / "docs" / "signals.md"
    blocks = docs.read_text(encoding="utf-8").split("```yaml\n")[1:]
    block = next(b for b in (x.split("```")[0] for x in blocks) if "kind: judge" in b)
    data = yaml.safe_load(block)
    study = parse_study(
        _study(
            models=MODELS | data["models"],
            signals=data["signals"],
            style_guide={"text": "Friendly, brief."},
        )
    )
    assert study.signals is not None
    judges = [s for _, s in study.signals.items() if isinstance(s, JudgeSignal)]
    assert [(j.rubric, j.scale) for j in judges] == [
        ("correctness", "1-5"),
        ("refusal", "three_way"),
        ("style", "binary"),
    ]
