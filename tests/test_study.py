from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from changeover import StudyError, load_study, parse_study
from tests.conftest import MINIMAL_STUDY


def test_minimal_study_is_valid(study_file: Path) -> None:
    study = load_study(study_file)
    assert study.model_names == ["legacy", "cand-a", "cand-b"]
    assert study.weights["na"] == pytest.approx(2.1 / 4.4)
    assert sum(study.weights.values()) == pytest.approx(1.0)
    gate = study.gates[0]
    assert gate.scope == "both" and gate.margin_for_segments == 0.05
    assert study.gates[1].group == "answer" and study.gates[1].margin_for_segments == 0.01
    assert study.gate_probability(gate) == 0.95


def _mutated(change) -> dict:  # type: ignore[no-untyped-def]
    data = yaml.safe_load(MINIMAL_STUDY)
    change(data)
    return data


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d.update(colour="red"), "unknown key 'colour'"),
        (lambda d: d["gates"][0].update(marign=0.1), "unknown key 'gates[0].marign'"),
        (lambda d: d["segments"].update(na=0), "segments.na: traffic weight must be > 0"),
        (lambda d: d["segments"].update(na=-5), "segments.na"),
        (lambda d: d["gates"][0].update(margin=1.5), "gates[0].margin"),
        (lambda d: d["gates"][0].update(segment_margin=-0.1), "gates[0].segment_margin"),
        (lambda d: d["gates"][1].update(better="bigger"), "gates[1].better"),
        (lambda d: d["gates"][1].update(scope="some"), "gates[1].scope"),
        (lambda d: d.update(candidates=["legacy"]), "incumbent 'legacy' is also listed"),
        (lambda d: d.pop("incumbent"), "missing required key 'incumbent'"),
        (
            lambda d: d["gates"][2].update(name="correctness"),
            "gates[2].name: 'correctness' is used twice",
        ),
        (lambda d: d.update(decision={"probability": 1.5}), "decision.probability"),
        (
            lambda d: d.update(models={"legacy": {"provider": "replay", "file": "x.jsonl"}}),
            "models: 'cand-a' is named as incumbent or candidate but has no entry",
        ),
        (lambda d: d.update(models={"legacy": {"provider": "nope"}}), "models.legacy.provider"),
    ],
)
def test_bad_study_names_the_key(change, expected: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(StudyError) as info:
        parse_study(_mutated(change), source="study.yaml")
    message = str(info.value)
    assert message.startswith("study.yaml: ")
    assert expected in message
    assert "\n" not in message


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "study.yaml"
    path.write_text("incumbent: legacy\ncandidates: [a, b\nsegments: {}\n")
    with pytest.raises(StudyError, match=r"study.yaml: line \d+"):
        load_study(path)


def test_missing_study_file(tmp_path: Path) -> None:
    with pytest.raises(StudyError, match="study file not found"):
        load_study(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d["segments"].update(na=float("inf")), "segments.na: Input should be a finite"),
        (lambda d: d["gates"][0].update(margin=float("nan")), "gates[0].margin: Input should be"),
        (lambda d: d["decision"].update(probability=float("inf")), "decision.probability"),
    ],
)
def test_non_finite_numbers_are_refused(change, expected: str) -> None:  # type: ignore[no-untyped-def]
    data = _mutated(change)
    with pytest.raises(StudyError, match=expected.replace("[", r"\[").replace("]", r"\]")):
        parse_study(data)


def test_non_finite_yaml_numbers_are_refused_at_load(tmp_path: Path) -> None:
    path = tmp_path / "study.yaml"
    path.write_text(MINIMAL_STUDY.replace("na: 2100000", "na: .inf"), encoding="utf-8")
    with pytest.raises(StudyError, match="segments.na: Input should be a finite number"):
        load_study(path)


def test_a_typo_is_reported_as_an_unknown_key_not_a_missing_one() -> None:
    data = yaml.safe_load(MINIMAL_STUDY)
    data["models"] = {m: {"provder": "openai"} for m in ("legacy", "cand-a", "cand-b")}
    with pytest.raises(StudyError, match="unknown key 'models.legacy.provder'"):
        parse_study(data)


def test_a_gate_on_a_dimension_no_signal_informs_is_refused() -> None:
    data = yaml.safe_load(MINIMAL_STUDY)
    data["signals"] = {"refusal_phrases": {"kind": "refusal"}}
    data["gates"] = [{"name": "s", "dimension": "styel", "better": "higher", "margin": 0.05}]
    with pytest.raises(StudyError, match=r"gates\[0\].dimension: no signal informs 'styel'"):
        parse_study(data)


def test_duplicate_keys_are_refused_with_both_lines(tmp_path: Path) -> None:
    path = tmp_path / "study.yaml"
    path.write_text(MINIMAL_STUDY + "incumbent: cand-a\n", encoding="utf-8")
    first = MINIMAL_STUDY.splitlines().index(
        next(line for line in MINIMAL_STUDY.splitlines() if line.startswith("incumbent:"))
    )
    last = len(MINIMAL_STUDY.splitlines()) + 1
    with pytest.raises(
        StudyError,
        match=rf"line {last}: key 'incumbent' appears twice \(first at line {first + 1}\)",
    ):
        load_study(path)


