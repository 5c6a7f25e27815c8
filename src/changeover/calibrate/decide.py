"""From posterior draws to decisions: rates, contrasts, gate probabilities and verdicts.

Pure functions of arrays, returning typed records (pydantic) that stay typed until JSON is
written. The overall rate of a model is the traffic-weighted mean of its segment rates; a gate
is a non-inferiority condition on the contrast candidate minus incumbent.

A gate on cost or latency is decided from the bootstrap draws of `calibrate.operations`, not from
the posterior. The two sources are independent (labels and signals say nothing about tokens and
seconds, and the reverse), so a candidate's P(all gates) is the product of P(all quality gates
jointly), from the posterior draws, and P(all cost and latency gates jointly), from the bootstrap
draws (those gates share each draw, so their own dependence is kept). A gate whose measure is
missing is unsettled, never passed, and P(all gates) is then unknown (NaN).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, InstanceOf

from changeover.calibrate.blocks import Block
from changeover.calibrate.diagnostics import Diagnostics
from changeover.calibrate.operations import OperationalDraws, format_measure, measure_label
from changeover.calibrate.posterior import Draws
from changeover.calibrate.settings import Engine
from changeover.errors import StudyError
from changeover.study import MEASURES, Better, Gate, Measure, Scope, Study, as_measure

__all__ = [
    "CandidateContrasts",
    "CandidateResult",
    "Condition",
    "Contrast",
    "ErrorModel",
    "GateResult",
    "Interval",
    "Measured",
    "ModelRates",
    "Rates",
    "Record",
    "Result",
    "State",
    "Verdict",
    "check_gates",
    "condition_state",
    "decide",
    "gate_holds",
    "summarise",
]

Verdict = Literal["ready", "not-ready", "undecided"]
#: Where a gate condition stands: held (P >= the gate's probability), failed (P <= 1 - it),
#: unsettled in between, or not gated (shown, but not counted by the gate's scope).
State = Literal["held", "failed", "unsettled", "not gated"]


class Record(BaseModel):
    """A frozen, typed part of a result. Unknown keys are errors, so that a file written by
    another version is refitted rather than misread; NaN is written as JSON's `NaN`."""

    model_config = ConfigDict(frozen=True, extra="forbid", ser_json_inf_nan="constants")


class Interval(Record):
    """A posterior mean and central interval."""

    mean: float
    lo: float
    hi: float


class Contrast(Interval):
    """Candidate minus incumbent, overall or in one segment, and its gate condition. On a cost
    or latency gate: the measured difference (candidate / incumbent - 1 when relative) with a
    bootstrap interval, and a `note` that says it in words (or why it is not measured: then the
    numbers are NaN)."""

    p_gate: float  # P(the condition holds)
    margin: float
    gated: bool  # whether the condition counts for the verdict (the gate's scope)
    state: State
    note: str | None = None


class ModelRates(Record):
    """One model's rate on one dimension (and group): overall (traffic-weighted) and per
    segment."""

    overall: Interval
    segments: dict[str, Interval]


class ErrorModel(Record):
    """How the signal behaves on one model given the human verdict: P(level | pass) and
    P(level | fail)."""

    level_given_pass: dict[str, Interval]
    level_given_fail: dict[str, Interval]


class CandidateContrasts(Record):
    """One candidate's contrasts on one gate."""

    overall: Contrast
    segments: dict[str, Contrast]

    def places(self) -> list[tuple[str, Contrast]]:
        """("overall", contrast) first, then one per segment."""
        return [("overall", self.overall), *self.segments.items()]


class GateResult(Record):
    """A gate as decided: its settings and every candidate's contrasts."""

    dimension: str
    group: str  # the gate's group, or "all"
    better: Better
    probability: float  # the probability at which a condition holds
    scope: Scope
    contrasts: dict[str, CandidateContrasts]
    relative: bool = False  # a cost or latency gate whose margin is a fraction of the incumbent

    @property
    def measure(self) -> Measure | None:
        """The cost or latency measure of the gate, or None for a quality dimension."""
        return as_measure(self.dimension)


