"""`changeover fit` end to end: verdicts, JSON out, exit codes, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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


def test_fit_from_counts_decides_cost_gates_from_a_measurements_file(tmp_path: Path) -> None:
    """Counts hold no cost: without `--measurements` a price gate is unsettled (never passed)
    and the why says what is missing; with a file of per-response costs it is decided, and a bad
    value in that file is one line naming the line and column."""
    study = tmp_path / "study.yaml"
    study.write_text(
        (EXAMPLE / "study.yaml").read_text()
        + "  - {name: price, dimension: cost, better: lower, margin: 0.10, relative: true}\n"
    )
    fast = ["--num-samples", "300", "--num-warmup", "300"]
    out = tmp_path / "without.json"
    run = changeover("fit", "--study", study, "--counts", EXAMPLE / "counts.csv", "--out", out,
                     *fast)  # fmt: skip
    assert run.returncode == 0, run.stderr
    result = json.loads(out.read_text())
    price = result["gates"]["price"]["contrasts"]["cand-a"]["overall"]
    assert price["state"] == "unsettled" and price["note"].startswith("not measured: a fit from")
    assert result["candidates"]["cand-a"]["verdict"] != "ready"
    assert "pass --measurements FILE" in result["candidates"]["cand-a"]["reason"]
    assert result["operations"] == {}

    measurements = tmp_path / "measurements.csv"
    cost = {"legacy": 0.001, "cand-a": 0.00105, "cand-b": 0.003}  # cand-b 3× dearer
    lines = ["item_id,model,segment,cost,latency_s"]
    for i in range(60):
        segment = ("na", "emea", "apac")[i % 3]
        lines += [f"i{i},{model},{segment},{c}," for model, c in cost.items()]
    measurements.write_text("\n".join(lines) + "\n")
    out = tmp_path / "with.json"
    run = changeover("fit", "--study", study, "--counts", EXAMPLE / "counts.csv", "--out", out,
                     "--measurements", measurements, *fast)  # fmt: skip
    assert run.returncode == 0, run.stderr
    result = json.loads(out.read_text())
    contrasts = result["gates"]["price"]["contrasts"]
    assert contrasts["cand-a"]["overall"]["state"] == "held"
    assert contrasts["cand-b"]["overall"]["state"] == "failed"
    assert result["operations"]["cost"]["cand-b"]["value"] == pytest.approx(3.0)  # per 1,000
    assert result["operations"]["latency_p95"]["legacy"]["missing"].startswith("no response")
    stdout = " ".join(run.stdout.split())
    assert "fails price overall (P = 0.000; cost per 1,000 interactions $3.00 against $1.00" in (
        stdout
    )
    assert "legacy $1.00 [$1.00, $1.00] not measured not measured" in stdout
    assert "not measured: no response of 'legacy' has a latency" in stdout

    measurements.write_text("item_id,model,segment,cost\ni1,legacy,na,-0.5\n")
    run = changeover("fit", "--study", study, "--counts", EXAMPLE / "counts.csv",
                     "--measurements", measurements)  # fmt: skip
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        f"error: {measurements}: line 2: column cost: '-0.5' is not a number of US dollars "
        "(>= 0); leave it empty where unknown"
    ]
