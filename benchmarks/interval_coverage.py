"""Coverage and width of changeover's intervals against three baselines, on simulated studies.

    python benchmarks/interval_coverage.py --reps 1000,400,400,400,400   # the recorded run
    python benchmarks/interval_coverage.py --scenarios 0 --reps 200      # one scenario
    python benchmarks/interval_coverage.py --reps 20 --name quick        # a quick look

Every replication draws a study with a known truth (changeover.calibrate.simulate: judge
sensitivity and specificity 0.7-0.95 that differ by model), then computes a nominal 95%
interval for every candidate's overall contrast with the incumbent (traffic-weighted over
segments) by:

* changeover       the calibration engine (the default);
* error model      changeover's alternative engine (fewer replications: it is slower);
* human only       Beta(1, 1)-binomial posterior per model x segment from the labels alone;
* raw judge        the share of responses the judge passes, with a binomial interval;
* PPI++            ppi_py.ppi_mean_ci per model with power tuning (lam=None), responses weighted
                   to the traffic mix, the judge's level mapped to [0, 1] as the prediction.

Replications are fitted as independent blocks of one NUTS run (the model gives each block its
own parameters), `--chunk` at a time.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=2")

import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402

from changeover.calibrate.blocks import Block  # noqa: E402
from changeover.calibrate.sampler import sample_posterior  # noqa: E402
from changeover.calibrate.simulate import Scenario, simulate  # noqa: E402

RESULTS = Path(__file__).parent / "results"
Z = stats.norm.ppf(0.975)

SCENARIOS = [
    Scenario(
        name="2 models x 3 segments, binary, 50 labels",
        n_models=2,
        n_segments=3,
        n_levels=2,
        responses_per_cell=400,
        n_labels=50,
        weights=(3.0, 2.0, 1.0),
    ),
    Scenario(
        name="3 models x 4 segments, 5 levels, 200 labels",
        n_models=3,
        n_segments=4,
        n_levels=5,
        responses_per_cell=600,
        n_labels=200,
        weights=(4.0, 3.0, 2.0, 1.0),
    ),
    Scenario(
        name="4 models x 6 segments, binary, 1000 labels",
        n_models=4,
        n_segments=6,
        n_levels=2,
        responses_per_cell=1000,
        n_labels=1000,
        weights=(2.1, 1.4, 0.5, 0.4, 0.6, 0.3),
    ),
    Scenario(
        name="4 models x 6 segments, 5 levels, 300 labels",
        n_models=4,
        n_segments=6,
        n_levels=5,
        responses_per_cell=800,
        n_labels=300,
        weights=(2.1, 1.4, 0.5, 0.4, 0.6, 0.3),
    ),
    # Outside the range, to see where the engine breaks: judges from 0.6 to 0.98, model
    # and segment effects twice as spread, and judges that drift by segment (the calibration
    # curve does not transfer exactly).
    Scenario(
        name="stress: 3 models x 5 segments, 5 levels, 300 labels, judges 0.6-0.98, drift 0.3",
        n_models=3,
        n_segments=5,
        n_levels=5,
        responses_per_cell=800,
        n_labels=300,
        accuracy=(0.6, 0.98),
        model_spread=0.8,
        segment_spread=1.0,
        cell_spread=0.4,
        segment_drift=0.3,
        weights=(3.0, 2.0, 1.5, 1.0, 0.5),
    ),
]


def _interval(draws: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = np.quantile(draws, [0.025, 0.975], axis=0)
    return lo, hi


def human_only(block: Block, w: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Contrast draws from independent Beta(1 + pass, 1 + fail) per cell."""
    a = 1 + block.n_pass.sum(-1)
    b = 1 + block.n_fail.sum(-1)
    theta = rng.beta(a, b, size=(4000, *a.shape))
    overall = theta @ w
    return overall[:, 1:] - overall[:, :1]


