"""Which responses humans should label next: pure functions of the posterior and the counts.

A label of a response in stratum (model, segment, level) informs that stratum's calibrated
probability q = P(pass | level) directly and, through partial pooling, its neighbours'; it moves
every contrast whose rate uses that stratum. How much is read off the posterior draws:

* `stratum_q` gives, per draw, q for every stratum (the calibration engine's curve, rebuilt
  from the sampled effects; under the error engine Bayes' rule on theta and the judge's error
  rates). Adding a label with outcome y reweights every draw by q^y (1 - q)^(1 - y), exactly.
* The joint covariance over draws of the undecided gate contrasts and the strata's q gives a
  Bayes-linear preposterior: b more labels in stratum j shrink the variance of contrast c by
  Cov(c, q_j)^2 / (Var q_j + E[q_j (1 - q_j)] / b), and move its mean by a normal amount with
  the variance removed (law of total variance). Several strata are handled by rank-one updates,
  so a batch has diminishing returns within a stratum and across correlated strata.
* Each undecided gate condition has a variance at which it would be decided: with its mean
  where it is now, |mean| / sd >= z = Phi^-1(bar) puts P(holds) beyond the bar or below
  1 - bar, i.e. Var* = sd^2 (t / z)^2 with t = Phi^-1(P) (|t| floored at 1, so that a
  contrast sitting on its margin is planned as if one sd away rather than needing infinitely
  many labels). The plan ("target", the default) spends the budget greedily on the stratum
  that most reduces the summed relative excess sum_c max(Var_c / Var*_c - 1, 0): each
  condition's variance is measured in units of its own decision variance, so a condition far
  from a decision weighs more than a nearly settled one, the incumbent's labels count for
  every contrast they move, and a condition stops drawing labels once the batch is expected
  to bring it to its decision variance (a greedy path towards the fewest labels that bring
  every condition there). Budget left when every target
  is met (and a confirming batch for decided candidates, whose targets are already met) goes
  by the wrong-verdict risk below, which is what a confirmation should test.
* "risk" (the earlier default): a condition with posterior probability P of holding would be
  decided wrongly with probability min(P, 1 - P) if it had to be decided now; its expected
  value after the batch is a Gauss-Hermite integral over the preposterior mean shift, and the
  budget goes greedily to the largest expected reduction of that risk summed over conditions.
  "decide" (the expected number of conditions still undecided after the batch, closed form)
  and "target-log" (log excess) are kept for the benchmark; docs/next.md has the comparison.

Optionally (`min_per_cell`, off by default), before the greedy search every model x segment
cell of a model that an undecided condition compares (the candidate and the incumbent) is
brought up to `min_per_cell` labels, fewest-labelled cells first, spread over the cell's levels
in proportion to its unlabelled responses (a stratified random sample): a guard against a
lucky start that makes a candidate look settled on a handful of labels. In the next_labels
benchmark a floor of 8 cost about 5 points of label saving and prevented no wrong verdict, so
it is not the default (docs/next.md).

Responses are then drawn at random within the chosen strata: the choice depends only on
observed data (model, segment, level, earlier labels), so the likelihood stays valid.
Before any labels exist (or when the engine refuses to fit), `stratified_start` spreads the
budget evenly over the model x segment cells of every dimension (`spread`, which the label
queue's random start uses too).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import ConfigDict, field_serializer, field_validator
from pydantic.dataclasses import dataclass as record
from scipy.special import ndtr, ndtri

from changeover.calibrate.blocks import Block
from changeover.calibrate.decide import Result
from changeover.calibrate.posterior import Draws
from changeover.study import Study

__all__ = [
    "NextPlan",
    "Pick",
    "PlanRequest",
    "StratumPick",
    "available_per_stratum",
    "choose_responses",
    "plan_labels",
    "plan_next",
    "spread",
    "stratified_start",
    "stratum_q",
    "unlabelled_responses",
]

Mode = Literal["targeted", "stratified-start", "nothing-to-do", "unconverged"]
Objective = Literal["target", "risk", "decide", "target-log"]
OBJECTIVES: tuple[Objective, ...] = ("target", "risk", "decide", "target-log")
StratumKey = tuple[str, str]  # (dimension, group) of a block

_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(40)
_WEIGHTS = _WEIGHTS / _WEIGHTS.sum()


#: Plan records are written into the report document (NaN risks of a stratified start kept).
_CONFIG = ConfigDict(ser_json_inf_nan="constants")


@record(frozen=True, config=_CONFIG)
class StratumPick:
    """Label `n` responses drawn at random from one stratum (level None: any level).

    `group` is empty where the dimension has none (written "all", as everywhere in results)."""

    dimension: str
    group: str
    model: str
    segment: str
    level: str | None
    n: int
    gain: float  # expected reduction of the summed wrong-verdict risk due to these labels
    reason: str
    aim: str = ""  # the gate condition the labels help most (the reason without the stratum's)

    @property
    def detail(self) -> str:
        """What the reason says beyond its aim (the stratum's own P(pass | level))."""
        if self.aim and self.reason.startswith(self.aim):
            return self.reason[len(self.aim) :].lstrip("; ")
        return ""

    @field_serializer("group")
    def _write_group(self, group: str) -> str:
        return group or "all"

    @field_validator("group", mode="before")
    @classmethod
    def _read_group(cls, group: Any) -> Any:
        return "" if group == "all" else group


@record(frozen=True, config=_CONFIG)
class NextPlan:
    """What to label next and why (a typed record, written into the report document)."""

    mode: Mode
    picks: tuple[StratumPick, ...]
    budget: int
    risk: float  # sum over undecided gate conditions of min(P, 1 - P), now
    expected_risk: float  # its expected value once the picks are labelled
    undecided: tuple[str, ...]
    message: str

    @property
    def n_labels(self) -> int:
        return sum(p.n for p in self.picks)

    @property
    def expected_gain(self) -> float:
        return self.risk - self.expected_risk

    def by_reason(self) -> list[tuple[str, list[StratumPick]]]:
        """The picks grouped by what they are for (the condition they help, else the reason),
        in plan order: each said once."""
        groups: dict[str, list[StratumPick]] = {}
        for pick in self.picks:
            groups.setdefault(pick.aim or pick.reason, []).append(pick)
        return list(groups.items())


@dataclass(frozen=True)
class Pick:
    """One response to label, as written to the queue and to CSV."""

    item_id: str
    model: str
    dimension: str
    segment: str
    level: str
    priority: float
    reason: str


def _calibration_q(draws: Draws) -> dict[StratumKey, np.ndarray] | None:
    """Rebuild q [D, M, S, K] per block from the calibration engine's sampled effects."""
    post = draws.posterior
    if post is None or not all(name in post for name in ("mu", "sd", "z")):
        return None
    from changeover.calibrate.model import calibration_curve

    mu, sd, z = (np.asarray(post[name]) for name in ("mu", "sd", "z"))  # [C, D, B, ...]
    mu, sd, z = (a.reshape(-1, *a.shape[2:]) for a in (mu, sd, z))
    n_models = len(draws.blocks[0].models)
    n_segments = max(len(b.segments) for b in draws.blocks)
    if mu.shape[1] != len(draws.blocks):
        return None
    try:
        eta = calibration_curve(mu, sd, z, n_models, n_segments)  # [D, B, M, S, K]
    except (IndexError, ValueError):  # a layout this version does not know: fall back
        return None
    q = 1.0 / (1.0 + np.exp(-eta))
    out = {}
    for i, block in enumerate(draws.blocks):
        _, bs, bk = block.n_all.shape
        out[block.key] = q[:, i, :, :bs, :bk]
    return out


def stratum_q(draws: Draws) -> dict[StratumKey, np.ndarray]:
    """Per draw, P(pass | level) for every stratum of every block: [D, M, S, K].

    Aligned with `draws.theta` draw for draw. Under the calibration engine it is the sampled
    calibration curve; otherwise (or without the sampled effects) Bayes' rule on the cell's rate
    and the judge's per-model error rates, theta·P(k|pass) / P(k).
    """
    rebuilt = _calibration_q(draws)
    if rebuilt is not None and all(
        rebuilt[b.key].shape[0] == draws.theta[b.key].shape[0] for b in draws.blocks
    ):
        return rebuilt
    out = {}
    for block in draws.blocks:
        theta = draws.theta[block.key][..., None]  # [D, M, S, 1]
        lp = draws.level_given_pass[block.key][:, :, None, :]  # [D, M, 1, K]
        lf = draws.level_given_fail[block.key][:, :, None, :]
        joint = theta * lp
        out[block.key] = joint / np.maximum(joint + (1 - theta) * lf, 1e-12)
    return out


@dataclass
class _Condition:
    candidate: str
    gate: str
    where: str
    probability: float
    required: float  # the probability at which the condition counts as settled
    draws: np.ndarray  # contrast draws, signed so that larger is better


def _conditions(
    study: Study, result: Result, draws: Draws, targets: set[str]
) -> dict[StratumKey, list[_Condition]]:
    """Every gated condition of every target candidate, with its contrast draws, by block."""
    models = list(draws.blocks[0].models)
    inc = models.index(study.incumbent)
    by_key = {b.key: b for b in draws.blocks}
    out: dict[StratumKey, list[_Condition]] = {}
    for gate in study.quality_gates:  # labels settle no gate on cost or latency
        key = (gate.dimension, gate.group or "")
        block = by_key[key]
        theta = draws.theta[key]
        w = np.array([study.weights[s] for s in block.segments])
        overall = theta @ (w / w.sum())
        sign = 1.0 if gate.better == "higher" else -1.0
        for candidate in study.candidates:
            if candidate not in targets:
                continue
            c = models.index(candidate)
            entry = result.gates[gate.name].contrasts[candidate]
            parts = [("overall", overall[:, c] - overall[:, inc], entry.overall)]
            parts += [
                (s, theta[:, c, j] - theta[:, inc, j], entry.segments[s])
                for j, s in enumerate(block.segments)
            ]
            for where, diff, summary in parts:
                if not summary.gated:
                    continue
                out.setdefault(key, []).append(
                    _Condition(
                        candidate,
                        gate.name,
                        where,
                        summary.p_gate,
                        study.gate_probability(gate),
                        sign * diff,
                    )
                )
    return out


def _open_on_measures_only(study: Study, result: Result, candidate: str) -> bool:
    """Whether every unsettled condition of the candidate is on cost or latency (so that no
    label can settle its verdict)."""
    measures = {gate.name for gate in study.gates if gate.measure is not None}
    unsettled = result.candidates[candidate].in_state("unsettled")
    return bool(unsettled) and all(c.gate in measures for c in unsettled)


def _risk(t: np.ndarray, sd0: np.ndarray, sd1: np.ndarray) -> np.ndarray:
    """E[min(P', 1 - P')] after a batch that shrinks a contrast's sd from sd0 to sd1.

    `t` = Phi^-1(P) now; the posterior mean moves by N(0, sd0^2 - sd1^2) (shapes broadcast)."""
    sd1 = np.maximum(sd1, 1e-12)
    tau = np.sqrt(np.maximum(sd0**2 - sd1**2, 0.0))
    shifted = (t[..., None] * sd0[..., None] + tau[..., None] * _NODES) / sd1[..., None]
    return (ndtr(-np.abs(shifted)) * _WEIGHTS).sum(-1)


def _undecided(t: np.ndarray, sd0: np.ndarray, sd1: np.ndarray, z: np.ndarray) -> np.ndarray:
    """P(still undecided) after a batch that shrinks a contrast's sd from sd0 to sd1.

    Decided means |mean'| / sd1 >= z (P' >= bar or <= 1 - bar); mean' ~ N(t sd0, sd0^2 - sd1^2)."""
    sd1 = np.maximum(sd1, 1e-12)
    tau = np.sqrt(np.maximum(sd0**2 - sd1**2, 1e-24))
    m = np.abs(t) * sd0
    return 1.0 - ndtr((m - z * sd1) / tau) - ndtr((-m - z * sd1) / tau)


def _excess(var: np.ndarray, target: np.ndarray, kind: str) -> np.ndarray:
    """How far a contrast's variance is above the variance at which it would be decided."""
    if kind == "log":
        return np.maximum(np.log(var / target), 0.0)
    return np.maximum(var / target - 1.0, 0.0)


@dataclass
class _BlockState:
    block: Block
    conditions: list[_Condition]
    t: np.ndarray  # [C]
    sd0: np.ndarray  # [C]
    cov_cc: np.ndarray  # [C] current variance of each contrast (diagonal is all we need)
    cov_cj: np.ndarray  # [C, J]
    cov_jj: np.ndarray  # [J, J]
    noise: np.ndarray  # [J] E[q (1 - q)]
    q_mean: np.ndarray  # [J]
    q_sd: np.ndarray  # [J]
    capacity: np.ndarray  # [J] unlabelled responses left
    taken: np.ndarray  # [J] labels planned
    z: np.ndarray  # [C] Phi^-1 of the probability that settles each condition
    target: np.ndarray  # [C] variance at which each condition would be decided

    def risk_now(self) -> float:
        return float(_risk(self.t, self.sd0, np.sqrt(self.cov_cc)).sum())

    def value(self, var: np.ndarray, objective: Objective) -> np.ndarray:
        """The objective (lower is better) at contrast variances `var` ([C, ...]), summed."""
        t = self.t.reshape(-1, *([1] * (var.ndim - 1)))
        sd0 = self.sd0.reshape(t.shape)
        if objective == "risk":
            return _risk(
                np.broadcast_to(t, var.shape), np.broadcast_to(sd0, var.shape), np.sqrt(var)
            ).sum(0)
        if objective == "decide":
            return _undecided(t, sd0, np.sqrt(var), self.z.reshape(t.shape)).sum(0)
        kind = "log" if objective == "target-log" else "linear"
        return _excess(var, self.target.reshape(t.shape), kind).sum(0)

    def gains(self, step: int, objective: Objective) -> tuple[np.ndarray, np.ndarray]:
        """Expected objective reduction per stratum for `step` more labels, and batch sizes."""
        b = np.minimum(step, self.capacity - self.taken).astype(float)
        ok = b > 0
        denom = np.diag(self.cov_jj) + self.noise / np.maximum(b, 1)
        new_var = self.cov_cc[:, None] - self.cov_cj**2 / np.maximum(denom, 1e-15)[None, :]
        new_var = np.maximum(new_var, 1e-15)
        now = self.value(self.cov_cc, objective)
        gain = np.where(ok, now - self.value(new_var, objective), -np.inf)
        return gain, b

    def add(self, j: int, b: int) -> None:
        denom = self.cov_jj[j, j] + self.noise[j] / b
        cj = self.cov_cj[:, j].copy()
        jj = self.cov_jj[:, j].copy()
        self.cov_cc = np.maximum(self.cov_cc - cj**2 / denom, 1e-15)
        self.cov_cj = self.cov_cj - np.outer(cj, jj) / denom
        self.cov_jj = self.cov_jj - np.outer(jj, jj) / denom
        self.taken[j] += b

    def why(self, j: int, b: int) -> tuple[str, str]:
        """The condition this stratum helps most, and the reason in full (with the stratum's
        P(pass | level))."""
        denom = self.cov_jj[j, j] + self.noise[j] / b
        new_sd = np.sqrt(np.maximum(self.cov_cc - self.cov_cj[:, j] ** 2 / denom, 1e-15))
        per = _risk(self.t, self.sd0, np.sqrt(self.cov_cc)) - _risk(self.t, self.sd0, new_sd)
        c = self.conditions[int(np.argmax(per))]
        where = "overall" if c.where == "overall" else f"in {c.where}"
        aim = f"{c.candidate}: gate {c.gate} {where} P(holds) = {c.probability:.2f}"
        return aim, f"{aim}; P(pass | level) here is {self.q_mean[j]:.2f} ± {self.q_sd[j]:.2f}"


def _capacity(block: Block, available: dict[StratumKey, np.ndarray] | None) -> np.ndarray:
    unlabelled = block.n_all - block.n_pass - block.n_fail
    if available is not None and block.key in available:
        unlabelled = np.minimum(unlabelled, available[block.key])
    return np.maximum(np.rint(unlabelled), 0).astype(int)


def _proportional(n: int, capacity: np.ndarray) -> np.ndarray:
    """Split n over strata in proportion to their capacity (largest remainder), within it."""
    n = int(min(n, capacity.sum()))
    if n <= 0:
        return np.zeros_like(capacity)
    exact = n * capacity / capacity.sum()
    out = np.floor(exact).astype(int)
    for j in np.argsort(-(exact - out), kind="stable")[: n - out.sum()]:
        out[j] += 1
    return np.minimum(out, capacity)


def _coverage(
    states: list[_BlockState], incumbent: str, min_per_cell: int, budget: int
) -> list[tuple[int, int, int]]:
    """Labels that bring every compared model x segment cell up to `min_per_cell`, fewest first.

    Returns (state, stratum, labels) triples; each cell's share is spread over its levels in
    proportion to the unlabelled responses (a stratified random sample of the cell)."""
    labelled: dict[tuple[int, int, int], int] = {}
    room: dict[tuple[int, int, int], int] = {}
    for i, state in enumerate(states):
        block = state.block
        compared = {incumbent, *(c.candidate for c in state.conditions)}
        per_cell = (block.n_pass + block.n_fail).sum(-1)  # [M, S]
        cap = (state.capacity - state.taken).reshape(block.n_all.shape).sum(-1)
        for m, model in enumerate(block.models):
            if model not in compared:
                continue
            for s in range(len(block.segments)):
                if per_cell[m, s] < min_per_cell and cap[m, s] > 0:
                    labelled[(i, m, s)] = int(round(per_cell[m, s]))
                    room[(i, m, s)] = int(cap[m, s])
    given = dict.fromkeys(labelled, 0)
    left = budget
    while left > 0:
        open_cells = [
            c for c in labelled if labelled[c] + given[c] < min_per_cell and given[c] < room[c]
        ]
        if not open_cells:
            break
        cell = min(open_cells, key=lambda c: (labelled[c] + given[c], c))
        given[cell] += 1
        left -= 1
    out = []
    for (i, m, s), n in given.items():
        if n == 0:
            continue
        state = states[i]
        shape = state.block.n_all.shape
        js = [int(np.ravel_multi_index((m, s, k), shape)) for k in range(shape[2])]
        split = _proportional(n, (state.capacity - state.taken)[js])
        out += [(i, j, int(b)) for j, b in zip(js, split, strict=True) if b > 0]
    return out


def plan_next(
    study: Study,
    result: Result,
    budget: int,
    *,
    available: dict[StratumKey, np.ndarray] | None = None,
    dimensions: list[str] | None = None,
    step: int | None = None,
    q: dict[StratumKey, np.ndarray] | None = None,
    candidates: Sequence[str] | None = None,
    min_per_cell: int = 0,
    objective: Objective = "target",
    t_floor: float = 1.0,
) -> NextPlan:
    """Choose up to `budget` labels, by stratum, that bring the undecided verdicts closest to
    being decided (objective "target"; "risk": that most reduce the risk of a wrong verdict).

    `available` caps the responses that may be drawn per stratum ([M, S, K] per block, e.g.
    unlabelled and not yet queued); by default every unlabelled response counts. `dimensions`
    restricts the labels to those dimensions. `step` labels are added per greedy step (default:
    about 1/60 of the budget, at least 1), which keeps large budgets fast. `q` passes
    `stratum_q(result.draws)` when it is already computed. `candidates` plans for these
    candidates whatever their verdict (default: the undecided ones), e.g. to confirm a verdict
    with one more batch. With `min_per_cell` > 0, every model x segment cell that a planned
    condition compares is first brought up to that many labels, fewest-labelled first.
    `t_floor` is the smallest |Phi^-1(P)| a condition is planned with under "target".
    """
    if budget < 1:
        raise ValueError("budget must be at least 1")
    if min_per_cell < 0:
        raise ValueError("min_per_cell must be at least 0")
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}, not {objective!r}")
    if t_floor <= 0:
        raise ValueError("t_floor must be positive")
    draws = result.draws
    if draws is None:
        raise ValueError("the result carries no posterior draws; fit with changeover.fit")
    if candidates is None:
        undecided = tuple(c for c, v in result.candidates.items() if v.verdict == "undecided")
        measured_only = [c for c in undecided if _open_on_measures_only(study, result, c)]
        undecided = tuple(c for c in undecided if c not in measured_only)
        if measured_only and not undecided:
            return NextPlan(
                "nothing-to-do",
                (),
                budget,
                0.0,
                0.0,
                (),
                f"{', '.join(measured_only)} undecided only on gates on cost or latency, which "
                "labels do not settle (see the why of each verdict)",
            )
    else:
        unknown = [c for c in candidates if c not in result.candidates]
        if unknown:
            raise ValueError(f"not a candidate of the study: {', '.join(unknown)}")
        undecided = tuple(c for c in result.candidates if c in candidates)
    if not undecided:
        verdicts = ", ".join(f"{c} {v.verdict}" for c, v in result.candidates.items())
        return NextPlan(
            "nothing-to-do",
            (),
            budget,
            0.0,
            0.0,
            (),
            f"every candidate is decided ({verdicts}); no label is needed to settle a verdict",
        )
    conditions = _conditions(study, result, draws, set(undecided))
    q_all = q if q is not None else stratum_q(draws)
    states: list[_BlockState] = []
    for block in draws.blocks:
        conds = conditions.get(block.key, [])
        if not conds or (dimensions and block.dimension not in dimensions):
            continue
        qd = q_all[block.key].reshape(q_all[block.key].shape[0], -1)  # [D, J]
        contrasts = np.stack([c.draws for c in conds], axis=1)  # [D, C]
        n_draws = contrasts.shape[0]
        qc = qd - qd.mean(0)
        cc = contrasts - contrasts.mean(0)
        sd0 = cc.std(0)
        p = np.clip([c.probability for c in conds], 0.5 / n_draws, 1 - 0.5 / n_draws)
        z = ndtri(np.array([c.required for c in conds]))
        t = ndtri(p)
        sd0 = np.maximum(sd0, 1e-12)
        states.append(
            _BlockState(
                block=block,
                conditions=conds,
                t=t,
                sd0=sd0,
                cov_cc=np.maximum(sd0**2, 1e-24),
                cov_cj=cc.T @ qc / n_draws,
                cov_jj=qc.T @ qc / n_draws,
                noise=(qd * (1 - qd)).mean(0),
                q_mean=qd.mean(0),
                q_sd=qd.std(0),
                capacity=_capacity(block, available).reshape(-1),
                taken=np.zeros(qd.shape[1], dtype=int),
                z=z,
                target=(sd0 * np.maximum(np.abs(t), t_floor) / z) ** 2,
            )
        )
    risk0 = float(sum(s.risk_now() for s in states))
    step = step or max(1, round(budget / 60))
    left = budget
    reasons: dict[tuple[int, int], str] = {}
    helped: dict[tuple[int, int], str] = {}  # the condition a stratum helps, where one is named
    gains: dict[tuple[int, int], float] = {}
    order: list[tuple[int, int]] = []
    for i, j, b in _coverage(states, study.incumbent, min_per_cell, budget):
        state = states[i]
        before = state.risk_now()
        if (i, j) not in reasons:
            m, s, _ = np.unravel_index(j, state.block.n_all.shape)
            have = (state.block.n_pass + state.block.n_fail)[m, s].sum()
            reasons[(i, j)] = (
                f"coverage: {state.block.models[m]} in {state.block.segments[s]} has "
                f"{have:.0f} labels, fewer than the {min_per_cell} a cell gets before its "
                "calibration is left to pooling; a stratified random sample of the cell"
            )
            order.append((i, j))
        state.add(j, b)
        gains[(i, j)] = gains.get((i, j), 0.0) + max(before - state.risk_now(), 0.0)
        left -= b
    while left > 0 and states:
        best: tuple[float, int, int, int] | None = None
        aims: tuple[Objective, ...] = (objective, "risk") if objective != "risk" else ("risk",)
        for aim in aims:
            best = None
            for i, state in enumerate(states):
                by_stratum, sizes = state.gains(min(step, left), aim)
                j = int(np.argmax(by_stratum))
                if np.isfinite(by_stratum[j]) and (best is None or by_stratum[j] > best[0]):
                    best = (float(by_stratum[j]), i, j, int(sizes[j]))
            if best is not None and best[0] > 1e-9:
                break
        if best is None:
            break
        _, i, j, b = best
        if (i, j) not in reasons:
            helped[(i, j)], reasons[(i, j)] = states[i].why(j, b)
            order.append((i, j))
        before = states[i].risk_now()
        states[i].add(j, b)
        gains[(i, j)] = gains.get((i, j), 0.0) + max(before - states[i].risk_now(), 0.0)
        left -= b
    picks = []
    for i, j in sorted(order, key=lambda ij: -gains[ij]):
        block = states[i].block
        m, s, k = np.unravel_index(j, block.n_all.shape)
        picks.append(
            StratumPick(
                block.dimension,
                block.group,
                block.models[m],
                block.segments[s],
                block.levels[k],
                int(states[i].taken[j]),
                gains[(i, j)],
                reasons[(i, j)],
                helped.get((i, j), ""),
            )
        )
    risk1 = float(sum(s.risk_now() for s in states))
    n = sum(p.n for p in picks)
    if not picks:
        message = (
            f"{', '.join(undecided)} undecided, but no unlabelled response is left in any "
            "stratum that bears on their gates"
        )
    else:
        message = (
            f"{n} labels in {len(picks)} strata for {', '.join(undecided)}: expected wrong-verdict "
            f"risk {risk0:.3f} → {risk1:.3f} (summed over undecided gate conditions)"
        )
        if n < budget:
            message += f"; only {n} of the {budget} asked for are available"
    return NextPlan("targeted", tuple(picks), budget, risk0, risk1, undecided, message)


