"""`changeover next`: fit, then queue the responses whose labels would settle the verdicts."""

from __future__ import annotations

import csv
import warnings
from pathlib import Path
from typing import Annotated

import polars as pl
import typer
from rich.table import Table

from changeover.annotate.queue import QueueEntry, add_to_queue, queued_keys
from changeover.cli.app import LABEL, app, console
from changeover.counts import workspace_rows
from changeover.errors import CalibrationError, ChangeoverError
from changeover.files import csv_cell, replacing
from changeover.study import Study, load_study
from changeover.workspace import Workspace, open_workspace

CSV_COLUMNS = ("item_id", "model", "dimension", "segment", "level", "priority", "reason")


def _write_csv(path: Path, picks: list) -> None:
    with replacing(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_COLUMNS)
        for p in picks:
            text = [p.item_id, p.model, p.dimension, p.segment, p.level]
            writer.writerow([*map(csv_cell, text), p.priority, csv_cell(p.reason)])


def _rows(workspace: Workspace, study: Study, dimension: str | None) -> pl.DataFrame:
    rows = workspace_rows(workspace)
    rows = rows.filter(
        pl.col("model").is_in(study.model_names) & pl.col("segment").is_in(study.segment_names)
    )
    if dimension is not None:
        known = sorted(set(rows["dimension"].to_list()))
        if dimension not in known:
            raise ChangeoverError(
                f"--dimension: the workspace has no scored responses for '{dimension}' "
                f"(it has: {', '.join(known) or 'none'}); run `changeover score` first"
            )
    if rows.height == 0:
        raise ChangeoverError(
            "the workspace has no scored responses of the study's models and segments; "
            "run `changeover generate` and `changeover score` first"
        )
    return rows


@app.command(
    "next",
    rich_help_panel=LABEL,
    short_help="Queue the responses whose human labels would most help settle the undecided "
    "candidates.",
)
def next_command(
    budget: Annotated[int, typer.Option(help="How many labels to queue.", min=1)],
    dimension: Annotated[
        str | None, typer.Option(help="Only queue labels of this dimension.")
    ] = None,
    study_path: Annotated[Path, typer.Option("--study", help="The study file.")] = Path(
        "study.yaml"
    ),
    out: Annotated[
        Path | None,
        typer.Option(
            help="Also write the queue as CSV: item_id, model, dimension, segment, level, "
            "priority, reason."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seeds the fit and the draw of responses.")] = 0,
    num_samples: Annotated[int, typer.Option(help="Posterior draws per chain.", min=50)] = 500,
    num_warmup: Annotated[int, typer.Option(help="Warm-up iterations per chain.", min=50)] = 500,
    confirm: Annotated[
        bool,
        typer.Option(
            "--confirm",
            help="Plan for every candidate, decided or not: the confirming batch that tests a "
            "first decided look before its verdicts are trusted.",
        ),
    ] = False,
) -> None:
    """Fit, then queue the responses whose human labels would most help settle the undecided
    candidates (a stratified random start before any labels exist)."""
    from changeover.calibrate import fit
    from changeover.calibrate.blocks import blocks_from_counts
    from changeover.calibrate.next import (
        available_per_stratum,
        choose_responses,
        plan_next,
        stratified_start,
        unlabelled_responses,
    )
    from changeover.counts import counts_from_rows

    if out is not None and not out.parent.exists():
        raise ChangeoverError(f"--out {out}: folder {out.parent} does not exist; create it first")
    study = load_study(study_path)
    with open_workspace(study.workspace_path) as workspace:
        rows = _rows(workspace, study, dimension)
        table, _ = counts_from_rows(rows, source="workspace")
        unlabelled = unlabelled_responses(rows, queued_keys(workspace))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            blocks = blocks_from_counts(table, study.model_names, study.segment_names)
        available = available_per_stratum(blocks, unlabelled)
        result = None
        try:
            with console.status("fitting (NUTS)…"), warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                result = fit(
                    study,
                    table,
                    num_samples=num_samples,
                    num_warmup=num_warmup,
                    seed=seed,
                )
            for note in caught:
                console.print(f"[yellow]warning:[/yellow] {note.message}", highlight=False)
        except CalibrationError as error:
            if "no human labels" not in str(error):
                raise
        if result is None:
            chosen_blocks = [b for b in blocks if dimension is None or b.dimension == dimension]
            plan = stratified_start(chosen_blocks, budget, seed=seed, available=available)
        else:
            plan = plan_next(
                study,
                result,
                budget,
                available=available,
                dimensions=None if dimension is None else [dimension],
                candidates=study.candidates if confirm else None,
            )
        picks = choose_responses(plan, unlabelled, seed=seed)
        if picks:
            added = add_to_queue(
                workspace,
                [QueueEntry(p.item_id, p.model, p.dimension, priority=p.priority) for p in picks],
                source="next",
            )
        else:
            added = None
    if out is not None:
        _write_csv(out, picks)
    if result is not None:
        for name, verdict in result.candidates.items():
            colour = {"ready": "green", "not-ready": "red"}.get(verdict.verdict, "yellow")
            console.print(
                f"[{colour}]{name}: {verdict.verdict}[/{colour}] — {verdict.reason}",
                highlight=False,
            )
    console.print(plan.message, highlight=False)
    if plan.mode == "nothing-to-do":
        console.print(
            "a first decided look is provisional: `changeover next --confirm --budget N` queues "
            "one confirming batch; trust verdicts that hold at two consecutive looks",
            highlight=False,
        )
    if plan.picks:
        view = Table(title="what to label next, and why")
        for column in ("dimension", "model", "segment", "level", "labels", "gain", "why"):
            view.add_column(column, justify="right" if column in ("labels", "gain") else "left")
        for p in plan.picks:
            dim = p.dimension if not p.group else f"{p.dimension} ({p.group})"
            view.add_row(
                dim,
                p.model,
                p.segment,
                p.level or "any",
                str(p.n),
                f"{p.gain:.3f}" if plan.mode == "targeted" else "-",
                p.reason,
            )
        console.print(view)
    if added is not None:
        console.print(
            f"queued {added.added} new, {added.updated} updated, {added.unchanged} already "
            f"queued (source: next)" + (f"; written to {out}" if out is not None else "")
        )
