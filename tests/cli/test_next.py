"""`changeover next` on a small workspace: a stratified start, then a targeted queue."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from changeover.annotate import queue_status, record_labels
from changeover.calibrate.settings import FitSettings
from changeover.counts import workspace_rows
from changeover.records import Item, ResponseRecord, SignalRecord
from changeover.workspace import open_workspace
from tests.fakes.studies import run_cli as run

STUDY = """\
incumbent: legacy
candidates: [cand-a]
segments: {na: 2, emea: 1}
dimensions: [correctness]
gates:
  - {name: correctness, dimension: correctness, better: higher, margin: 0.02}
"""
MODELS = ("legacy", "cand-a")


@pytest.fixture
def study_path(tmp_path: Path) -> Path:
    folder = tmp_path / "study"
    folder.mkdir()
    path = folder / "study.yaml"
    path.write_text(STUDY)
    rng = np.random.default_rng(0)
    with open_workspace(folder / "changeover.db", create=True) as workspace:
        items = [
            Item(item_id=f"q{i:03d}", prompt=f"Question {i}", segment=("na", "emea")[i % 2])
            for i in range(60)
        ]
        workspace.add_items(items)
        workspace.add_responses(
            [
                ResponseRecord(item_id=it.item_id, model=m, response="answer", source="import")
                for it in items
                for m in MODELS
            ]
        )
        workspace.store_signals(
            [
                SignalRecord(
                    it.item_id, m, "judge", "correctness", None, str(rng.choice(["pass", "fail"]))
                )
                for it in items
                for m in MODELS
            ],
            run_id=None,
        )
    return path


def _queue_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _start(study_path: Path, out: Path, monkeypatch: pytest.MonkeyPatch,
           capsys: pytest.CaptureFixture[str]) -> list[dict[str, str]]:  # fmt: skip
    study = ["--study", str(study_path)]
    assert run(["next", "--budget", "8", "--out", str(out), *study], monkeypatch) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "stratified random start" in text and "queued 8 new" in text
    rows = _queue_rows(out)
    assert len(rows) == 8
    assert list(rows[0]) == ["item_id", "model", "dimension", "segment", "level", "priority",
                             "reason"]  # fmt: skip
    cells = {(r["model"], r["segment"]) for r in rows}
    assert len(cells) == 4  # every model x segment cell
    with open_workspace(study_path.parent / "changeover.db") as workspace:
        assert queue_status(workspace).by_dimension == {"correctness": (8, 8)}
    return rows


def test_next_without_labels_queues_a_stratified_start(
    study_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _start(study_path, tmp_path / "queue.csv", monkeypatch, capsys)


@pytest.mark.slow
def test_next_after_labels_targets_unlabelled_responses(
    study_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    study = ["--study", str(study_path)]
    out = tmp_path / "queue.csv"
    rows = _start(study_path, out, monkeypatch, capsys)
    with open_workspace(study_path.parent / "changeover.db") as workspace:
        # label everything queued and a few more, the human agreeing with the judge mostly
        labelled = [(r["item_id"], r["model"], r["level"]) for r in rows]
        labelled += [(f"q{i:03d}", m, "") for i in range(20, 40) for m in MODELS]
        levels = {
            (r["item_id"], r["model"]): r["level"]
            for r in workspace_rows(workspace).iter_rows(named=True)
        }
        for i, (item, model, _) in enumerate(labelled):
            agree = i % 5 != 0
            label = int((levels[(item, model)] == "pass") == agree)
            record_labels(workspace, annotator="ann", item_id=item, model=model,
                          labels={"correctness": label})  # fmt: skip
    args = ["next", "--budget", "6", "--out", str(out), "--num-samples", "100",
            "--num-warmup", "100", *study]  # fmt: skip
    assert run(args, monkeypatch) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "cand-a" in text
    rows = _queue_rows(out)
    if "decided" in text and not rows:
        return  # the candidate happened to be settled: nothing to label
    assert 1 <= len(rows) <= 6
    assert all(r["level"] in ("pass", "fail") and r["reason"] for r in rows)
    already = {(item, model) for item, model, _ in labelled}
    assert not any((r["item_id"], r["model"]) in already for r in rows)


def test_next_bad_input_exits_2(
    study_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    study = ["--study", str(study_path)]
    assert run(["next", "--budget", "5", "--dimension", "style", *study], monkeypatch) == 2
    err = capsys.readouterr().err
    assert "style" in err and len(err.strip().splitlines()) == 1
    missing = tmp_path / "nowhere" / "q.csv"
    assert run(["next", "--budget", "5", "--out", str(missing), *study], monkeypatch) == 2
    assert "does not exist" in capsys.readouterr().err
    assert run(["next", "--budget", "0", *study], monkeypatch) == 2
    assert run(["next", "--budget", "5", "--study", str(tmp_path / "no.yaml")], monkeypatch) == 2


def _label_all(study_path: Path, *, margin: float) -> None:
    """Label 40 items of both models as the judge says, with the gate's margin set to `margin`."""
    study_path.write_text(STUDY.replace("margin: 0.02", f"margin: {margin}"))
    with open_workspace(study_path.parent / "changeover.db") as workspace:
        rows = workspace_rows(workspace).iter_rows(named=True)
        levels = {(r["item_id"], r["model"]): r["level"] for r in rows}
        for i in range(40):
            for model in MODELS:
                item = f"q{i:03d}"
                label = int(levels[(item, model)] == "pass")
                record_labels(workspace, annotator="ann", item_id=item, model=model,
                              labels={"correctness": label})  # fmt: skip


