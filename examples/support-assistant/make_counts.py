"""Regenerate counts.csv: a simulated study with a designed truth (cand-a fine, cand-b worse).

python examples/support-assistant/make_counts.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from changeover.calibrate.simulate import Scenario, simulate

HERE = Path(__file__).parent
COMMON = dict(
    models=("legacy", "cand-a", "cand-b"),
    segments=("na", "emea", "apac"),
    weights=(2_100_000.0, 1_400_000.0, 900_000.0),
    segment_spread=0.3,
    cell_spread=0.0,
)
PARTS = [
    # dimension, group, levels, responses per cell, labels, base rate, logit shift per model
    ("correctness", "", 5, 3000, 600, 0.85, (0.0, 0.35, -0.6)),
    ("refusal", "answer", 2, 3000, 400, 0.04, (0.0, -0.3, 0.9)),
    ("refusal", "refuse", 2, 300, 240, 0.9, (0.0, 0.4, 0.3)),
]


def main() -> None:
    rng = np.random.default_rng(2026)
    tables = []
    for dimension, group, levels, n, labels, base, shift in PARTS:
        scenario = Scenario(
            **COMMON,
            dimension=dimension,
            group=group,
            n_levels=levels,
            responses_per_cell=n,
            n_labels=labels,
            base_rate=base,
            model_shift=shift,
            accuracy=(0.8, 0.95),
        )
        sim = simulate(scenario, rng)
        tables.append(sim.counts)
        print(
            dimension,
            group or "-",
            "true overall rates:",
            {m: round(float(r), 3) for m, r in zip(COMMON["models"], sim.overall, strict=True)},
        )
    pl.concat(tables).write_csv(HERE / "counts.csv")


if __name__ == "__main__":
    main()
