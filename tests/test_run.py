"""`changeover run` and `changeover report` on a small complete study (tests/fakes/pipeline.py)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from changeover.run import fit_cache_path
from changeover.study import load_study
from changeover.workspace import open_workspace
from tests.fakes.pipeline import DEARER, write_pipeline_study
from tests.fakes.studies import run_cli as changeover

DRAWS = ["--num-samples", "300", "--num-warmup", "300"]


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The study after generate, labels and one `changeover run`."""
    study = write_pipeline_study(tmp_path_factory.mktemp("pipeline"))
    with pytest.MonkeyPatch.context() as mp:
        folder = study.parent
        assert changeover(["init", str(folder)], mp) == 2  # the study is there already
        assert (
            changeover(["import", "items", str(folder / "items.csv"), "--study", str(study)], mp)
            == 0
        )
        assert changeover(["generate", "--study", str(study)], mp) == 0
        assert (
            changeover(
                [
                    "labels",
                    "import",
                    str(folder / "labels.csv"),
                    "--study",
                    str(study),
                    "--add-annotators",
                ],
                mp,
            )
            == 0
        )
        assert changeover(["run", "--study", str(study), *DRAWS], mp) == 0
    return study


def test_run_writes_the_report_and_a_fit_keyed_by_its_inputs(ran: Path) -> None:
    html = (ran.parent / "report.html").read_text()
    assert "<h1>Can a candidate replace <code>legacy</code>?" in html
    cached = json.loads(fit_cache_path(load_study(ran)).read_text())
    assert cached["result"]["candidates"]["cand"]["verdict"] in ("not-ready", "undecided")
    assert cached["fit"]["num_samples"] == 300
    assert len(cached["fit"]["fingerprint"]) == 64


