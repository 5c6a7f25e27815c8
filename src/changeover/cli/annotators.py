"""`changeover annotators`: who may label (add prints a token; list; revoke)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from changeover.annotate import (
    add_annotator,
    list_annotators,
    read_labels,
    revoke_annotator,
)
from changeover.cli.app import LABEL, StudyOption, app, console
from changeover.study import load_study
from changeover.workspace import open_workspace

annotators_app = typer.Typer(help="Who may label: add annotators (prints a token), list, revoke.")
app.add_typer(annotators_app, name="annotators", rich_help_panel=LABEL)


@annotators_app.command("add")
def annotators_add(
    name: Annotated[str, typer.Argument(help="The annotator's name, as it is stored on labels.")],
    study_path: StudyOption = Path("study.yaml"),
) -> None:
    """Add an annotator and print their token (shown once; only a hash is stored)."""
    study = load_study(study_path)
    with open_workspace(study.workspace_path) as workspace:
        token = add_annotator(workspace, name)
    console.print(f"annotator {name} added; their token (shown only now):", highlight=False)
    print(token)


@annotators_app.command("list")
def annotators_list(study_path: StudyOption = Path("study.yaml")) -> None:
    """List annotators and how many labels each has given."""
    study = load_study(study_path)
    with open_workspace(study.workspace_path) as workspace:
        people = list_annotators(workspace)
        counts: dict[str, int] = {}
        for record in read_labels(workspace):
            counts[record.annotator] = counts.get(record.annotator, 0) + 1
    table = Table(title="annotators", title_justify="left")
    for column in ("name", "added", "status", "labels"):
        table.add_column(column, justify="right" if column == "labels" else "left")
    for person in people:
        status = "active" if person.is_active else f"revoked {person.revoked_at}"
        table.add_row(person.name, person.created_at, status, f"{counts.get(person.name, 0):,}")
    console.print(table)


@annotators_app.command("revoke")
def annotators_revoke(
    name: Annotated[str, typer.Argument(help="The annotator whose token stops working.")],
    study_path: StudyOption = Path("study.yaml"),
) -> None:
    """Invalidate an annotator's token at once; their labels stay."""
    study = load_study(study_path)
    with open_workspace(study.workspace_path) as workspace:
        revoke_annotator(workspace, name)
    console.print(f"annotator {name} revoked")
