"""Does the demo come out as designed? Verdicts and interval coverage of the offline demo study.

    python benchmarks/demo_recovery.py                # 10 seeds, full size (1,500 items)
    python benchmarks/demo_recovery.py --seeds 3      # a quick look

For every seed: `changeover.demo.build_demo`, then the public pipeline — import items, generate
(replay), score (the deterministic signals), import labels, rows → counts, fit (default
settings) — and a comparison with the demo's truth (`DemoStudy.true_rates`: the rates a full
human review of every generated response would find): the verdict of every candidate against
the designed one, and the share of true rates inside the 95% intervals, overall and per region.

Correctness rows of should-refuse items are dropped before counting: those items have no
reference answer, and people label correctness on should-answer items only (see the notes in
the results), so their `no_reference` level would only add an uncalibrated level to the
correctness rate.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=2")

import polars as pl  # noqa: E402

from changeover.annotate.exchange import import_labels  # noqa: E402
from changeover.calibrate import fit  # noqa: E402
from changeover.counts import counts_from_rows  # noqa: E402
from changeover.demo import DESIGNED_VERDICTS, build_demo  # noqa: E402
from changeover.generate import generate  # noqa: E402
from changeover.io import import_items  # noqa: E402
from changeover.signals.scoring import score  # noqa: E402
from changeover.study import load_study  # noqa: E402
from changeover.workspace import open_workspace  # noqa: E402

RESULTS = Path(__file__).parent / "results"


def run_seed(seed: int, folder: Path, items: int) -> dict[str, Any]:
    """Build one demo and run it end to end; what came out against what was designed."""
    started = time.perf_counter()
    demo = build_demo(folder, items=items, seed=seed)
    built = time.perf_counter()
    study = load_study(demo.study)
    workspace = open_workspace(study.workspace_path, create=True)
    import_items(workspace, demo.items, study)
    generate(study, workspace)
    score(study, workspace)
    import_labels(workspace, demo.labels, study)
    rows = workspace.rows().filter(
        ~((pl.col("dimension") == "correctness") & (pl.col("level") == "no_reference"))
    )
    counts, summary = counts_from_rows(rows)
    workspace.close()
    prepared = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fit(study, counts)
    fitted = time.perf_counter()
    truth = demo.true_rates()
    overall: list[bool] = []
    segments: list[bool] = []
    misses: list[str] = []
    for dimension, groups in result.rates.items():
        for group, models in groups.items():
            for model, rate in models.items():
                true = truth[dimension][group][model]
                inside = rate["overall"]["lo"] <= true["overall"] <= rate["overall"]["hi"]
                overall.append(inside)
                if not inside:
                    misses.append(f"{dimension}/{group}/{model}")
                for segment, interval in rate["segments"].items():
                    value = true["segments"][segment]
                    segments.append(interval["lo"] <= value <= interval["hi"])
    designed = demo.designed["verdicts"]
    return {
        "seed": seed,
        "verdicts": {c: r.verdict for c, r in result.candidates.items()},
        "p_all_gates": {c: round(r.p_all_gates, 4) for c, r in result.candidates.items()},
        "reasons": {c: r.reason for c, r in result.candidates.items()},
        "as_designed": all(result.candidates[c].verdict == v for c, v in designed.items()),
        "overall_covered": sum(overall),
        "overall_rates": len(overall),
        "overall_missed": misses,
        "segment_covered": sum(segments),
        "segment_rates": len(segments),
        "labelled_responses": summary.labelled,
        "labels": demo.designed["labelled_responses"],
        "max_rhat": result.diagnostics.max_rhat,
        "divergences": result.diagnostics.divergences,
        "build_s": round(built - started, 2),
        "pipeline_s": round(prepared - built, 2),
        "fit_s": round(fitted - prepared, 2),
        "warnings": [str(w.message) for w in caught],
    }


def to_markdown(results: dict[str, Any]) -> str:
    runs = results["runs"]
    designed = results["designed"]
    lines = [
        "# Demo recovery",
        "",
        f"`python benchmarks/demo_recovery.py --seeds {results['seeds']}`: {results['seeds']} "
        f"seeds, {results['items']} items each; load average at the start "
        f"{results['load_start']:.1f}, at the end {results['load_end']:.1f}.",
        "",
        "Designed verdicts: "
        + ", ".join(f"{c} {v}" for c, v in designed.items())
        + f". As designed in **{results['as_designed']} of {results['seeds']}** seeds.",
        "",
        f"95% intervals cover the true overall rates {results['overall_coverage']:.3f} of the "
        f"time ({results['overall_covered']} of {results['overall_rates']}: 4 models x 4 "
        f"dimension groups x seeds) and the true per-region rates "
        f"{results['segment_coverage']:.3f} ({results['segment_covered']} of "
        f"{results['segment_rates']}).",
        "",
        "| seed | " + " | ".join(designed) + " | overall covered | regions covered | "
        "labelled responses | max R-hat | build s | import+generate+score s | fit s |",
        "|---|" + "---|" * len(designed) + "---|---|---|---|---|---|---|",
    ]
    for run in runs:
        verdicts = " | ".join(
            f"{run['verdicts'][c]} ({run['p_all_gates'][c]:.3f})" for c in designed
        )
        lines.append(
            f"| {run['seed']} | {verdicts} | {run['overall_covered']}/{run['overall_rates']} | "
            f"{run['segment_covered']}/{run['segment_rates']} | {run['labels']} | "
            f"{run['max_rhat']:.3f} | {run['build_s']} | {run['pipeline_s']} | {run['fit_s']} |"
        )
    lines += ["", "Overall rates missed: "]
    missed = [
        f"seed {r['seed']}: {', '.join(r['overall_missed'])}" for r in runs if r["overall_missed"]
    ]
    lines += [f"* {m}" for m in missed] or ["* none"]
    lines += ["", "Reasons for verdicts that differ from the design:"]
    odd = [
        f"* seed {r['seed']}, {c}: {r['verdicts'][c]} — {r['reasons'][c]}"
        for r in runs
        for c, v in designed.items()
        if r["verdicts"][c] != v
    ]
    lines += odd or ["* none"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--items", type=int, default=1500)
    parser.add_argument("--name", default="demo_recovery", help="results file name (no suffix)")
    args = parser.parse_args()
    load_start = os.getloadavg()[0]
    runs = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        with tempfile.TemporaryDirectory() as tmp:
            run = run_seed(seed, Path(tmp), args.items)
        runs.append(run)
        print(
            f"seed {seed}: {run['verdicts']} covered {run['overall_covered']}/"
            f"{run['overall_rates']} fit {run['fit_s']} s",
            flush=True,
        )
    designed = dict(DESIGNED_VERDICTS)
    overall = sum(r["overall_covered"] for r in runs)
    overall_n = sum(r["overall_rates"] for r in runs)
    segment = sum(r["segment_covered"] for r in runs)
    segment_n = sum(r["segment_rates"] for r in runs)
    results = {
        "seeds": args.seeds,
        "items": args.items,
        "designed": designed,
        "as_designed": sum(r["as_designed"] for r in runs),
        "overall_coverage": overall / overall_n,
        "overall_covered": overall,
        "overall_rates": overall_n,
        "segment_coverage": segment / segment_n,
        "segment_covered": segment,
        "segment_rates": segment_n,
        "load_start": load_start,
        "load_end": os.getloadavg()[0],
        "runs": runs,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(results, indent=2))
    (RESULTS / f"{args.name}.md").write_text(to_markdown(results) + "\n")
    print(to_markdown(results))


if __name__ == "__main__":
    main()