def raw_judge(
    block: Block, w: np.ndarray, pass_levels: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    n = block.n_all.sum(-1)
    p = (block.n_all * pass_levels).sum(-1) / n
    est = p @ w
    var = (w**2 * p * (1 - p) / n).sum(-1)
    diff = est[1:] - est[0]
    se = np.sqrt(var[1:] + var[0])
    return diff - Z * se, diff + Z * se


def ppi_plus_plus(block: Block, w: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """PPI++ (Angelopoulos et al. 2023) per model, weighted to the traffic mix."""
    from ppi_py import ppi_mean_ci

    est, var = [], []
    for m in range(block.n_all.shape[0]):
        share = block.n_all[m].sum(-1) / block.n_all[m].sum()
        seg_weight = w / share  # reweights each response to the traffic mix
        y, yhat, wl, yhat_u, wu = [], [], [], [], []
        for s in range(block.n_all.shape[1]):
            for k in range(block.n_all.shape[2]):
                npass, nfail = int(block.n_pass[m, s, k]), int(block.n_fail[m, s, k])
                nun = int(block.n_all[m, s, k]) - npass - nfail
                y += [1.0] * npass + [0.0] * nfail
                yhat += [scores[k]] * (npass + nfail)
                wl += [seg_weight[s]] * (npass + nfail)
                yhat_u += [scores[k]] * nun
                wu += [seg_weight[s]] * nun
        lo, hi = ppi_mean_ci(
            np.array(y),
            np.array(yhat),
            np.array(yhat_u),
            alpha=0.05,
            w=np.array(wl),
            w_unlabeled=np.array(wu),
        )
        est.append((lo + hi) / 2)
        var.append(((hi - lo) / (2 * Z)) ** 2)
    est_a, var_a = np.ravel(est), np.ravel(var)
    diff = est_a[1:] - est_a[0]
    se = np.sqrt(var_a[1:] + var_a[0])
    return diff - Z * se, diff + Z * se


def run_scenario(scenario: Scenario, reps: int, error_reps: int, chunk: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    sims = [simulate(scenario, rng) for _ in range(reps)]
    blocks = [sim.block(f"rep{i}") for i, sim in enumerate(sims)]
    w = np.array(list(sims[0].study.weights.values()))
    weights = sims[0].study.weights
    levels = blocks[0].levels
    pass_levels = np.array([lvl in sims[0].pass_levels for lvl in levels], dtype=float)
    scores = np.linspace(0, 1, len(levels))
    methods = ["changeover", "error model", "human only", "raw judge", "PPI++"]
    hits: dict[str, list[bool]] = {m: [] for m in methods}
    widths: dict[str, list[float]] = {m: [] for m in methods}
    z_scores: list[float] = []  # (truth - posterior mean) / posterior sd of changeover's contrasts
    rate_hits: list[bool] = []
    segment_hits: dict[str, list[bool]] = {"rates": [], "contrasts": []}  # per model x segment
    seconds: dict[str, float] = {"changeover": 0.0, "error model": 0.0}
    diagnostics: dict[str, dict[str, list[float]]] = {
        label: {"max_rhat": [], "divergences": []} for label in seconds
    }

    def record(method: str, lo: np.ndarray, hi: np.ndarray, truth: np.ndarray) -> None:
        hits[method].extend(((lo <= truth) & (truth <= hi)).tolist())
        widths[method].extend((hi - lo).tolist())

    runs = (("calibration", "changeover", reps, chunk), ("error", "error model", error_reps, 1))
    for engine, label, count, size in runs:
        # The error model is fitted one replication at a time: its mode-finding start and its
        # step size are per fit, and batching replications would handicap it.
        for start in range(0, count, size):
            part = blocks[start : min(start + size, count)]
            t0 = time.perf_counter()
            draws = sample_posterior(
                part,
                weights,
                engine=engine,
                num_warmup=500,
                num_samples=500,
                seed=start,
                keep_inference_data=False,
            )  # type: ignore[arg-type]
            seconds[label] += time.perf_counter() - t0
            diagnostics[label]["max_rhat"].append(draws.diagnostics.max_rhat)
            diagnostics[label]["divergences"].append(draws.diagnostics.divergences)
            for i, block in enumerate(part):
                sim = sims[start + i]
                overall = draws.theta[block.key] @ w
                contrast = overall[:, 1:] - overall[:, :1]
                lo, hi = _interval(contrast)
                record(label, lo, hi, sim.contrasts())
                if engine == "calibration":
                    z = (sim.contrasts() - contrast.mean(0)) / contrast.std(0)
                    z_scores.extend(z.tolist())
                    rlo, rhi = _interval(overall)
                    rate_hits.extend(((rlo <= sim.overall) & (sim.overall <= rhi)).tolist())
                    cells = draws.theta[block.key]  # [D, M, S]
                    for kind, est, truth in (
                        ("rates", cells, sim.theta),
                        ("contrasts", cells[:, 1:] - cells[:, :1], sim.theta[1:] - sim.theta[:1]),
                    ):
                        slo, shi = _interval(est)
                        segment_hits[kind].extend(((slo <= truth) & (truth <= shi)).ravel())
            print(f"  {label}: {min(start + size, count)}/{count} replications", flush=True)

    for sim, block in zip(sims, blocks, strict=True):
        truth = sim.contrasts()
        record("human only", *_interval(human_only(block, w, rng)), truth)
        record("raw judge", *raw_judge(block, w, pass_levels), truth)
        record("PPI++", *ppi_plus_plus(block, w, scores), truth)

    out = {
        "scenario": scenario.name,
        "replications": reps,
        "error_model_replications": error_reps,
        "labelled_cells": scenario.n_models * scenario.n_segments,
        "methods": {},
    }
    for method in methods:
        if not hits[method]:
            continue
        cov = float(np.mean(hits[method]))
        out["methods"][method] = {
            "coverage": cov,
            "coverage_se": float(np.sqrt(cov * (1 - cov) / len(hits[method]))),
            "mean_width": float(np.mean(widths[method])),
            "contrasts": len(hits[method]),
        }
    out["changeover_rate_coverage"] = float(np.mean(rate_hits))
    for kind, segment_hit in segment_hits.items():
        out[f"changeover_segment_{kind}_coverage"] = float(np.mean(segment_hit))
    # 1 when the posterior sd is the sampling sd; below 1 the intervals are wider than needed
    out["changeover_contrast_z_sd"] = float(np.std(z_scores))
    out["seconds"] = seconds
    for label, d in diagnostics.items():
        if d["max_rhat"]:
            out.setdefault("diagnostics", {})[label] = {
                "worst_rhat": float(np.max(d["max_rhat"])),
                "fits_with_rhat_over_1.01": int(np.sum(np.array(d["max_rhat"]) > 1.01)),
                "fits": len(d["max_rhat"]),
                "divergences": int(np.sum(d["divergences"])),
            }
    return out


def to_markdown(results: list[dict]) -> str:
    lines = [
        "| scenario | method | coverage of contrasts (95% nominal) | mean width | contrasts |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        for method, v in r["methods"].items():
            lines.append(
                f"| {r['scenario']} ({r['replications']} reps) | {method} | "
                f"{v['coverage']:.3f} ± {v['coverage_se']:.3f} | {v['mean_width']:.4f} | "
                f"{v['contrasts']} |"
            )
    lines.append("")
    lines.append(
        "| scenario | changeover: coverage of overall rates | changeover: sd of contrast z | "
        "per segment: rates, contrasts | "
        "engine | fits | worst R-hat | fits with R-hat > 1.01 | divergences | seconds |"
    )
    lines.append("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        for label, d in r.get("diagnostics", {}).items():
            lines.append(
                f"| {r['scenario']} | {r['changeover_rate_coverage']:.3f} | "
                f"{r['changeover_contrast_z_sd']:.3f} | "
                f"{r['changeover_segment_rates_coverage']:.3f}, "
                f"{r['changeover_segment_contrasts_coverage']:.3f} | {label} | "
                f"{d['fits']} | {d['worst_rhat']:.3f} | {d['fits_with_rhat_over_1.01']} | "
                f"{d['divergences']} | {r['seconds'][label]:.0f} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--reps", default="200", help="replications: one number, or one per chosen scenario"
    )
    parser.add_argument("--error-reps", type=int, default=10)
    parser.add_argument("--chunk", type=int, default=20)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--scenarios", type=str, default="", help="comma-separated indices")
    parser.add_argument("--name", default="coverage", help="results file name (no suffix)")
    args = parser.parse_args()
    chosen = (
        [int(i) for i in args.scenarios.split(",")] if args.scenarios else range(len(SCENARIOS))
    )
    reps = [int(r) for r in args.reps.split(",")]
    if len(reps) == 1:
        reps = reps * len(chosen)
    if len(reps) != len(chosen):
        parser.error(f"--reps gives {len(reps)} numbers for {len(chosen)} scenarios")
    results = []
    for i, n_reps in zip(chosen, reps, strict=True):
        scenario = SCENARIOS[i]
        print(f"scenario {i}: {scenario.name}", flush=True)
        results.append(
            run_scenario(scenario, n_reps, min(args.error_reps, n_reps), args.chunk, args.seed + i)
        )
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / f"{args.name}.json").write_text(json.dumps(results, indent=2))
        (RESULTS / f"{args.name}.md").write_text(to_markdown(results) + "\n")
    print(to_markdown(results))


if __name__ == "__main__":
    main()
