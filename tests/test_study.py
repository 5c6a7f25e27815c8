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
