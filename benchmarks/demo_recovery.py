"""Does the demo come out as designed? Verdicts and interval coverage of the offline demo study.

    python benchmarks/demo_recovery.py                # 10 seeds, full size (1,500 items)
    python benchmarks/demo_recovery.py --seeds 3      # a quick look

For every seed, `changeover.demo.run_demo` — exactly what `changeover demo` runs: build the demo,
import, generate (replay), score (the deterministic signals), import the first labels, fit; and
while a candidate is undecided (at most three times), label what `changeover next` picks and fit
again — then a comparison with the demo's truth: the verdict of every candidate against the
designed one, and the share of true rates inside the 95% intervals, overall and per region, for
two truths: the designed rates (`DemoStudy.designed_rates`, the probabilities the responses were
drawn with: what the intervals estimate) and the reviewed rates (`DemoStudy.true_rates`, what a
full human review of the generated responses would find; in a small cell that is often exactly
0 or 1, which no interval for a rate strictly between them can hold).
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


def _coverage(rates: dict[str, Any], truth: dict[str, Any]) -> dict[str, Any]:
    """Which true rates the intervals hold, overall and per region (misses by dimension group)."""
    overall: list[bool] = []
    segments: list[bool] = []
    misses: list[str] = []
    region_misses: dict[str, int] = {}
    at_bound = 0
    for dimension, groups in rates.items():
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
                    if not segments[-1]:
                        key = f"{dimension}/{group}"
                        region_misses[key] = region_misses.get(key, 0) + 1
                        at_bound += value in (0.0, 1.0)
    return {
        "overall_covered": sum(overall),
        "overall_rates": len(overall),
        "overall_missed": misses,
        "segment_covered": sum(segments),
        "segment_rates": len(segments),
        "segment_missed": region_misses,
        "segment_missed_at_0_or_1": at_bound,
    }


def run_seed(seed: int, folder: Path, items: int) -> dict[str, Any]:
    """One demo end to end, as `changeover demo` runs it; what came out against the design."""
    started = time.perf_counter()
    outcome = run_demo(folder, items=items, seed=seed)
    elapsed = time.perf_counter() - started
    document = outcome.document
    result = document.model_dump()["result"]  # the documented JSON keys, as plain data
    reviewed = _coverage(result["rates"], outcome.demo.true_rates())
    designed_cover = _coverage(result["rates"], outcome.demo.designed_rates())
    designed = outcome.demo.designed["verdicts"]
    candidates = result["candidates"]
    labels = document.n_labels
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
        **reviewed,
        "designed": designed_cover,
        "labels": labels,
        "max_rhat": result["diagnostics"]["max_rhat"],
        "divergences": result["diagnostics"]["divergences"],
        "seconds": round(elapsed, 1),
        "warnings": result["warnings"],
    }


def _coverage_row(truth: str, t: dict[str, Any]) -> str:
    groups = ", ".join(f"{k} {v}" for k, v in t["segment_missed"].items()) or "none"
    return (
        f"| {truth} | {t['overall_coverage']:.3f} ({t['overall_covered']}/{t['overall_rates']}) "
        f"| {t['segment_coverage']:.3f} ({t['segment_covered']}/{t['segment_rates']}) | {groups} "
        f"| {t['segment_missed_at_0_or_1']} |"
    )


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
        "95% intervals against two truths (4 models x 4 dimension groups x seeds overall, x 6 "
        "regions per region):",
        "",
        "| truth | overall rates covered | per-region rates covered | region misses by "
        "dimension group | of them at exactly 0 or 1 |",
        "|---|---|---|---|---|",
        _coverage_row("designed (what the intervals estimate)", results["designed_rates"]),
        _coverage_row("reviewed (every generated response)", results),
        "",
        "| seed | " + " | ".join(designed) + " | fits | labels added by `next` | overall covered "
        "(designed, reviewed) | regions covered (designed, reviewed) | labels in all | "
        "max R-hat | seconds |",
        "|---|" + "---|" * len(designed) + "---|---|---|---|---|---|---|",
    ]
    for run in runs:
        verdicts = " | ".join(
            f"{run['verdicts'][c]} ({run['p_all_gates'][c]:.3f})" for c in designed
        )
        added = " + ".join(str(n) for n in run["labels_added"]) or "–"
        lines.append(
            f"| {run['seed']} | {verdicts} | {run['fits']} | {added} | "
            f"{run['designed']['overall_covered']}, {run['overall_covered']} of "
            f"{run['overall_rates']} | "
            f"{run['designed']['segment_covered']}, {run['segment_covered']} of "
            f"{run['segment_rates']} | {run['labels']} | "
            f"{run['max_rhat']:.3f} | {run['seconds']} |"
        )
    lines += ["", "Overall rates missed (reviewed truth): "]
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


def _totals(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Coverage summed over seeds."""
    out: dict[str, Any] = {}
    for where in ("overall", "segment"):
        covered = sum(r[f"{where}_covered"] for r in runs)
        n = sum(r[f"{where}_rates"] for r in runs)
        out |= {f"{where}_coverage": covered / n, f"{where}_covered": covered, f"{where}_rates": n}
    by_group: dict[str, int] = {}
    for r in runs:
        for key, count in r["segment_missed"].items():
            by_group[key] = by_group.get(key, 0) + count
    out["segment_missed"] = dict(sorted(by_group.items()))
    out["segment_missed_at_0_or_1"] = sum(r["segment_missed_at_0_or_1"] for r in runs)
    return out


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
    results = {
        "seeds": args.seeds,
        "items": args.items,
        "designed": dict(DESIGNED_VERDICTS),
        "as_designed": sum(r["as_designed"] for r in runs),
        "first_as_designed": sum(r["first_as_designed"] for r in runs),
        "wrong": sum(r["wrong"] for r in runs),
        **_totals(runs),
        "designed_rates": _totals([r["designed"] for r in runs]),
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