def spread(budget: int, capacity: Sequence[int], rng: np.random.Generator) -> np.ndarray:
    """How many of `budget` to take from each cell, as evenly as the cells' `capacity` allows:
    one at a time, round-robin over the cells in a random order, never more than a cell holds.

    The one stratified random start: `stratified_start` spreads labels over model x segment
    cells with it, and so does the label queue's random start (`changeover queue --random`)."""
    if budget < 0:
        raise ValueError("budget must not be negative")
    cap = np.asarray(capacity, dtype=int)
    taken = np.zeros(len(cap), dtype=int)
    order = rng.permutation(len(cap))
    left = int(min(budget, cap.clip(min=0).sum()))
    while left > 0:
        open_cells = order[taken[order] < cap[order]][:left]
        taken[open_cells] += 1
        left -= len(open_cells)
    return taken


def stratified_start(
    blocks: list[Block],
    budget: int,
    *,
    seed: int = 0,
    available: dict[StratumKey, np.ndarray] | None = None,
    reason: str = "no labels yet: a stratified random start across model x segment cells",
) -> NextPlan:
    """Spread `budget` labels evenly over every block's model x segment cells (`spread`), any
    level: the start `plan_next` needs before the judge can be calibrated."""
    if budget < 1:
        raise ValueError("budget must be at least 1")
    cells = []
    capacity = []
    for block in blocks:
        cap = _capacity(block, available).sum(-1)  # [M, S]
        for m in range(cap.shape[0]):
            for s in range(cap.shape[1]):
                if cap[m, s] > 0:
                    cells.append((block, m, s))
                    capacity.append(int(cap[m, s]))
    taken = spread(budget, capacity, np.random.default_rng(seed))
    picks = tuple(
        StratumPick(
            block.dimension,
            block.group,
            block.models[m],
            block.segments[s],
            None,
            int(n),
            0.0,
            reason,
        )
        for (block, m, s), n in zip(cells, taken, strict=True)
        if n > 0
    )
    n = sum(p.n for p in picks)
    message = f"{n} labels spread over {len(picks)} model x segment cells ({reason})"
    if n < budget:
        message += f"; only {n} of the {budget} asked for are available"
    return NextPlan("stratified-start", picks, budget, float("nan"), float("nan"), (), message)


