"""The report as data: one typed document that the HTML, Markdown, terminal and JSON reports
render.

Everything a reader needs is computed here, once, from the fit's Result, the counts and the
labels, so the renderers only lay it out and `changeover report --format json` says exactly what
the HTML shows. The document is a pydantic record: it is written as JSON beside the workspace
and read back as the same types.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from importlib.metadata import version
from typing import Any, Literal

import numpy as np
from pydantic import Field, TypeAdapter

from changeover.agreement import DimensionAgreement
from changeover.calibrate.blocks import Block
from changeover.calibrate.decide import Record, Result
from changeover.calibrate.next import NextPlan
from changeover.calibrate.settings import Engine
from changeover.signals.compute import LEVEL_SEPARATOR
from changeover.study import Decision, Gate, Study

__all__ = [
    "FitRecord",
    "JudgeFlag",
    "PointRate",
    "PointRates",
    "RawRates",
    "ReportDocument",
    "StudySummary",
    "build_document",
    "judge_flags",
    "label_counts",
    "overall_rate",
    "point_rates",
    "raw_rates",
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

#: The raw signal rates: per dimension, group and signal, each model's rate.
RawRates = dict[str, dict[str, dict[str, dict[str, PointRate]]]]


def signal_readings(block: Block, study: Study) -> dict[str, np.ndarray]:
    """For each signal of the study that feeds the block's dimension, which of the block's
    levels it reads as 1 (`pass_levels`). A dimension fed by several signals has their cross
    product as its levels ("refused|fail"), each part read by its own signal. Empty when the
    study names no signal for the dimension (a counts file fitted on its own) or the levels do
    not come from its signals."""
    signals = study.signals.for_dimension(block.dimension) if study.signals is not None else {}
    if not signals:
        return {}
    parts = [k.split(LEVEL_SEPARATOR) if len(signals) > 1 else [k] for k in block.levels]
    if any(len(p) != len(signals) for p in parts):
        return {}
    return {
        name: np.array([p[i] in signal.pass_levels for p in parts])
        for i, (name, signal) in enumerate(signals.items())
    }


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
        warnings=list(warnings),
    )
