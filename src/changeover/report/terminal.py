"""The terminal summary of a fit: verdicts first, then gates, then diagnostics.

Readable at 80 columns and in a CI log: names and intervals never wrap or get cut (only the
"why" text wraps), and when the output is not a terminal the tables are plain text, one line
per row. Every name and reason is printed as text, never read as Rich markup.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from rich import box
from rich.console import Console
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from changeover.calibrate.decide import CandidateResult, GateResult, Result
from changeover.calibrate.next import NextPlan
from changeover.report.document import ReportDocument, overall_rate
from changeover.report.html import (
    OPERATIONS_HEADER,
    contrast_text,
    gate_subject,
    margins,
    operations_table,
    percent,
)

__all__ = [
    "Column",
    "print_document",
    "print_operations",
    "print_plan",
    "print_preview",
    "print_result",
    "print_summary",
    "print_table",
    "print_truth",
    "print_warnings",
    "verdict_text",
]

_STYLE = {
    "ready": "bold green",
    "not-ready": "bold red",
    "undecided": "bold yellow",
    "held": "green",
    "failed": "red",
    "unsettled": "yellow",
}


@dataclass(frozen=True)
class Column:
    """A table column: `wrap` columns may wrap (free text); the others are kept whole."""

    name: str
    justify: Literal["left", "right"] = "left"
    wrap: bool = False


Cell = str | Text


def print_table(
    console: Console, title: str | None, columns: Sequence[Column], rows: Sequence[Sequence[Cell]]
) -> None:
    """A table that stays whole: on a terminal a Rich table whose only wrapping columns are the
    free-text ones; elsewhere (a pipe, a CI log) plain text, one line per row, never wrapped."""
    if console.is_terminal:
        table = Table(
            title=None if title is None else Text(title),
            title_justify="left",
            box=box.SIMPLE_HEAD,
            pad_edge=False,
        )
        for column in columns:
            table.add_column(
                column.name,
                justify=column.justify,
                no_wrap=not column.wrap,
                overflow="fold",
                ratio=1 if column.wrap else None,
            )
        for row in rows:
            table.add_row(*(cell if isinstance(cell, Text) else Text(cell) for cell in row))
        console.print(table)
        return
    plain = [[c.plain if isinstance(c, Text) else c for c in row] for row in rows]
    header = [c.name for c in columns]
    widths = [max(len(r[i]) for r in [header, *plain]) for i in range(len(columns))]
    lines = [] if title is None else [title]
    for row in [header, *plain]:
        cells = [
            text.rjust(width) if column.justify == "right" else text.ljust(width)
            for text, width, column in zip(row, widths, columns, strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    for line in lines:
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    console.print()


def _say(console: Console, *parts: Cell, indent: int = 0) -> None:
    """Print user text as text (never markup): on a terminal wrapped (a hanging `indent`),
    elsewhere on one line."""
    text = Text.assemble(*parts)
    if console.is_terminal:
        console.print(Padding(text, (0, 0, 0, indent)) if indent else text, highlight=False)
    else:
        console.print(Text(" " * indent) + text, highlight=False, soft_wrap=True)


def verdict_text(verdict: CandidateResult, *, converged: bool = True) -> Text:
    """The verdict, coloured; "(provisional)" when the fit it comes from did not converge."""
    text = Text(verdict.verdict, style=_STYLE[verdict.verdict])
    if not converged:
        text.append(" (provisional)", style="yellow")
    return text


def _prob(x: float) -> str:
    return f"{x:.3f}" if x == x else "n/a"


def _gate_title(name: str, gate: GateResult) -> str:
    return (
        f"gate {name}: {gate_subject(gate)}, {gate.better} is better, {margins(gate)}, "
        f"holds at P ≥ {gate.probability}"
    )


def _gate_table(console: Console, name: str, gate: GateResult) -> None:
    """One row per gated condition. On a terminal each candidate heads its rows (so that long
    names and intervals fit 80 columns); in plain text every row names its candidate."""
    grouped = console.is_terminal
    columns = [Column("candidate / where" if grouped else "where"), Column("contrast", "right"),
               Column("P(holds)", "right"), Column("state")]  # fmt: skip
    if not grouped:
        columns.insert(0, Column("candidate"))
    rows: list[list[Cell]] = []
    for candidate, entry in gate.contrasts.items():
        gated = [(where, c) for where, c in entry.places() if c.gated]
        if grouped and gated:
            rows.append([Text(candidate, "bold"), "", "", ""])
        for where, c in gated:
            shown = contrast_text(gate, c.mean)
            if c.mean == c.mean:
                shown += f" [{contrast_text(gate, c.lo)}, {contrast_text(gate, c.hi)}]"
            cells: list[Cell] = [
                f"  {where}" if grouped else where,
                shown,
                _prob(c.p_gate),
                Text(c.state, style=_STYLE.get(c.state, "")),
            ]
            rows.append(cells if grouped else [candidate, *cells])
    print_table(console, _gate_title(name, gate), columns, rows)


def print_result(result: Result, console: Console) -> None:
    """Render a fresh Result: verdicts, gate contrasts, diagnostics and how long sampling took."""
    print_summary(result, console, seconds=result.diagnostics.seconds)


def print_summary(result: Result, console: Console, *, seconds: float | None = None) -> None:
    """Render a result: the verdicts and why (with how many human labels they rest on), one
    table per gate with each condition's state, the diagnostics."""
    converged = result.diagnostics.converged
    labels = result.n_labels
    _say(
        console,
        Text(f"Can a candidate replace '{result.incumbent}'?", "bold"),
        f" Decided on {labels:,} human label{'s' if labels != 1 else ''}.",
    )
    width = max(len(name) for name in result.candidates)
    for name, verdict in result.candidates.items():
        _say(
            console,
            f"  {name.ljust(width)}  ",
            verdict_text(verdict, converged=converged),
            f"  P(all gates) = {_prob(verdict.p_all_gates)}",
        )
        _say(console, f"why: {verdict.reason}", indent=width + 4)
    console.print()
    if result.gates:
        console.print(
            f"Gates: contrast candidate − incumbent in points (cost and latency in their own "
            f"units), mean [{round(100 * result.interval)}% interval]; a condition is held, "
            "failed or unsettled by its P(holds).",
            highlight=False,
        )
    for name, gate in result.gates.items():
        _gate_table(console, name, gate)
    print_operations(result, console)
    d = result.diagnostics
    took = "" if seconds is None else f", {seconds:.1f} s"
    status = Text("converged", style="green") if converged else Text("NOT CONVERGED", "bold red")
    _say(
        console,
        "diagnostics: ",
        status,
        f" — max R-hat {d.max_rhat:.3f}, min bulk ESS {d.min_ess_bulk:.0f}, {d.divergences} "
        f"divergences ({d.num_chains} chains × {d.num_samples} draws{took}, engine "
        f"{result.engine})",
    )
    if not converged:
        _say(
            console,
            Text("the fit did not converge, so its verdicts are provisional: ", "bold red"),
            f"sample longer (e.g. --num-samples {2 * d.num_samples}) before acting on them",
        )