def choose_responses(plan: NextPlan, unlabelled: pl.DataFrame, *, seed: int = 0) -> list[Pick]:
    """Draw the plan's responses uniformly at random within each stratum.

    `unlabelled` has one row per response that may be labelled: `item_id, model, segment,
    group, dimension, level`. A stratum with fewer rows than planned gives what it has.
    Priority: the stratum's expected gain per label (higher first); 1 in a stratified start.
    """
    rng = np.random.default_rng(seed)
    frame = unlabelled.with_columns(pl.col("group").fill_null(""))
    out: list[Pick] = []
    seen: set[tuple[str, str, str]] = set()
    for pick in plan.picks:
        cond = (
            (pl.col("dimension") == pick.dimension)
            & (pl.col("group") == pick.group)
            & (pl.col("model") == pick.model)
            & (pl.col("segment") == pick.segment)
        )
        if pick.level is not None:
            cond = cond & (pl.col("level") == pick.level)
        rows = frame.filter(cond).sort("item_id").unique(["item_id"], maintain_order=True)
        rows = rows.filter(
            ~pl.struct("item_id", "model", "dimension").is_in(
                [{"item_id": i, "model": m, "dimension": d} for i, m, d in seen]
            )
            if seen
            else pl.lit(True)
        )
        chosen = rng.permutation(rows.height)[: pick.n]
        priority = pick.gain / pick.n if plan.mode == "targeted" else 1.0
        for r in chosen:
            row = rows.row(int(r), named=True)
            seen.add((row["item_id"], row["model"], row["dimension"]))
            out.append(
                Pick(
                    row["item_id"],
                    row["model"],
                    row["dimension"],
                    row["segment"],
                    row["level"],
                    round(float(priority), 6),
                    pick.reason,
                )
            )
    return out


