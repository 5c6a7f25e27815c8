"""How many human labels `changeover next` needs until every verdict is decided, against random.

    nice -n 5 python benchmarks/next_labels.py --seed 0          # 32 replications, ~8-15 min
    python benchmarks/next_labels.py --merge a.json b.json       # pool runs of several seeds
    python benchmarks/next_labels.py --reps 4 --max-labels 300   # a quick look
    python benchmarks/next_labels.py --posterior beta --reps 128 --strategies next,random,next-risk
                                                # ~1 min: a fast unpooled stand-in, to explore

Every replication draws a study with a known truth: an incumbent and two candidates over three
segments (traffic 3:2:1), per-cell pools of responses whose hidden human verdicts are drawn from
the true rates, and a binary judge whose sensitivity and specificity (0.65-0.95) differ by model.
The gate is non-inferiority with a 2-point margin on the traffic-weighted overall rate
(`--scope both` adds a 5-point margin in every segment). Truths are drawn so that every
candidate's verdict is settled by the truth (no condition within 3 points of its margin) but not
by a few labels: one candidate is truly non-inferior by a few points, the other truly inferior.

The strategies (`--strategies`, default `next`, random and `next-risk`; `VARIANTS` maps a
name to `plan_next` options) start from the same stratified random start (`--start` labels
spread over the model x segment cells); each round adds `--batch` labels; a label reveals the
hidden verdict of the next response, in a random order fixed per world, of the chosen stratum:
a uniformly random sample for every strategy, and common random numbers between strategies.
Each (replication, strategy) has its own random stream for everything else. After every round
the running ones are refitted as independent blocks of one NUTS run. A strategy stops on a
replication when every candidate is decided (ready or not-ready) with the same verdicts at
`--looks` consecutive looks; after a decided look the confirming batch is chosen by the same
strategy (`next` plans it for every candidate). The first look at which everything was decided
is recorded on the same runs, so both stopping rules are compared on the same trajectories.
Recorded: the labels spent, whether the verdicts were right, the labels per stratum, and the
replications never decided within `--max-labels`; `--report-cap` summarises the same runs as if
they had been capped lower (the trajectories up to that cap are the same).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
import zlib
from pathlib import Path

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=2")

import numpy as np  # noqa: E402
from scipy.special import expit, logit  # noqa: E402

from changeover.calibrate.blocks import Block  # noqa: E402
from changeover.calibrate.decide import Result, decide  # noqa: E402
from changeover.calibrate.diagnostics import Diagnostics  # noqa: E402
from changeover.calibrate.next import plan_next, stratified_start, stratum_q  # noqa: E402
from changeover.calibrate.posterior import Draws
from changeover.calibrate.sampler import sample_posterior  # noqa: E402
from changeover.study import Study, parse_study  # noqa: E402

RESULTS = Path(__file__).parent / "results"
MODELS = ("incumbent", "cand-1", "cand-2")
SEGMENTS = ("seg0", "seg1", "seg2")
WEIGHTS = (3.0, 2.0, 1.0)
LEVELS = ("fail", "pass")
MARGIN, SEGMENT_MARGIN = 0.02, 0.05
SCOPE = "overall"  # --scope both adds a condition per segment
# strategy name -> plan_next options (None: uniform random labelling); --strategies picks
VARIANTS: dict[str, dict | None] = {
    "next": {},
    "random": None,
    "next-floor": {"min_per_cell": 8},
    "next-risk": {"objective": "risk"},
    "next-decide": {"objective": "decide"},
    "next-target": {"objective": "target"},
    "next-target-log": {"objective": "target-log"},
    "next-target-t0": {"objective": "target", "t_floor": 0.25},
    "next-target-t2": {"objective": "target", "t_floor": 1.645},
}
DEFAULT_STRATEGIES = ("next", "random", "next-risk")
STRATEGIES: tuple[str, ...] = DEFAULT_STRATEGIES  # set by --strategies


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
    order: list = dataclasses.field(default_factory=list)  # see `shuffle_pool`

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
    """Label n random unlabelled responses of stratum (m, s, k); returns how many were labelled.

    The responses of a stratum come in the world's random order (`World.order`), the same for
    every strategy: a uniformly random sample for each, and common random numbers between them
    (two strategies that label the same strata see the same verdicts), which makes the paired
    comparison less noisy without favouring either."""
    done = int(lab[m, s, :, k].sum())
    n = int(min(n, world.pool[m, s, :, k].sum() - done))
    if n:
        passes = int(world.order[m][s][k][done : done + n].sum())
        lab[m, s, 1, k] += passes
        lab[m, s, 0, k] += n - passes
    return n


def shuffle_pool(rng: np.random.Generator, pool: np.ndarray) -> list:
    """Per stratum [m][s][k], its responses' hidden verdicts (1 = pass) in a random order."""
    return [
        [
            [rng.permutation(np.repeat([1, 0], pool[m, s, ::-1, k])) for k in range(pool.shape[3])]
            for s in range(pool.shape[1])
        ]
        for m in range(pool.shape[0])
    ]


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


