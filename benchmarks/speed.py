"""Speed at production scale: per-response rows -> counts -> converged fit.

    python benchmarks/speed.py                    # 5.3M responses (4 models x 1.325M items)
    python benchmarks/speed.py --responses 21200000   # every one of 5.3M interactions x 4 models

A synthetic study: 4 models, 6 regions with the traffic mix of a 5.3M-interactions-a-month
assistant, 3 dimensions (correctness; refusal on should-answer and on should-refuse items; style),
5 signal levels, and a few thousand human labels per dimension. The rows are written to Parquet
first (not timed); then, in a fresh process each and with an empty compilation cache (so JIT
compilation is included), `changeover counts` and `changeover fit` run as a user would run them.
`--seeds N` then refits the same counts in this process with sampler seeds 0..N-1 (not timed),
to show whether convergence holds beyond the one timed seed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
import yaml

RESULTS = Path(__file__).parent / "results"
MODELS = ["legacy", "cand-a", "cand-b", "cand-c"]
SEGMENTS = {
    "na": 2_100_000,
    "emea": 1_400_000,
    "uk": 500_000,
    "latam": 400_000,
    "apac": 600_000,
    "jp": 300_000,
}
STUDY = {
    "incumbent": "legacy",
    "candidates": MODELS[1:],
    "segments": SEGMENTS,
    "gates": [
        {
            "name": "correctness",
            "dimension": "correctness",
            "better": "higher",
            "margin": 0.02,
            "scope": "both",
            "segment_margin": 0.05,
        },
        {
            "name": "over_refusal",
            "dimension": "refusal",
            "group": "answer",
            "better": "lower",
            "margin": 0.01,
        },
        {
            "name": "refusal_recall",
            "dimension": "refusal",
            "group": "refuse",
            "better": "higher",
            "margin": 0.02,
        },
        {"name": "style", "dimension": "style", "better": "higher", "margin": 0.03},
    ],
}


def make_rows(path: Path, responses: int, labels_per_dimension: int, seed: int) -> None:
    """Write one row per (item, model, dimension), levels drawn from a judge with known errors."""
    rng = np.random.default_rng(seed)
    n_items = responses // len(MODELS)
    w = np.array(list(SEGMENTS.values()), dtype=float)
    segment = rng.choice(len(SEGMENTS), size=n_items, p=w / w.sum()).astype(np.int8)
    refuse_item = rng.random(n_items) < 0.1
    frames = []
    for dimension, base in (("correctness", 0.85), ("refusal", None), ("style", 0.9)):
        for m in range(len(MODELS)):
            if base is None:
                p = np.where(refuse_item, 0.9, 0.03 + 0.01 * m)
            else:
                p = np.full(n_items, base - 0.02 * m) - 0.01 * segment
            truth = rng.random(n_items) < p
            # 5 levels: a noisy score centred by the truth (an ordered-probit judge).
            score = rng.normal(np.where(truth, 1.2, -1.2), 1.0)
            level = np.digitize(score, [-1.5, -0.5, 0.5, 1.5]).astype(np.int8) + 1
            human = np.full(n_items, -1, dtype=np.int8)
            chosen = rng.choice(n_items, size=labels_per_dimension // len(MODELS), replace=False)
            human[chosen] = truth[chosen]
            frames.append(
                pl.DataFrame(
                    {
                        "item_id": np.arange(n_items, dtype=np.int64),
                        "model": np.full(n_items, m, dtype=np.int8),
                        "segment": segment,
                        "refuse": refuse_item,
                        "level": level,
                        "human": human,
                    }
                ).with_columns(pl.lit(dimension).alias("dimension"))
            )
    names = pl.Series(MODELS)
    segs = pl.Series(list(SEGMENTS))
    rows = pl.concat(frames).select(
        pl.col("item_id"),
        pl.col("model").map_batches(lambda s: names.gather(s)).cast(pl.Categorical),
        pl.col("segment").map_batches(lambda s: segs.gather(s)).cast(pl.Categorical),
        pl.when(pl.col("dimension") == "refusal")
        .then(pl.when(pl.col("refuse")).then(pl.lit("refuse")).otherwise(pl.lit("answer")))
        .otherwise(pl.lit(""))
        .cast(pl.Categorical)
        .alias("group"),
        pl.col("dimension").cast(pl.Categorical),
        pl.col("level").cast(pl.String).cast(pl.Categorical),
        pl.when(pl.col("human") >= 0).then(pl.col("human")).alias("human"),
    )
    rows.write_parquet(path)


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, str, int]:
    start = time.perf_counter()
    run = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if run.returncode not in (0, 1, 3):
        sys.exit(f"{' '.join(cmd)} failed:\n{run.stderr}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024
    return wall, run.stdout, peak


def seed_diagnostics(study: Path, counts: Path, seeds: int) -> list[dict]:
    """The fit's diagnostics at sampler seeds 0..seeds-1, in this process (not timed)."""
    import warnings

    import changeover

    out = []
    for seed in range(seeds):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a non-converged fit warns; it is recorded below
            result = changeover.fit(study, counts, seed=seed)
        d = result.draws.diagnostics
        out.append(
            {
                "seed": seed,
                "max_rhat": round(d.max_rhat, 4),
                "min_ess_bulk": round(d.min_ess_bulk),
                "divergences": d.divergences,
                "steps_per_draw": round(d.steps_per_draw, 1),
            }
        )
        print(f"seed {seed}: {out[-1]}", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--responses", type=int, default=5_300_000)
    parser.add_argument("--labels", type=int, default=2000, help="human labels per dimension")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--seeds", type=int, default=0, help="refit with this many sampler seeds")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        rows, counts, study, out = (
            tmp / n for n in ("rows.parquet", "counts.parquet", "study.yaml", "result.json")
        )
        study.write_text(yaml.safe_dump(STUDY))
        t0 = time.perf_counter()
        make_rows(rows, args.responses, args.labels, args.seed)
        print(
            f"wrote {pl.scan_parquet(rows).select(pl.len()).collect().item():,} rows "
            f"({rows.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t0:.1f} s"
        )
        load_before = os.getloadavg()[0]  # other work on the machine inflates wall times
        env = os.environ | {"CHANGEOVER_CACHE_DIR": str(tmp / "jax-cache")}  # empty: cold JIT
        exe = [sys.executable, "-m", "changeover"]
        count_s, count_out, _ = timed(
            [*exe, "counts", "--rows", str(rows), "--out", str(counts)], env
        )
        fit_s, fit_out, peak = timed(
            [*exe, "fit", "--study", str(study), "--counts", str(counts), "--out", str(out)], env
        )
        result = json.loads(out.read_text())
        report = {
            "responses": args.responses,
            "rows": args.responses * 3,
            "labels_per_dimension": args.labels,
            "counts_seconds": round(count_s, 1),
            "fit_seconds": round(fit_s, 1),
            "total_seconds": round(count_s + fit_s, 1),
            "peak_rss_mb": peak,
            "diagnostics": result["diagnostics"],
            "verdicts": {c: v["verdict"] for c, v in result["candidates"].items()},
            "cpus": os.cpu_count(),
            "load_average_before": load_before,
            "load_average_after": os.getloadavg()[0],
        }
        if args.seeds:
            report["seeds"] = seed_diagnostics(study, counts, args.seeds)
        print(count_out.strip())
        print(json.dumps(report, indent=2))
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / f"speed-{args.responses}.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
