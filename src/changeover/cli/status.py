"""`changeover status`: where the study stands, in one screen, and the command to run next."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from changeover.cli.app import PIPELINE, StudyOption, app, console
from changeover.status import Status, next_command, study_status
from changeover.study import load_study
from changeover.workspace import open_workspace


def _share(value: float) -> str:
    return f"{value:.0%}" if value else "0"


def _tables(status: Status) -> list[Table]:
    responses = Table(title="responses per model", title_justify="left")
    for column in ("model", "ok", "failed", "not yet"):
        responses.add_column(column, justify="left" if column == "model" else "right")
    for m in status.responses:
        responses.add_row(m.model, f"{m.ok:,}", f"{m.failed:,}", f"{m.missing:,}")

    signals = Table(title="signals", title_justify="left")
    for column in ("signal", "dimension", "scored", "to score", "error", "unparseable"):
        signals.add_column(column, justify="left" if column in ("signal", "dimension") else "right")
    for s in status.signals:
        signals.add_row(
            s.name,
            s.dimension,
            f"{s.scored:,}",
            f"{s.unscored:,}",
            _share(s.health.error_share),
            _share(s.health.unparseable_share),
        )

    labels = Table(title="human labels per model and segment", title_justify="left")
    segments = list(next(iter(status.labels.values()), {}))
    labels.add_column("model")
    for segment in segments:
        labels.add_column(segment, justify="right")
    for model, per_segment in status.labels.items():
        labels.add_row(model, *(f"{per_segment[s]:,}" for s in segments))

    money = Table(title="spend", title_justify="left")
    for column in ("model", "purpose", "requests", "tokens in/out", "cost", "p50", "p95"):
        money.add_column(column, justify="left" if column in ("model", "purpose") else "right")
    for spend in status.spend:
        money.add_row(
            spend.model,
            spend.purpose,
            f"{spend.requests:,}",
            f"{spend.input_tokens:,}/{spend.output_tokens:,}",
            "-" if spend.cost is None else f"${spend.cost:,.4f}",
            "-" if spend.latency_p50_s is None else f"{spend.latency_p50_s:.2f}s",
            "-" if spend.latency_p95_s is None else f"{spend.latency_p95_s:.2f}s",
        )
    return [responses, signals, labels, *([money] if status.spend else [])]


@app.command(
    rich_help_panel=PIPELINE,
    short_help="Where the study stands, in one screen, and the command to run next.",
)
def status(study_path: StudyOption = Path("study.yaml")) -> None:
    """Where the study stands: items, responses per model, signals and their health, labels per
    model and segment, the last fit and its verdicts, money spent, and the command to run next."""
    study = load_study(study_path)
    with open_workspace(study.workspace_path) as workspace:
        state = study_status(study, workspace)
    segments = ", ".join(f"{s} {n:,}" for s, n in state.items_per_segment.items())
    console.print(f"items: {state.items:,} ({segments})", highlight=False, markup=False)
    for table in _tables(state):
        console.print(table)
    for s in state.signals:
        for line in s.health.warnings(s.name):
            console.print(f"warning: {line}", highlight=False, markup=False)
    queued = f", {state.queued_open:,} queued to label" if state.queued_open else ""
    console.print(
        f"labels: {state.label_total:,} labelled (response, dimension) pairs, "
        f"{state.annotators} active annotator(s){queued}; spent ${state.spent:,.2f} in all",
        highlight=False,
        markup=False,
    )
    if state.fit is None:
        console.print("last fit: none yet", highlight=False, markup=False)
    else:
        document = state.fit.document
        stale = "" if state.fit.is_current else " (out of date: the workspace changed since)"
        if document.result is None:
            console.print(
                f"last fit: a preview of {document.created}{stale}; no verdict without labels",
                highlight=False,
                markup=False,
            )
        else:
            verdicts = ", ".join(
                f"{name} {c.verdict} (P = {c.p_all_gates:.3f})"
                for name, c in document.result.candidates.items()
            )
            console.print(
                f"last fit: {document.created}{stale}: {verdicts}", highlight=False, markup=False
            )
    console.print(next_command(state), highlight=False, markup=False)
