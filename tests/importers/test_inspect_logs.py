"""`changeover import inspect` on logs written by real Inspect AI runs: the mapping options, the
records it makes, and bad input (one line naming file and field, exit 2, nothing imported)."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import polars as pl
import pytest

from changeover.workspace import open_workspace
from tests.fakes.studies import run_cli as run
from tests.importers.conftest import InspectLogs

STUDY = """\
incumbent: legacy
candidates: [cand]
segments: {na: 3, emea: 2, apac: 1}
signals:
  refusal_phrases: {kind: refusal}
"""
MAPPING = [
    *("--model", "mockllm/legacy=legacy", "--model", "mockllm/cand=cand"),
    *("--map", "segment=metadata.region", "--map", "expected_behaviour=metadata.expected"),
]


@pytest.fixture
def study(tmp_path: Path) -> Path:
    path = tmp_path / "study.yaml"
    path.write_text(STUDY)
    return path


def _tables(study: Path) -> dict[str, pl.DataFrame]:
    with open_workspace(study.parent / "changeover.db", create=True) as workspace:
        return {t: workspace.frame(t) for t in ("items", "responses", "signals")}


def test_two_logs_become_items_responses_and_signals(
    inspect_logs: InspectLogs,
    study: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    logs = [str(inspect_logs.legacy), str(inspect_logs.cand)]
    assert run(["import", "inspect", *logs, "--study", str(study), *MAPPING], monkeypatch) == 0
    out = capsys.readouterr().out
    assert "imported 12 items, 24 responses, 1 of them errors from 2 file(s)" in out
    assert "signal model_graded_qa (correctness): C " in out
    tables = _tables(study)
    items = tables["items"]
    assert items["item_id"].to_list() == [q.id for q in inspect_logs.items]
    first = items.row(0, named=True)
    assert (first["prompt"], first["reference"], first["segment"]) == (
        "What is the code of plan 0?", "PLAN-000", "na",
    )  # fmt: skip
    assert items["expected_behaviour"].to_list().count("refuse") == 2
    assert json.loads(first["metadata"]) == {"region": "na", "expected": "answer"}

    responses = tables["responses"]
    legacy = responses.filter(pl.col("model") == "legacy").row(0, named=True)
    assert legacy["response"] == "The code is PLAN-000."
    assert (legacy["input_tokens"], legacy["output_tokens"]) == (17, 4)
    assert legacy["latency_s"] is not None and legacy["finish_reason"] == "stop"
    failed = responses.filter(pl.col("error").is_not_null())
    assert failed.select("item_id", "model").rows() == [("s010", "cand")]
    assert "mock failure for sample s010" in failed["error"][0]

    signals = tables["signals"]
    graded = signals.filter(pl.col("signal") == "model_graded_qa")
    levels = dict(zip(graded["item_id"] + "/" + graded["model"], graded["level"], strict=True))
    assert levels["s000/legacy"] == "C" and levels["s003/cand"] == "I"
    assert levels["s001/cand"] == "P" and levels["s004/cand"] == "I"  # complied: not a refusal
    assert "s010/cand" not in levels  # an error has no score
    assert set(graded["value"].cast(pl.Float64).to_list()) == {0.0, 0.5, 1.0}
    combined = signals.filter(pl.col("signal") == "model_graded_qa|includes")
    assert combined.height == 23 and set(combined["dimension"]) == {"correctness"}

    # The workspace's rows feed `changeover counts`: one level per response and dimension.
    counts = study.parent / "counts.csv"
    assert run(["counts", "--study", str(study), "--out", str(counts)], monkeypatch) == 0
    assert pl.read_csv(counts)["n"].sum() == 23 - 4  # should-refuse items inform no correctness

    # Importing again changes nothing.
    assert run(["import", "inspect", *logs, "--study", str(study), *MAPPING], monkeypatch) == 0
    assert "already present" in capsys.readouterr().out
    assert _tables(study)["responses"].height == 24


def test_signal_option_picks_the_scorers_and_their_dimension(
    inspect_logs: InspectLogs, study: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = ["import", "inspect", str(inspect_logs.legacy), "--study", str(study), *MAPPING]
    assert run([*args, "--signal", "includes=accuracy"], monkeypatch) == 0
    signals = _tables(study)["signals"]
    assert set(signals["signal"]) == {"includes"} and set(signals["dimension"]) == {"accuracy"}
    assert set(signals["level"]) == {"C", "I"}  # refusals do not include the target


def _eval_with_version(source: Path, target: Path, version: int) -> Path:
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for entry in old.infolist():
            data = old.read(entry.filename)
            if entry.filename in ("header.json", "_journal/start.json"):
                document = json.loads(data)
                document["version"] = version
                data = json.dumps(document).encode()
            new.writestr(entry.filename, data)
    return target


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("eval_version_99", "v99.eval: version: Inspect log format version 99 is not supported"),
        ("json_version_99", "v99.json: version: Inspect log format version 99 is not supported"),
        ("missing_field", "sample s000: metadata.team is missing; every record needs a segment"),
        (
            "unknown_model",
            "eval.model: model 'mockllm/legacy' is not in the study (legacy, cand); map it with "
            "--model mockllm/legacy=legacy",
        ),
        ("no_output", "sample s000: output.completion is empty and the sample has no error"),
        ("truncated", "cut.eval: not a readable Inspect log"),
        ("unknown_segment", "sample s000: metadata.expected: unknown segment 'answer'"),
        ("bad_expected", "sample s000: metadata.region: 'na' is not an expected behaviour"),
        ("epoch", "no samples of epoch 2 in the log"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_imports_nothing(
    inspect_logs: InspectLogs,
    study: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    case: str,
    expected: str,
) -> None:
    logs = [inspect_logs.legacy, inspect_logs.cand]
    extra: list[str] = []
    mapping = MAPPING
    if case == "eval_version_99":
        logs.append(_eval_with_version(inspect_logs.legacy, tmp_path / "v99.eval", 99))
    elif case == "json_version_99":
        document = json.loads(inspect_logs.cand.read_text())
        document["version"] = 99
        (tmp_path / "v99.json").write_text(json.dumps(document))
        logs.append(tmp_path / "v99.json")
    elif case == "missing_field":
        extra = ["--map", "segment=metadata.team"]
        mapping = MAPPING[:4]
    elif case == "unknown_model":
        mapping = MAPPING[2:]
    elif case == "no_output":
        logs = [inspect_logs.legacy, inspect_logs.no_output]
    elif case == "truncated":
        data = inspect_logs.legacy.read_bytes()
        (tmp_path / "cut.eval").write_bytes(data[: len(data) // 2])
        logs.append(tmp_path / "cut.eval")
    elif case == "unknown_segment":
        mapping = [*MAPPING[:4], "--map", "segment=metadata.expected"]
    elif case == "bad_expected":
        mapping = [*MAPPING[:6], "--map", "expected_behaviour=metadata.region"]
    elif case == "epoch":
        extra = ["--epoch", "2"]
    args = ["import", "inspect", *map(str, logs), "--study", str(study), *mapping, *extra]
    assert run(args, monkeypatch) == 2
    captured = capsys.readouterr()
    assert expected in captured.err, captured.err
    assert len(captured.err.strip().splitlines()) == 1, captured.err
    assert "Traceback" not in captured.err
    assert all(frame.height == 0 for frame in _tables(study).values())


def test_a_log_of_a_study_that_moved_is_read_where_it_is(
    inspect_logs: InspectLogs, study: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = tmp_path / "elsewhere" / "legacy.eval"
    copy.parent.mkdir()
    shutil.copy(inspect_logs.legacy, copy)
    args = ["import", "inspect", str(copy), "--study", str(study), *MAPPING]
    assert run(args, monkeypatch) == 0
    assert _tables(study)["responses"].height == 12
