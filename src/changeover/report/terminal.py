"""The terminal summary of a fit: verdicts first, then gates, then diagnostics."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from changeover.calibrate.decide import Result

__all__ = ["print_result"]

_STYLE = {"ready": "bold green", "not-ready": "bold red", "undecided": "bold yellow"}


def _pct(x: float) -> str:
    return f"{100 * x:+.1f}" if x == x else "n/a"


def print_result(result: Result, console: Console) -> None:
    """Render a Result: one line per candidate, a table of gate contrasts, the diagnostics."""
    verdicts = Table(title=f"Can a candidate replace '{result.incumbent}'?", title_justify="left")
    verdicts.add_column("candidate")
    verdicts.add_column("verdict")
    verdicts.add_column("P(all gates)", justify="right")
    verdicts.add_column("why")
    for name, c in result.candidates.items():
        verdicts.add_row(
            name, f"[{_STYLE[c.verdict]}]{c.verdict}[/]", f"{c.p_all_gates:.3f}", c.reason
        )
    console.print(verdicts)

    pct = int(round(100 * result.interval))
    gates = Table(
        title=f"Gates: contrast candidate - incumbent, percentage points, mean [{pct}% interval]",
        title_justify="left",
    )
    gates.add_column("gate")
    gates.add_column("candidate")
    gates.add_column("where")
    gates.add_column("contrast", justify="right")
    gates.add_column("margin", justify="right")
    gates.add_column("P(holds)", justify="right")
    for gate_name, gate in result.gates.items():
        for candidate, entry in gate["contrasts"].items():
            places = [("overall", entry["overall"]), *entry["segments"].items()]
            for where, c in places:
                if not c["gated"]:
                    continue
                sign = "≥ -" if gate["better"] == "higher" else "≤ +"
                gates.add_row(
                    gate_name,
                    candidate,
                    where,
                    f"{_pct(c['mean'])} [{_pct(c['lo'])}, {_pct(c['hi'])}]",
                    f"{sign}{100 * c['margin']:.1f}",
                    f"{c['p_gate']:.3f}",
                )
    console.print(gates)

    d = result.diagnostics
    status = "[green]converged[/]" if d.is_converged else "[bold red]NOT CONVERGED[/]"
    console.print(
        f"diagnostics: {status} — max R-hat {d.max_rhat:.3f}, min bulk ESS {d.min_ess_bulk:.0f}, "
        f"{d.divergences} divergences ({d.num_chains} chains × {d.num_samples} draws, "
        f"{d.seconds:.1f} s, engine {result.engine})"
    )
