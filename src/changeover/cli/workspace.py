"""Workspace commands: init, import, export, generate."""

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
    SET_UP,
    StudyOption,
    app,
    console,
    progress_bars,
    split_names,
)
from changeover.errors import ChangeoverError, InputError
from changeover.generate import GenerateSummary, ModelSummary, generate
from changeover.io import export_table, import_items, import_responses
from changeover.study import load_study
from changeover.workspace import open_workspace

STUDY_TEMPLATE = """\
# changeover study file. Every key is documented in docs/generate.md and the README.
# The incumbent is the model in production; candidates are the models that might replace it.
incumbent: legacy
candidates: [cand-a]

# Segments (e.g. regions) and their traffic weights, e.g. interactions per month.
segments: {na: 2100000, emea: 1400000, apac: 900000}

# The SQLite workspace, relative to this file.
workspace: changeover.db

# How to reach each model. API keys are never written here: `api_key_env` names the
# environment variable that holds the key.
models:
  legacy:
    provider: openai             # the official openai SDK; base_url for any compatible endpoint
    model: gpt-4-0613
    api_key_env: OPENAI_API_KEY
    temperature: 0
    max_tokens: 512
    concurrency: 16
    # requests_per_minute: 500
    # tokens_per_minute: 150000
    # price_input_per_million: 30.0
    # price_output_per_million: 60.0
  cand-a:
    provider: anthropic          # the official anthropic SDK
    model: claude-sonnet-x
    api_key_env: ANTHROPIC_API_KEY
    temperature: 0
    max_tokens: 512
    requests_per_minute: 600
  # cand-b: {provider: replay, file: cand-b.jsonl}   # responses recorded elsewhere

decision: {probability: 0.95}
gates:
  - {name: correctness, dimension: correctness, better: higher, margin: 0.02}
  - {name: over_refusal, dimension: refusal, group: answer, better: lower, margin: 0.01}
"""


@app.command(rich_help_panel=SET_UP)
def init(
    directory: Annotated[Path, typer.Argument(help="Folder for the new study.")] = Path("."),
) -> None:
    """Create a study folder: a commented study.yaml and an empty workspace."""
    directory.mkdir(parents=True, exist_ok=True)
    study_path = directory / "study.yaml"
    if study_path.exists():
        raise ChangeoverError(
            f"{study_path}: a study file is already there; init leaves it alone (pick another "
            "folder or remove the file)"
        )
    study_path.write_text(STUDY_TEMPLATE, encoding="utf-8")
    study = load_study(study_path)
    with open_workspace(study.workspace_path, create=True) as workspace:
        version = workspace.schema_version
    console.print(
        f"created {study_path} and workspace {study.workspace_path} (schema v{version}); "
        "edit the study, then `changeover import items FILE`"
    )


@app.command("import", rich_help_panel=SET_UP)
def import_table(
    table: Annotated[str, typer.Argument(help="What the file holds: items or responses.")],
    file: Annotated[Path, typer.Argument(help="CSV, JSONL or Parquet file.")],
    study_path: StudyOption = Path("study.yaml"),
) -> None:
    """Import items (prompts) or responses produced elsewhere; all or nothing."""
    if table not in ("items", "responses"):
        raise InputError(f"import: unknown table '{table}'; import items or responses")
    study = load_study(study_path)
    with open_workspace(study.workspace_path, create=True) as workspace:
        if table == "items":
            result = import_items(workspace, file, study)
        else:
            result = import_responses(workspace, file, study)
    unchanged = f" ({result.unchanged:,} already present, unchanged)" if result.unchanged else ""
    console.print(f"imported {result.added:,} {table} from {file}{unchanged}")


@app.command(rich_help_panel=SET_UP)
def export(
    table: Annotated[
        str, typer.Argument(help="items, responses, signals, labels, runs, calls or rows.")
    ],
    out: Annotated[Path, typer.Option(help="Output file: .csv, .jsonl or .parquet.")],
    study_path: StudyOption = Path("study.yaml"),
) -> None:
    """Export a workspace table (or `rows`, the per-response input of `changeover counts`)."""
    study = load_study(study_path)
    with open_workspace(study.workspace_path) as workspace:
        written = export_table(workspace, table, out)
    console.print(f"wrote {written:,} {table} rows to {out}")


class RichReporter:
    """A progress bar per model with ETA, and done / cached / failed counts."""

    def __init__(self, progress: Progress, *, interval: float = 0.1) -> None:
        self._progress = progress
        self._tasks: dict[str, TaskID] = {}
        self._shown: dict[str, float] = {}
        self._interval = interval

    def start(self, model: str, total: int) -> None:
        self._tasks[model] = self._progress.add_task(model, total=total, status="")
        self._shown[model] = 0.0

    def update(self, summary: ModelSummary) -> None:
        # At hundreds of responses a second, updating the bar for each one costs more than it
        # shows: redraw at most every `interval` seconds, and always at the end.
        now = time.monotonic()
        finished = summary.done + summary.cached + summary.failed + summary.earlier_failures
        if now - self._shown[summary.model] < self._interval and finished < summary.total:
            return
        self._shown[summary.model] = now
        status = f"done {summary.done:,} · cached {summary.cached:,} · failed {summary.failed:,}"
        self._progress.update(self._tasks[summary.model], completed=finished, status=status)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}s"


def summary_table(summary: GenerateSummary) -> Table:
    table = Table(title=f"generate (run {summary.run_id})", title_justify="left")
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
    with (
        open_workspace(study.workspace_path) as workspace,
        progress_bars(label_width=12, status=True) as progress,
    ):
        summary = generate(
            study,
            workspace,
            models=names,
            limit=limit,
            retry_failed=retry_failed,
            reporter=RichReporter(progress),
        )
    console.print(summary_table(summary))
    for model in summary.models:
        for note in _notes(model):
            console.print(note, highlight=False)
