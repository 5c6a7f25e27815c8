"""`changeover queue`: what people label next, from a random start or a file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from changeover.annotate import (
    add_to_queue,
    default_dimensions,
    queue_status,
    random_start,
    read_queue_csv,
)
from changeover.cli.app import LABEL, StudyOption, app, console, print_next
from changeover.errors import InputError
from changeover.study import load_study
from changeover.workspace import open_workspace


@app.command(rich_help_panel=LABEL)
def queue(
    study_path: StudyOption = Path("study.yaml"),
    random_n: Annotated[
        int | None,
        typer.Option(
            "--random",
            min=1,
            help="Queue N responses drawn at random across model x segment cells.",
        ),
    ] = None,
    from_csv: Annotated[
        Path | None,
        typer.Option(
            "--from",
            help="Queue the responses of a CSV "
            "(item_id, model[, dimension, priority, "
            "annotators]).",
        ),
    ] = None,
    dimension: Annotated[
        list[str] | None,
        typer.Option("--dimension", help="Dimensions to queue (repeat); default the study's."),
    ] = None,
    overlap: Annotated[
        int,
        typer.Option(
            min=0, help="This many of the queued responses get a second annotator, for agreement."
        ),
    ] = 0,
    seed: Annotated[int, typer.Option(help="Seeds the random draw.")] = 0,
) -> None:
    """Fill the label queue (--random N or --from FILE); without either, show it."""
    study = load_study(study_path)
    if random_n is not None and from_csv is not None:
        raise InputError("queue: give --random or --from, not both")
    known = default_dimensions(study)
    for name in dimension or []:
        if known and name not in known:
            raise InputError(
                f"--dimension: '{name}' is not a dimension of the study ({', '.join(known)})"
            )
    dimensions = dimension or known
    if (random_n is not None or from_csv is not None) and not dimensions:
        raise InputError(
            "queue: the study names no dimensions (no `dimensions:` and no gates); pass "
            "--dimension, e.g. --dimension correctness"
        )
    with open_workspace(study.workspace_path) as workspace:
        if random_n is not None:
            entries = random_start(
                workspace, study, num_responses=random_n, dimensions=dimensions,
                seed=seed, overlap=overlap,
            )  # fmt: skip
            result = add_to_queue(workspace, entries, source="random")
        elif from_csv is not None:
            entries = read_queue_csv(from_csv, dimensions=dimensions, overlap=overlap, seed=seed)
            result = add_to_queue(workspace, entries, source=f"csv:{from_csv.name}")
        else:
            result = None
        status = queue_status(workspace)
    if result is not None:
        console.print(
            f"queued {result.added:,} new (response, dimension) entries"
            f" ({result.updated:,} updated, {result.unchanged:,} already queued)"
        )
    table = Table(title="label queue", title_justify="left")
    for column in ("dimension", "entries", "still to label"):
        table.add_column(column, justify="left" if column == "dimension" else "right")
    for name, (entries_n, open_n) in status.by_dimension.items():
        table.add_row(name, f"{entries_n:,}", f"{open_n:,}")
    console.print(table)
    print_next(study_path)