def test_next_confirm_plans_for_a_decided_candidate(
    study_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A decided candidate gets no labels, unless --confirm asks for the confirming batch."""
    _label_all(study_path, margin=0.9)  # surely non-inferior
    study = ["--study", str(study_path)]
    out = tmp_path / "queue.csv"
    args = ["next", "--budget", "6", "--out", str(out), *study]  # the default draws, as `run`
    assert run(args, monkeypatch) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "cand-a: ready" in text and "every candidate is decided" in text
    assert "--confirm" in text and _queue_rows(out) == []
    assert run([*args, "--confirm"], monkeypatch) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "labels in" in text and "for cand-a" in text
    queued = _queue_rows(out)
    assert len(queued) == 6
    labelled = {(f"q{i:03d}", m) for i in range(40) for m in MODELS}
    assert not any((r["item_id"], r["model"]) in labelled for r in queued)


def test_next_announces_no_decision_from_a_fit_that_did_not_converge(
    study_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Issue 14, item 5: with too few draws the fit does not converge; `next` says the verdicts
    are provisional and what to do, and never that every candidate is decided."""
    _label_all(study_path, margin=0.9)
    out = tmp_path / "queue.csv"
    args = ["next", "--budget", "6", "--out", str(out), "--num-samples", "100",
            "--num-warmup", "100", "--study", str(study_path)]  # fmt: skip
    assert run(args, monkeypatch) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "did not converge" in text and "provisional" in text
    assert "ready (provisional)" in text
    assert "every candidate is decided" not in text and "no label is needed" not in text
    assert "changeover next --budget 6 --num-samples 200" in text
    assert _queue_rows(out) == []


def test_next_uses_the_fit_of_run_and_report(
    study_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Issue 14, item 5: `next` fits with the settings `report` uses (FitSettings' defaults)
    and re-uses the kept fit, so both print the same probabilities."""
    _label_all(study_path, margin=0.02)
    study = ["--study", str(study_path)]
    report = tmp_path / "report.json"
    args = ["report", "--format", "json", "--out", str(report), "--budget", "6", *study]
    assert run(args, monkeypatch) == 0
    capsys.readouterr()
    assert run(["next", "--budget", "6", *study], monkeypatch) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "re-used" in text
    document = json.loads(report.read_text())
    verdict = document["result"]["candidates"]["cand-a"]
    assert f"cand-a: {verdict['verdict']}" in text and verdict["reason"] in text
    assert document["fit"]["num_samples"] == FitSettings().num_samples
