"""`changeover next`: parse, call `changeover.next.queue_next`, print (and write the CSV)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from changeover.cli.app import LABEL, StudyOption, app, console, print_next
from changeover.cli.report import (
    RefitOption,
    SamplesOption,
    SeedOption,
    UncalibratedOption,
    WarmupOption,
    fit_settings,
)
from changeover.errors import ChangeoverError
from changeover.files import csv_cell, replacing
from changeover.study import load_study
from changeover.workspace import open_workspace

if TYPE_CHECKING:
    from changeover.calibrate.next import Pick

CSV_COLUMNS = ("item_id", "model", "dimension", "segment", "level", "priority", "reason")


def _write_csv(path: Path, picks: list[Pick]) -> None:
    with replacing(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_COLUMNS)
        for p in picks:
            text = [p.item_id, p.model, p.dimension, p.segment, p.level]
            writer.writerow([*map(csv_cell, text), p.priority, csv_cell(p.reason)])


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
    study_path: StudyOption = Path("study.yaml"),
    out: Annotated[
        Path | None,
        typer.Option(
            help="Also write the queue as CSV: item_id, model, dimension, segment, level, "
            "priority, reason."
        ),
    ] = None,
    seed: SeedOption = 0,
    num_samples: SamplesOption = 1000,
    num_warmup: WarmupOption = 500,
    refit: RefitOption = False,
    allow_uncalibrated: UncalibratedOption = False,
    confirm: Annotated[
        bool,
        typer.Option(
            "--confirm",
            help="Plan for every candidate, decided or not: the confirming batch that tests a "
            "first decided look before its verdicts are trusted.",
        ),
    ] = False,
) -> None:
    """Fit as `changeover run` does (re-using its fit when nothing changed), then queue the
    responses whose human labels would most help settle the undecided candidates (a stratified
    random start before any labels exist)."""
    from changeover.calibrate.next import PlanRequest
    from changeover.next import queue_next
    from changeover.report.terminal import print_plan, print_warnings, verdict_text

    if out is not None and not out.parent.exists():
        raise ChangeoverError(f"--out {out}: folder {out.parent} does not exist; create it first")
    study = load_study(study_path)
    settings = fit_settings(seed, num_samples, num_warmup, allow_uncalibrated)
    plan_request = PlanRequest(budget=budget, dimension=dimension, confirm=confirm)
    with open_workspace(study.workspace_path) as workspace, console.status("fitting (NUTS)…"):
        outcome = queue_next(study, workspace, plan=plan_request, settings=settings, refit=refit)
    if out is not None:
        _write_csv(out, outcome.picks)
    document = outcome.analysis.document
    print_warnings(document.warnings, console)
    result, plan = document.result, document.next
    assert plan is not None
    again = f"changeover next --budget {budget} --num-samples {2 * num_samples}"
    if result is not None:
        converged = result.diagnostics.converged
        for name, verdict in result.candidates.items():
            line = Text.assemble(
                f"{name}: ", verdict_text(verdict, converged=converged), f" — {verdict.reason}"
            )
            console.print(line, highlight=False)
        if outcome.analysis.reused:
            console.print("(the fit of the last run, re-used: nothing changed)", highlight=False)
        if not converged and plan.mode != "unconverged":
            console.print(
                Text.assemble(
                    ("the fit did not converge: ", "bold red"),
                    f"these verdicts are provisional; sample longer ({again}) before trusting "
                    "any of them",
                ),
                highlight=False,
            )
    console.print(Text(plan.message), highlight=False)
    if plan.mode == "unconverged":
        console.print(f"sample longer: {again}", highlight=False)
    if plan.mode == "nothing-to-do":
        console.print(
            "a first decided look is provisional: `changeover next --confirm --budget N` queues "
            "one confirming batch; trust verdicts that hold at two consecutive looks",
            highlight=False,
        )
    print_plan(plan, console)
    if outcome.queued is not None:
        added = outcome.queued
        console.print(
            f"queued {added.added} new, {added.updated} updated, {added.unchanged} already "
            "queued (source: next)" + (f"; written to {out}" if out is not None else ""),
            highlight=False,
            markup=False,
        )
    print_next(study_path, budget=budget)
