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

from changeover.calls import BatchProgress, SpendPlan, dollars
from changeover.cli.app import (
    PRODUCE,
    StudyOption,
    app,
    console,
    print_next,
    progress_bars,
    split_names,
)
from changeover.generate import GenerateSummary, ModelSummary, estimate_generation, generate
from changeover.study import load_study
from changeover.workspace import Workspace, open_workspace


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
        if summary.batch is not None and finished < summary.total:
            status = summary.batch.describe()
        self._progress.update(self._tasks[summary.model], completed=finished, status=status)


def batch_notes(
    name: str,
    progress: BatchProgress | None,
    answered: int,
    cost: float,
    saving: float,
) -> list[str]:
    """What a batch model's batches did: the saving against online prices, batches resumed,
    entries that failed and how they were sent again."""
    if progress is None:
        return []
    notes = []
    if answered:
        share = f" ({saving / (cost + saving):.0%})" if cost + saving > 0 else ""
        notes.append(
            f"{name}: {answered:,} answers through the batch API cost {dollars(cost)}, saving "
            f"{dollars(saving)}{share} against online prices"
        )
    if progress.resumed:
        notes.append(
            f"{name}: {progress.resumed:,} requests were in batches an earlier run submitted: "
            "collected, not submitted again"
        )
    if progress.failed:
        again = []
        if progress.retried_online:
            again.append(f"{progress.retried_online:,} sent again online")
        if progress.resubmitted:
            again.append(f"{progress.resubmitted:,} in a new batch")
        expired = (
            f" ({progress.expired} batch{'es' * (progress.expired != 1)} expired or was cancelled)"
            if progress.expired
            else ""
        )
        notes.append(
            f"{name}: {progress.failed:,} entries failed in a batch{expired}"
            + (f"; {', '.join(again)}" if again else "")
        )
    if progress.lost:
        notes.append(
            f"{name}: {progress.lost} batch{'es' * (progress.lost != 1)} no longer known to the "
            "provider (404): their requests were submitted again"
        )
    return notes


def spend_lines(
    workspace: Workspace, run_id: int, budget_exceeded: str | None, left: int
) -> list[str]:
    """What the run spent (per model and purpose), what the study has spent in all, and why the
    budget stopped the run, if it did."""
    lines = []
    spent = [s for s in workspace.spend_summary(run_id=run_id) if s.cost is not None]
    parts = [f"{s.model} {s.purpose} {dollars(s.cost or 0.0)}" for s in spent]
    total = sum(s.cost or 0.0 for s in spent)
    if parts:
        lines.append(
            f"spent this run: {dollars(total)} ({', '.join(parts)}); the study has spent "
            f"{dollars(workspace.spend_total())} in all"
        )
    if budget_exceeded is not None:
        lines.append(f"stopped by the budget — {budget_exceeded}; {left:,} requests left")
    return lines


def plan_table(plan: SpendPlan, *, title: str) -> Table:
    """A dry run's estimate: per model (and judge), requests, tokens and dollars."""
    has_signals = any(e.signal for e in plan.estimates)
    table = Table(title=title, title_justify="left")
    columns = ["signal"] if has_signals else []
    columns += [
        "model",
        "requests",
        "cached",
        "tokens in",
        "tokens out",
        "estimate",
        "at max_tokens",
    ]
    for column in columns:
        table.add_column(column, justify="left" if column in ("signal", "model") else "right")
    for e in plan.estimates:
        row = [e.signal or ""] if has_signals else []
        row += [
            e.model + (" (batch)" if e.is_batch else ""),
            f"{e.requests:,}",
            f"{e.cached:,}",
            f"{e.input_tokens:,}",
            "-" if e.output_tokens is None else f"{e.output_tokens:,}",
            "-" if e.cost is None else dollars(e.cost),
            "-" if e.cost_at_max_tokens is None else dollars(e.cost_at_max_tokens),
        ]
        table.add_row(*row)
    return table


