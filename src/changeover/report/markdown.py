"""The report as Markdown: the same document as the HTML report, tables only (no plots)."""

from __future__ import annotations

from changeover.calibrate.decide import Result
from changeover.report.document import ReportDocument, overall_rate
from changeover.report.html import blocks_of, percent

__all__ = ["render_markdown"]


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, ""]


def _preview(document: ReportDocument) -> list[str]:
    missing = ", ".join(document.unlabelled_dimensions)
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
        out += [f"### {block.title}", ""]
        out += _table(
            ["model", *(f"raw: {signal}" for signal in block.raw)],
            [
                [model, *(percent(overall_rate(rates, model)) for rates in block.raw.values())]
                for model in models
            ],
        )
    return out


def _verdicts(result: Result, document: ReportDocument) -> list[str]:
    out = _table(
        ["candidate", "verdict", "P(all gates)", "why"],
        [
            [name, f"**{c.verdict}**", f"{c.p_all_gates:.3f}", c.reason]
            for name, c in result.candidates.items()
        ],
    )
    if not result.diagnostics.converged:
        out += ["**The fit did not converge: do not act on these verdicts.**", ""]
    out += ["## Gates", "", "Contrast candidate − incumbent in percentage points.", ""]
    for name, gate in result.gates.items():
        sign = "≥ -" if gate.better == "higher" else "≤ +"
        rows = [
            [
                candidate,
                where,
                f"{100 * c.mean:+.1f} [{100 * c.lo:+.1f}, {100 * c.hi:+.1f}]",
                f"{sign}{100 * c.margin:.1f}",
                f"{c.p_gate:.3f}",
            ]
            for candidate, entry in gate.contrasts.items()
            for where, c in entry.places()
            if c.gated
        ]
        out += [f"### {name} ({gate.dimension}, {gate.better} is better)", ""]
        out += _table(["candidate", "where", "contrast", "margin", "P(holds)"], rows)
    out += ["## Calibrated rates against the raw signal", ""]
    truth = document.truth
    for block in blocks_of(document):
        raw = [f"raw: {signal}" for signal in block.raw]
        header = ["model", "calibrated", *raw, *(["true"] if truth else []), "labels"]
        rows = []
        for model, r in result.rates[block.dimension][block.group].items():
            o = r.overall
            row = [model, f"{percent(o.mean)} [{percent(o.lo)}, {percent(o.hi)}]"]
            row += [percent(overall_rate(rates, model)) for rates in block.raw.values()]
            if truth:
                row.append(percent(overall_rate(block.truth, model)))
            row.append(str(sum(block.labels.get(model, {}).values())))
            rows.append(row)
        out += [f"### {block.title}", ""] + _table(header, rows)
        for f in block.flags:
            out.append(
                f"- the signal treats **{f.model}** differently: P({f.level} | human "
                f"{f.given}) = {percent(f.value)} against a median of {percent(f.others)}"
            )
        if block.flags:
            out.append("")
    return out


def render_markdown(document: ReportDocument) -> str:
    """Verdicts, gates, rates, labels, what to label next and diagnostics, as Markdown (before
    the first labels, a preview: the raw signal rates and how labelling starts)."""
    result = document.result
    out = [f"# Can a candidate replace `{document.study.incumbent}`?", ""]
    out += _verdicts(result, document) if result is not None else _preview(document)
    out += [f"> warning: {w}" for w in document.warnings] + ([""] if document.warnings else [])
    if document.agreement:
        out += ["## Agreement between annotators", ""]
        out += _table(
            ["dimension", "labelled twice", "Cohen's κ", "Krippendorff's α"],
            [
                [
                    a.dimension,
                    str(a.responses),
                    "–" if a.cohen_kappa is None else f"{a.cohen_kappa:.2f}",
                    "–" if a.krippendorff_alpha is None else f"{a.krippendorff_alpha:.2f}",
                ]
                for a in document.agreement
            ],
        )
    plan = document.next
    if plan:
        out += ["## What to label next", "", plan.message, ""]
        if plan.picks:
            out += _table(
                ["dimension", "model", "segment", "level", "labels", "why"],
                [
                    [p.dimension, p.model, p.segment, p.level or "any", str(p.n), p.reason]
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
