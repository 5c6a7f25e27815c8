"""`changeover demo`: Must show 1 and 3 of issue 6.

A reduced demo runs as a user runs it (a subprocess, offline); the full-size demo must recover
the designed verdicts and cover the true rates. How often over many seeds:
benchmarks/demo_recovery.py.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from changeover.run import fit_cache_path
from changeover.study import load_study
from tests.fakes.studies import CHANGEOVER

# Any HTTP attempt would go to a closed port: the demo must need no network. Wide lines, so that
# the checked phrases are not wrapped.
OFFLINE = {
    **os.environ,
    "HTTP_PROXY": "http://127.0.0.1:9",
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "COLUMNS": "200",
}


def _demo(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CHANGEOVER, "demo", str(folder), *args],
        capture_output=True, text=True, timeout=600, env=OFFLINE, check=False,
    )  # fmt: skip


def _document(folder: Path) -> dict:
    return json.loads(fit_cache_path(load_study(folder / "study.yaml")).read_text())


def test_reduced_demo_runs_offline_and_writes_the_report(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    done = _demo(folder, "--items", "300", "--num-samples", "300", "--num-warmup", "300")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    out = done.stdout
    assert "The method against the truth" in out
    assert "true rates inside their 95% intervals" in out
    html = (folder / "report.html").read_text()
    assert "<h1>Can a candidate replace <code>legacy</code>?" in html
    for candidate in ("cand-better", "cand-par", "cand-risky"):
        assert candidate in html
    document = _document(folder)
    assert document["truth"]["correctness"]["all"]["legacy"]["overall"] > 0

    again = _demo(folder, "--items", "300", "--num-samples", "300", "--num-warmup", "300")
    assert again.returncode == 0, again.stderr
    assert _document(folder)["fit"]["fingerprint"] == document["fit"]["fingerprint"]

    other = _demo(folder, "--items", "600")
    assert other.returncode == 2
    assert "holds a demo built with --items 300 --seed 0" in other.stderr
    assert "Traceback" not in other.stderr


def test_full_demo_recovers_the_designed_verdicts_and_covers_the_truth(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    done = _demo(folder)
    assert done.returncode == 0, done.stderr
    document = _document(folder)
    result = document["result"]
    assert result["diagnostics"]["converged"]
    designed = {"cand-better": "ready", "cand-par": "ready", "cand-risky": "not-ready"}
    got = {c: v["verdict"] for c, v in result["candidates"].items()}
    assert got == designed
    covered = total = 0
    for dimension, groups in result["rates"].items():
        for group, models in groups.items():
            for model, rate in models.items():
                true = document["truth"][dimension][group][model]["overall"]
                covered += rate["overall"]["lo"] <= true <= rate["overall"]["hi"]
                total += 1
    assert total == 16
    assert covered >= 15, f"{covered} of {total} true overall rates covered"
    assert "3 of 3 recovered" in done.stdout