def beta_posterior(
    blocks: list[Block], n_draws: int, seeds: list[list[int]]
) -> tuple[Draws, dict[tuple[str, str], np.ndarray]]:
    """A fast stand-in for the engine, to compare strategies cheaply while exploring: every
    stratum's P(pass | level) has its own Beta(1 + passes, 1 + fails) posterior (no pooling),
    and a cell's rate is the level shares of its responses times those (not the recorded run)."""
    theta, lp, lf, q = {}, {}, {}, {}
    for block, seed in zip(blocks, seeds, strict=True):
        rng = np.random.default_rng(seed)  # per replication and round: the same noise for all
        pi = block.n_all / block.n_all.sum(-1, keepdims=True)  # [M, S, K]
        qd = rng.beta(1 + block.n_pass, 1 + block.n_fail, size=(n_draws, *block.n_all.shape))
        th = (pi * qd).sum(-1)
        w_all = block.n_all.sum(1)  # judge error rates per model, pooled over segments
        pass_k = (block.n_all[None] * qd).sum(2)
        theta[block.key], q[block.key] = th, qd
        lp[block.key] = pass_k / pass_k.sum(-1, keepdims=True)
        fail_k = w_all[None] - pass_k
        lf[block.key] = fail_k / fail_k.sum(-1, keepdims=True)
    return Draws(blocks, theta, lp, lf, Diagnostics(1.0, float(n_draws), 0, 1, n_draws)), q


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


