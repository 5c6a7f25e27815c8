"""`changeover export inspect|promptfoo`: what comes back out is read by the tools' own readers
(Inspect's `json_dataset`; changeover's promptfoo importer, which reads promptfoo's files)."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from changeover.workspace import open_workspace
from tests.fakes.studies import run_cli as run
from tests.importers.conftest import InspectLogs
from tests.importers.test_inspect_logs import MAPPING as INSPECT_MAPPING
from tests.importers.test_promptfoo_results import FIXTURES, MAPPING, STUDY


def _study(folder: Path, text: str = STUDY) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / "study.yaml"
    path.write_text(text)
    return path


def _tables(study: Path) -> dict[str, pl.DataFrame]:
    with open_workspace(study.parent / "changeover.db") as workspace:
        return {t: workspace.frame(t) for t in ("items", "responses", "signals")}


def test_promptfoo_form_round_trips_through_the_promptfoo_importer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    first = _study(tmp_path / "first")
    args = ["import", "promptfoo", str(FIXTURES / "errors.json"), "--study", str(first)]
    assert run([*args, *MAPPING], monkeypatch) == 0
    out = tmp_path / "results.jsonl"
    assert run(["export", "promptfoo", "--out", str(out), "--study", str(first)], monkeypatch) == 0
    assert "wrote 16 promptfoo rows" in capsys.readouterr().out
    result = json.loads(out.read_text().splitlines()[0])
    assert {"testIdx", "provider", "prompt", "vars", "response", "gradingResult"} <= set(result)

    second = _study(tmp_path / "second")
    back = [
        "import",
        "promptfoo",
        str(out),
        "--study",
        str(second),
        "--map",
        "item_id=vars.item_id",
    ]
    assert run(back, monkeypatch) == 0
    before, after = _tables(first), _tables(second)
    for table, columns in (
        ("items", ["item_id", "prompt", "segment", "reference", "expected_behaviour"]),
        ("responses", ["item_id", "model", "response", "error", "input_tokens", "output_tokens"]),
    ):
        a, b = (t[table].select(columns).sort("item_id", *columns[1:2]) for t in (before, after))
        assert a.equals(b), table
    key = ["item_id", "model", "signal"]
    single = before["signals"].filter(~pl.col("signal").str.contains("|", literal=True))
    assert (
        single.select(*key, "level")
        .sort(key)
        .equals(
            after["signals"]
            .filter(~pl.col("signal").str.contains("|", literal=True))
            .select(*key, "level")
            .sort(key)
        )
    )


def test_inspect_form_is_an_inspect_dataset_with_scores_and_labels(
    inspect_logs: InspectLogs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from inspect_ai.dataset import json_dataset

    study = _study(
        tmp_path / "s",
        "incumbent: legacy\ncandidates: [cand]\nsegments: {na: 3, emea: 2, apac: 1}\n",
    )
    logs = [str(inspect_logs.legacy), str(inspect_logs.cand)]
    assert (
        run(["import", "inspect", *logs, "--study", str(study), *INSPECT_MAPPING], monkeypatch) == 0
    )
    labels = tmp_path / "labels.csv"
    labels.write_text("item_id,model,dimension,annotator,label\ns000,cand,correctness,ann,1\n")
    assert (
        run(
            ["labels", "import", str(labels), "--study", str(study), "--add-annotators"],
            monkeypatch,
        )
        == 0
    )
    out = tmp_path / "samples.jsonl"
    assert run(["export", "inspect", "--out", str(out), "--study", str(study)], monkeypatch) == 0

    dataset = json_dataset(str(out))
    assert len(dataset) == 24
    sample = dataset[0]
    assert (sample.id, sample.input, sample.target) == (
        "s000",
        "What is the code of plan 0?",
        "PLAN-000",
    )
    assert sample.metadata is not None and sample.metadata["segment"] == "na"
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    cand = next(s for s in lines if s["id"] == "s000" and s["metadata"]["model"] == "cand")
    assert cand["scores"]["model_graded_qa"]["value"] == "I"  # cand gets plan 0 wrong
    assert cand["scores"]["human_correctness"]["value"] == 1.0
    failed = next(s for s in lines if s["id"] == "s010" and s["metadata"]["model"] == "cand")
    assert "mock failure" in failed["error"]["message"]