class Condition(Record):
    """One gated inequality of a candidate: a gate, overall or in one segment."""

    gate: str
    where: str  # "overall" or a segment name
    probability: float  # P(the condition holds)
    required: float  # the gate's probability
    state: State
    note: str | None = None  # a cost or latency gate's figures, or why it is not measured

    @property
    def place(self) -> str:
        """ "overall" or "in <segment>", as a sentence says it."""
        return "overall" if self.where == "overall" else f"in {self.where}"


class CandidateResult(Record):
    """A candidate's verdict, the joint probability of its gates, why, and every gated
    condition (in the study's gate order)."""

    verdict: Verdict
    p_all_gates: float
    reason: str
    conditions: list[Condition] = Field(default_factory=list)

    def in_state(self, state: State) -> list[Condition]:
        """The conditions in one state, least likely to hold first (unmeasured ones first)."""
        return sorted(
            (c for c in self.conditions if c.state == state),
            key=lambda c: -1.0 if c.probability != c.probability else c.probability,
        )


class Measured(Record):
    """A model's cost per 1,000 interactions (US dollars) or latency (seconds) at the traffic
    mix: the estimate from every measured response, a bootstrap interval, and how many responses
    it rests on; when not measured the values are None and `missing` says why."""

    value: float | None
    lo: float | None
    hi: float | None
    responses: int
    missing: str | None = None


#: Per dimension, group ("all" when none) and model.
Rates = dict[str, dict[str, dict[str, ModelRates]]]
#: Per measure (cost, latency_p50, latency_p95) and model.
Operations = dict[Measure, dict[str, Measured]]


class Result(Record):
    """Everything `changeover fit` decides. `to_json()` writes the documented keys
    (docs/engine.md); the posterior draws travel along for planning but are never written."""

    incumbent: str
    rates: Rates
    gates: dict[str, GateResult]
    candidates: dict[str, CandidateResult]
    judge: dict[str, dict[str, dict[str, ErrorModel]]]
    diagnostics: Diagnostics
    interval: float
    engine: Engine
    labels: dict[str, dict[str, dict[str, int]]] = Field(default_factory=dict)
    operations: Operations = Field(default_factory=dict)  # empty when nothing was measured
    warnings: list[str] = Field(default_factory=list)
    draws: InstanceOf[Draws] | None = Field(default=None, exclude=True, repr=False)

    @property
    def n_labels(self) -> int:
        """Human labels the fit used (a response labelled on two dimensions counts twice)."""
        return sum(
            n for groups in self.labels.values() for m in groups.values() for n in m.values()
        )

    def to_json(self, *, indent: int | None = 2) -> str:
        return self.model_dump_json(indent=indent)


def summarise(draws: np.ndarray, interval: float = 0.95) -> Interval:
    """Posterior mean and central interval of a vector of draws."""
    tail = (1 - interval) / 2
    lo, hi = np.quantile(draws, [tail, 1 - tail])
    return Interval(mean=float(np.mean(draws)), lo=float(lo), hi=float(hi))


def condition_state(probability: float, required: float) -> State:
    """Held, failed or unsettled, by the gate's probability (a NaN is unsettled)."""
    if probability >= required:
        return "held"
    if probability <= 1 - required:
        return "failed"
    return "unsettled"


def gate_holds(contrast: np.ndarray, gate: Gate, margin: float) -> np.ndarray:
    """Per draw: does the non-inferiority condition hold?"""
    if gate.better == "higher":
        return contrast > -margin
    return contrast < margin