def print_plan(plan: SpendPlan, stage: str, *, title: str) -> None:
    """A dry run's table and the lines under it."""
    console.print(plan_table(plan, title=title))
    for line in plan_lines(plan, stage):
        console.print(line, markup=False, highlight=False)


def plan_lines(plan: SpendPlan, stage: str) -> list[str]:
    """Under a dry run's table: the total, where each estimate comes from, and the budget."""
    requests = sum(e.requests for e in plan.estimates)
    cost = plan.cost
    lines = [
        f"total: {'-' if cost is None else dollars(cost)} for {requests:,} requests; nothing "
        f"was sent or written (run `changeover {stage}` without --dry-run to send them)"
    ]
    for e in plan.estimates:
        who = f"{e.signal} ({e.model})" if e.signal else e.model
        if not e.requests:
            continue
        lines.append(f"{who}: {e.basis}")
        if e.cost is None and e.output_tokens is not None:
            lines.append(
                f"{who}: no prices (price_input_per_million, price_output_per_million) in its "
                "models: entry, so no dollars"
            )
        if e.is_batch:
            lines.append(f"{who}: sent through the batch API, at the batch price")
        if e.in_open_batches:
            lines.append(
                f"{who}: {e.in_open_batches:,} more requests are in batches submitted earlier "
                f"(already paid for; `changeover {stage}` collects them)"
            )
    limits = [
        f"{key} {dollars(value)}"
        for key, value in (("per run", plan.per_run), ("per study", plan.per_study))
        if value is not None
    ]
    if limits:
        verdict = plan.fits() or "the estimate fits"
        lines.append(f"budget: {', '.join(limits)} ({dollars(plan.spent)} spent so far): {verdict}")
    return lines


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
    in_batches: int = 0,
) -> list[str]:
    """What a Ctrl-C left: what this run received per model, what the workspace holds, and the
    command that resumes (each response was committed the moment it arrived; submitted batches
    are collected by the next run)."""
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
    batched = (
        f" ({in_batches:,} of them are in batches already submitted: it collects those, "
        "without submitting them again)"
        if in_batches
        else ""
    )
    return [
        f"interrupted: this run received {received or 'nothing'}; each response was stored "
        "the moment it arrived, and the requests still in flight were dropped",
        f"the workspace holds {held or 'no response yet'}",
        f"resume with `{resume}`: it sends only the {missing:,} requests still missing{batched}",
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
    notes = batch_notes(
        model.model, model.batch, model.batch_requests, model.batch_cost, model.saving
    )
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
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Say what would be sent and what it would cost, per model; send and write "
            "nothing.",
        ),
    ] = False,
) -> None:
    """Run the models over the items; resumable, re-running calls no provider for stored work."""
    study = load_study(study_path)
    names = split_names(models)
    if dry_run:
        with open_workspace(study.workspace_path) as workspace:
            plan = estimate_generation(
                study, workspace, models=names, limit=limit, retry_failed=retry_failed
            )
        print_plan(plan, "generate", title="generate --dry-run: what the run would send")
        return
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
            in_batches = sum(
                len(batch.keys)
                for name in stored
                for batch in workspace.open_batches(name, "generation")
            )
            lines = interrupted_lines(
                list(reporter.summaries.values()), stored, resume, retry_failed=retry_failed,
                in_batches=in_batches,
            )  # fmt: skip
            for line in lines:
                console.print(line, markup=False, highlight=False)
            raise typer.Exit(130) from None
        left = sum(m.left for m in summary.models)
        spent = spend_lines(workspace, summary.run_id, summary.budget_exceeded, left)
    console.print(summary_table(summary))
    for model in summary.models:
        for note in _notes(model):
            console.print(note, markup=False, highlight=False)
    for line in spent:
        console.print(line, markup=False, highlight=False)
    print_next(study_path)