def test_a_billion_laughs_study_is_refused_at_load(tmp_path: Path) -> None:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    bomb = "\n".join(lines)
    path = tmp_path / "study.yaml"
    path.write_text(f"{bomb}\n{MINIMAL_STUDY}", encoding="utf-8")
    with pytest.raises(StudyError, match="expands to more than 100,000 values"):
        load_study(path)


def test_aliases_and_merge_keys_within_reason_still_work(tmp_path: Path) -> None:
    path = tmp_path / "study.yaml"
    models = (
        "models:\n"
        "  legacy: &base {provider: openai, model: m1, temperature: 0}\n"
        "  cand-a: {<<: *base, model: m2}\n"
        "  cand-b: *base\n"
    )
    path.write_text(MINIMAL_STUDY + models, encoding="utf-8")
    study = load_study(path)
    assert study.models is not None
    assert [study.models[m].model for m in study.model_names] == ["m1", "m2", "m1"]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (MINIMAL_STUDY.encode("utf-16"), "not UTF-8 text"),
        (MINIMAL_STUDY.replace("legacy", "légacy").encode("latin-1"), "not UTF-8 text"),
        (b'incumbent: "\\ud800"\n', r"incumbent: holds a lone surrogate"),
        (b"x: " + b"[" * 5000 + b"]" * 5000 + b"\n", "nested too deeply|expected a mapping"),
    ],
)
def test_unreadable_study_files_are_one_line_errors(
    tmp_path: Path, content: bytes, expected: str
) -> None:
    path = tmp_path / "study.yaml"
    path.write_bytes(content)
    with pytest.raises(StudyError, match=expected):
        load_study(path)


def test_a_utf8_bom_is_accepted_and_a_folder_is_not_a_study(tmp_path: Path) -> None:
    path = tmp_path / "study.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + MINIMAL_STUDY.encode("utf-8"))
    assert load_study(path).incumbent == "legacy"
    with pytest.raises(StudyError, match="is a folder"):
        load_study(tmp_path)


PRICE = {"name": "price", "dimension": "cost", "better": "lower", "margin": 0.1, "relative": True}
SPEED = {"name": "speed", "dimension": "latency_p95", "better": "lower", "margin": 0.3}


def test_gates_on_cost_and_latency_need_no_signal_and_no_dimension_entry() -> None:
    """Cost and latency are measured, not signalled: exempt from "no signal informs it" and
    from `dimensions:`, and their margins are in their own units (above 1 is fine)."""
    data = yaml.safe_load(MINIMAL_STUDY)
    data["signals"] = {"refusal_phrases": {"kind": "refusal"}}
    data["dimensions"] = ["correctness", "refusal"]
    data["gates"] += [PRICE, SPEED | {"margin": 2.5}]
    study = parse_study(data)
    assert [g.measure for g in study.gates] == [None, None, None, "cost", "latency_p95"]
    assert [g.name for g in study.quality_gates] == [
        "correctness", "over_refusal", "refusal_recall"
    ]  # fmt: skip
    assert study.gates[3].relative and not study.gates[4].relative


@pytest.mark.parametrize(
    ("gate", "expected"),
    [
        (PRICE | {"group": "answer"}, "gates[3].group: a gate on cost has no group"),
        (SPEED | {"scope": "both"}, "gates[3].scope: a gate on latency_p95 is decided at the"),
        (SPEED | {"segment_margin": 0.1}, "gates[3].segment_margin: a gate on latency_p95 has no"),
        (PRICE | {"better": "higher"}, "gates[3].better: a gate on cost keeps it from growing"),
        (PRICE | {"margin": -0.1}, "gates[3].margin"),
        (PRICE | {"relative": "yes please"}, "gates[3].relative"),
        (
            {
                "name": "q",
                "dimension": "correctness",
                "better": "higher",
                "margin": 0.02,
                "relative": True,
            },
            "gates[3].relative: only gates on cost, latency_p50, latency_p95 take a relative",
        ),  # fmt: skip
        (
            {"name": "q", "dimension": "correctness", "better": "higher", "margin": 1.5},
            "gates[3].margin: a gate on correctness has its margin in rate units",
        ),
    ],
)
def test_a_bad_cost_or_latency_gate_names_the_key(gate: dict[str, object], expected: str) -> None:
    data = yaml.safe_load(MINIMAL_STUDY)
    data["gates"].append(gate)
    with pytest.raises(StudyError) as info:
        parse_study(data, source="study.yaml")
    assert expected in str(info.value) and "\n" not in str(info.value)


def test_a_measure_is_not_a_quality_dimension() -> None:
    data = yaml.safe_load(MINIMAL_STUDY)
    data["dimensions"] = ["correctness", "cost"]
    with pytest.raises(StudyError, match=r"dimensions\[1\]: 'cost' is a measure of cost or"):
        parse_study(data)
    data = yaml.safe_load(MINIMAL_STUDY)
    data["signals"] = {"judge": {"kind": "refusal", "dimension": "latency_p95"}}
    with pytest.raises(StudyError, match=r"signals.judge.dimension: 'latency_p95' is measured"):
        parse_study(data)