def check_gates(study: Study, blocks: list[Block]) -> None:
    """Every quality gate must name a dimension and group that the counts have."""
    keys = {b.key for b in blocks}
    for i, gate in enumerate(study.gates):
        if gate.measure is not None or (gate.dimension, gate.group or "") in keys:
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
    study: Study,
    draws: Draws,
    *,
    interval: float = 0.95,
    engine: Engine = "calibration",
    operations: OperationalDraws | None = None,
) -> Result:
    """Rates, contrasts, gate probabilities and a verdict per candidate; with `operations`,
    each model's cost and latency and the gates on them (without, those gates are unsettled)."""
    models = list(draws.blocks[0].models) if draws.blocks else study.model_names
    inc = models.index(study.incumbent)
    rates: Rates = {}
    judge: dict[str, dict[str, dict[str, ErrorModel]]] = {}
    labels: dict[str, dict[str, dict[str, int]]] = {}
    overall_draws: dict[tuple[str, str], np.ndarray] = {}
    for block in draws.blocks:
        theta = draws.theta[block.key]
        w = np.array([study.weights[s] for s in block.segments])
        overall = theta @ (w / w.sum())  # [D, M]
        overall_draws[block.key] = overall
        given_pass, given_fail = (
            draws.level_given_pass[block.key],
            draws.level_given_fail[block.key],
        )
        rates.setdefault(block.dimension, {})[block.group_key] = {
            model: ModelRates(
                overall=summarise(overall[:, m], interval),
                segments={
                    s: summarise(theta[:, m, j], interval) for j, s in enumerate(block.segments)
                },
            )
            for m, model in enumerate(models)
        }
        judge.setdefault(block.dimension, {})[block.group_key] = {
            model: ErrorModel(
                level_given_pass={
                    k: summarise(given_pass[:, m, j], interval) for j, k in enumerate(block.levels)
                },
                level_given_fail={
                    k: summarise(given_fail[:, m, j], interval) for j, k in enumerate(block.levels)
                },
            )
            for m, model in enumerate(models)
        }
        labels.setdefault(block.dimension, {})[block.group_key] = {
            model: int(block.n_pass[m].sum() + block.n_fail[m].sum())
            for m, model in enumerate(models)
        }

    check_gates(study, draws.blocks)
    block_index = {b.key: i for i, b in enumerate(draws.blocks)}
    gates: dict[str, GateResult] = {}
    conditions: dict[str, list[Condition]] = {c: [] for c in study.candidates}
    holds_all: dict[str, np.ndarray | None] = {c: None for c in study.candidates}
    measured_all: dict[str, np.ndarray | None] = {c: None for c in study.candidates}
    for gate in study.gates:
        required = study.gate_probability(gate)
        if gate.measure is not None:
            gates[gate.name], held = _measure_gate(study, gate, gate.measure, operations, interval)
            for candidate, entry in gates[gate.name].contrasts.items():
                measured = entry.overall
                conditions[candidate].append(
                    Condition(
                        gate=gate.name, where="overall", probability=measured.p_gate,
                        required=required, state=measured.state, note=measured.note,
                    )
                )  # fmt: skip
                current = measured_all[candidate]
                holds = held[candidate]
                measured_all[candidate] = holds if current is None else current * holds
            continue
        block = draws.blocks[block_index[(gate.dimension, gate.group or "")]]
        theta = draws.theta[block.key]
        overall = overall_draws[block.key]
        contrasts: dict[str, CandidateContrasts] = {}
        for candidate in study.candidates:
            c = models.index(candidate)
            parts = [
                ("overall", overall[:, c] - overall[:, inc], gate.margin, gate.scope != "segments")
            ]
            parts += [
                (segment, theta[:, c, j] - theta[:, inc, j], gate.margin_for_segments,
                 gate.scope != "overall")
                for j, segment in enumerate(block.segments)
            ]  # fmt: skip
            found: dict[str, Contrast] = {}
            for where, diff, margin, gated in parts:
                holds = gate_holds(diff, gate, margin)
                p = float(holds.mean())
                state = condition_state(p, required) if gated else "not gated"
                s = summarise(diff, interval)
                found[where] = Contrast(
                    mean=s.mean, lo=s.lo, hi=s.hi, p_gate=p, margin=margin, gated=gated, state=state
                )
                if gated:
                    conditions[candidate].append(
                        Condition(
                            gate=gate.name, where=where, probability=p, required=required,
                            state=condition_state(p, required),
                        )
                    )  # fmt: skip
                    current = holds_all[candidate]
                    holds_all[candidate] = holds if current is None else (current & holds)
            overall_contrast = found.pop("overall")
            contrasts[candidate] = CandidateContrasts(overall=overall_contrast, segments=found)
        gates[gate.name] = _gate_result(study, gate, contrasts)

    candidates = {
        c: _verdict(
            _p_all(holds_all[c], measured_all[c]), conditions[c], study.decision.probability
        )
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
        operations=_operations(operations, study.model_names, interval),
        draws=draws,
    )


