"""`changeover init`: a new study folder with a commented study file and a workspace."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated

import typer

from changeover.cli.app import (
    SET_UP,
    app,
    console,
    print_next,
)
from changeover.errors import ChangeoverError
from changeover.study import load_study
from changeover.workspace import open_workspace


def study_template() -> str:
    """The commented study `init` writes: every section a first study needs, ready to edit."""
    return (resources.files("changeover.cli") / "study.yaml").read_text(encoding="utf-8")


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
    study_path.write_text(study_template(), encoding="utf-8")
    study = load_study(study_path)
    with open_workspace(study.workspace_path, create=True) as workspace:
        version = workspace.schema_version
    console.print(
        f"created {study_path} and workspace {study.workspace_path} (schema v{version}); edit "
        "the study's models, signals and gates first",
        highlight=False,
        markup=False,
    )
    print_next(study_path)
