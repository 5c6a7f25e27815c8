"""`changeover counts` end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "support-assistant"


def changeover(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "changeover", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
    )


def test_counts_command_aggregates_rows(tmp_path: Path) -> None:
    rows = tmp_path / "rows.csv"
    rows.write_text(
        "item_id,model,segment,group,dimension,level,human\n"
        "1,legacy,na,,correctness,pass,1\n"
        "1,legacy,na,,correctness,pass,0\n"
        "1,legacy,na,,correctness,pass,1\n"
        "2,legacy,na,,correctness,fail,\n"
    )
    out = tmp_path / "counts.parquet"
    run = changeover("counts", "--rows", rows, "--out", out)
    assert run.returncode == 0, run.stderr
    counts = pl.read_parquet(out)
    assert counts.height == 2 and counts["n"].sum() == 2
    assert "agreement 0.0%" in run.stdout


@pytest.mark.parametrize("bad", ["1,legacy,na,,correctness,pass,maybe\n"])
def test_counts_command_rejects_bad_rows(tmp_path: Path, bad: str) -> None:
    rows = tmp_path / "rows.csv"
    rows.write_text("item_id,model,segment,group,dimension,level,human\n" + bad)
    out = tmp_path / "counts.csv"
    run = changeover("counts", "--rows", rows, "--out", out)
    assert run.returncode == 2
    assert "column human: 'maybe' is not a label" in run.stderr
    assert not out.exists()


def test_counts_from_the_workspace_then_fit(tmp_path: Path) -> None:
    """Items, responses, signal levels and labels in the workspace -> counts -> a fit."""
    from changeover.annotate.labels import add_labels
    from changeover.records import Item, LabelRecord, ResponseRecord, SignalRecord
    from changeover.workspace import open_workspace

    study = tmp_path / "study.yaml"
    study.write_text(
        "incumbent: legacy\ncandidates: [cand-a]\nsegments: {na: 2, emea: 1}\n"
        "gates:\n  - {name: correct, dimension: correctness, better: higher, margin: 0.05}\n"
    )
    with open_workspace(tmp_path / "changeover.db", create=True) as workspace:
        items = [
            Item(f"q{i}", f"question {i}", ["na", "emea"][i % 2], reference="x") for i in range(40)
        ]
        workspace.add_items(items)
        responses = [
            ResponseRecord(i.item_id, m, "an answer", source="import")
            for i in items
            for m in ("legacy", "cand-a")
        ]
        workspace.add_responses(responses)
        workspace.store_signals(
            [
                SignalRecord(
                    r.item_id,
                    r.model,
                    "judge",
                    "correctness",
                    None,
                    "pass" if int(r.item_id[1:]) % 4 else "fail",
                )
                for r in responses
            ],
            run_id=None,
        )
        add_labels(
            workspace,
            [
                LabelRecord(
                    r.item_id, r.model, "correctness", "ann", int(int(r.item_id[1:]) % 4 != 0)
                )
                for r in responses[:30]
            ],
        )
    counts = tmp_path / "counts.csv"
    run = changeover("counts", "--study", study, "--out", counts)
    assert run.returncode == 0, run.stderr
    assert "80 responses × dimensions, 30 labelled" in run.stdout
    table = pl.read_csv(counts)
    assert table["n"].sum() == 80
    fitted = changeover(
        "fit",
        "--study",
        study,
        "--counts",
        counts,
        "--num-samples",
        "300",
        "--num-warmup",
        "300",
        "--out",
        tmp_path / "r.json",
    )
    assert fitted.returncode == 0, fitted.stderr
    assert json.loads((tmp_path / "r.json").read_text())["labels"]["correctness"]["all"] == {
        "legacy": 15,
        "cand-a": 15,
    }


def test_counts_without_rows_or_workspace_says_what_to_do(tmp_path: Path) -> None:
    study = tmp_path / "study.yaml"
    study.write_text((EXAMPLE / "study.yaml").read_text())
    run = changeover("counts", "--study", study, "--out", tmp_path / "c.csv")
    assert run.returncode == 2
    assert "no workspace" in run.stderr and "--rows" in run.stderr
