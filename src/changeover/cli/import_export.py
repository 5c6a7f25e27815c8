"""`changeover import` and `changeover export`: workspace tables from and to files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from changeover.cli.app import (
    SET_UP,
    StudyOption,
    app,
    console,
)
from changeover.errors import InputError
from changeover.io import export_table, import_items, import_responses
from changeover.study import load_study
from changeover.workspace import open_workspace


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
    what = "rows" if table == "rows" else f"{table} rows"
    console.print(f"wrote {written:,} {what} to {out}", highlight=False, markup=False)
