"""The HTML report: one self-contained file, verdicts first, the statistics below."""

from __future__ import annotations

import base64
from dataclasses import dataclass

from jinja2 import Environment, PackageLoader, select_autoescape

from changeover.calibrate.decide import GateResult
from changeover.report import plots
from changeover.report.document import (
    JudgeFlag,
    PointRate,
    ReportDocument,
    outcome_words,
    overall_rate,
)

__all__ = ["BlockView", "blocks_of", "margins", "percent", "render_html"]


def percent(x: float | None) -> str:
    """A rate as "12.3%", or "–" where there is none."""
    return "–" if x is None else f"{100 * x:.1f}%"


def _pp(x: float) -> str:
    return f"{100 * x:+.1f}"


def _prob(x: float) -> str:
    return "n/a" if x != x else f"{x:.3f}"


def _num(x: float | None) -> str:
    return "–" if x is None else f"{x:.2f}"


def margins(gate: GateResult) -> str:
    """ "margin ≥ -5.0 pp (≥ -15.0 per segment)": the gate's margins as the conditions use them."""
    sign = "≥ -" if gate.better == "higher" else "≤ +"
    first = next(iter(gate.contrasts.values()))
    text = f"margin {sign}{100 * first.overall.margin:.1f} pp"
    segment = next(iter(first.segments.values()), None)
    if segment is not None and segment.margin != first.overall.margin:
        text += f" ({sign}{100 * segment.margin:.1f} per segment)"
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
    env.globals.update(overall=overall_rate, outcome=outcome_words, margins=margins)
    env.filters.update(pct=percent, pp=_pp, prob=_prob, num=_num, thousands=lambda n: f"{n:,}")
    return env


def render_html(document: ReportDocument) -> str:
    """The report as one HTML page with its plots inlined as SVG data URIs."""
    blocks = blocks_of(document)
    result = document.result
    rendered: dict[str, dict[str, str]] = {"forest": {}, "rates": {}, "error": {}}
    if result is not None:
        rendered = {
            "forest": {name: _data_uri(plots.forest_plot(g)) for name, g in result.gates.items()},
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
