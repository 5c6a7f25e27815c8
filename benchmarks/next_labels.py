"""How many human labels `changeover next` needs until every verdict is decided, against random.

    nice -n 5 python benchmarks/next_labels.py                  # the recorded run
    python benchmarks/next_labels.py --reps 4 --max-labels 200  # a quick look

Every replication draws a study with a known truth: an incumbent and two candidates over three
segments (traffic 3:2:1), per-cell pools of responses whose hidden human verdicts are drawn from
the true rates, and a binary judge whose sensitivity and specificity (0.65-0.95) differ by model.
The gate is the simulated studies' gate (non-inferiority, margin 2 points overall and 5 points
in every segment, scope both). Truths are drawn so that every candidate's verdict is settled by
the truth (no condition within 3 points of its margin) but not by a few labels: one candidate
is truly non-inferior by a few points, the other truly inferior by a few.

Both strategies start from the same stratified random start (`--start` labels spread over the
model x segment cells); then each round adds `--batch` labels, chosen by `plan_next` from the
current posterior, or uniformly at random among the unlabelled responses; a label reveals the
hidden verdict of a response drawn at random within the chosen stratum. After every round all
replications and both strategies are refitted as independent blocks of one NUTS run, and a
strategy stops for a replication as soon as every candidate is decided (ready or not-ready).
Recorded: the labels spent when it stopped, whether the verdicts were right, and the replications
that never decided within `--max-labels`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from pathlib import Path

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=2")

import numpy as np  # noqa: E402
from scipy.special import expit, logit  # noqa: E402

from changeover.calibrate.blocks import Block  # noqa: E402
from changeover.calibrate.decide import decide  # noqa: E402
from changeover.calibrate.fit import Draws, sample_posterior  # noqa: E402
from changeover.calibrate.next import plan_next, stratified_start, stratum_q  # noqa: E402
from changeover.study import Study, parse_study  # noqa: E402

RESULTS = Path(__file__).parent / "results"
MODELS = ("incumbent", "cand-1", "cand-2")
SEGMENTS = ("seg0", "seg1", "seg2")
WEIGHTS = (3.0, 2.0, 1.0)
LEVELS = ("fail", "pass")
MARGIN, SEGMENT_MARGIN = 0.02, 0.05
SCOPE = "overall"  # --scope both adds a condition per segment


def make_study() -> Study:
    return parse_study(
        {
            "incumbent": MODELS[0],
            "candidates": list(MODELS[1:]),
            "segments": dict(zip(SEGMENTS, WEIGHTS, strict=True)),
            "gates": [
                {
                    "name": "quality",
                    "dimension": "quality",
                    "better": "higher",
                    "margin": MARGIN,
                    "scope": SCOPE,
                    "segment_margin": SEGMENT_MARGIN,
                }
            ],
        },
        source="benchmark",
    )


@dataclasses.dataclass
class World:
    """One simulated study: the hidden verdicts of every response, by stratum."""

    theta: np.ndarray  # [M, S] true rates
    pool: np.ndarray  # [M, S, 2(y), K] responses by hidden verdict and judge level
    truth: dict[str, str]  # candidate -> ready / not-ready

    def labelled(self) -> np.ndarray:
        return np.zeros_like(self.pool)


def true_verdicts(theta: np.ndarray) -> tuple[dict[str, str], float]:
    """Verdicts on the true rates, and the closest any condition comes to its margin."""
    w = np.array(WEIGHTS) / sum(WEIGHTS)
    overall = theta @ w
    out, closest = {}, np.inf
    for c in range(1, len(MODELS)):
        gaps = [overall[c] - overall[0] + MARGIN]
        if SCOPE == "both":
            gaps += list(theta[c] - theta[0] + SEGMENT_MARGIN)
        closest = min(closest, min(abs(g) for g in gaps))
        out[MODELS[c]] = "ready" if min(gaps) > 0 else "not-ready"
    return out, closest


def make_world(rng: np.random.Generator, per_cell: int) -> World:
    while True:
        base = logit(0.8) + rng.normal(0, 0.4, len(SEGMENTS))
        # one candidate a few points better, one a few points worse, in random order
        good, bad = rng.uniform(0.3, 0.5), -rng.uniform(0.35, 0.55)
        shifts = [0.0, good, bad] if rng.random() < 0.5 else [0.0, bad, good]
        theta = expit(
            base[None, :] + np.array(shifts)[:, None] + rng.normal(0, 0.1, (3, len(SEGMENTS)))
        )
        truth, closest = true_verdicts(theta)
        if closest >= 0.03:
            break
    pool = np.zeros((len(MODELS), len(SEGMENTS), 2, len(LEVELS)), dtype=int)
    for m in range(len(MODELS)):
        sens, spec = rng.uniform(0.65, 0.95, size=2)
        for s in range(len(SEGMENTS)):
            n_pass = rng.binomial(per_cell, theta[m, s])
            hit = rng.binomial(n_pass, sens)
            reject = rng.binomial(per_cell - n_pass, spec)
            pool[m, s, 1] = [n_pass - hit, hit]  # level fail, level pass
            pool[m, s, 0] = [reject, per_cell - n_pass - reject]
    return World(theta, pool, truth)


def reveal(
    rng: np.random.Generator, world: World, lab: np.ndarray, m: int, s: int, k: int, n: int
) -> int:
    """Label n random unlabelled responses of stratum (m, s, k); returns how many were labelled."""
    left = world.pool[m, s, :, k] - lab[m, s, :, k]
    n = int(min(n, left.sum()))
    if n:
        lab[m, s, :, k] += rng.multivariate_hypergeometric(left, n)
    return n


def as_block(world: World, lab: np.ndarray, name: str) -> Block:
    return Block(
        name,
        "",
        MODELS,
        SEGMENTS,
        LEVELS,
        world.pool.sum(2).astype(float),
        lab[:, :, 1, :].astype(float),
        lab[:, :, 0, :].astype(float),
    )


def start(rng: np.random.Generator, world: World, n: int) -> np.ndarray:
    lab = world.labelled()
    plan = stratified_start([as_block(world, lab, "quality")], n, seed=int(rng.integers(2**31)))
    for pick in plan.picks:
        m, s = MODELS.index(pick.model), SEGMENTS.index(pick.segment)
        for _ in range(pick.n):  # random within the cell: a level in proportion to what is left
            left = (world.pool[m, s] - lab[m, s]).sum(0)
            k = int(rng.choice(len(LEVELS), p=left / left.sum()))
            reveal(rng, world, lab, m, s, k, 1)
    return lab


def random_batch(rng: np.random.Generator, world: World, lab: np.ndarray, n: int) -> None:
    left = (world.pool - lab).sum(2).ravel()  # [M*S*K] unlabelled per stratum
    take = rng.multivariate_hypergeometric(left, int(min(n, left.sum())))
    for j in np.flatnonzero(take):
        m, s, k = np.unravel_index(j, (len(MODELS), len(SEGMENTS), len(LEVELS)))
        reveal(rng, world, lab, int(m), int(s), int(k), int(take[j]))


def one_rep_draws(draws: Draws, i: int) -> Draws:
    block = dataclasses.replace(draws.blocks[i], dimension="quality")
    key = draws.blocks[i].key
    return Draws(
        [block],
        {block.key: draws.theta[key]},
        {block.key: draws.level_given_pass[key]},
        {block.key: draws.level_given_fail[key]},
        draws.diagnostics,
    )


def run(args: argparse.Namespace) -> dict:
    rng = np.random.default_rng(args.seed)
    study = make_study()
    worlds = [make_world(rng, args.per_cell) for _ in range(args.reps)]
    strategies = ("next", "random")
    labs = {}
    for r, world in enumerate(worlds):
        first = start(rng, world, args.start)
        for strategy in strategies:
            labs[(strategy, r)] = first.copy()
    stopped: dict[tuple[str, int], dict] = {}
    history = []
    fit_seconds = []
    round_no = 0
    while True:
        active = [key for key in labs if key not in stopped]
        if not active:
            break
        keys = list(labs)  # every block is refitted: a constant shape keeps one compiled sampler
        blocks = [as_block(worlds[r], labs[(st, r)], f"{st}{r}") for st, r in keys]
        t0 = time.perf_counter()
        draws = sample_posterior(
            blocks,
            study.weights,
            num_warmup=args.warmup,
            num_samples=args.samples,
            seed=args.seed + round_no,
        )
        fit_seconds.append(time.perf_counter() - t0)
        q_all = stratum_q(draws)
        row = {"round": round_no, "diagnostics": dataclasses.asdict(draws.diagnostics)}
        for i, key in enumerate(keys):
            if key in stopped:
                continue
            strategy, r = key
            sub = one_rep_draws(draws, i)
            result = decide(study, sub)
            verdicts = {c: v.verdict for c, v in result.candidates.items()}
            n = int(labs[key].sum())
            if "undecided" not in verdicts.values() or n >= args.max_labels:
                settled = "undecided" not in verdicts.values()
                stopped[key] = {
                    "labels": n,
                    "decided": settled,
                    "correct": settled and verdicts == worlds[r].truth,
                    "verdicts": verdicts,
                    "truth": worlds[r].truth,
                    "rounds": round_no,
                }
                continue
            batch = min(args.batch, args.max_labels - n)
            if strategy == "random":
                random_batch(rng, worlds[r], labs[key], batch)
            else:
                plan = plan_next(
                    study,
                    result,
                    batch,
                    q={("quality", ""): q_all[draws.blocks[i].key]},
                )
                spent = 0
                for pick in plan.picks:
                    m, s = MODELS.index(pick.model), SEGMENTS.index(pick.segment)
                    k = LEVELS.index(pick.level or "pass")
                    spent += reveal(rng, worlds[r], labs[key], m, s, k, pick.n)
                if spent < batch:  # nothing useful left: fall back to random labels
                    random_batch(rng, worlds[r], labs[key], batch - spent)
        row["stopped"] = {st: sum(1 for k in stopped if k[0] == st) for st in strategies}
        history.append(row)
        print(
            f"round {round_no}: fit {fit_seconds[-1]:.1f}s, max R-hat "
            f"{draws.diagnostics.max_rhat:.3f}, divergences {draws.diagnostics.divergences}; "
            f"stopped {row['stopped']}",
            flush=True,
        )
        round_no += 1
    summary = {}
    for strategy in strategies:
        recs = [stopped[(strategy, r)] for r in range(args.reps)]
        labels = np.array([x["labels"] for x in recs])
        decided = np.array([x["decided"] for x in recs])
        correct = np.array([x["correct"] for x in recs])
        summary[strategy] = {
            "reps": args.reps,
            "decided": int(decided.sum()),
            "wrong": int((decided & ~correct).sum()),
            "wrong_rate": float((decided & ~correct).sum() / max(decided.sum(), 1)),
            "labels_mean": float(labels.mean()),
            "labels_median": float(np.median(labels)),
            "labels_mean_decided_correct": float(labels[correct].mean()) if correct.any() else None,
            "labels": labels.tolist(),
        }
    paired = np.array([stopped[("next", r)]["labels"] for r in range(args.reps)]) / np.array(
        [stopped[("random", r)]["labels"] for r in range(args.reps)]
    )
    return {
        "settings": vars(args),
        "summary": summary,
        "paired_ratio_mean": float(paired.mean()),
        "paired_ratio_median": float(np.median(paired)),
        "saving_mean": 1 - summary["next"]["labels_mean"] / summary["random"]["labels_mean"],
        "fit_seconds_total": float(sum(fit_seconds)),
        "rounds": round_no,
        "history": history,
        "runs": {f"{st}-{r}": v for (st, r), v in sorted(stopped.items())},
    }


def write_markdown(out: dict, path: Path) -> None:
    s = out["settings"]
    lines = [
        "# Labels needed until every verdict is decided: `changeover next` vs random",
        "",
        f"Command: `nice -n 5 python benchmarks/next_labels.py --reps {s['reps']} "
        f"--start {s['start']} --batch {s['batch']} --max-labels {s['max_labels']} "
        f"--per-cell {s['per_cell']} --warmup {s['warmup']} --samples {s['samples']} "
        f"--seed {s['seed']} --scope {s['scope']}`",
        "",
        f"{s['reps']} replications; 3 models x 3 segments, binary judge, {s['per_cell']} responses "
        f"per cell; start {s['start']} stratified random labels, then {s['batch']} per round; "
        f"stop when every candidate is ready or not-ready (or at {s['max_labels']} labels).",
        "",
        "| strategy | decided | wrong verdicts (of decided) | mean labels | median labels "
        "| mean labels, decided and correct |",
        "|---|---|---|---|---|---|",
    ]
    for name, v in out["summary"].items():
        dc = v["labels_mean_decided_correct"]
        lines.append(
            f"| {name} | {v['decided']}/{v['reps']} | {v['wrong']} ({v['wrong_rate']:.1%}) "
            f"| {v['labels_mean']:.0f} | {v['labels_median']:.0f} "
            f"| {'n/a' if dc is None else f'{dc:.0f}'} |"
        )
    cap = s["max_labels"]
    marks = sorted({*range(150, cap + 1, 150), cap})
    lines += [
        "",
        "Share of replications decided, and decided correctly, by a given number of labels:",
        "",
        "| strategy | " + " | ".join(f"≤ {m}" for m in marks) + " |",
        "|---|" + "---|" * len(marks),
    ]
    for name in out["summary"]:
        runs = [v for k, v in out["runs"].items() if k.startswith(name + "-")]
        cells = []
        for m in marks:
            decided = sum(1 for v in runs if v["decided"] and v["labels"] <= m)
            right = sum(1 for v in runs if v["correct"] and v["labels"] <= m)
            cells.append(f"{decided}/{len(runs)} ({right} correct)")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Labels saved by `next` (1 - mean next / mean random): {out['saving_mean']:.1%}; "
        f"paired ratio next/random per replication: mean {out['paired_ratio_mean']:.2f}, "
        f"median {out['paired_ratio_median']:.2f}. An undecided replication counts at the cap.",
        "",
        f"{out['rounds']} rounds, {out['fit_seconds_total']:.0f} s of fitting.",
        "",
    ]
    path.write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=16)
    parser.add_argument("--start", type=int, default=30)
    parser.add_argument("--batch", type=int, default=45)
    parser.add_argument("--max-labels", type=int, default=900)
    parser.add_argument("--per-cell", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scope", choices=("overall", "both"), default="overall")
    parser.add_argument("--out", type=Path, default=RESULTS / "next_labels")
    parser.add_argument(
        "--render", type=Path, help="Only re-render the markdown from a saved results JSON."
    )
    args = parser.parse_args()
    if args.render is not None:
        write_markdown(json.loads(args.render.read_text()), args.out.with_suffix(".md"))
        print(args.out.with_suffix(".md").read_text())
        return
    global SCOPE
    SCOPE = args.scope
    out = run(args)
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in out["settings"].items()}
    out["settings"] = settings
    args.out.with_suffix(".json").write_text(json.dumps(out, indent=2))
    write_markdown(out, args.out.with_suffix(".md"))
    print(args.out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