def unlabelled_responses(rows: pl.DataFrame, queued: set[tuple[str, str, str]]) -> pl.DataFrame:
    """Responses (per dimension) with no human label that are not already queued: what `next`
    may pick from. `rows` are per-response rows (`changeover.counts.workspace_rows`)."""
    keys = ["item_id", "model", "dimension"]
    labelled = rows.filter(pl.col("human").is_not_null()).select(keys).unique()
    out = rows.filter(pl.col("human").is_null()).join(labelled, on=keys, how="anti")
    out = out.unique(keys, maintain_order=True).with_columns(pl.col("group").fill_null(""))
    if queued:
        taken = pl.DataFrame(
            list(queued), schema={k: pl.String for k in keys}, orient="row"
        ).with_columns(pl.col(k).cast(out.schema[k]) for k in keys)
        out = out.join(taken, on=keys, how="anti")
    return out


def available_per_stratum(
    blocks: list[Block], unlabelled: pl.DataFrame
) -> dict[StratumKey, np.ndarray]:
    """How many responses each stratum can still give ([M, S, K] per block), for `plan_next`."""
    grouped = unlabelled.group_by("dimension", "group", "model", "segment", "level").len()
    out = {}
    for block in blocks:
        arr = np.zeros(block.n_all.shape)
        part = grouped.filter(
            (pl.col("dimension") == block.dimension) & (pl.col("group") == block.group)
        )
        for _, _, model, segment, level, n in part.iter_rows():
            if model in block.models and segment in block.segments and level in block.levels:
                arr[
                    block.models.index(model),
                    block.segments.index(segment),
                    block.levels.index(level),
                ] = n
        out[block.key] = arr
    return out


