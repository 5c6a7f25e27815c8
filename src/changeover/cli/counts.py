"""`changeover counts`: per-response rows to the counts table the engine takes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from changeover.cli.app import DECIDE, app, console
from changeover.counts import counts_from_rows, read_rows, workspace_rows, write_counts
from changeover.errors import ChangeoverError
from changeover.study import load_study


@app.command(rich_help_panel=DECIDE)
def counts(
    out: Annotated[Path, typer.Option(help="Where to write the counts (.csv or .parquet).")],
    rows: Annotated[
        Path | None,
        typer.Option(
            help="Per-response rows: item_id, model, segment, group, dimension, level, human "
            "(CSV, JSONL or Parquet). Without it, the rows come from the study's workspace."
        ),
    ] = None,
    study: Annotated[Path, typer.Option(help="The study file (for its workspace).")] = Path(
        "study.yaml"
    ),
) -> None:
    """Aggregate per-response rows (one per item, model, dimension) into a counts table."""
    if rows is not None:
        frame, source = read_rows(rows), str(rows)
    else:
        from changeover.workspace import open_workspace

        the_study = load_study(study)
        path = the_study.workspace_path
        if not path.exists():
            raise ChangeoverError(f"{path}: no workspace; run `changeover init` or pass --rows")
        with open_workspace(path) as workspace:
            frame, source = workspace_rows(workspace).lazy(), str(path)
    table, summary = counts_from_rows(frame, source=source)
    write_counts(table, out)
    console.print(
        f"{summary.responses:,} responses × dimensions, {summary.labelled:,} labelled → "
        f"{table.height:,} cells written to {out}"
    )
    if summary.multiply_labelled:
        agreement = "n/a" if summary.agreement is None else f"{summary.agreement:.1%}"
        console.print(
            f"{summary.multiply_labelled:,} responses have several labels: majority taken, "
            f"{summary.ties:,} ties counted as unlabelled, agreement {agreement}"
        )
