"""`changeover score`: compute the automated signals, with progress and a summary."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    Progress,
    TaskID,
)
from rich.table import Table
from rich.text import Text

from changeover.calls import BatchProgress
from changeover.cli.app import (
    PRODUCE,
    StudyOption,
    app,
    console,
    print_next,
    progress_bars,
    split_names,
)
from changeover.cli.generate import (
    batch_notes,
    implausible_usage_note,
    print_plan,
    spend_lines,
)
from changeover.score import ScoreSummary, SignalScore, estimate_scoring, score
from changeover.signals import signal_health
from changeover.study import load_study
from changeover.workspace import open_workspace


class RichScoreReporter:
    """A progress bar per signal, with ETA."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._tasks: dict[str, TaskID] = {}

    def start(self, signal: str, total: int, done: int) -> None:
        # `status` feeds the status column of a shared display (`changeover run`).
        self._tasks[signal] = self._progress.add_task(
            signal, total=total, completed=done, status="scoring"
        )

    def advance(self, signal: str, n: int) -> None:
        self._progress.advance(self._tasks[signal], n)

    def batch(self, signal: str, progress: BatchProgress) -> None:
        """A batch judge: how its batches stand, in the status column."""
        self._progress.update(self._tasks[signal], status=progress.describe())


def _levels(summary: SignalScore) -> str:
    return " · ".join(f"{level} {n:,}" for level, n in summary.levels.items())


def summary_table(summary: ScoreSummary) -> Table:
    responses = max((s.total for s in summary.signals), default=0)
    signals = len(summary.signals)
    title = f"score, this run: {responses:,} responses × {signals} signal{'s' * (signals != 1)}"
    table = Table(title=title, title_justify="left")
    columns = ("signal", "dimension", "scored", "stored", "levels", "calls", "cached", "cost")
    for column in columns:
        is_text = column in ("signal", "dimension", "levels")
        table.add_column(column, justify="left" if is_text else "right")
    for signal in [*summary.signals, *summary.combined]:
        is_judge = signal.kind == "judge"
        cost = "-" if signal.cost is None else f"${signal.cost:,.4f}"
        table.add_row(
            signal.signal,
            signal.dimension,
            f"{signal.scored:,}",
            f"{signal.stored:,}",
            _levels(signal),
            f"{signal.requests:,}" if is_judge else "-",
            f"{signal.cached:,}" if is_judge else "-",
            cost if is_judge else "-",
        )
    return table


def _notes(signal: SignalScore) -> list[str]:
    notes = batch_notes(
        signal.signal, signal.batch, signal.batch_requests, signal.batch_cost, signal.saving
    )
    if signal.failed_by_kind:
        kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(signal.failed_by_kind.items()))
        notes.append(
            f"{signal.signal}: judge calls failed — {kinds}; stored as level 'error', "
            "retry with --retry-failed"
        )
    if signal.retries_by_kind:
        kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(signal.retries_by_kind.items()))
        notes.append(f"{signal.signal}: retried — {kinds}")
    if signal.earlier_errors:
        notes.append(
            f"{signal.signal}: {signal.earlier_errors:,} judge errors from earlier runs kept; "
            "retry them with --retry-failed"
        )
    unparseable = signal.levels.get("unparseable", 0)
    if unparseable and signal_health(signal.levels).is_healthy:  # else a loud warning says it
        notes.append(
            f"{signal.signal}: {unparseable:,} judge answers held no verdict (level "
            "'unparseable', raw answer in detail); `changeover export signals` shows them"
        )
    if signal.stopped:
        notes.append(f"{signal.signal}: stopped early — {signal.stopped}; fix it and re-run")
    if signal.implausible_usage:
        notes.append(
            implausible_usage_note(
                signal.signal, signal.implausible_usage, signal.implausible_example
            )
        )
    if signal.settings_changed:
        notes.append(
            f"{signal.signal}: its settings changed since its stored rows were computed; they "
            f"are kept: rescore them with `changeover score --rescore --signals {signal.signal}`"
        )
    if signal.recomputed:
        notes.append(f"{signal.signal}: new responses moved the quantile edges; all re-binned")
    return notes


@app.command(
    name="score",
    rich_help_panel=PRODUCE,
    short_help="Compute the study's signals (detectors and LLM judges) for every response; "
    "resumable.",
)
def score_command(
    study_path: StudyOption = Path("study.yaml"),
    signals: Annotated[
        list[str] | None,
        typer.Option(
            "--signals", help="Signals to compute (repeat or comma-separate); default all."
        ),
    ] = None,
    retry_failed: Annotated[
        bool,
        typer.Option("--retry-failed", help="Judge again the responses whose judge call failed."),
    ] = False,
    rescore: Annotated[
        bool,
        typer.Option(
            "--rescore",
            help="Delete and compute again the selected signals (judge answers come from the "
            "request cache when nothing changed).",
        ),
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Say what the judges would be sent and what it would cost; send and write "
            "nothing.",
        ),
    ] = False,
) -> None:
    """Compute the study's signals (detectors and LLM judges) for every response; resumable,
    re-running computes nothing already stored."""
    study = load_study(study_path)
    names = split_names(signals)
    if dry_run:
        with open_workspace(study.workspace_path) as workspace:
            plan = estimate_scoring(
                study, workspace, signals=names, retry_failed=retry_failed, rescore=rescore
            )
        print_plan(plan, "score", title="score --dry-run: what the judges would be sent")
        return
    with (
        open_workspace(study.workspace_path) as workspace,
        progress_bars(label_width=20) as progress,
    ):
        summary = score(
            study,
            workspace,
            signals=names,
            retry_failed=retry_failed,
            rescore=rescore,
            reporter=RichScoreReporter(progress),
        )
        left = sum(s.total - s.stored - s.scored for s in summary.signals if s.kind == "judge")
        spent = spend_lines(workspace, summary.run_id, summary.budget_exceeded, left)
    console.print(summary_table(summary))
    for signal in summary.signals:
        for note in _notes(signal):
            console.print(note, markup=False, highlight=False)
    for combined in summary.combined:
        console.print(
            f"{combined.dimension}: {combined.signal} (cross product of levels) feeds "
            "`changeover export rows`",
            markup=False,
            highlight=False,
        )
    for line in spent:
        console.print(line, markup=False, highlight=False)
    for signal in summary.signals:
        for warning in signal_health(signal.levels).warnings(signal.signal):
            console.print(Text("warning: ", style="bold red") + Text(warning), highlight=False)
    print_next(study_path)
