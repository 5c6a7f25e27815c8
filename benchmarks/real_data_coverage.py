"""Coverage of changeover's intervals on real data whose full human labels are held back.

    python benchmarks/real_data_coverage.py                       # everything (100 splits)
    python benchmarks/real_data_coverage.py --datasets xstest --fractions 0.05 --designs uniform
    python benchmarks/real_data_coverage.py --splits 10           # a quick look

Two public datasets in which people labelled every response (see ../shared/datasets/README.md):

* XSTest v2, the refusal dimension: the level is changeover's refusal detector
  (`complied` / `partial` / `refused`), the group is the item's expected behaviour
  (`answer` / `refuse`), one segment (`all`, see docs/real_data.md for why), 5 model
  configurations, GPT-4 the incumbent. Targets: each model's refusal rate in each group, and each
  candidate's difference to the incumbent in each group.
* EVOUNA, correctness: the level is changeover's token recall against the reference answers,
  binned at 0.25 / 0.5 / 0.75 (4 levels); segments NQ and TQ weighted by their number of
  questions; 5 models, GPT-3.5 (text-davinci-003) the incumbent. Targets: each model's
  weighted rate, each candidate's weighted difference to the incumbent, and the same per segment.

For every dataset, label fraction and labelling design, 100 seeded random splits keep that share
of the human labels (`uniform`: uniformly over responses; `stratified`: the same share of every
model x segment x group stratum) and drop the rest. The counts table of each split is fitted by
the calibration engine (the splits are independent blocks of one NUTS run) and the central 95%
interval of every target is checked against the *full-label truth*: the same target computed
from all human labels. The baseline `human only` is a Beta(1, 1)-binomial posterior per
model x segment (x group) cell from the kept labels alone, weighted the same way.

Results go to benchmarks/results/real_data_coverage.{json,md}; a run of a subset merges into
the existing JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=2")
# benchmarks/coverage.py would shadow the `coverage` package that numba (under ArviZ) imports.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import arviz as az  # noqa: E402
import jax  # noqa: E402
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
from numpyro import handlers  # noqa: E402

from changeover.calibrate.blocks import Block, blocks_from_counts  # noqa: E402
from changeover.calibrate.model import calibration_logits  # noqa: E402
from changeover.calibrate.sampler import sample_posterior  # noqa: E402
from changeover.calibrate.settings import PriorScales  # noqa: E402
from changeover.signals.reference import bin_values, reference_scores, split_references  # noqa: E402
from changeover.signals.refusal import detect_refusals  # noqa: E402

DEFAULT_DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
RESULTS = Path(__file__).parent / "results"
NUM_DRAWS_BASELINE = 4000
RECALL_EDGES = (0.25, 0.5, 0.75)


@dataclass
class Dataset:
    """One labelled dataset as per-response rows: model, segment, group, level, human."""

    name: str
    dimension: str
    rows: pl.DataFrame
    models: list[str]  # incumbent first
    weights: dict[str, float]  # segment -> traffic weight (normalised)
    description: str

    @property
    def segments(self) -> list[str]:
        return list(self.weights)


def load_xstest(root: Path) -> Dataset:
    frame = pl.read_csv(root / "xstest" / "responses.csv", infer_schema_length=0)
    texts = [t or "" for t in frame["response"].to_list()]
    levels = [r.level for r in detect_refusals(texts)]
    rows = frame.select(
        pl.col("model"),
        pl.lit("all").alias("segment"),
        pl.col("expected_behaviour").alias("group"),
        pl.Series("level", levels),
        pl.col("human_label").cast(pl.Int8).alias("human"),
    )
    models = sorted(rows["model"].unique().to_list())
    models.remove("GPT-4")
    return Dataset(
        name="xstest",
        dimension="refusal",
        rows=rows,
        models=["GPT-4", *models],
        weights={"all": 1.0},
        description="XSTest v2, refusal (changeover refusal detector, 3 levels), groups "
        "answer/refuse, one segment, incumbent GPT-4",
    )


def load_evouna(root: Path) -> Dataset:
    frame = pl.read_csv(root / "evouna" / "responses.csv", infer_schema_length=0)
    recall = []
    for response, golden in zip(
        frame["response"].to_list(), frame["golden_answer"].to_list(), strict=True
    ):
        refs = split_references(golden or "", "/")
        recall.append(reference_scores(response or "", refs).token_recall)
    levels = bin_values(np.array(recall), RECALL_EDGES)
    rows = frame.select(
        pl.col("model"),
        pl.col("segment"),
        pl.lit("").alias("group"),
        pl.Series("level", levels),
        pl.col("human_label").cast(pl.Int8).alias("human"),
    )
    items = frame.group_by("segment").agg(pl.col("item_id").n_unique().alias("items"))
    counts = dict(items.sort("segment").iter_rows())
    total = sum(counts.values())
    incumbent = "GPT-3.5 (text-davinci-003)"
    models = sorted(rows["model"].unique().to_list())
    models.remove(incumbent)
    return Dataset(
        name="evouna",
        dimension="correctness",
        rows=rows,
        models=[incumbent, *models],
        weights={s: n / total for s, n in counts.items()},
        description="EVOUNA, correctness (changeover token recall in 4 bins), segments NQ/TQ "
        "weighted by questions, incumbent GPT-3.5 (text-davinci-003)",
    )


LOADERS: dict[str, Callable[[Path], Dataset]] = {"xstest": load_xstest, "evouna": load_evouna}


def choose_labels(
    rows: pl.DataFrame, fraction: float, design: str, rng: np.random.Generator
) -> np.ndarray:
    """A boolean mask of the responses whose human label is kept."""
    n = rows.height
    keep = np.zeros(n, dtype=bool)
    if design == "uniform":
        keep[rng.choice(n, size=round(fraction * n), replace=False)] = True
        return keep
    strata = rows.select(pl.concat_str("model", "segment", "group", separator="\x1f").alias("s"))[
        "s"
    ].to_numpy()
    for stratum in np.unique(strata):
        index = np.flatnonzero(strata == stratum)
        keep[rng.choice(index, size=max(1, round(fraction * index.size)), replace=False)] = True
    return keep


def counts_for(data: Dataset, keep: np.ndarray) -> pl.DataFrame:
    """The counts table of one split: kept labels as 0/1, the rest unlabelled."""
    return (
        data.rows.with_columns(
            pl.when(pl.Series(keep)).then(pl.col("human")).otherwise(None).alias("human"),
            pl.lit(data.dimension).alias("dimension"),
        )
        .group_by("dimension", "model", "segment", "group", "level", "human")
        .agg(pl.len().cast(pl.Int64).alias("n"))
    )


def truths(data: Dataset) -> dict[str, dict[str, np.ndarray]]:
    """Full-label truth per group: rate per model and segment [M, S], overall [M]."""
    w = np.array(list(data.weights.values()))
    out = {}
    for group in sorted(data.rows["group"].unique().to_list()):
        part = data.rows.filter(pl.col("group") == group)
        cell = np.zeros((len(data.models), len(data.segments)))
        for i, m in enumerate(data.models):
            for j, s in enumerate(data.segments):
                h = part.filter((pl.col("model") == m) & (pl.col("segment") == s))["human"]
                cell[i, j] = h.mean()
        out[group] = {"cell": cell, "overall": cell @ w}
    return out


def _interval(draws: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = np.quantile(draws, [0.025, 0.975], axis=0)
    return lo, hi


def targets(theta: np.ndarray, w: np.ndarray, per_segment: bool) -> dict[str, np.ndarray]:
    """Draws of every target from rate draws [D, M, S]."""
    overall = theta @ w
    out = {"rate": overall, "contrast": overall[:, 1:] - overall[:, :1]}
    if per_segment:
        out["segment rate"] = theta.reshape(theta.shape[0], -1)
        out["segment contrast"] = (theta[:, 1:, :] - theta[:, :1, :]).reshape(theta.shape[0], -1)
    return out


def true_targets(truth: dict[str, np.ndarray], per_segment: bool) -> dict[str, np.ndarray]:
    cell, overall = truth["cell"], truth["overall"]
    out = {"rate": overall, "contrast": overall[1:] - overall[0]}
    if per_segment:
        out["segment rate"] = cell.ravel()
        out["segment contrast"] = (cell[1:] - cell[:1]).ravel()
    return out


def human_only(block: Block, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Rate draws [D, M, S] from independent Beta(1 + pass, 1 + fail) per cell: the
    super-population rate, and the finite-population rate of the cell's responses (kept labels
    plus Beta-binomial predictions of the held-back ones)."""
    n_pass, n_fail = block.n_pass.sum(-1), block.n_fail.sum(-1)
    n_cell = block.n_all.sum(-1)
    p = rng.beta(1 + n_pass, 1 + n_fail, size=(NUM_DRAWS_BASELINE, *n_pass.shape))
    unlabelled = (n_cell - n_pass - n_fail).astype(np.int64)
    finite = (n_pass + rng.binomial(unlabelled, p)) / n_cell
    return p, finite