def print_operations(result: Result, console: Console) -> None:
    """Each model's cost per 1,000 interactions and p50 / p95 latency at the traffic mix, with
    their intervals, and why any is not measured."""
    if not result.operations:
        return
    rows, notes = operations_table(result.operations)
    pct = round(100 * result.interval)
    print_table(
        console,
        f"Cost and latency at the traffic mix [{pct}% bootstrap interval]",
        [Column("model"), *(Column(h, "right") for h in OPERATIONS_HEADER)],
        [list(row) for row in rows],
    )
    for note in notes:
        _say(console, Text("not measured: ", "yellow"), note)
    if notes:
        console.print()


def print_document(document: ReportDocument, console: Console) -> None:
    """A report document in the terminal: its warnings, then the fit's summary, or before the
    first labels the preview and how labelling starts."""
    print_warnings(document.warnings, console)
    if document.result is not None:
        seconds = None if document.fit is None else document.fit.seconds
        print_summary(document.result, console, seconds=seconds)
    else:
        print_preview(document, console)
        if document.next is not None:
            _say(console, document.next.message)
            print_plan(document.next, console)
    if document.spend:
        parts = ", ".join(
            f"{s.model} {s.purpose} ${s.cost or 0:,.4f}" for s in document.spend if s.cost
        )
        total = sum(s.cost or 0.0 for s in document.spend)
        _say(
            console,
            f"the study has spent ${total:,.4f} with providers" + (f" ({parts})" if parts else ""),
        )


