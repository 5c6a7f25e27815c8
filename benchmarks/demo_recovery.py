"""Does the demo come out as designed? Verdicts and interval coverage of the offline demo study.

    python benchmarks/demo_recovery.py                # 10 seeds, full size (1,500 items)
    python benchmarks/demo_recovery.py --seeds 3      # a quick look

For every seed, `changeover.demo.run_demo` — exactly what `changeover demo` runs: build the demo,
import, generate (replay), score (the deterministic signals), import the first labels, fit; and
while a candidate is undecided (at most three times), label what `changeover next` picks and fit
again — then a comparison with the demo's truth (`DemoStudy.true_rates`: the rates a full human
review of every generated response would find): the verdict of every candidate against the
designed one, and the share of true rates inside the 95% intervals, overall and per region.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=2")

from changeover.demo import DESIGNED_VERDICTS, run_demo  # noqa: E402

RESULTS = Path(__file__).parent / "results"


def run_seed(seed: int, folder: Path, items: int) -> dict[str, Any]:
    """One demo end to end, as `changeover demo` runs it; what came out against the design."""
    started = time.perf_counter()
    outcome = run_demo(folder, items=items, seed=seed)
    elapsed = time.perf_counter() - started
    document = outcome.document
    result = document["result"]
    truth = outcome.demo.true_rates()
    overall: list[bool] = []
    segments: list[bool] = []
    misses: list[str] = []
    for dimension, groups in result["rates"].items():
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
    designed = outcome.demo.designed["verdicts"]
    candidates = result["candidates"]
    labels = sum(
        n
        for groups in document["labels"].values()
        for models in groups.values()
        for per in models.values()
        for n in per.values()
    )
    return {
        "seed": seed,
        "verdicts": {c: r["verdict"] for c, r in candidates.items()},
        "first_verdicts": outcome.verdicts[0],
        "fits": len(outcome.verdicts),
        "labels_added": outcome.labels_added,
        "p_all_gates": {c: round(r["p_all_gates"], 4) for c, r in candidates.items()},
        "reasons": {c: r["reason"] for c, r in candidates.items()},
        "as_designed": all(candidates[c]["verdict"] == v for c, v in designed.items()),
        "first_as_designed": all(outcome.verdicts[0][c] == v for c, v in designed.items()),
        "wrong": sum(candidates[c]["verdict"] not in (v, "undecided") for c, v in designed.items()),
        "overall_covered": sum(overall),
        "overall_rates": len(overall),
        "overall_missed": misses,
        "segment_covered": sum(segments),
        "segment_rates": len(segments),
        "labels": labels,
        "max_rhat": result["diagnostics"]["max_rhat"],
        "divergences": result["diagnostics"]["divergences"],
        "seconds": round(elapsed, 1),
        "warnings": result["warnings"],
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
        + f". As designed in **{results['as_designed']} of {results['seeds']}** seeds at the "
        f"end ({results['first_as_designed']} after the first fit, before any `next` round); "
        f"wrong verdicts (ready for not-ready or the reverse): {results['wrong']}.",
        "",
        f"95% intervals cover the true overall rates {results['overall_coverage']:.3f} of the "
        f"time ({results['overall_covered']} of {results['overall_rates']}: 4 models x 4 "
        f"dimension groups x seeds) and the true per-region rates "
        f"{results['segment_coverage']:.3f} ({results['segment_covered']} of "
        f"{results['segment_rates']}).",
        "",
        "| seed | " + " | ".join(designed) + " | fits | labels added by `next` | overall covered "
        "| regions covered | labels in all | max R-hat | seconds |",
        "|---|" + "---|" * len(designed) + "---|---|---|---|---|---|---|",
    ]
    for run in runs:
        verdicts = " | ".join(
            f"{run['verdicts'][c]} ({run['p_all_gates'][c]:.3f})" for c in designed
        )
        added = " + ".join(str(n) for n in run["labels_added"]) or "–"
        lines.append(
            f"| {run['seed']} | {verdicts} | {run['fits']} | {added} | "
            f"{run['overall_covered']}/{run['overall_rates']} | "
            f"{run['segment_covered']}/{run['segment_rates']} | {run['labels']} | "
            f"{run['max_rhat']:.3f} | {run['seconds']} |"
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
            f"{run['overall_rates']} after {run['fits']} fits, {run['seconds']} s",
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
        "first_as_designed": sum(r["first_as_designed"] for r in runs),
        "wrong": sum(r["wrong"] for r in runs),
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
