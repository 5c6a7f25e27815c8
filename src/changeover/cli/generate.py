"""`changeover generate`: run the models over the items, with progress and a summary."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    Progress,
    TaskID,
)
from rich.table import Table

from changeover.cli.app import (
    PRODUCE,
    StudyOption,
    app,
    console,
    progress_bars,
    split_names,
)
from changeover.generate import GenerateSummary, ModelSummary, generate
from changeover.study import load_study
from changeover.workspace import open_workspace


class RichReporter:
    """A progress bar per model with ETA, and done / cached / failed counts."""

    def __init__(self, progress: Progress, *, interval: float = 0.1) -> None:
        self._progress = progress
        self._tasks: dict[str, TaskID] = {}
        self._shown: dict[str, float] = {}
        self._interval = interval
        self.summaries: dict[str, ModelSummary] = {}  # the latest of each model, as it runs

    def start(self, model: str, total: int) -> None:
        self._tasks[model] = self._progress.add_task(model, total=total, status="")
        self._shown[model] = 0.0

    def update(self, summary: ModelSummary) -> None:
        self.summaries[summary.model] = summary
        # At hundreds of responses a second, updating the bar for each one costs more than it
        # shows: redraw at most every `interval` seconds, and always at the end.
        now = time.monotonic()
        finished = summary.done + summary.cached + summary.failed + summary.earlier_failures
        if now - self._shown[summary.model] < self._interval and finished < summary.total:
            return
        self._shown[summary.model] = now
        status = f"done {summary.done:,} · cached {summary.cached:,} · failed {summary.failed:,}"
        self._progress.update(self._tasks[summary.model], completed=finished, status=status)


def implausible_usage_note(name: str, count: int, example: str | None) -> str:
    """The one warning for a model's answers whose token counts cannot be true."""
    return (
        f"{name}: warning — {count:,} answers reported token usage that cannot be true "
        f"({example}); the responses are kept with their usage unknown, so tokens and cost "
        "undercount"
    )


def interrupted_lines(
    summaries: list[ModelSummary],
    stored: dict[str, dict[str, int]],
    resume: str,
    *,
    retry_failed: bool,
) -> list[str]:
    """What a Ctrl-C left: what this run received per model, what the workspace holds, and the
    command that resumes (each response was committed the moment it arrived)."""
    received = ", ".join(
        f"{m.model} {m.done + m.failed:,}" + (f" ({m.failed:,} failed)" if m.failed else "")
        for m in summaries
    )
    held = ", ".join(
        f"{name} {counts['ok']:,} of {sum(counts.values()):,}"
        + (f" ({counts['error']:,} failed)" if counts["error"] else "")
        for name, counts in stored.items()
    )
    missing = sum(c["missing"] + (c["error"] if retry_failed else 0) for c in stored.values())
    return [
        f"interrupted: this run received {received or 'nothing'}; each response was stored "
        "the moment it arrived, and the requests still in flight were dropped",
        f"the workspace holds {held or 'no response yet'}",
        f"resume with `{resume}`: it sends only the {missing:,} requests still missing",
    ]


def _resume_command(
    study_path: Path, names: list[str] | None, limit: int | None, retry_failed: bool
) -> str:
    parts = ["changeover generate"]
    if study_path != Path("study.yaml"):
        parts.append(f"--study {study_path}")
    if names:
        parts.append(f"--models {','.join(names)}")
    if limit is not None:
        parts.append(f"--limit {limit}")
    if retry_failed:
        parts.append("--retry-failed")
    return " ".join(parts)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}s"


def summary_table(summary: GenerateSummary) -> Table:
    items = max((m.total for m in summary.models), default=0)
    models = len(summary.models)
    title = f"generate, this run: {items:,} items × {models} model{'s' * (models != 1)}"
    table = Table(title=title, title_justify="left")
    for column in ("model", "done", "cached", "failed", "tokens in/out", "cost", "p50", "p95"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for model in summary.models:
        cost = "-" if model.cost is None else f"${model.cost:,.4f}"
        table.add_row(
            model.model,
            f"{model.done:,}",
            f"{model.cached:,}",
            f"{model.failed:,}",
            f"{model.input_tokens:,}/{model.output_tokens:,}",
            cost,
            _seconds(model.p50),
            _seconds(model.p95),
        )
    return table


def _notes(model: ModelSummary) -> list[str]:
    notes = []
    if model.failed_by_kind:
        kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(model.failed_by_kind.items()))
        notes.append(f"{model.model}: failed — {kinds}; retry with --retry-failed")
    if model.retries_by_kind:
        kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(model.retries_by_kind.items()))
        notes.append(f"{model.model}: retried — {kinds}")
    if model.earlier_failures:
        notes.append(
            f"{model.model}: {model.earlier_failures:,} failures from earlier runs kept; "
            "retry them with --retry-failed"
        )
    if model.stale:
        notes.append(
            f"{model.model}: {model.stale:,} stored responses were generated with other "
            "settings and are kept; give the model a new name to generate afresh"
        )
    if model.stopped:
        notes.append(f"{model.model}: stopped early — {model.stopped}; fix it and re-run")
    if model.implausible_usage:
        notes.append(
            implausible_usage_note(model.model, model.implausible_usage, model.implausible_example)
        )
    return notes


@app.command(name="generate", rich_help_panel=PRODUCE)
def generate_command(
    study_path: StudyOption = Path("study.yaml"),
    models: Annotated[
        list[str] | None,
        typer.Option("--models", help="Models to run (repeat or comma-separate); default all."),
    ] = None,
    limit: Annotated[
        int | None, typer.Option(help="Only the first N items (in import order).", min=1)
    ] = None,
    retry_failed: Annotated[
        bool, typer.Option("--retry-failed", help="Also re-send requests that failed before.")
    ] = False,
) -> None:
    """Run the models over the items; resumable, re-running calls no provider for stored work."""
    study = load_study(study_path)
    names = split_names(models)
    progress = progress_bars(label_width=12, status=True)
    reporter = RichReporter(progress)
    with open_workspace(study.workspace_path) as workspace:
        try:
            with progress:
                summary = generate(
                    study,
                    workspace,
                    models=names,
                    limit=limit,
                    retry_failed=retry_failed,
                    reporter=reporter,
                )
        except KeyboardInterrupt:
            stored = {
                name: workspace.count_for(name, limit=limit) for name in names or study.model_names
            }
            resume = _resume_command(study_path, names, limit, retry_failed)
            lines = interrupted_lines(
                list(reporter.summaries.values()), stored, resume, retry_failed=retry_failed
            )
            for line in lines:
                console.print(line, markup=False, highlight=False)
            raise typer.Exit(130) from None
    console.print(summary_table(summary))
    for model in summary.models:
        for note in _notes(model):
            console.print(note, markup=False, highlight=False)