def _operations(
    operations: OperationalDraws | None, models: Sequence[str], interval: float
) -> Operations:
    """Each model's measures as records: the estimate and a percentile bootstrap interval."""
    if operations is None:
        return {}
    tail = (1 - interval) / 2
    out: Operations = {}
    for measure in MEASURES:
        out[measure] = {}
        for model in models:
            n = operations.responses[measure].get(model, 0)
            if model not in operations.estimate[measure]:
                why = operations.missing[measure].get(model, f"'{model}' was not measured")
                out[measure][model] = Measured(value=None, lo=None, hi=None, responses=n,
                                               missing=why)  # fmt: skip
                continue
            lo, hi = np.nanquantile(operations.draws[measure][model], [tail, 1 - tail])
            out[measure][model] = Measured(
                value=operations.estimate[measure][model], lo=float(lo), hi=float(hi), responses=n
            )
    return out


def _unmeasured(operations: OperationalDraws | None, measure: Measure, models: Sequence[str],
                relative: bool) -> str | None:  # fmt: skip
    """Why a gate on `measure` cannot be decided between these models, or None when it can."""
    if operations is None:
        return (
            "not measured: a fit from counts alone has no per-response cost or latency; decide "
            "from the workspace (changeover report) or pass --measurements FILE"
        )
    for model in models:
        if model not in operations.estimate[measure]:
            return f"not measured: {operations.missing[measure][model]}"
    if relative and not operations.estimate[measure][models[0]] > 0:
        return (
            f"not measured: the incumbent's {measure_label(measure)} is 0, so no fraction of it "
            "is a margin; give the gate an absolute margin (remove relative)"
        )
    return None


def _measure_contrast(operations: OperationalDraws, measure: Measure, incumbent: str,
                      candidate: str, relative: bool) -> tuple[float, np.ndarray]:  # fmt: skip
    """The measured candidate - incumbent (or candidate / incumbent - 1) and its draws."""
    a, b = operations.estimate[measure][candidate], operations.estimate[measure][incumbent]
    da, db = operations.draws[measure][candidate], operations.draws[measure][incumbent]
    if relative:
        with np.errstate(invalid="ignore", divide="ignore"):
            return a / b - 1, np.where(db > 0, da / db - 1, np.nan)
    return a - b, da - db


def _measure_note(measure: Measure, operations: OperationalDraws, incumbent: str, candidate: str,
                  difference: float, gate: Gate) -> str:  # fmt: skip
    """ "cost per 1,000 interactions $3.00 against $1.00 (+200%; margin +10%)"."""
    label = measure_label(measure)
    a = format_measure(measure, operations.estimate[measure][candidate])
    b = format_measure(measure, operations.estimate[measure][incumbent])
    if gate.relative:
        change, margin = f"{100 * difference:+.1f}%", f"+{100 * gate.margin:g}%"
    else:
        change = format_measure(measure, difference, difference=True)
        margin = format_measure(measure, gate.margin, difference=True)
    return f"{label} {a} against {b} ({change}; margin {margin})"


def _measure_gate(
    study: Study,
    gate: Gate,
    measure: Measure,
    operations: OperationalDraws | None,
    interval: float,
) -> tuple[GateResult, dict[str, np.ndarray]]:
    """A gate on cost or latency, decided from the bootstrap draws of the measure; and per
    candidate and draw, 1.0 where its condition holds, 0.0 where not, NaN where the draw says
    nothing (a single NaN when the gate is not measured)."""
    required = study.gate_probability(gate)
    tail = (1 - interval) / 2
    contrasts, held = {}, {}
    for candidate in study.candidates:
        why = _unmeasured(operations, measure, [study.incumbent, candidate], gate.relative)
        if why is not None or operations is None:
            nan = float("nan")
            contrast = Contrast(mean=nan, lo=nan, hi=nan, p_gate=nan, margin=gate.margin,
                                gated=True, state="unsettled", note=why)  # fmt: skip
            held[candidate] = np.array([np.nan])
        else:
            point, diff = _measure_contrast(
                operations, measure, study.incumbent, candidate, gate.relative
            )
            held[candidate] = np.where(
                np.isfinite(diff), (diff < gate.margin).astype(float), np.nan
            )
            p = float(np.nanmean(held[candidate]))
            lo, hi = np.nanquantile(diff, [tail, 1 - tail])
            contrast = Contrast(
                mean=float(point), lo=float(lo), hi=float(hi), p_gate=p, margin=gate.margin,
                gated=True, state=condition_state(p, required),
                note=_measure_note(measure, operations, study.incumbent, candidate, point, gate),
            )  # fmt: skip
        contrasts[candidate] = CandidateContrasts(overall=contrast, segments={})
    return _gate_result(study, gate, contrasts), held


