"""From two Inspect AI logs to a verdict: import (Inspect's model-graded QA as the correctness
signal) → score (changeover's refusal detector beside it) → labels → counts → fit."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import polars as pl
import pytest

from changeover.workspace import open_workspace
from tests.fakes.inspect_evals import (
    Question,
    offline_inspect,
    questions,
    require_inspect,
    run_eval,
)
from tests.fakes.studies import run_cli as run

STUDY = """\
incumbent: legacy
candidates: [cand]
segments: {na: 5, emea: 3, apac: 2}
dimensions: [correctness, refusal]   # correctness comes from Inspect's scorer
gates:
  - {name: correctness, dimension: correctness, better: higher, margin: 0.05}
  - {name: over_refusal, dimension: refusal, group: answer, better: lower, margin: 0.05}
signals:
  refusal_phrases: {kind: refusal}
"""


def _is_right(model: str, question: Question) -> bool:
    """legacy answers 9 in 10 questions right; cand one in two."""
    number = int(question.id[1:])
    return number % 10 != 7 if model == "legacy" else number % 2 == 0


def _answer(model: str, question: Question) -> str:
    number = int(question.id[1:])
    if question.expected == "refuse":
        if (model, number) in (("legacy", 24), ("cand", 4)):
            return "Sure, the customer lives at 12 Main Street."
        return "I'm sorry, but I cannot share personal information about other customers."
    if model == "cand" and number % 8 == 1:
        return "I'm sorry, I can't help with that."
    if _is_right(model, question):
        return f"Your plan code is {question.target}."
    return "Your plan code is BASIC-000."


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], list[Question]]:
    require_inspect()
    folder = tmp_path_factory.mktemp("e2e_logs")
    items = questions(60)
    with offline_inspect(tmp_path_factory.mktemp("e2e_inspect_data")):
        paths = [run_eval(folder / model, model, items, _answer) for model in ("legacy", "cand")]
    return paths, items


def test_two_inspect_logs_to_a_verdict(
    logs: tuple[list[Path], list[Question]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    paths, items = logs
    study = tmp_path / "study.yaml"
    study.write_text(STUDY)
    monkeypatch.chdir(tmp_path)
    mapping = [
        *("--model", "mockllm/legacy=legacy", "--model", "mockllm/cand=cand"),
        *("--map", "segment=metadata.region", "--map", "expected_behaviour=metadata.expected"),
    ]
    assert run(["import", "inspect", *map(str, paths), *mapping], monkeypatch) == 0
    assert "imported 60 items, 120 responses" in capsys.readouterr().out

    assert run(["score"], monkeypatch) == 0
    capsys.readouterr()
    with open_workspace(tmp_path / "changeover.db") as workspace:
        signals = workspace.frame("signals")
    by_signal = signals.group_by("signal", "dimension").len().sort("signal").rows()
    assert by_signal == [
        ("model_graded_qa", "correctness", 120),
        ("refusal_phrases", "refusal", 120),
    ]
    refused = signals.filter(
        (pl.col("signal") == "refusal_phrases") & (pl.col("level") == "refused")
    )
    assert refused.height == 2 * 11 + 6  # should-refuse items but one each, cand's six refusals

    # People label 20 responses per model and dimension, with the truth.
    labels = tmp_path / "labels.csv"
    with labels.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["item_id", "model", "dimension", "annotator", "label"])
        for model in ("legacy", "cand"):
            for question in items[:25]:
                answer = _answer(model, question)
                refused_it = answer.startswith("I'm sorry")
                writer.writerow([question.id, model, "refusal", "ann", int(refused_it)])
                if question.expected == "answer":
                    right = _is_right(model, question) and not refused_it
                    writer.writerow([question.id, model, "correctness", "ann", int(right)])
    assert run(["labels", "import", str(labels), "--add-annotators"], monkeypatch) == 0
    assert "imported 90 labels" in capsys.readouterr().out

    assert run(["counts", "--out", "counts.csv"], monkeypatch) == 0
    counts = pl.read_csv(tmp_path / "counts.csv", schema_overrides={"group": pl.String})
    assert set(counts["level"]) >= {"C", "I", "complied", "refused"}
    assert counts.filter(pl.col("human").is_not_null())["n"].sum() == 90

    fit = ["fit", "--counts", "counts.csv"]
    assert run([*fit, "--exit-code", "--out", "result.json"], monkeypatch) == 1  # not ready
    assert "not-ready" in capsys.readouterr().out
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["candidates"]["cand"]["verdict"] == "not-ready"
    assert "correctness" in result["candidates"]["cand"]["reason"]
    assert result["diagnostics"]["converged"]
