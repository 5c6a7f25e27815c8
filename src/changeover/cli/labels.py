"""`changeover labels`: human labels to and from CSV or Label Studio JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from changeover.annotate import (
    export_labels,
    import_labels,
)
from changeover.cli.app import LABEL, StudyOption, app, console
from changeover.errors import InputError
from changeover.study import load_study
from changeover.workspace import open_workspace

labels_app = typer.Typer(help="Human labels to and from CSV or Label Studio JSON.")
app.add_typer(labels_app, name="labels", rich_help_panel=LABEL)


@labels_app.command("export")
def labels_export(
    out: Annotated[Path, typer.Option(help="Output file (.csv or .json).")],
    format: Annotated[str, typer.Option(help="csv or label-studio.")] = "csv",
    study_path: StudyOption = Path("study.yaml"),
) -> None:
    """Export labels as CSV, or queued and labelled responses as Label Studio tasks."""
    if format not in ("csv", "label-studio"):
        raise InputError(f"--format: unknown format '{format}'; use csv or label-studio")
    study = load_study(study_path)
    with open_workspace(study.workspace_path) as workspace:
        written = export_labels(workspace, out, format=format)  # type: ignore[arg-type]
    what = "labels" if format == "csv" else "Label Studio tasks"
    console.print(f"wrote {written:,} {what} to {out}")


@labels_app.command("import")
def labels_import(
    file: Annotated[Path, typer.Argument(help="Labels: .csv, or Label Studio's JSON export.")],
    study_path: StudyOption = Path("study.yaml"),
) -> None:
    """Import labels from CSV or Label Studio JSON; all or nothing."""
    study = load_study(study_path)
    with open_workspace(study.workspace_path) as workspace:
        result = import_labels(workspace, file, study)
    unchanged = f" ({result.unchanged:,} already present, unchanged)" if result.unchanged else ""
    console.print(f"imported {result.added:,} labels from {file}{unchanged}")