def print_warnings(warnings: Sequence[str], console: Console) -> None:
    for warning in warnings:
        _say(console, Text("warning: ", "yellow"), warning)


def print_preview(document: ReportDocument, console: Console) -> None:
    """Before the first labels: the raw signal rates, marked as a preview, and how labelling
    starts. No verdict without labels."""
    missing = ", ".join(document.unlabelled_dimensions)
    _say(
        console,
        Text("PREVIEW — no verdict without labels. ", "bold yellow"),
        f"No human label yet for {missing}, so the signals cannot be calibrated: below is what "
        "each signal says taken at its word, which is not an estimate.",
    )
    for dimension, groups in document.raw.items():
        for group, signals in groups.items():
            if not signals:
                continue
            models = list(next(iter(signals.values())))
            title = dimension if group == "all" else f"{dimension} ({group})"
            print_table(
                console,
                f"raw signal rates: {title}",
                [Column("model"), *(Column(f"raw: {s}", "right") for s in signals)],
                [
                    [model, *(percent(overall_rate(rates, model)) for rates in signals.values())]
                    for model in models
                ],
            )


def print_plan(plan: NextPlan, console: Console) -> None:
    """What to label next, grouped by why: each reason once, then the strata it asks for."""
    if not plan.picks:
        return
    console.print("what to label next, and why", highlight=False)
    for reason, picks in plan.by_reason():
        labels = sum(p.n for p in picks)
        _say(console, Text(f"{labels} label{'s' if labels != 1 else ''} for ", "bold"), reason)
        detail = any(p.detail for p in picks)
        columns = [Column("dimension"), Column("model"), Column("segment"), Column("level"),
                   Column("labels", "right")]  # fmt: skip
        if detail:
            columns.append(Column("here", wrap=True))
        rows: list[list[Cell]] = [
            [
                p.dimension if not p.group else f"{p.dimension} ({p.group})",
                p.model,
                p.segment,
                p.level or "any",
                str(p.n),
                *([p.detail] if detail else []),
            ]
            for p in picks
        ]
        print_table(console, None, columns, rows)


def _raw(rates: list[tuple[str, float | None]]) -> str:
    """The raw rate of the one signal, or of each signal by name; "–" where there is none."""
    if len(rates) == 1:
        return percent(rates[0][1])
    return ", ".join(f"{percent(rate)} {signal}" for signal, rate in rates) or "–"


def print_truth(document: ReportDocument, console: Console) -> None:
    """Estimated against true overall rates, for a study whose truth is known (the demo)."""
    result = document.result
    if result is None:
        return
    truth = document.truth or {}
    pct = int(round(100 * result.interval))
    rows: list[list[Cell]] = []
    covered = total = 0
    for dimension, groups in result.rates.items():
        for group, models in groups.items():
            title = dimension if group == "all" else f"{dimension} ({group})"
            true_rates = truth.get(dimension, {}).get(group, {})
            raw_rates = document.raw.get(dimension, {}).get(group, {})
            for model, r in models.items():
                true = overall_rate(true_rates, model)
                raw = [(signal, overall_rate(rates, model)) for signal, rates in raw_rates.items()]
                o = r.overall
                hit = true is not None and o.lo <= true <= o.hi
                mark: Cell = Text("yes", "green") if hit else Text("no", "red")
                covered += hit
                total += true is not None
                rows.append(
                    [
                        title,
                        model,
                        f"{100 * o.mean:.1f}% [{100 * o.lo:.1f}, {100 * o.hi:.1f}]",
                        _raw(raw),
                        percent(true),
                        "" if true is None else mark,
                    ]
                )
    print_table(
        console,
        f"The method against the truth: calibrated rate [{pct}% interval], raw signal, true",
        [Column("dimension"), Column("model"), Column("calibrated", "right"),
         Column("raw signal", "right"), Column("true", "right"),
         Column("covered", "right")],
        rows,
    )  # fmt: skip
    console.print(f"{covered} of {total} true rates inside their {pct}% intervals")