def next_batch(
    rng: np.random.Generator,
    world: World,
    lab: np.ndarray,
    study: Study,
    result: Result,
    q: np.ndarray,
    n: int,
    options: dict,
) -> None:
    """Label n responses as `plan_next` (with `options`) says; once every candidate is decided
    (a confirming batch under --looks 2) it plans for every candidate."""
    undecided = [c for c, v in result.candidates.items() if v.verdict == "undecided"]
    plan = plan_next(
        study,
        result,
        n,
        q={("quality", ""): q},
        candidates=None if undecided else list(result.candidates),
        **options,
    )
    spent = 0
    for pick in plan.picks:
        m, s = MODELS.index(pick.model), SEGMENTS.index(pick.segment)
        if pick.level is None:
            for _ in range(pick.n):
                left = (world.pool[m, s] - lab[m, s]).sum(0)
                if left.sum():
                    k = int(rng.choice(len(LEVELS), p=left / left.sum()))
                    spent += reveal(rng, world, lab, m, s, k, 1)
        else:
            spent += reveal(rng, world, lab, m, s, LEVELS.index(pick.level), pick.n)
    if spent < n:  # nothing useful left: fall back to random labels
        random_batch(rng, world, lab, n - spent)


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson 95% interval of a binomial proportion."""
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def summarise(
    stops: dict[tuple[str, int], dict], reps: int, cap: int, rng: np.random.Generator
) -> dict:
    """Per strategy: decided, wrong, labels; paired savings with bootstrap intervals, on the
    labels spent when the strategy stopped, and on the labels until decided and correct (a
    wrong or missing decision counted at the cap)."""
    out: dict = {"strategies": {}}
    for strategy in STRATEGIES:
        recs = [stops[(strategy, r)] for r in range(reps)]
        labels = np.array([x["labels"] for x in recs])
        decided = np.array([x["decided"] for x in recs])
        correct = np.array([x["correct"] for x in recs])
        wrong = int((decided & ~correct).sum())
        out["strategies"][strategy] = {
            "reps": reps,
            "decided": int(decided.sum()),
            "correct": int(correct.sum()),
            "wrong": wrong,
            "wrong_rate": wrong / max(int(decided.sum()), 1),
            "wrong_rate_wilson95": wilson(wrong, int(decided.sum())),
            "labels_mean": float(labels.mean()),
            "labels_median": float(np.median(labels)),
            "labels_mean_decided_correct": float(labels[correct].mean()) if correct.any() else None,
            "labels_correct_or_cap_mean": float(np.where(correct, labels, cap).mean()),
            "labels": labels.tolist(),
        }

    def spent(strategy: str, correct_only: bool) -> np.ndarray:
        return np.array(
            [
                cap if correct_only and not stops[(strategy, r)]["correct"] else x["labels"]
                for r in range(reps)
                for x in [stops[(strategy, r)]]
            ],
            dtype=float,
        )

    b = spent("random", False)
    b_ok = spent("random", True)
    boot = rng.integers(0, reps, size=(4000, reps))
    out["against_random"] = {}
    for strategy in STRATEGIES:
        if strategy == "random":
            continue
        a = spent(strategy, False)
        a_ok = spent(strategy, True)
        savings = 1 - a[boot].mean(1) / b[boot].mean(1)
        savings_ok = 1 - a_ok[boot].mean(1) / b_ok[boot].mean(1)
        out["against_random"][strategy] = {
            "saving_mean": float(1 - a.mean() / b.mean()),
            "saving_bootstrap95": [float(x) for x in np.quantile(savings, [0.025, 0.975])],
            "saving_correct_or_cap": float(1 - a_ok.mean() / b_ok.mean()),
            "saving_correct_or_cap_bootstrap95": [
                float(x) for x in np.quantile(savings_ok, [0.025, 0.975])
            ],
            "paired_ratio_mean": float((a / b).mean()),
            "paired_ratio_median": float(np.median(a / b)),
            "paired_fewer_more_same": [
                int((a < b).sum()),
                int((a > b).sum()),
                int((a == b).sum()),
            ],
        }
    # every pair of targeted strategies, paired on the same worlds (e.g. two objectives)
    targeted = [st for st in STRATEGIES if st != "random"]
    out["pairs"] = {}
    for i, first in enumerate(targeted):
        for second in targeted[i + 1 :]:
            diff = spent(first, False) - spent(second, False)
            out["pairs"][f"{first} - {second}"] = {
                "labels_mean_difference": float(diff.mean()),
                "bootstrap95": [float(x) for x in np.quantile(diff[boot].mean(1), [0.025, 0.975])],
            }
    return out


def at_cap(stops: dict[tuple[str, int], dict], cap: int) -> dict[tuple[str, int], dict]:
    """The records a run with a lower cap would have made: the trajectories are the same up
    to the cap (the same worlds, streams and fits), so a stop beyond it is undecided there."""
    return {
        key: v if v["labels"] <= cap else {**v, "labels": cap, "decided": False, "correct": False}
        for key, v in stops.items()
    }


def summarise_at_cap(
    stopped: dict[tuple[str, int], dict],
    first_look: dict[tuple[str, int], dict],
    reps: int,
    max_labels: int,
    cap: int,
    rng: np.random.Generator,
) -> dict:
    """Both stopping rules again as if the run had been capped at `cap` (if below the cap)."""
    if not 0 < cap < max_labels:
        return {}
    return {
        "rule_at_cap": summarise(at_cap(stopped, cap), reps, cap, rng),
        "first_look_at_cap": summarise(at_cap(first_look, cap), reps, cap, rng),
    }


def run(args: argparse.Namespace) -> dict:
    wall0 = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    study = make_study()
    worlds = [make_world(rng, args.per_cell) for _ in range(args.reps)]
    for r, world in enumerate(worlds):
        world.order = shuffle_pool(np.random.default_rng([args.seed, r, 1]), world.pool)
    labs = {}
    for r, world in enumerate(worlds):
        first = start(rng, world, args.start)
        for strategy in STRATEGIES:
            labs[(strategy, r)] = first.copy()
    # one rng per replication and strategy: which other replications are still running never
    # changes what one replication draws (worlds and starts are shared by both strategies)
    rngs = {
        (st, r): np.random.default_rng([args.seed, r, zlib.crc32(st.encode())])
        for r in range(args.reps)
        for st in STRATEGIES
    }
    stopped: dict[tuple[str, int], dict] = {}  # under --looks consecutive decided looks
    first_look: dict[tuple[str, int], dict] = {}  # the first look at which all were decided
    streak: dict[tuple[str, int], tuple[int, dict]] = {}
    looks: dict[tuple[str, int], list] = {key: [] for key in labs}
    history = []
    fit_seconds = []
    round_no = 0
    while True:
        active = [key for key in labs if key not in stopped]
        if not active:
            break
        # only the running strategies are refitted, padded to a multiple of 8 blocks so that a
        # handful of compiled samplers serve every round
        padded = active + [active[0]] * (-len(active) % 8)
        blocks = [
            as_block(worlds[r], labs[(st, r)], f"{st}{r}" if i < len(active) else f"pad{i}")
            for i, (st, r) in enumerate(padded)
        ]
        t0 = time.perf_counter()
        if args.posterior == "beta":
            seeds = [[args.seed, round_no, r] for _, r in padded]
            draws, q_all = beta_posterior(blocks, 2 * args.samples, seeds)
        else:
            draws = sample_posterior(
                blocks,
                study.weights,
                num_warmup=args.warmup,
                num_samples=args.samples,
                seed=args.seed + round_no,
            )
            q_all = stratum_q(draws)
        fit_seconds.append(time.perf_counter() - t0)
        row = {
            "round": round_no,
            "blocks": len(blocks),
            "diagnostics": dataclasses.asdict(draws.diagnostics),
        }
        for i, key in enumerate(active):
            strategy, r = key
            sub = one_rep_draws(draws, i)
            result = decide(study, sub)
            verdicts = {c: v.verdict for c, v in result.candidates.items()}
            n = int(labs[key].sum())
            looks[key].append(
                [n, {c: round(v.p_all_gates, 4) for c, v in result.candidates.items()}, verdicts]
            )
            settled = "undecided" not in verdicts.values()
            record = {
                "labels": n,
                "decided": settled,
                "correct": settled and verdicts == worlds[r].truth,
                "verdicts": verdicts,
                "truth": worlds[r].truth,
                "rounds": round_no,
                "allocation": labs[key].sum(2).astype(int).tolist(),  # [M, S, K] labelled
            }
            if settled and key not in first_look:
                first_look[key] = record
            run_len, before = streak.get(key, (0, {}))
            same = bool(run_len) and before == verdicts
            run_len = (run_len + 1 if same else 1) if settled else 0
            streak[key] = (run_len, verdicts)
            if run_len >= args.looks or n >= args.max_labels:
                if run_len < args.looks:
                    record = {**record, "decided": False, "correct": False}
                stopped[key] = record
                first_look.setdefault(key, record)
                continue
            batch = min(args.batch, args.max_labels - n)
            if strategy == "random":
                random_batch(rngs[key], worlds[r], labs[key], batch)
            else:
                q = q_all[draws.blocks[i].key]
                options = VARIANTS[strategy] or {}
                next_batch(rngs[key], worlds[r], labs[key], study, result, q, batch, options)
        row["stopped"] = {st: sum(1 for k in stopped if k[0] == st) for st in STRATEGIES}
        history.append(row)
        print(
            f"round {round_no}: {len(blocks)} blocks, fit {fit_seconds[-1]:.1f}s, max R-hat "
            f"{draws.diagnostics.max_rhat:.3f}, divergences {draws.diagnostics.divergences}; "
            f"stopped {row['stopped']}",
            flush=True,
        )
        round_no += 1
    boot = np.random.default_rng(args.seed + 1)
    return {
        "settings": vars(args),
        "rule": summarise(stopped, args.reps, args.max_labels, boot),
        "first_look": summarise(first_look, args.reps, args.max_labels, boot),
        **summarise_at_cap(stopped, first_look, args.reps, args.max_labels, args.report_cap, boot),
        "fit_seconds_total": float(sum(fit_seconds)),
        "wall_seconds": time.perf_counter() - wall0,
        "rounds": round_no,
        "history": history,
        "runs": {f"{st}-{r}": v for (st, r), v in sorted(stopped.items())},
        "first_look_runs": {f"{st}-{r}": v for (st, r), v in sorted(first_look.items())},
        "looks": {f"{st}-{r}": v for (st, r), v in sorted(looks.items())},
        "worlds": [
            {"theta": w.theta.round(4).tolist(), "pool": w.pool.tolist(), "truth": w.truth}
            for w in worlds
        ],
    }


def _names(settings: dict) -> dict[str, str]:
    return {
        name: "random" if name == "random" else f"`{name}`"
        for name in settings["strategies"].split(",")
    }


def _table(summary: dict, names: dict[str, str]) -> list[str]:
    lines = [
        "| strategy | decided | wrong verdicts (of decided; Wilson 95%) | mean labels "
        "| median labels | mean labels, decided and correct | mean labels to a correct "
        "decision (else the cap) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in [k for k in names if k in summary["strategies"]]:
        v = summary["strategies"][name]
        dc = v["labels_mean_decided_correct"]
        lo, hi = v["wrong_rate_wilson95"]
        lines.append(
            f"| {names[name]} | {v['decided']}/{v['reps']} | {v['wrong']} ({v['wrong_rate']:.1%}; "
            f"{lo:.0%}–{hi:.0%}) | {v['labels_mean']:.0f} | {v['labels_median']:.0f} "
            f"| {'n/a' if dc is None else f'{dc:.0f}'} | {v['labels_correct_or_cap_mean']:.0f} |"
        )
    lines.append("")
    for name in [k for k in names if k in summary["against_random"]]:
        v = summary["against_random"][name]
        fewer, more, same = v["paired_fewer_more_same"]
        lo, hi = v["saving_bootstrap95"]
        lines.append(
            f"* Labels saved by {names[name]} (1 - its mean / random's mean): "
            f"**{v['saving_mean']:.1%}** (bootstrap 95% over replications {lo:.0%} to {hi:.0%}); "
            f"paired ratio: mean {v['paired_ratio_mean']:.2f}, median "
            f"{v['paired_ratio_median']:.2f}; fewer labels in {fewer} replications, more in "
            f"{more}, as many in {same}. Until a correct decision (a wrong or missing one "
            f"counted at the cap): **{v['saving_correct_or_cap']:.1%}** "
            f"({v['saving_correct_or_cap_bootstrap95'][0]:.0%} to "
            f"{v['saving_correct_or_cap_bootstrap95'][1]:.0%})."
        )
    for pair, v in summary.get("pairs", {}).items():
        first, second = pair.split(" - ")
        lo, hi = v["bootstrap95"]
        lines.append(
            f"* Paired on the same worlds, {names.get(first, first)} minus "
            f"{names.get(second, second)}: {v['labels_mean_difference']:+.0f} labels per "
            f"replication (bootstrap 95% {lo:+.0f} to {hi:+.0f})."
        )
    lines += ["", "A replication not decided counts at the cap."]
    return lines


def merge(parts: list[dict]) -> dict:
    """Pool runs made with different seeds (otherwise the same settings) into one result."""
    global STRATEGIES
    STRATEGIES = tuple(parts[0]["settings"]["strategies"].split(","))
    keep = ("seed", "reps", "out", "render", "merge")
    first = {k: v for k, v in parts[0]["settings"].items() if k not in keep}
    for part in parts[1:]:
        if {k: v for k, v in part["settings"].items() if k not in keep} != first:
            raise SystemExit("--merge: the runs differ in more than seed and replications")
    out: dict = {"runs": {}, "first_look_runs": {}, "looks": {}, "history": []}
    offset = 0
    for part in parts:
        for name in ("runs", "first_look_runs", "looks"):
            for key, value in part[name].items():
                strategy, r = key.rsplit("-", 1)
                out[name][f"{strategy}-{int(r) + offset}"] = value
        out["history"] += part["history"]
        offset += part["settings"]["reps"]
    stops = {
        name: {tuple(k.rsplit("-", 1)): v for k, v in out[key].items()}
        for name, key in (("rule", "runs"), ("first_look", "first_look_runs"))
    }
    boot = np.random.default_rng(0)
    by_rep = {
        name: {(st, int(r)): v for (st, r), v in by_key.items()} for name, by_key in stops.items()
    }
    cap = parts[0]["settings"]["max_labels"]
    for name, by_key in by_rep.items():
        out[name] = summarise(by_key, offset, cap, boot)
    report_cap = parts[0]["settings"].get("report_cap", 0)
    out |= summarise_at_cap(by_rep["rule"], by_rep["first_look"], offset, cap, report_cap, boot)
    out["settings"] = {**parts[0]["settings"], "reps": offset}
    out["parts"] = [
        {
            "seed": p["settings"]["seed"],
            "reps": p["settings"]["reps"],
            "rounds": p["rounds"],
            "fit_seconds_total": p["fit_seconds_total"],
            "wall_seconds": p["wall_seconds"],
        }
        for p in parts
    ]
    out["rounds"] = sum(p["rounds"] for p in parts)
    out["fit_seconds_total"] = sum(p["fit_seconds_total"] for p in parts)
    out["wall_seconds"] = sum(p["wall_seconds"] for p in parts)
    return out


def write_markdown(out: dict, path: Path) -> None:
    s = out["settings"]
    parts = out.get("parts") or [{"seed": s["seed"], "reps": s["reps"]}]
    commands = [
        f"`nice -n 5 python benchmarks/next_labels.py --reps {p['reps']} "
        f"--start {s['start']} --batch {s['batch']} --max-labels {s['max_labels']} "
        f"--per-cell {s['per_cell']} --warmup {s['warmup']} --samples {s['samples']} "
        f"--seed {p['seed']} --scope {s['scope']} --looks {s['looks']} "
        f"--report-cap {s.get('report_cap', 0)} --posterior {s.get('posterior', 'nuts')} "
        f"--strategies {s['strategies']}`"
        for p in parts
    ]
    if len(parts) > 1:
        commands.append("pooled with `--merge` (replications of every run, one table)")
    lines = [
        "# Labels needed until every verdict is decided: `changeover next` vs random",
        "",
        "Command: " + "; ".join(commands),
        "",
        f"{s['reps']} replications (the same worlds and the same {s['start']}-label stratified "
        f"start for every strategy); 3 models x 3 segments, binary judge, {s['per_cell']} "
        f"responses per cell; then {s['batch']} labels per round. Strategies: "
        + "; ".join(f"`{k}` = plan_next({VARIANTS.get(k)})" for k in _names(s) if k != "random")
        + ".",
        "",
        f"## Stopping rule: every candidate decided, same verdicts at {s['looks']} consecutive "
        f"looks (or {s['max_labels']} labels)",
        "",
        *_table(out["rule"], _names(s)),
        "",
        "## Stopping at the first look where every candidate is decided (same runs)",
        "",
        *_table(out["first_look"], _names(s)),
    ]
    if "rule_at_cap" in out:
        low = s["report_cap"]
        lines += [
            "",
            f"## The same runs capped at {low} labels (a stop beyond it counts as undecided at "
            f"{low})",
            "",
            f"### {s['looks']} consecutive looks",
            "",
            *_table(out["rule_at_cap"], _names(s)),
            "",
            "### First look",
            "",
            *_table(out["first_look_at_cap"], _names(s)),
        ]
    cap = s["max_labels"]
    step = 150 if cap <= 1500 else 300
    marks = sorted({*range(step, cap + 1, step), cap})
    lines += [
        "",
        f"## Decided, and decided correctly, by a given number of labels ({s['looks']} looks)",
        "",
        "| strategy | " + " | ".join(f"≤ {m}" for m in marks) + " |",
        "|---|" + "---|" * len(marks),
    ]
    for name in [k for k in _names(s) if k in out["rule"]["strategies"]]:
        runs = [v for k, v in out["runs"].items() if k.rsplit("-", 1)[0] == name]
        cells = []
        for m in marks:
            decided = sum(1 for v in runs if v["decided"] and v["labels"] <= m)
            right = sum(1 for v in runs if v["correct"] and v["labels"] <= m)
            cells.append(f"{decided}/{len(runs)} ({right} correct)")
        lines.append(f"| {_names(s)[name]} | " + " | ".join(cells) + " |")
    wrong = [
        f"{k} ({rule}: {v['labels']} labels, {v['verdicts']} vs truth {v['truth']})"
        for rule, runs in (("rule", out["runs"]), ("first look", out["first_look_runs"]))
        for k, v in runs.items()
        if v["decided"] and not v["correct"]
    ]
    rhat = [h["diagnostics"]["max_rhat"] for h in out["history"]]
    lines += [
        "",
        "Wrong verdicts: " + ("; ".join(wrong) if wrong else "none") + ".",
        "",
        f"{out['rounds']} rounds (fits), {out['fit_seconds_total']:.0f} s of fitting, "
        f"{out['wall_seconds']:.0f} s wall time; max R-hat per round "
        f"{min(rhat):.3f}–{max(rhat):.3f}.",
        "",
    ]
    path.write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=32)
    parser.add_argument("--start", type=int, default=30)
    parser.add_argument("--batch", type=int, default=45)
    parser.add_argument("--max-labels", type=int, default=3000)
    parser.add_argument(
        "--report-cap",
        type=int,
        default=1200,
        help="Also summarise the same runs as if capped here (0: not).",
    )
    parser.add_argument("--per-cell", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scope", choices=("overall", "both"), default="overall")
    parser.add_argument(
        "--posterior",
        choices=("nuts", "beta"),
        default="nuts",
        help="nuts: the engine (recorded runs); beta: a fast unpooled stand-in for exploring.",
    )
    parser.add_argument(
        "--looks", type=int, default=2, help="Consecutive looks a decision must hold for."
    )
    parser.add_argument(
        "--strategies",
        default=",".join(DEFAULT_STRATEGIES),
        help=f"Comma-separated, from: {', '.join(VARIANTS)}.",
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "next_labels")
    parser.add_argument(
        "--render", type=Path, help="Only re-render the markdown from a saved results JSON."
    )
    parser.add_argument(
        "--merge", type=Path, nargs="+", help="Pool saved results JSONs of different seeds."
    )
    args = parser.parse_args()
    if args.merge:
        out = merge([json.loads(p.read_text()) for p in args.merge])
        args.out.with_suffix(".json").write_text(json.dumps(out, indent=2))
        write_markdown(out, args.out.with_suffix(".md"))
        print(args.out.with_suffix(".md").read_text())
        return
    if args.render is not None:
        write_markdown(json.loads(args.render.read_text()), args.out.with_suffix(".md"))
        print(args.out.with_suffix(".md").read_text())
        return
    global SCOPE, STRATEGIES
    SCOPE = args.scope
    STRATEGIES = tuple(args.strategies.split(","))
    unknown = [st for st in STRATEGIES if st not in VARIANTS]
    if unknown or "random" not in STRATEGIES:
        raise SystemExit(f"--strategies: unknown {unknown} or no random baseline")
    out = run(args)
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in out["settings"].items()}
    out["settings"] = settings
    args.out.with_suffix(".json").write_text(json.dumps(out, indent=2))
    write_markdown(out, args.out.with_suffix(".md"))
    print(args.out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