def calibration_curves(idata: az.InferenceData, shape: tuple[int, int, int, int]) -> np.ndarray:
    """Draws of the calibration curve q [D, B, M, S, K] from the engine's posterior samples.

    `Draws` exposes the cell rates (which mix the curve with the Dirichlet level shares) but not
    the curve itself; it is rebuilt here with the engine's own `calibration_logits`.
    """
    post = idata.posterior
    flat = {
        name: post[name].values.reshape(-1, *post[name].shape[2:]) for name in ("mu", "sd", "z")
    }

    def logits(mu: jax.Array, sd: jax.Array, z: jax.Array) -> jax.Array:
        with handlers.substitute(data={"mu": mu, "sd": sd, "z": z}):
            return calibration_logits(*shape, PriorScales())

    eta = jax.jit(jax.vmap(logits))(flat["mu"], flat["sd"], flat["z"])
    return np.asarray(jax.nn.sigmoid(eta))


def finite_rates(block: Block, q: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Finite-population rate draws [D, M, S]: the kept labels plus, for every held-back
    response, a Bernoulli(q[level]) draw — the posterior predictive of the rate that all human
    labels would give."""
    _, s, k = block.n_all.shape
    q = q[:, :, :s, :k]
    unlabelled = (block.n_all - block.n_pass - block.n_fail).astype(np.int64)
    predicted = rng.binomial(unlabelled[None], q).sum(-1)
    return (block.n_pass.sum(-1) + predicted) / block.n_all.sum(-1)


class Tally:
    """Hits and widths per method and target kind, and per split (for a clustered SE)."""

    def __init__(self) -> None:
        self.hits: dict[tuple[str, str], list[np.ndarray]] = {}
        self.widths: dict[tuple[str, str], list[np.ndarray]] = {}

    def add(self, method: str, split: int, draws: dict, truth: dict) -> None:
        for kind, d in draws.items():
            lo, hi = _interval(d)
            key = (method, kind)
            self.hits.setdefault(key, [])
            self.widths.setdefault(key, [])
            while len(self.hits[key]) <= split:
                self.hits[key].append(np.zeros(0, dtype=bool))
                self.widths[key].append(np.zeros(0))
            self.hits[key][split] = np.concatenate(
                [self.hits[key][split], (lo <= truth[kind]) & (truth[kind] <= hi)]
            )
            self.widths[key][split] = np.concatenate([self.widths[key][split], hi - lo])

    def summary(self) -> dict:
        out: dict[str, dict] = {}
        for (method, kind), per_split in self.hits.items():
            hits = np.concatenate(per_split)
            cov = float(hits.mean())
            split_cov = np.array([h.mean() for h in per_split])
            lengths = {h.size for h in per_split}
            per_target = (
                np.stack(per_split).mean(0).round(3).tolist() if len(lengths) == 1 else None
            )
            out.setdefault(method, {})[kind] = {
                "per_target": per_target,
                "coverage": cov,
                "coverage_se": float(np.sqrt(cov * (1 - cov) / hits.size)),
                "coverage_se_clustered": float(split_cov.std(ddof=1) / np.sqrt(split_cov.size)),
                "mean_width": float(np.concatenate(self.widths[(method, kind)]).mean()),
                "intervals": int(hits.size),
            }
        return out


def per_block_rhat(theta: np.ndarray, num_chains: int) -> float:
    """Worst split R-hat of one block's cell rates (draws are chain-major)."""
    chains = theta.reshape(num_chains, -1, *theta.shape[1:])
    rhat = az.rhat(az.from_dict(posterior={"theta": chains}))["theta"].values
    return float(np.nanmax(rhat))


def run(data: Dataset, fraction: float, design: str, splits: int, chunk: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    base_rng = np.random.default_rng(seed + 1)
    truth = truths(data)
    w = np.array(list(data.weights.values()))
    per_segment = len(data.segments) > 1
    tally = Tally()
    diagnostics = []
    per_block_rhats = []
    labels_per_split = []
    fit_seconds = 0.0
    gap: list[float] = []  # finite vs super-population posterior means: a sanity check
    start_all = time.perf_counter()
    for first in range(0, splits, chunk):
        blocks: list[Block] = []
        owner: list[int] = []
        for i in range(first, min(first + chunk, splits)):
            keep = choose_labels(data.rows, fraction, design, rng)
            labels_per_split.append(int(keep.sum()))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                split_blocks = blocks_from_counts(
                    counts_for(data, keep), data.models, data.segments
                )
            for block in split_blocks:
                if block.segments != tuple(data.segments):
                    raise SystemExit(f"{data.name}: a segment has no responses in a block")
                blocks.append(dataclasses.replace(block, dimension=f"split{i}"))
                owner.append(i)
        t0 = time.perf_counter()
        draws = sample_posterior(
            blocks,
            data.weights,
            num_warmup=500,
            num_samples=500,
            seed=seed + first,
            keep_inference_data=True,
        )
        shape = (
            len(blocks),
            len(data.models),
            max(len(b.segments) for b in blocks),
            max(len(b.levels) for b in blocks),
        )
        q = calibration_curves(draws.inference_data, shape)
        fit_seconds += time.perf_counter() - t0
        diagnostics.append(
            {
                "blocks": len(blocks),
                "max_rhat": draws.diagnostics.max_rhat,
                "min_ess_bulk": draws.diagnostics.min_ess_bulk,
                "divergences": draws.diagnostics.divergences,
                "seconds": draws.diagnostics.seconds,
            }
        )
        for b_index, (block, i) in enumerate(zip(blocks, owner, strict=True)):
            theta = draws.theta[block.key]
            per_block_rhats.append(per_block_rhat(theta, draws.diagnostics.num_chains))
            true = true_targets(truth[block.group], per_segment)
            finite = finite_rates(block, q[:, b_index], base_rng)
            tally.add("changeover", i, targets(theta, w, per_segment), true)
            tally.add("changeover, finite population", i, targets(finite, w, per_segment), true)
            base, base_finite = human_only(block, base_rng)
            tally.add("human only", i, targets(base, w, per_segment), true)
            tally.add(
                "human only, finite population", i, targets(base_finite, w, per_segment), true
            )
            gap.append(float(np.abs(finite.mean(0) - theta.mean(0)).max()))
        print(
            f"  {data.name} {design} {fraction:.0%}: {min(first + chunk, splits)}/{splits} splits, "
            f"fit {diagnostics[-1]['seconds']:.0f} s, max R-hat {draws.diagnostics.max_rhat:.3f}, "
            f"divergences {draws.diagnostics.divergences}",
            flush=True,
        )
    rhats = np.array(per_block_rhats)
    names: dict[str, list[str]] = {}
    for group in sorted(truth):
        prefix = f"{group}: " if group else ""
        cands = data.models[1:]
        names.setdefault("rate", []).extend(prefix + m for m in data.models)
        names.setdefault("contrast", []).extend(prefix + m for m in cands)
        if per_segment:
            names.setdefault("segment rate", []).extend(
                f"{prefix}{m} @ {s}" for m in data.models for s in data.segments
            )
            names.setdefault("segment contrast", []).extend(
                f"{prefix}{m} @ {s}" for m in cands for s in data.segments
            )
    return {
        "target_names": names,
        "dataset": data.name,
        "description": data.description,
        "fraction": fraction,
        "design": design,
        "splits": splits,
        "labels_per_split": float(np.mean(labels_per_split)),
        "responses": data.rows.height,
        "models": data.models,
        "weights": data.weights,
        "truth": {
            g: {"overall": t["overall"].tolist(), "cell": t["cell"].tolist()}
            for g, t in truth.items()
        },
        "methods": tally.summary(),
        "diagnostics": {
            "fits": diagnostics,
            "worst_rhat": float(max(d["max_rhat"] for d in diagnostics)),
            "divergences": int(sum(d["divergences"] for d in diagnostics)),
            "blocks": int(rhats.size),
            "blocks_with_rate_rhat_over_1.01": int((rhats > 1.01).sum()),
            "worst_block_rate_rhat": float(rhats.max()),
        },
        "max_gap_finite_vs_super_mean": float(max(gap)),
        "fit_seconds": fit_seconds,
        "seconds": time.perf_counter() - start_all,
    }


def to_markdown(results: list[dict]) -> str:
    order = {"rate": 0, "contrast": 1, "segment rate": 2, "segment contrast": 3}
    lines = [
        "| dataset | labels kept | design | target | method | coverage (95% nominal) "
        "± MC s.e. (clustered s.e.) | mean width | intervals |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        kinds = sorted(r["methods"]["changeover"], key=order.get)
        for kind in kinds:
            for method in r["methods"]:
                v = r["methods"][method][kind]
                lines.append(
                    f"| {r['dataset']} | {r['fraction']:.0%} (~{r['labels_per_split']:.0f}) | "
                    f"{r['design']} | {kind} | {method} | {v['coverage']:.3f} ± "
                    f"{v['coverage_se']:.3f} ({v['coverage_se_clustered']:.3f}) | "
                    f"{v['mean_width']:.4f} | {v['intervals']} |"
                )
    lines += [
        "",
        "| dataset | labels kept | design | splits | NUTS fits | worst R-hat (fit) | "
        "blocks with a rate R-hat > 1.01 | divergences | fit seconds |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        d = r["diagnostics"]
        lines.append(
            f"| {r['dataset']} | {r['fraction']:.0%} | {r['design']} | {r['splits']} | "
            f"{len(d['fits'])} | {d['worst_rhat']:.3f} | "
            f"{d['blocks_with_rate_rhat_over_1.01']} of {d['blocks']} | {d['divergences']} | "
            f"{r['fit_seconds']:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets-dir", type=Path, default=DEFAULT_DATASETS)
    parser.add_argument("--datasets", default="xstest,evouna")
    parser.add_argument("--fractions", default="0.05,0.1")
    parser.add_argument("--designs", default="uniform,stratified")
    parser.add_argument("--splits", type=int, default=100)
    parser.add_argument("--chunk", type=int, default=50, help="splits per NUTS run")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--out", type=Path, default=RESULTS / "real_data_coverage")
    args = parser.parse_args()

    names = [n for n in args.datasets.split(",") if n]
    unknown = [n for n in names if n not in LOADERS]
    if unknown:
        sys.exit(f"real_data_coverage: unknown dataset(s) {unknown}; choose from {list(LOADERS)}")
    missing = [n for n in names if not (args.datasets_dir / n / "responses.csv").is_file()]
    if missing:
        sys.exit(
            f"real_data_coverage: labelled dataset(s) {', '.join(missing)} not found under "
            f"{args.datasets_dir} (expected <dir>/<name>/responses.csv; see "
            "../shared/datasets/README.md, or pass --datasets-dir)"
        )
    json_path = args.out.with_suffix(".json")
    results: list[dict] = json.loads(json_path.read_text()) if json_path.exists() else []
    for name in names:
        d_index = list(LOADERS).index(name)
        t0 = time.perf_counter()
        data = LOADERS[name](args.datasets_dir)
        print(f"{name}: {data.rows.height} responses, signals in {time.perf_counter() - t0:.0f} s")
        for f_index, fraction in enumerate(float(f) for f in args.fractions.split(",")):
            for design in args.designs.split(","):
                seed = args.seed + 1000 * d_index + 100 * f_index + (design == "stratified")
                result = run(data, fraction, design, args.splits, args.chunk, seed)
                results = [
                    r
                    for r in results
                    if (r["dataset"], r["fraction"], r["design"]) != (name, fraction, design)
                ]
                results.append(result)
                results.sort(key=lambda r: (r["dataset"] != "xstest", r["fraction"], r["design"]))
                json_path.parent.mkdir(parents=True, exist_ok=True)
                json_path.write_text(json.dumps(results, indent=2))
                args.out.with_suffix(".md").write_text(to_markdown(results) + "\n")
                print(to_markdown([result]), flush=True)


if __name__ == "__main__":
    main()
