"""`changeover fit` end to end: verdicts, JSON out, exit codes, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "support-assistant"


def changeover(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "changeover", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
    )


def test_fit_the_example_writes_json_and_carries_verdicts_in_the_exit_code(tmp_path: Path) -> None:
    out, draws = tmp_path / "result.json", tmp_path / "posterior.nc"
    run = changeover(
        "fit",
        "--study",
        EXAMPLE / "study.yaml",
        "--counts",
        EXAMPLE / "counts.csv",
        "--out",
        out,
        "--draws",
        draws,
        "--exit-code",
    )
    assert run.returncode == 1, run.stderr  # cand-b is designed to fail correctness
    result = json.loads(out.read_text())
    assert result["candidates"]["cand-b"]["verdict"] == "not-ready"
    assert result["candidates"]["cand-a"]["verdict"] in {"ready", "undecided"}
    assert "cand-b" in run.stdout and "not-ready" in run.stdout
    assert "R-hat" in run.stdout
    assert draws.stat().st_size > 0
    import arviz as az

    posterior = az.from_netcdf(draws).posterior
    assert "theta[correctness,all]" in posterior


def test_no_decision_in_the_exit_code_from_a_fit_that_did_not_converge() -> None:
    """Issue 14, item 5: too few draws to converge: exit 3 (undecided), verdicts provisional."""
    run = changeover(
        "fit", "--study", EXAMPLE / "study.yaml", "--counts", EXAMPLE / "counts.csv",
        "--num-samples", "100", "--num-warmup", "100", "--exit-code",
    )  # fmt: skip
    assert run.returncode == 3, run.stdout + run.stderr
    assert "did not converge" in run.stderr and "provisional" in run.stdout


def test_bad_counts_exit_2_with_one_line_and_write_nothing(tmp_path: Path) -> None:
    counts = tmp_path / "counts.csv"
    counts.write_text("dimension,model,segment,group,level,human,n\ncorrectness,gpt-9,na,,1,,5\n")
    out = tmp_path / "result.json"
    run = changeover("fit", "--study", EXAMPLE / "study.yaml", "--counts", counts, "--out", out)
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert "line 2: column model: unknown model 'gpt-9'" in lines[0]
    assert "Traceback" not in run.stderr
    assert not out.exists()


def test_bad_study_exits_2(tmp_path: Path) -> None:
    study = tmp_path / "study.yaml"
    study.write_text((EXAMPLE / "study.yaml").read_text().replace("margin: 0.02,", "margin: 2,", 1))
    run = changeover("fit", "--study", study, "--counts", EXAMPLE / "counts.csv")
    assert run.returncode == 2
    assert "gates[0].margin" in run.stderr and "Traceback" not in run.stderr
