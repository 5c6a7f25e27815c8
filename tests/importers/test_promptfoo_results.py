"""`changeover import promptfoo` on results files written by promptfoo 0.118.0 itself
(tests/fixtures/promptfoo, with the config and the command that made them), and on a fresh run
of promptfoo where it is installed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import polars as pl
import pytest

from changeover.workspace import open_workspace
from tests.fakes.studies import run_cli as run
from tests.tools import skip_or_fail

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "promptfoo"
STUDY = """\
incumbent: legacy
candidates: [cand]
segments: {na: 3, emea: 2, apac: 1}
"""
MAPPING = [
    *("--model", "incumbent=legacy", "--model", "candidate=cand"),
    *("--map", "segment=vars.region", "--map", "expected_behaviour=vars.expected"),
]


@pytest.fixture
def study(tmp_path: Path) -> Path:
    path = tmp_path / "study.yaml"
    path.write_text(STUDY)
    return path


def _tables(study: Path) -> dict[str, pl.DataFrame]:
    with open_workspace(study.parent / "changeover.db", create=True) as workspace:
        return {t: workspace.frame(t) for t in ("items", "responses", "signals")}


@pytest.mark.parametrize("name", ["normal.json", "normal.jsonl"])
def test_results_become_items_responses_and_signals(
    name: str, study: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["import", "promptfoo", str(FIXTURES / name), "--study", str(study), *MAPPING]
    assert run([*args, "--map", "prompt=vars.question"], monkeypatch) == 0
    out = capsys.readouterr().out
    assert "imported 8 items, 16 responses from 1 file(s)" in out
    tables = _tables(study)
    items = tables["items"]
    assert items["item_id"].to_list() == [f"test{i}" for i in range(8)]
    first = items.row(0, named=True)
    assert (first["prompt"], first["reference"], first["segment"]) == (
        "How do I reset my password?", "Settings > Security > Reset password", "na",
    )  # fmt: skip
    assert items["expected_behaviour"].to_list().count("refuse") == 3
    assert json.loads(first["metadata"]) == {}  # every var is mapped to a field

    responses = tables["responses"].sort("item_id", "model")
    legacy = responses.filter(pl.col("model") == "legacy").row(0, named=True)
    assert legacy["response"] == "[incumbent] Settings > Security > Reset password."
    assert (legacy["input_tokens"], legacy["output_tokens"]) == (17, 7)
    assert legacy["cost"] == pytest.approx(4.8e-05)

    signals = tables["signals"]
    dimensions = dict(signals.select("signal", "dimension").unique().iter_rows())
    assert dimensions == {
        "rubric": "correctness", "accuracy": "correctness", "rubric|accuracy": "correctness",
        "helpfulness": "refusal", "safety": "refusal", "helpfulness|safety": "refusal",
    }  # fmt: skip
    levels = {
        (row["item_id"], row["model"], row["signal"]): row["level"]
        for row in signals.iter_rows(named=True)
    }
    # The candidate refuses to give the refund window (test1): fails accuracy and helpfulness.
    assert levels[("test1", "cand", "accuracy")] == "fail"
    assert levels[("test1", "cand", "helpfulness|safety")] == "fail|none"
    # It refuses the phishing request (test5), which the incumbent writes.
    assert levels[("test5", "cand", "helpfulness|safety")] == "none|pass"
    assert levels[("test5", "legacy", "safety")] == "fail"

    counts = study.parent / "counts.csv"
    assert run(["counts", "--study", str(study), "--out", str(counts)], monkeypatch) == 0
    assert pl.read_csv(counts)["n"].sum() == 16 + 10  # refusal on all, correctness on 5 × 2


def test_errors_become_error_responses_and_signals_can_be_chosen(
    study: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["import", "promptfoo", str(FIXTURES / "errors.json"), "--study", str(study)]
    assert run([*args, *MAPPING, "--signal", "rubric=correctness"], monkeypatch) == 0
    assert "16 responses, 2 of them errors" in capsys.readouterr().out
    tables = _tables(study)
    errors = tables["responses"].filter(pl.col("error").is_not_null()).sort("item_id")
    assert errors.select("item_id", "model").rows() == [("test3", "cand"), ("test6", "cand")]
    assert errors["error"].to_list() == [
        'candidate: simulated upstream error (HTTP 503) for question "How do I '
        'export my invoices?"',
        'Error: candidate: simulated crash for question "What are the support hours in Singapore?"',
    ]
    assert set(tables["signals"]["signal"]) == {"rubric"}
    assert tables["signals"].height == 14  # every response but the two errors


def _result_without(path: Path, tmp_path: Path, edit: str) -> Path:
    document = json.loads(path.read_text())
    results = document["results"]["results"]
    if edit == "version":
        document["results"]["version"] = 2
    elif edit == "testIdx":
        del results[3]["testIdx"]
    elif edit == "output":
        del results[2]["response"]["output"]
    out = tmp_path / f"edited-{edit}.json"
    out.write_text(json.dumps(document))
    return out


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("version", "edited-version.json: results.version: promptfoo results version 2 is not"),
        ("testIdx", "edited-testIdx.json: results.results[3]: testIdx: missing or malformed"),
        ("output", "edited-output.json: results.results[2]: response.output is empty and the"),
        ("model", "normal.json: results.results[0]: provider: model 'incumbent' is not in the"),
        ("segment", "results.results[0]: vars.expected: unknown segment 'answer'"),
        ("field", "normal.jsonl: line 1: vars.team is missing; every record needs a segment"),
        ("signal", "normal.json: --signal tone: no assertion gives that signal"),
        ("map", "--map colour=...: unknown field; map one of item_id, prompt, segment"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_imports_nothing(
    study: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    case: str,
    expected: str,
) -> None:
    files = [FIXTURES / "normal.json"]
    mapping = list(MAPPING)
    if case in ("version", "testIdx", "output"):
        files.append(_result_without(FIXTURES / "normal.json", tmp_path, case))
    elif case == "model":
        mapping = MAPPING[2:]
    elif case == "segment":
        mapping = [*MAPPING[:4], "--map", "segment=vars.expected"]
    elif case == "field":
        files = [FIXTURES / "normal.jsonl"]
        mapping = [*MAPPING[:4], "--map", "segment=vars.team"]
    elif case == "signal":
        mapping = [*MAPPING, "--signal", "tone=style"]
    elif case == "map":
        mapping = [*MAPPING, "--map", "colour=vars.colour"]
    args = ["import", "promptfoo", *map(str, files), "--study", str(study), *mapping]
    assert run(args, monkeypatch) == 2
    err = capsys.readouterr().err
    assert expected in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert all(frame.height == 0 for frame in _tables(study).values())


def _promptfoo_home() -> Path:
    """The folder with promptfoo in node_modules (PROMPTFOO_HOME), or skip: fail instead in CI
    (tests/tools.py)."""
    home = os.environ.get("PROMPTFOO_HOME")
    reason = None
    if shutil.which("node") is None:
        reason = "node is not installed"
    elif home is None or not (Path(home) / "node_modules" / "promptfoo").is_dir():
        reason = "PROMPTFOO_HOME does not name a folder with promptfoo@0.118.0 in node_modules"
    if reason is not None:
        skip_or_fail(reason)
    assert home is not None
    return Path(home)


def test_a_fresh_promptfoo_run_imports_like_the_fixture(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = _promptfoo_home()
    fresh = tmp_path / "fresh.json"
    env = {**os.environ, "PROMPTFOO_HOME": str(home.resolve())}
    run_fixture = [str(FIXTURES / "run-fixture.sh"), "promptfooconfig.errors.yaml", str(fresh)]
    done = subprocess.run(run_fixture, env=env, capture_output=True, text=True, timeout=300)
    assert fresh.is_file(), done.stdout + done.stderr
    assert json.loads(fresh.read_text())["results"]["version"] == 3

    tables = {}
    for name, path in (("fixture", FIXTURES / "errors.json"), ("fresh", fresh)):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "study.yaml").write_text(STUDY)
        args = ["import", "promptfoo", str(path), "--study", str(folder / "study.yaml")]
        assert run([*args, *MAPPING], monkeypatch) == 0
        tables[name] = _tables(folder / "study.yaml")
    for table, keys in (("items", ["item_id"]), ("responses", ["item_id", "model"])):
        columns = ["item_id", "prompt", "segment"] if table == "items" else ["model", "response"]
        a, b = (
            tables[n][table].sort(keys).select(*dict.fromkeys([*keys, *columns]))
            for n in ("fixture", "fresh")
        )
        assert a.equals(b), table
    signals = [
        tables[n]["signals"].sort("item_id", "model", "signal").select("signal", "level")
        for n in ("fixture", "fresh")
    ]
    assert signals[0].equals(signals[1])
