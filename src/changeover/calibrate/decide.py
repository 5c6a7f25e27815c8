"""From posterior draws to decisions: rates, contrasts, gate probabilities and verdicts.

Pure functions of arrays. The overall rate of a model is the traffic-weighted mean of its segment
rates; a gate is a non-inferiority condition on the contrast candidate minus incumbent.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from changeover.calibrate.blocks import Block
from changeover.calibrate.diagnostics import Diagnostics
from changeover.calibrate.posterior import Draws
from changeover.errors import StudyError
from changeover.study import Gate, Study

__all__ = [
    "Condition",
    "Contrast",
    "Interval",
    "Result",
    "Verdict",
    "check_gates",
    "decide",
    "gate_holds",
    "summarise",
]

Verdict = Literal["ready", "not-ready", "undecided"]


@dataclass(frozen=True)
class Interval:
    mean: float
    lo: float
    hi: float


@dataclass(frozen=True)
class Contrast:
    mean: float
    lo: float
    hi: float
    p_gate: float
    margin: float
    gated: bool


@dataclass(frozen=True)
class Condition:
    """One gated inequality: a gate, overall or in one segment, for one candidate."""

    gate: str
    candidate: str
    where: str  # "overall" or a segment name
    probability: float  # P(condition holds)
    required: float  # the gate's probability


@dataclass(frozen=True)
class CandidateResult:
    verdict: Verdict
    p_all_gates: float
    reason: str


@dataclass
class Result:
    """Everything `changeover fit` decides; `to_dict()` follows the documented JSON keys."""

    incumbent: str
    rates: dict[str, dict[str, dict[str, dict[str, Any]]]]
    gates: dict[str, dict[str, Any]]
    candidates: dict[str, CandidateResult]
    judge: dict[str, dict[str, dict[str, dict[str, Any]]]]
    diagnostics: Diagnostics
    interval: float
    engine: str
    labels: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    draws: Draws | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "incumbent": self.incumbent,
            "rates": self.rates,
            "gates": self.gates,
            "candidates": {c: asdict(v) for c, v in self.candidates.items()},
            "judge": self.judge,
            "diagnostics": {
                "max_rhat": self.diagnostics.max_rhat,
                "min_ess_bulk": self.diagnostics.min_ess_bulk,
                "divergences": self.diagnostics.divergences,
                "num_chains": self.diagnostics.num_chains,
                "num_samples": self.diagnostics.num_samples,
                "converged": self.diagnostics.is_converged,
            },
            "interval": self.interval,
            "engine": self.engine,
            "labels": self.labels,
            "warnings": self.warnings,
        }

    def to_json(self, *, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)


def summarise(draws: np.ndarray, interval: float = 0.95) -> Interval:
    """Posterior mean and central interval of a vector of draws."""
    tail = (1 - interval) / 2
    lo, hi = np.quantile(draws, [tail, 1 - tail])
    return Interval(float(np.mean(draws)), float(lo), float(hi))


def _interval_dict(draws: np.ndarray, interval: float) -> dict[str, float]:
    return asdict(summarise(draws, interval))


def gate_holds(contrast: np.ndarray, gate: Gate, margin: float) -> np.ndarray:
    """Per draw: does the non-inferiority condition hold?"""
    if gate.better == "higher":
        return contrast > -margin
    return contrast < margin


def check_gates(study: Study, blocks: list[Block]) -> None:
    """Every gate must name a dimension and group that the counts have."""
    keys = {b.key for b in blocks}
    for i, gate in enumerate(study.gates):
        if (gate.dimension, gate.group or "") in keys:
            continue
        groups = sorted(g or "(none)" for d, g in keys if d == gate.dimension)
        if not groups:
            dims = ", ".join(sorted({d for d, _ in keys})) or "none"
            raise StudyError(
                f"gates[{i}] '{gate.name}': the counts have no dimension '{gate.dimension}' "
                f"(they have: {dims}); fix the gate's dimension or add its counts"
            )
        raise StudyError(
            f"gates[{i}] '{gate.name}': dimension '{gate.dimension}' has no group "
            f"'{gate.group or '(none)'}' in the counts (groups: {', '.join(groups)}); "
            "set the gate's group to one of them"
        )


def decide(
    study: Study, draws: Draws, *, interval: float = 0.95, engine: str = "calibration"
) -> Result:
    """Rates, contrasts, gate probabilities and a verdict per candidate."""
    models = list(draws.blocks[0].models) if draws.blocks else study.model_names
    inc = models.index(study.incumbent)
    rates: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}
    judge: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}
    labels: dict[str, dict[str, dict[str, int]]] = {}
    overall_draws: dict[tuple[str, str], np.ndarray] = {}
    for block in draws.blocks:
        theta = draws.theta[block.key]
        w = np.array([study.weights[s] for s in block.segments])
        w = w / w.sum()
        overall = theta @ w  # [D, M]
        overall_draws[block.key] = overall
        per_model = {}
        judge_models = {}
        for m, model in enumerate(models):
            per_model[model] = {
                "overall": _interval_dict(overall[:, m], interval),
                "segments": {
                    s: _interval_dict(theta[:, m, j], interval)
                    for j, s in enumerate(block.segments)
                },
            }
            judge_models[model] = {
                "level_given_pass": {
                    k: _interval_dict(draws.level_given_pass[block.key][:, m, j], interval)
                    for j, k in enumerate(block.levels)
                },
                "level_given_fail": {
                    k: _interval_dict(draws.level_given_fail[block.key][:, m, j], interval)
                    for j, k in enumerate(block.levels)
                },
            }
        rates.setdefault(block.dimension, {})[block.group_key] = per_model
        judge.setdefault(block.dimension, {})[block.group_key] = judge_models
        labels.setdefault(block.dimension, {})[block.group_key] = {
            model: int(block.n_pass[m].sum() + block.n_fail[m].sum())
            for m, model in enumerate(models)
        }

    check_gates(study, draws.blocks)
    block_index = {b.key: i for i, b in enumerate(draws.blocks)}
    gates: dict[str, dict[str, Any]] = {}
    conditions: list[Condition] = []
    holds_all: dict[str, np.ndarray | None] = {c: None for c in study.candidates}
    for gate in study.gates:
        block = draws.blocks[block_index[(gate.dimension, gate.group or "")]]
        theta = draws.theta[block.key]
        overall = overall_draws[block.key]
        required = study.gate_probability(gate)
        contrasts: dict[str, Any] = {}
        for candidate in study.candidates:
            c = models.index(candidate)
            parts: list[tuple[str, np.ndarray, float, bool]] = [
                ("overall", overall[:, c] - overall[:, inc], gate.margin, gate.scope != "segments")
            ]
            for j, segment in enumerate(block.segments):
                parts.append(
                    (
                        segment,
                        theta[:, c, j] - theta[:, inc, j],
                        gate.margin_for_segments,
                        gate.scope != "overall",
                    )
                )
            entry: dict[str, Any] = {"segments": {}}
            for where, diff, margin, gated in parts:
                holds = gate_holds(diff, gate, margin)
                s = summarise(diff, interval)
                value = asdict(Contrast(s.mean, s.lo, s.hi, float(holds.mean()), margin, gated))
                if where == "overall":
                    entry["overall"] = value
                else:
                    entry["segments"][where] = value
                if gated:
                    conditions.append(
                        Condition(gate.name, candidate, where, float(holds.mean()), required)
                    )
                    current = holds_all[candidate]
                    holds_all[candidate] = holds if current is None else (current & holds)
            contrasts[candidate] = entry
        gates[gate.name] = {
            "dimension": gate.dimension,
            "group": gate.group_key,
            "better": gate.better,
            "probability": required,
            "scope": gate.scope,
            "contrasts": contrasts,
        }

    candidates = {
        c: _verdict(c, holds_all[c], [x for x in conditions if x.candidate == c], study)
        for c in study.candidates
    }
    return Result(
        incumbent=study.incumbent,
        rates=rates,
        gates=gates,
        candidates=candidates,
        judge=judge,
        diagnostics=draws.diagnostics,
        interval=interval,
        engine=engine,
        labels=labels,
        draws=draws,
    )


def _where(condition: Condition) -> str:
    return "overall" if condition.where == "overall" else f"in {condition.where}"


def _verdict(
    candidate: str, holds: np.ndarray | None, conditions: list[Condition], study: Study
) -> CandidateResult:
    bar = study.decision.probability
    if holds is None:
        return CandidateResult("undecided", float("nan"), "no gates are defined in the study")
    p_all = float(holds.mean())
    failed = [x for x in conditions if x.probability <= 1 - x.required]
    if failed:
        worst = min(failed, key=lambda x: x.probability)
        return CandidateResult(
            "not-ready",
            p_all,
            f"gate {worst.gate} fails {_where(worst)}: P(holds) = {worst.probability:.3f}",
        )
    if p_all >= bar:
        return CandidateResult(
            "ready",
            p_all,
            f"all {len(conditions)} gate conditions hold jointly with P = {p_all:.3f}",
        )
    weakest = min(conditions, key=lambda x: x.probability)
    return CandidateResult(
        "undecided",
        p_all,
        f"gate {weakest.gate} {_where(weakest)} is unsettled: P(holds) = "
        f"{weakest.probability:.3f}; P(all gates) = {p_all:.3f} < {bar}",
    )