def test_second_run_skips_every_stage(ran: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    before = fit_cache_path(load_study(ran)).read_text()
    capsys.readouterr()
    assert changeover(["run", "--study", str(ran), *DRAWS], monkeypatch) == 0
    out = capsys.readouterr().out
    assert "generate: 0 new responses" in out
    assert "score: 0 new signal values" in out
    assert "fit: re-used" in out
    assert fit_cache_path(load_study(ran)).read_text() == before


def test_a_new_label_makes_report_fit_again(ran: Path, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    study = load_study(ran)
    labels = tmp_path / "more.csv"
    with open_workspace(study.workspace_path) as workspace:
        labelled = {
            (r["item_id"], r["model"]) for r in workspace.frame("labels").iter_rows(named=True)
        }
        item = next(i for i in sorted(workspace.item_ids()) if (i, "cand") not in labelled)
    labels.write_text(f"item_id,model,dimension,annotator,label\n{item},cand,refusal,bo,0\n")
    assert (
        changeover(
            ["labels", "import", str(labels), "--study", str(ran), "--add-annotators"], monkeypatch
        )
        == 0
    )
    out = tmp_path / "report.json"
    args = ["report", "--study", str(ran), "--format", "json", "--out", str(out), *DRAWS]
    assert changeover(args, monkeypatch) == 0
    document = json.loads(out.read_text())
    assert sum(document["labels"]["refusal"]["answer"]["cand"].values()) == 24  # 23 + 1
    assert document["result"]["candidates"]["cand"]["verdict"] in ("not-ready", "undecided")


def test_report_formats(ran: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    md = tmp_path / "r.md"
    assert (
        changeover(
            ["report", "--study", str(ran), "--format", "md", "--out", str(md), *DRAWS], monkeypatch
        )
        == 0
    )
    text = md.read_text()
    assert text.startswith("# Can a candidate replace `legacy`?")
    assert "| cand | **" in text
    assert "| ≥ -5.0 |" in text and "| ≥ -15.0 |" in text  # the margin keeps its sign
    assert "## Diagnostics" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "pdf"], "--format: unknown format 'pdf'"),
        (["--out", "/nonexistent/dir/r.html"], "folder /nonexistent/dir does not exist"),
    ],
)
def test_report_bad_options_exit_2(ran: Path, args: list[str], message: str, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    assert changeover(["report", "--study", str(ran), *args], monkeypatch) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    assert not (tmp_path / "r.html").exists()


def test_run_without_items_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    study = write_pipeline_study(tmp_path / "s")
    with open_workspace(tmp_path / "s" / "changeover.db", create=True):
        pass
    assert changeover(["run", "--study", str(study)], monkeypatch) == 2
    assert "no items; import them first" in capsys.readouterr().err
    assert not (tmp_path / "s" / "report.html").exists()


def test_a_cache_in_an_older_format_is_refitted_not_misread(
    ran: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A `<db>.fit.json` written by an earlier version (here: contrasts without `state`, under
    the same fingerprint) is not trusted: the study is fitted again and the cache rewritten."""
    cache = fit_cache_path(load_study(ran))
    old = json.loads(cache.read_text())
    for gate in old["result"]["gates"].values():
        for entry in gate["contrasts"].values():
            entry["overall"].pop("state")
    cache.write_text(json.dumps(old))
    out = tmp_path / "report.json"
    args = ["report", "--study", str(ran), "--format", "json", "--out", str(out), *DRAWS]
    assert changeover(args, monkeypatch) == 0
    fresh = json.loads(cache.read_text())
    assert all(
        "state" in entry["overall"]
        for gate in fresh["result"]["gates"].values()
        for entry in gate["contrasts"].values()
    )
    assert json.loads(out.read_text())["fit"]["fingerprint"] == old["fit"]["fingerprint"]


def test_the_first_run_before_any_label_gives_a_preview(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 14, item 2: no labels yet is not an error: `run` writes a report marked as a
    preview (raw signal rates, how labelling starts, no verdict), and `--allow-uncalibrated`
    fits on the prior alone, on `run` and `report` alike."""
    study = write_pipeline_study(tmp_path / "s")
    items = str(tmp_path / "s" / "items.csv")
    assert changeover(["run", "--study", str(study), "--items", items, *DRAWS], monkeypatch) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "PREVIEW — no verdict without labels" in out
    assert "fit: none yet" in out and "raw: overlap" in out and "raw: refusals" in out
    assert "stratified random start" in out
    assert "next: `changeover next --budget 100`" in out
    html = (tmp_path / "s" / "report.html").read_text()
    assert 'id="preview"' in html and 'id="verdicts"' not in html
    cached = json.loads(fit_cache_path(load_study(study)).read_text())
    assert cached["result"] is None and cached["next"]["mode"] == "stratified-start"
    assert cached["raw"]["correctness"]["all"]["overlap"]["legacy"]["overall"] > 0.5

    md = tmp_path / "r.md"
    args = ["report", "--study", str(study), "--format", "md", "--out", str(md), *DRAWS]
    assert changeover(args, monkeypatch) == 0
    assert "**Preview — no verdict without labels.**" in md.read_text()
    assert "preview: no verdict without labels" in capsys.readouterr().out

    json_out = tmp_path / "r.json"
    args = ["report", "--study", str(study), "--format", "json", "--out", str(json_out),
            "--allow-uncalibrated", *DRAWS]  # fmt: skip
    assert changeover(args, monkeypatch) == 0
    document = json.loads(json_out.read_text())
    assert document["result"]["candidates"]["cand"]["verdict"]
    assert any("uncalibrated" in w for w in document["warnings"])
    args = ["run", "--study", str(study), "--allow-uncalibrated", *DRAWS]
    assert changeover(args, monkeypatch) == 0
    assert "fit: re-used" in capsys.readouterr().out  # the same settings: the same fit


def test_the_stage_line_of_run_shows_no_eta() -> None:
    """Issue 14, item 14: the stages of a run are of unequal length, so the stage line gives no
    time left (it said "eta 0:00:01" through an 8 s fit); the bars of generation and scoring do."""
    from changeover.cli.app import progress_bars
    from changeover.cli.run import StageProgress

    progress = progress_bars(label_width=20, status=True)
    stages = StageProgress(progress)
    stages.on_stage("generate")
    stages.on_stage("fit")
    bar = progress.add_task("legacy", total=10, status="")
    progress.advance(bar, 5)
    time_left = progress.columns[-1]
    assert time_left.render(progress.tasks[0]).plain == ""
    assert time_left.render(progress.tasks[1]).plain.startswith("eta ")


def _expected_operations(folder: Path) -> dict[str, dict[str, float]]:
    """Cost per 1,000 interactions and p50 / p95 latency of each model, from its replay file
    (known tokens and latencies) and the study's prices and traffic weights, computed here
    directly: the traffic-weighted mean, and nearest-rank percentiles of the weighted mixture."""
    study = load_study(folder / "study.yaml")
    with (folder / "items.csv").open(encoding="utf-8") as f:
        segment_of = {row["item_id"]: row["segment"] for row in csv.DictReader(f)}
    out: dict[str, dict[str, float]] = {}
    for model, settings in (study.models or {}).items():
        lines = (folder / f"{model}.jsonl").read_text().splitlines()
        records = [json.loads(line) for line in lines]
        by_segment: dict[str, list[dict[str, float]]] = {}
        for r in records:
            by_segment.setdefault(segment_of[r["item_id"]], []).append(r)
        assert settings.price_input_per_million is not None
        assert settings.price_output_per_million is not None
        cost = sum(
            study.weights[s]
            * sum(
                r["input_tokens"] * settings.price_input_per_million
                + r["output_tokens"] * settings.price_output_per_million
                for r in rs
            )
            / 1e6
            / len(rs)
            for s, rs in by_segment.items()
        )
        mixture = sorted(
            (r["latency_s"], study.weights[s] / len(rs)) for s, rs in by_segment.items() for r in rs
        )
        cumulative = np.cumsum([w for _, w in mixture])
        out[model] = {"cost": 1000 * cost} | {
            name: mixture[int(np.argmax(cumulative >= q - 1e-12))][0]
            for name, q in (("latency_p50", 0.5), ("latency_p95", 0.95))
        }
    return out


def test_better_on_quality_but_three_times_dearer_is_not_ready_on_the_cost_gate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 16, must show 4: the candidate is right far more often (92% against 70%) but its
    prices are 3× the incumbent's for the same tokens; `changeover run` says not-ready, the why
    names the price gate, and every model's cost and latency are in the terminal summary and
    the report, with the values the replayed token counts, prices and latencies give. A changed
    latency makes the next run fit again."""
    folder = tmp_path / "s"
    study = write_pipeline_study(folder, rates={"legacy": 0.7, "cand": 0.92}, study=DEARER)
    assert changeover(["import", "items", str(folder / "items.csv"), "--study", str(study)],
                      monkeypatch) == 0  # fmt: skip
    assert changeover(["generate", "--study", str(study)], monkeypatch) == 0
    args = ["labels", "import", str(folder / "labels.csv"), "--study", str(study),
            "--add-annotators"]  # fmt: skip
    assert changeover(args, monkeypatch) == 0
    capsys.readouterr()
    assert changeover(["run", "--study", str(study), *DRAWS], monkeypatch) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "cand not-ready" in out
    assert "why: fails price overall (P = 0.000; cost per 1,000 interactions $" in out
    assert "margin +10%)" in out
    assert "gate price: cost per 1,000 interactions, lower is better, margin ≤ +10% of the " in out
    assert "gate speed: p95 latency, lower is better, margin ≤ +0.300 s" in out
    assert "Cost and latency at the traffic mix" in out

    document = json.loads(fit_cache_path(load_study(study)).read_text())
    result = document["result"]
    assert result["gates"]["correctness"]["contrasts"]["cand"]["overall"]["mean"] > 0.1
    assert result["gates"]["price"]["contrasts"]["cand"]["overall"]["state"] == "failed"
    expected = _expected_operations(folder)
    assert expected["cand"]["cost"] / expected["legacy"]["cost"] == pytest.approx(3.0, rel=0.05)
    for measure in ("cost", "latency_p50", "latency_p95"):
        for model in ("legacy", "cand"):
            measured = result["operations"][measure][model]
            assert measured["value"] == pytest.approx(expected[model][measure], rel=1e-9)
            assert measured["lo"] <= measured["value"] <= measured["hi"]
            assert measured["responses"] == 90 and measured["missing"] is None
    for model in ("legacy", "cand"):
        cost = f"${expected[model]['cost']:.3f}"
        p95 = f"{expected[model]['latency_p95']:.3g} s"
        assert f"{model} {cost} [" in out and p95 in out, (model, cost, p95)

    with (
        open_workspace(load_study(study).workspace_path) as workspace,
        workspace.transaction() as db,
    ):
        db.execute("UPDATE responses SET latency_s = latency_s * 2 WHERE model = 'cand'")
    assert changeover(["run", "--study", str(study), *DRAWS], monkeypatch) == 0
    assert "fit: sampled" in " ".join(capsys.readouterr().out.split())
    again = json.loads(fit_cache_path(load_study(study)).read_text())["result"]["operations"]
    assert again["latency_p95"]["cand"]["value"] == pytest.approx(
        2 * expected["cand"]["latency_p95"]
    )
