"""The HTML report: one self-contained file, verdicts first, the statistics below."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass

from jinja2 import Environment, PackageLoader, select_autoescape

from changeover.calibrate.decide import GateResult, Measured, Operations
from changeover.calibrate.operations import format_measure, measure_label
from changeover.report import plots
from changeover.report.document import (
    JudgeFlag,
    PointRate,
    ReportDocument,
    Spend,
    outcome_words,
    overall_rate,
)
from changeover.study import MEASURES, Measure

__all__ = [
    "BlockView",
    "blocks_of",
    "contrast_text",
    "gate_subject",
    "margin_text",
    "margins",
    "measured_text",
    "operations_table",
    "percent",
    "render_html",
    "spend_table",
]


def percent(x: float | None) -> str:
    """A rate as "12.3%", or "–" where there is none."""
    return "–" if x is None else f"{100 * x:.1f}%"


def _pp(x: float) -> str:
    return f"{100 * x:+.1f}"


def _prob(x: float) -> str:
    return "n/a" if x != x else f"{x:.3f}"


def _num(x: float | None) -> str:
    return "–" if x is None else f"{x:.2f}"


def contrast_text(gate: GateResult, x: float) -> str:
    """A contrast of the gate in its unit: "+2.5" (percentage points), "+198%" (a relative cost
    or latency gate), "+$0.40" or "+0.12 s"; "–" where there is none."""
    if x != x:
        return "–"
    if gate.measure is None:
        return _pp(x)
    if gate.relative:
        return f"{100 * x:+.1f}%"
    return format_measure(gate.measure, x, difference=True)


def gate_subject(gate: GateResult) -> str:
    """What the gate is on: "correctness, items that should answer", "p95 latency"."""
    if gate.measure is not None:
        return measure_label(gate.measure)
    return gate.dimension + ("" if gate.group == "all" else f", items that should {gate.group}")


def measured_text(measured: Measured, measure: Measure) -> str:
    """ "$0.60 [$0.59, $0.61]" or "0.84 s [0.80, 0.90]"; "not measured" without a value."""
    if measured.value is None:
        return "not measured"
    lo, hi = (format_measure(measure, x).removesuffix(" s") for x in (measured.lo, measured.hi))
    return f"{format_measure(measure, measured.value)} [{lo}, {hi}]"


#: The columns of the cost and latency table, after the model.
OPERATIONS_HEADER = ("cost per 1,000 interactions", "p50 latency", "p95 latency")


def operations_table(operations: Operations) -> tuple[list[list[str]], list[str]]:
    """The cost and latency table: per model its name, then `OPERATIONS_HEADER`'s cells; and
    why a measure is missing, once per reason."""
    models = list(next(iter(operations.values()), {}))
    rows = [
        [model, *(measured_text(operations[m][model], m) for m in MEASURES)] for model in models
    ]
    notes = [
        entry.missing
        for m in MEASURES
        for entry in operations[m].values()
        if entry.missing is not None
    ]
    return rows, list(dict.fromkeys(notes))


SPEND_HEADER = ("model", "purpose", "requests", "tokens in / out", "cost", "batch saving")


def spend_table(spend: Sequence[Spend]) -> list[list[str]]:
    """What the study has spent, per model and purpose, as `SPEND_HEADER`'s cells, and a total
    row when there is more than one."""
    rows = [
        [
            s.model,
            s.purpose,
            f"{s.requests:,}" + (f" ({s.batch_requests:,} batched)" if s.batch_requests else ""),
            f"{s.input_tokens:,} / {s.output_tokens:,}",
            "not priced" if s.cost is None else f"${s.cost:,.4f}",
            f"${s.saving:,.4f}" if s.saving else "-",
        ]
        for s in spend
    ]
    if len(spend) > 1:
        total = sum(s.cost or 0.0 for s in spend)
        saving = sum(s.saving for s in spend)
        rows.append(
            ["all", "", f"{sum(s.requests for s in spend):,}", "", f"${total:,.4f}",
             f"${saving:,.4f}" if saving else "-"]
        )  # fmt: skip
    return rows


def margin_text(gate: GateResult, margin: float) -> str:
    """One margin as its condition uses it: "≥ -5.0" (points), "≤ +10%" (of the incumbent's
    cost or latency), "≤ +$0.50" or "≤ +0.30 s"."""
    if gate.measure is None:
        return f"{'≥ -' if gate.better == 'higher' else '≤ +'}{100 * margin:.1f}"
    if gate.relative:
        return f"≤ +{100 * margin:g}%"
    return f"≤ {format_measure(gate.measure, margin, difference=True)}"


def margins(gate: GateResult) -> str:
    """ "margin ≥ -5.0 pp (≥ -15.0 per segment)": the gate's margins as the conditions use them
    ("margin ≤ +10% of the incumbent's", "margin ≤ +0.30 s" on cost and latency)."""
    first = next(iter(gate.contrasts.values()))
    if gate.measure is not None:
        text = f"margin {margin_text(gate, first.overall.margin)}"
        return text + (" of the incumbent's" if gate.relative else "")
    text = f"margin {margin_text(gate, first.overall.margin)} pp"
    segment = next(iter(first.segments.values()), None)
    if segment is not None and segment.margin != first.overall.margin:
        text += f" ({margin_text(gate, segment.margin)} per segment)"
    return text


def _data_uri(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


@dataclass(frozen=True)
class BlockView:
    """One dimension and group, with what each section shows about it."""

    id: str
    dimension: str
    group: str
    title: str
    raw: dict[str, dict[str, PointRate]]  # per signal feeding it, per model
    truth: dict[str, PointRate]
    labels: dict[str, dict[str, int]]
    flags: list[JudgeFlag]
    words: tuple[str, str]  # what a human 1 and 0 say on this dimension


def blocks_of(document: ReportDocument) -> list[BlockView]:
    """One entry per dimension and group of the result."""
    out = []
    truth = document.truth or {}
    for dimension, groups in document.labels.items():
        for group in groups:
            title = dimension if group == "all" else f"{dimension}, items that should {group}"
            out.append(
                BlockView(
                    id=f"{dimension}/{group}",
                    dimension=dimension,
                    group=group,
                    title=title,
                    raw=document.raw.get(dimension, {}).get(group, {}),
                    truth=truth.get(dimension, {}).get(group, {}),
                    labels=document.labels.get(dimension, {}).get(group, {}),
                    flags=[
                        f
                        for f in document.judge_flags
                        if f.dimension == dimension and f.group == group
                    ],
                    words=outcome_words(dimension),
                )
            )
    return out


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("changeover.report", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(
        overall=overall_rate, outcome=outcome_words, margins=margins, contrast=contrast_text,
        subject=gate_subject, operations_table=operations_table, header=OPERATIONS_HEADER,
        spend_table=spend_table, spend_header=SPEND_HEADER,
    )  # fmt: skip
    env.filters.update(pct=percent, pp=_pp, prob=_prob, num=_num, thousands=lambda n: f"{n:,}")
    return env


def render_html(document: ReportDocument) -> str:
    """The report as one HTML page with its plots inlined as SVG data URIs."""
    blocks = blocks_of(document)
    result = document.result
    rendered: dict[str, dict[str, str]] = {"forest": {}, "rates": {}, "error": {}}
    if result is not None:
        rendered = {
            "forest": {
                name: _data_uri(plots.forest_plot(g))
                for name, g in result.gates.items()
                if g.measure is None  # one row, in its table
            },
            "rates": {
                b.id: _data_uri(plots.rates_plot(document, b.dimension, b.group)) for b in blocks
            },
            "error": {
                b.id: _data_uri(plots.error_model_plot(document, b.dimension, b.group))
                for b in blocks
            },
        }
    return (
        _environment()
        .get_template("report.html.j2")
        .render(
            doc=document,
            study=document.study,
            result=result,
            blocks=blocks,
            plots=rendered,
            truth=document.truth,
            segments=list(document.study.segments),
        )
    )
