"""The report as Markdown: the same document as the HTML report, tables only (no plots)."""

from __future__ import annotations

import re

from changeover.calibrate.decide import Result
from changeover.report.document import ReportDocument, overall_rate
from changeover.report.html import (
    OPERATIONS_HEADER,
    SPEND_HEADER,
    blocks_of,
    contrast_text,
    gate_subject,
    margin_text,
    operations_table,
    percent,
    spend_table,
)

__all__ = ["render_markdown"]


_SPECIAL = re.compile(r"([\\`*_\[\]|~])")


def md(text: str) -> str:
    """User text (a name, a reason) as Markdown that shows it literally: no raw HTML (`<`, `>`
    and `&` as entities), no emphasis, link, code or table cell boundary, on one line."""
    text = " ".join(str(text).split())
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _SPECIAL.sub(r"\\\1", text)


def code(text: str) -> str:
    """User text as an inline code span (shown verbatim, never HTML), fenced by more backticks
    than it holds."""
    text = " ".join(str(text).split())
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A table; user text in the cells must already be escaped (`md`)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, ""]


def _prob(x: float) -> str:
    return f"{x:.3f}" if x == x else "n/a"


def _preview(document: ReportDocument) -> list[str]:
    missing = md(", ".join(document.unlabelled_dimensions))
    budget = document.next.budget if document.next else 100
    out = [
        f"**Preview — no verdict without labels.** {missing} has no human label yet, so the "
        "signals cannot be calibrated against people and no candidate can be judged. Below is "
        "what each signal says taken at its word — not an estimate. Start labelling with the "
        f"stratified random start below (`changeover next --budget {budget}`, then `changeover "
        "annotate`), and run again.",
        "",
        "## The raw signal rates",
        "",
    ]
    for block in blocks_of(document):
        if not block.raw:
            continue
        models = list(next(iter(block.raw.values())))
        out += [f"### {md(block.title)}", ""]
        out += _table(
            ["model", *(f"raw: {md(signal)}" for signal in block.raw)],
            [
                [md(model), *(percent(overall_rate(rates, model)) for rates in block.raw.values())]
                for model in models
            ],
        )
    return out


def _verdicts(result: Result, document: ReportDocument) -> list[str]:
    out = _table(
        ["candidate", "verdict", "P(all gates)", "why"],
        [
            [md(name), f"**{c.verdict}**", _prob(c.p_all_gates), md(c.reason)]
            for name, c in result.candidates.items()
        ],
    )
    if not result.diagnostics.converged:
        out += ["**The fit did not converge: do not act on these verdicts.**", ""]
    out += [
        "## Gates",
        "",
        "Contrast candidate − incumbent in percentage points (cost and latency in their own "
        "units, decided from the measured responses).",
        "",
    ]
    for name, gate in result.gates.items():
        rows = []
        for candidate, entry in gate.contrasts.items():
            for where, c in entry.places():
                if not c.gated:
                    continue
                contrast = contrast_text(gate, c.mean)
                if c.mean == c.mean:
                    contrast += f" [{contrast_text(gate, c.lo)}, {contrast_text(gate, c.hi)}]"
                note = [md(c.note or "")] if gate.measure is not None else []
                rows.append(
                    [md(candidate), md(where), contrast, margin_text(gate, c.margin),
                     _prob(c.p_gate), *note]
                )  # fmt: skip
        out += [f"### {md(name)} ({md(gate_subject(gate))}, {gate.better} is better)", ""]
        header = ["candidate", "where", "contrast", "margin", "P(holds)"]
        out += _table(header + (["measured"] if gate.measure is not None else []), rows)
    if result.operations:
        rows, notes = operations_table(result.operations)
        out += [
            "## Cost and latency",
            "",
            "At the study's traffic mix: US dollars per 1,000 interactions at the models' "
            f"prices, latency in seconds; [{round(100 * result.interval)}% bootstrap interval].",
            "",
        ]
        out += _table(["model", *OPERATIONS_HEADER], [[md(cell) for cell in row] for row in rows])
        out += [f"- not measured: {md(n)}" for n in notes] + ([""] if notes else [])
    out += ["## Calibrated rates against the raw signal", ""]
    truth = document.truth
    for block in blocks_of(document):
        raw = [f"raw: {md(signal)}" for signal in block.raw]
        header = ["model", "calibrated", *raw, *(["true"] if truth else []), "labels"]
        rows = []
        for model, r in result.rates[block.dimension][block.group].items():
            o = r.overall
            row = [md(model), f"{percent(o.mean)} [{percent(o.lo)}, {percent(o.hi)}]"]
            row += [percent(overall_rate(rates, model)) for rates in block.raw.values()]
            if truth:
                row.append(percent(overall_rate(block.truth, model)))
            row.append(str(sum(block.labels.get(model, {}).values())))
            rows.append(row)
        out += [f"### {md(block.title)}", ""] + _table(header, rows)
        for f in block.flags:
            out.append(
                f"- the signal treats **{md(f.model)}** differently: P({md(f.level)} | human "
                f"{f.given}) = {percent(f.value)} against a median of {percent(f.others)}"
            )
        if block.flags:
            out.append("")
    return out


def render_markdown(document: ReportDocument) -> str:
    """Verdicts, gates, rates, labels, what to label next and diagnostics, as Markdown (before
    the first labels, a preview: the raw signal rates and how labelling starts)."""
    result = document.result
    out = [f"# Can a candidate replace {code(document.study.incumbent)}?", ""]
    out += _verdicts(result, document) if result is not None else _preview(document)
    out += [f"> warning: {md(w)}" for w in document.warnings] + ([""] if document.warnings else [])
    if document.spend:
        rows = [[md(cell) for cell in row] for row in spend_table(document.spend)]
        out += ["## What the study has spent", "", *_table(list(SPEND_HEADER), rows)]
    if document.agreement:
        out += ["## Agreement between annotators", ""]
        out += _table(
            ["dimension", "labelled twice", "Cohen's κ", "Krippendorff's α"],
            [
                [
                    md(a.dimension),
                    str(a.responses),
                    "–" if a.cohen_kappa is None else f"{a.cohen_kappa:.2f}",
                    "–" if a.krippendorff_alpha is None else f"{a.krippendorff_alpha:.2f}",
                ]
                for a in document.agreement
            ],
        )
    plan = document.next
    if plan:
        out += ["## What to label next", "", md(plan.message), ""]
        if plan.picks:
            out += _table(
                ["dimension", "model", "segment", "level", "labels", "why"],
                [
                    [
                        md(p.dimension),
                        md(p.model),
                        md(p.segment),
                        md(p.level or "any"),
                        str(p.n),
                        md(p.reason),
                    ]
                    for p in plan.picks
                ],
            )
    if result is not None:
        d = result.diagnostics
        out += [
            "## Diagnostics",
            "",
            f"max R-hat {d.max_rhat:.3f}, min bulk ESS {d.min_ess_bulk:.0f}, {d.divergences} "
            f"divergences, {d.num_chains} chains × {d.num_samples} draws, engine {result.engine}.",
            "",
        ]
    return "\n".join(out)
