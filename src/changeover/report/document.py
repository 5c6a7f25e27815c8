"""The report as data: one typed document that the HTML, Markdown, terminal and JSON reports
render.

Everything a reader needs is computed here, once, from the fit's Result, the counts and the
labels, so the renderers only lay it out and `changeover report --format json` says exactly what
the HTML shows. The document is a pydantic record: it is written as JSON beside the workspace
and read back as the same types.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from importlib.metadata import version
from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import Field, TypeAdapter

from changeover.agreement import DimensionAgreement
from changeover.calibrate.blocks import Block
from changeover.calibrate.decide import (
    CandidateContrasts,
    CandidateResult,
    GateResult,
    Record,
    Result,
    State,
)
from changeover.calibrate.next import NextPlan
from changeover.calibrate.settings import Engine
from changeover.signals.compute import LEVEL_SEPARATOR
from changeover.study import Decision, Gate, Study

__all__ = [
    "Example",
    "FitRecord",
    "JudgeFlag",
    "PointRate",
    "PointRates",
    "RawRates",
    "RegionExamples",
    "ReportDocument",
    "ResponseTexts",
    "Spend",
    "StudySummary",
    "build_document",
    "gate_examples",
    "judge_flags",
    "label_counts",
    "outcome_words",
    "overall_rate",
    "point_rates",
    "raw_rates",
    "level_readings",
    "signal_readings",
]


class PointRate(Record):
    """A rate without an interval (the raw signal's, or the truth of a simulated study),
    overall and per segment; None where there is no response."""

    overall: float | None
    segments: dict[str, float | None]


#: Per dimension, group ("all" when none) and model.
PointRates = dict[str, dict[str, dict[str, PointRate]]]


def overall_rate(rates: Mapping[str, PointRate], model: str) -> float | None:
    """A model's overall rate in a table of point rates, or None where it has none."""
    return rates[model].overall if model in rates else None


#: Human labels per dimension, group, model and segment.
LabelCounts = dict[str, dict[str, dict[str, dict[str, int]]]]

#: What a human label of 1 and of 0 say, per dimension (any other dimension: pass / fail).
OUTCOMES: dict[str, tuple[str, str]] = {
    "correctness": ("correct", "incorrect"),
    "refusal": ("refused", "complied"),
    "style": ("adheres", "violates"),
}


def outcome_words(dimension: str) -> tuple[str, str]:
    """The words for a human 1 and 0 on a dimension: a refusal label of 1 is "refused", not
    "pass"."""
    return OUTCOMES.get(dimension, ("pass", "fail"))


#: The raw signal rates: per dimension, group and signal, each model's rate.
RawRates = dict[str, dict[str, dict[str, dict[str, PointRate]]]]


def level_readings(study: Study, dimension: str, levels: Sequence[str]) -> dict[str, np.ndarray]:
    """For each signal of the study that feeds `dimension`, which of `levels` it reads as 1
    (`pass_levels`). A dimension fed by several signals has their cross product as its levels
    ("refused|fail"), each part read by its own signal. Empty when the study names no signal
    for the dimension (a counts file fitted on its own) or the levels do not come from its
    signals."""
    signals = study.signals.for_dimension(dimension) if study.signals is not None else {}
    if not signals:
        return {}
    parts = [k.split(LEVEL_SEPARATOR) if len(signals) > 1 else [k] for k in levels]
    if any(len(p) != len(signals) for p in parts):
        return {}
    return {
        name: np.array([p[i] in signal.pass_levels for p in parts], dtype=bool)
        for i, (name, signal) in enumerate(signals.items())
    }


def signal_readings(block: Block, study: Study) -> dict[str, np.ndarray]:
    """`level_readings` of a block's levels."""
    return level_readings(study, block.dimension, block.levels)


def _overall(per_segment: np.ndarray, block: Block, weights: Mapping[str, float]) -> float:
    w = np.array([weights[s] for s in block.segments])
    return float(per_segment @ (w / w.sum()))


def raw_rates(blocks: Sequence[Block], study: Study) -> RawRates:
    """The rate each model would get from each signal believed at face value, overall
    (traffic-weighted like the calibrated rates) and per segment; None where a model has no
    response (overall: in some segment)."""
    out: RawRates = {}
    for block in blocks:
        per_signal: dict[str, dict[str, PointRate]] = {}
        for name, reading in signal_readings(block, study).items():
            per_model = {}
            for m, model in enumerate(block.models):
                totals = block.n_all[m].sum(axis=1)
                positive = block.n_all[m][:, reading].sum(axis=1)
                rate = np.divide(
                    positive, totals, out=np.full(totals.shape, np.nan), where=totals > 0
                )
                per_model[model] = PointRate(
                    overall=None if np.isnan(rate).any() else _overall(rate, block, study.weights),
                    segments={
                        s: None if np.isnan(rate[j]) else float(rate[j])
                        for j, s in enumerate(block.segments)
                    },
                )
            per_signal[name] = per_model
        out.setdefault(block.dimension, {})[block.group_key] = per_signal
    return out


def label_counts(blocks: Sequence[Block]) -> LabelCounts:
    """Human labels per dimension, group, model and segment."""
    out: LabelCounts = {}
    for block in blocks:
        labelled = block.n_pass + block.n_fail
        out.setdefault(block.dimension, {})[block.group_key] = {
            model: {s: int(labelled[m, j].sum()) for j, s in enumerate(block.segments)}
            for m, model in enumerate(block.models)
        }
    return out


class JudgeFlag(Record):
    """A model the signal treats differently: P(level | human verdict) for it against the
    median over all models."""

    dimension: str
    group: str
    model: str
    given: Literal["pass", "fail"]
    level: str
    value: float
    others: float


def judge_flags(result: Result, *, threshold: float = 0.05) -> list[JudgeFlag]:
    """Where the signal behaves differently on one model: P(level | truth) for that model has an
    interval that excludes the median over all models, and differs from it by `threshold`.
    (With two models that differ, both are flagged: there is no telling which one is odd.)"""
    flags = []
    for dimension, groups in result.judge.items():
        for group, models in groups.items():
            names = list(models)
            if len(names) < 2:
                continue
            for given in ("pass", "fail"):
                tables = {
                    m: models[m].level_given_pass if given == "pass" else models[m].level_given_fail
                    for m in names
                }
                for level in tables[names[0]]:
                    others = float(np.median([tables[m][level].mean for m in names]))
                    for model in names:
                        cell = tables[model][level]
                        outside = cell.lo > others or cell.hi < others
                        if outside and abs(cell.mean - others) >= threshold:
                            flags.append(
                                JudgeFlag(
                                    dimension=dimension, group=group, model=model, given=given,
                                    level=level, value=cell.mean, others=others,
                                )
                            )  # fmt: skip
    return flags


class Example(Record):
    """A response shown in the report: what was asked, what the candidate said, the signal's
    level and the human label (None when unlabelled). `why`: "worst" — people (or, unlabelled,
    every signal) say it fails the gate's side; "disagrees" — a signal and the people disagree."""

    item_id: str
    prompt: str
    response: str
    level: str
    human: int | None
    why: Literal["worst", "disagrees"]


class RegionExamples(Record):
    """Example responses of one candidate in one region, for a gate it fails or has not settled."""

    gate: str
    candidate: str
    segment: str
    probability: float  # P(the gate's condition holds in this region)
    state: State
    examples: list[Example]


#: Reads the prompt and response text of (item_id, model) pairs (`Workspace.response_texts`).
ResponseTexts = Callable[[Sequence[tuple[str, str]]], Mapping[tuple[str, str], tuple[str, str]]]


_Shown = tuple[str, str, int | None, str]  # item_id, level, human, why


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _regions(gate: GateResult, verdict: CandidateResult, name: str, contrasts: CandidateContrasts,
             regions: int) -> list[str]:  # fmt: skip
    """The regions to show for a gate a candidate fails or has not settled: its failing and
    unsettled segments, worst first, then (when the overall condition is open) the segments
    where the contrast is least likely to hold."""
    open_conditions = [
        c for c in verdict.conditions if c.gate == name and c.state in ("failed", "unsettled")
    ]
    chosen = [c.where for c in sorted(open_conditions, key=lambda c: c.probability)]
    chosen = [w for w in chosen if w != "overall"]
    if any(c.where == "overall" for c in open_conditions):
        by_risk = sorted(contrasts.segments.items(), key=lambda item: item[1].p_gate)
        chosen += [s for s, _ in by_risk if s not in chosen]
    return chosen[:regions]


def gate_examples(
    study: Study,
    result: Result,
    rows: pl.DataFrame,
    texts: ResponseTexts,
    *,
    regions: int = 3,
    per_kind: int = 2,
) -> list[RegionExamples]:
    """For each gate a candidate fails or has not settled, a few responses per region: the
    worst (labelled as failing the gate's side, else read so by every signal) and those where a
    signal and the people disagree. `rows` are the workspace's per-response rows
    (`Workspace.rows()`); `texts` reads the chosen responses' text."""
    responses = (
        rows.with_columns(pl.col("group").fill_null(""))
        .group_by("item_id", "model", "segment", "group", "dimension", "level")
        .agg(pl.col("human").mean().alias("human"))
        .sort("item_id")
    )
    planned: list[tuple[RegionExamples, list[_Shown]]] = []
    for name, gate in result.gates.items():
        if gate.measure is not None:
            continue  # decided from cost and latency, which no response shows
        bad = 0 if gate.better == "higher" else 1
        group = "" if gate.group == "all" else gate.group
        part = responses.filter(
            (pl.col("dimension") == gate.dimension) & (pl.col("group") == group)
        )
        levels = part["level"].unique().to_list()
        readings = level_readings(study, gate.dimension, levels).values()
        read = {k: [bool(r[j]) for r in readings] for j, k in enumerate(levels)}
        for candidate, contrasts in gate.contrasts.items():
            verdict = result.candidates[candidate]
            for segment in _regions(gate, verdict, name, contrasts, regions):
                here = part.filter((pl.col("model") == candidate) & (pl.col("segment") == segment))
                labelled: list[tuple[str, str, int]] = []
                unlabelled: list[tuple[str, str]] = []
                for item_id, level, mean in here.select("item_id", "level", "human").iter_rows():
                    if mean is None or mean == 0.5:
                        unlabelled.append((item_id, level))
                    else:
                        labelled.append((item_id, level, int(mean > 0.5)))
                worst: list[_Shown] = [(i, k, h, "worst") for i, k, h in labelled if h == bad]
                worst += [
                    (i, k, None, "worst")
                    for i, k in unlabelled
                    if read.get(k) and all(int(r) == bad for r in read[k])
                ]
                shown = worst[:per_kind]
                seen = {i for i, *_ in shown}
                shown += [
                    (i, k, h, "disagrees")
                    for i, k, h in labelled
                    if i not in seen and any(int(r) != h for r in read.get(k, []))
                ][:per_kind]
                if not shown:
                    continue
                place = contrasts.segments[segment]
                region = RegionExamples(
                    gate=name, candidate=candidate, segment=segment, probability=place.p_gate,
                    state=place.state, examples=[],
                )  # fmt: skip
                planned.append((region, shown))
    found = texts([(item_id, r.candidate) for r, shown in planned for item_id, *_ in shown])
    out = []
    for region, shown in planned:
        examples = []
        for item_id, level, human, why in shown:
            prompt, response = found.get((item_id, region.candidate), ("", ""))
            examples.append(
                Example(
                    item_id=item_id, prompt=_clip(prompt, 400), response=_clip(response, 800),
                    level=level, human=human, why=why,  # type: ignore[arg-type]
                )
            )  # fmt: skip
        out.append(region.model_copy(update={"examples": examples}))
    return out


class Spend(Record):
    """What one model cost for one purpose (generation or judging) over the whole study: the
    money side of `changeover.calls.SpendSummary`, as the report shows it."""

    model: str
    purpose: str
    requests: int
    batch_requests: int
    input_tokens: int
    output_tokens: int
    cost: float | None
    saving: float


class StudySummary(Record):
    """The study as the report shows it (and its file's text, for reproducibility)."""

    path: str | None
    incumbent: str
    candidates: list[str]
    segments: dict[str, float]
    decision: Decision
    gates: list[Gate]
    models: dict[str, dict[str, Any]]
    text: str | None


class FitRecord(Record):
    """How the document's fit was made: the fit settings (`FitSettings`), what its label plan
    was asked for (`PlanRequest`), the fingerprint of its inputs and how long sampling took."""

    seed: int
    num_samples: int
    num_warmup: int
    num_chains: int
    interval: float
    engine: Engine
    allow_uncalibrated: bool
    budget: int
    dimension: str | None
    confirm: bool
    fingerprint: str
    seconds: float


class ReportDocument(Record):
    """The whole report: what `changeover report --format json` prints and what the HTML,
    Markdown and terminal renderers lay out. Without a `result` it is a preview: some dimension
    has no human label yet, so nothing is calibrated and no verdict is given."""

    changeover: str  # the version that wrote it
    created: str
    study: StudySummary
    result: Result | None
    raw: RawRates
    truth: PointRates | None = None
    labels: LabelCounts
    responses: dict[str, dict[str, int]]  # scored responses per dimension and group
    agreement: list[DimensionAgreement] = Field(default_factory=list)
    judge_flags: list[JudgeFlag] = Field(default_factory=list)
    next: NextPlan | None = None
    fit: FitRecord | None = None
    examples: list[RegionExamples] = Field(default_factory=list)
    spend: list[Spend] = Field(default_factory=list)  # the study's spend, per model and purpose
    warnings: list[str] = Field(default_factory=list)  # the fit's and the counts' warnings

    @property
    def unlabelled_dimensions(self) -> list[str]:
        """Dimensions (and groups) without a single human label: while there is one, the
        document is a preview."""
        return [
            dimension if group == "all" else f"{dimension} ({group})"
            for dimension, groups in self.labels.items()
            for group, models in groups.items()
            if not any(n for segments in models.values() for n in segments.values())
        ]

    @property
    def n_labels(self) -> int:
        return sum(
            n
            for g in self.labels.values()
            for m in g.values()
            for s in m.values()
            for n in s.values()
        )

    @property
    def n_responses(self) -> int:
        return sum(n for groups in self.responses.values() for n in groups.values())

    def to_json(self, *, indent: int | None = 2) -> str:
        return self.model_dump_json(indent=indent)


_POINT_RATES: TypeAdapter[PointRates] = TypeAdapter(PointRates)


def point_rates(data: Mapping[str, Any]) -> PointRates:
    """Rates given as plain data (`{dimension: {group: {model: {"overall", "segments"}}}}`, as
    the demo's truth is), checked and typed."""
    return _POINT_RATES.validate_python(data)


def _study(study: Study, study_text: str | None) -> StudySummary:
    return StudySummary(
        path=None if study.path is None else str(study.path),
        incumbent=study.incumbent,
        candidates=list(study.candidates),
        segments=dict(study.segments),
        decision=study.decision,
        gates=list(study.gates),
        models={
            name: settings.model_dump(mode="json", exclude_none=True)
            for name, settings in (study.models or {}).items()
        },
        text=study_text,
    )


def build_document(
    study: Study,
    result: Result | None,
    blocks: Sequence[Block],
    *,
    agreement: Sequence[DimensionAgreement] = (),
    plan: NextPlan | None = None,
    fit: FitRecord | None = None,
    truth: Mapping[str, Any] | None = None,
    study_text: str | None = None,
    warnings: Sequence[str] = (),
    examples: Sequence[RegionExamples] = (),
    spend: Sequence[Spend] = (),
) -> ReportDocument:
    """The whole report as one typed record; `blocks` are the counts the result was fitted to
    (`result.draws.blocks`), `truth` the true rates of a simulated study (shaped as a result's
    rates). Without a result, a preview."""
    responses: dict[str, dict[str, int]] = {}
    for block in blocks:
        responses.setdefault(block.dimension, {})[block.group_key] = int(block.n_all.sum())
    return ReportDocument(
        changeover=version("changeover"),
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        study=_study(study, study_text),
        result=result,
        raw=raw_rates(blocks, study),
        truth=None if truth is None else point_rates(truth),
        labels=label_counts(blocks),
        responses=responses,
        agreement=list(agreement),
        judge_flags=[] if result is None else judge_flags(result),
        next=plan,
        fit=fit,
        examples=list(examples),
        spend=list(spend),
        warnings=list(warnings),
    )