def _gate_result(study: Study, gate: Gate, contrasts: dict[str, CandidateContrasts]) -> GateResult:
    """A gate's settings and its candidates' contrasts, as the result keeps them."""
    return GateResult(
        dimension=gate.dimension,
        group=gate.group_key,
        better=gate.better,
        probability=study.gate_probability(gate),
        scope=gate.scope,
        contrasts=contrasts,
        relative=gate.relative,
    )


def _p_all(quality: np.ndarray | None, measured: np.ndarray | None) -> float | None:
    """P(all gates): the posterior's P(all quality gates) times the bootstrap's P(all cost and
    latency gates), the two sources being independent (module docstring); None without gates."""
    if quality is None and measured is None:
        return None
    p_quality = 1.0 if quality is None else float(quality.mean())
    if measured is None:
        return p_quality
    if np.isnan(measured).all():
        return float("nan")
    return p_quality * float(np.nanmean(measured))


#: How many conditions a reason names before "and N more".
NAMED = 4


def _named(conditions: Sequence[Condition]) -> str:
    """ "g overall (P = 0.012)", with a cost or latency gate's figures or why it is unmeasured."""
    parts = []
    for c in conditions:
        if c.probability != c.probability:
            parts.append(f"{c.gate} {c.place} ({c.note})")
        elif c.note:
            parts.append(f"{c.gate} {c.place} (P = {c.probability:.3f}; {c.note})")
        else:
            parts.append(f"{c.gate} {c.place} (P = {c.probability:.3f})")
    return ", ".join(parts)


def _listing(failed: list[Condition], unsettled: list[Condition]) -> str:
    """Every failing and unsettled condition, the first few by name: "fails a overall
    (P = 0.001), b in jp (P = 0.032); unsettled: c in uk (P = 0.620) and 3 more"."""
    named_failed = failed[:NAMED]
    named_unsettled = unsettled[: NAMED - len(named_failed)]
    parts = []
    if named_failed:
        parts.append(f"fails {_named(named_failed)}")
    if named_unsettled:
        parts.append(f"unsettled: {_named(named_unsettled)}")
    text = "; ".join(parts)
    more_failed = len(failed) - len(named_failed)
    more_unsettled = len(unsettled) - len(named_unsettled)
    if more_failed and more_unsettled:
        text += (
            f" and {more_failed + more_unsettled} more ({more_failed} failing, "
            f"{more_unsettled} unsettled)"
        )
    elif more_failed or more_unsettled:
        kind = "failing" if more_failed else "unsettled"
        text += f" and {more_failed + more_unsettled} more {kind}"
    return text


def _verdict(p_all: float | None, conditions: list[Condition], bar: float) -> CandidateResult:
    if p_all is None:
        return CandidateResult(
            verdict="undecided",
            p_all_gates=float("nan"),
            reason="no gates are defined in the study",
        )
    result = CandidateResult(
        verdict="undecided", p_all_gates=p_all, reason="", conditions=conditions
    )
    failed, unsettled = result.in_state("failed"), result.in_state("unsettled")
    if failed:
        return result.model_copy(
            update={"verdict": "not-ready", "reason": _listing(failed, unsettled)}
        )
    if p_all >= bar:
        reason = f"all {len(conditions)} gate conditions hold jointly with P = {p_all:.3f}"
        return result.model_copy(update={"verdict": "ready", "reason": reason})
    if p_all != p_all:
        reason = f"{_listing([], unsettled)}; P(all gates) is unknown until it is measured"
    elif unsettled:
        reason = f"{_listing([], unsettled)}; P(all gates) = {p_all:.3f} < {bar}"
    else:
        weakest = min(conditions, key=lambda x: x.probability)
        reason = (
            f"each of the {len(conditions)} gate conditions holds on its own, but all jointly "
            f"only with P = {p_all:.3f} < {bar}; the weakest: {_named([weakest])}"
        )
    return result.model_copy(update={"reason": reason})
