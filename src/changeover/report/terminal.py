"""The terminal summary of a fit: verdicts first, then gates, then diagnostics."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from changeover.calibrate.decide import Result
from changeover.report.document import ReportDocument, overall_rate
from changeover.report.html import percent

__all__ = ["print_result", "print_summary", "print_truth"]

_STYLE = {"ready": "bold green", "not-ready": "bold red", "undecided": "bold yellow"}


def _pct(x: float) -> str:
    return f"{100 * x:+.1f}" if x == x else "n/a"


def print_result(result: Result, console: Console) -> None:
    """Render a fresh Result: verdicts, gate contrasts, diagnostics and how long sampling took."""
    print_summary(result, console, seconds=result.diagnostics.seconds)


def print_summary(result: Result, console: Console, *, seconds: float | None = None) -> None:
    """Render a result: one line per candidate, a table of gate contrasts, the diagnostics."""
    verdicts = Table(title=f"Can a candidate replace '{result.incumbent}'?", title_justify="left")
    verdicts.add_column("candidate")
    verdicts.add_column("verdict")
    verdicts.add_column("P(all gates)", justify="right")
    verdicts.add_column("why")
    for name, verdict in result.candidates.items():
        verdicts.add_row(
            name,
            f"[{_STYLE[verdict.verdict]}]{verdict.verdict}[/]",
            f"{verdict.p_all_gates:.3f}",
            verdict.reason,
        )
    console.print(verdicts)

    pct = int(round(100 * result.interval))
    gates = Table(
        title=f"Gates: contrast candidate - incumbent, percentage points, mean [{pct}% interval]",
        title_justify="left",
    )
    for column in ("gate", "candidate", "where"):
        gates.add_column(column)
    for column in ("contrast", "margin", "P(holds)"):
        gates.add_column(column, justify="right")
    for gate_name, gate in result.gates.items():
        sign = "≥ -" if gate.better == "higher" else "≤ +"
        for candidate, entry in gate.contrasts.items():
            for where, c in entry.places():
                if not c.gated:
                    continue
                gates.add_row(
                    gate_name,
                    candidate,
                    where,
                    f"{_pct(c.mean)} [{_pct(c.lo)}, {_pct(c.hi)}]",
                    f"{sign}{100 * c.margin:.1f}",
                    f"{c.p_gate:.3f}",
                )
    console.print(gates)

    d = result.diagnostics
    status = "[green]converged[/]" if d.converged else "[bold red]NOT CONVERGED[/]"
    took = "" if seconds is None else f", {seconds:.1f} s"
    console.print(
        f"diagnostics: {status} — max R-hat {d.max_rhat:.3f}, min bulk ESS "
        f"{d.min_ess_bulk:.0f}, {d.divergences} divergences ({d.num_chains} chains × "
        f"{d.num_samples} draws{took}, engine {result.engine})"
    )


def _raw(rates: list[tuple[str, float | None]]) -> str:
    """The raw rate of the one signal, or of each signal by name; "–" where there is none."""
    if len(rates) == 1:
        return percent(rates[0][1])
    return ", ".join(f"{percent(rate)} {signal}" for signal, rate in rates) or "–"


def print_truth(document: ReportDocument, console: Console) -> None:
    """Estimated against true overall rates, for a study whose truth is known (the demo)."""
    truth = document.truth or {}
    result = document.result
    pct = int(round(100 * result.interval))
    table = Table(
        title=f"The method against the truth: calibrated rate [{pct}% interval], raw signal, true",
        title_justify="left",
    )
    for column in ("dimension", "model"):
        table.add_column(column)
    for column in ("calibrated", "raw signal", "true", "covered"):
        table.add_column(column, justify="right")
    covered = total = 0
    for dimension, groups in result.rates.items():
        for group, models in groups.items():
            title = dimension if group == "all" else f"{dimension} ({group})"
            true_rates = truth.get(dimension, {}).get(group, {})
            raw_rates = document.raw.get(dimension, {}).get(group, {})
            for model, r in models.items():
                true = true_rates[model].overall if model in true_rates else None
                raw = [(signal, overall_rate(rates, model)) for signal, rates in raw_rates.items()]
                o = r.overall
                hit = true is not None and o.lo <= true <= o.hi
                covered += hit
                total += true is not None
                table.add_row(
                    title,
                    model,
                    f"{100 * o.mean:.1f}% [{100 * o.lo:.1f}, {100 * o.hi:.1f}]",
                    _raw(raw),
                    "–" if true is None else f"{100 * true:.1f}%",
                    "[green]yes[/]" if hit else "[red]no[/]" if true is not None else "",
                )
    console.print(table)
    console.print(f"{covered} of {total} true rates inside their {pct}% intervals")