@dataclass(frozen=True)
class PlanRequest:
    """What a label plan is asked for: `budget` labels, of one `dimension` (None: any), and with
    `confirm` a confirming batch for every candidate, decided or not."""

    budget: int = 100
    dimension: str | None = None
    confirm: bool = False


def plan_labels(
    study: Study,
    result: Result | None,
    blocks: list[Block],
    request: PlanRequest,
    *,
    available: dict[StratumKey, np.ndarray] | None = None,
    seed: int = 0,
) -> NextPlan:
    """The plan `changeover next`, `run` and `report` share.

    Without a result (a dimension has no label yet, so nothing is calibrated), a stratified
    random start over the dimensions that have none. From a fit that did not converge, no plan
    settles what the fit cannot be trusted to have decided: when every candidate looks decided
    the plan says the verdicts are provisional instead (mode "unconverged"). Otherwise
    `plan_next`, for the undecided candidates (every candidate with `confirm`).
    """
    chosen = [b for b in blocks if request.dimension is None or b.dimension == request.dimension]
    if result is None:
        unlabelled = [b for b in chosen if b.n_labels == 0] or chosen
        return stratified_start(unlabelled, request.budget, seed=seed, available=available)
    diagnostics = result.diagnostics
    undecided = [c for c, v in result.candidates.items() if v.verdict == "undecided"]
    if not diagnostics.converged and not undecided and not request.confirm:
        verdicts = ", ".join(f"{c} {v.verdict}" for c, v in result.candidates.items())
        message = (
            f"the fit did not converge ({'; '.join(diagnostics.problems())}), so its verdicts "
            f"({verdicts}) are provisional and no label is planned from them; sample longer "
            "(more draws) and look again"
        )
        nan = float("nan")
        return NextPlan("unconverged", (), request.budget, nan, nan, (), message)
    return plan_next(
        study,
        result,
        request.budget,
        available=available,
        dimensions=None if request.dimension is None else [request.dimension],
        candidates=study.candidates if request.confirm else None,
    )
