"""`changeover labels`: human labels to and from CSV or Label Studio JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from changeover.annotate import (
    default_dimensions,
    export_labels,
    import_labels,
)
from changeover.annotate.label_studio import labeling_config
from changeover.cli.app import LABEL, StudyOption, app, console, print_next
from changeover.errors import InputError
from changeover.study import load_study
from changeover.workspace import open_workspace

labels_app = typer.Typer(help="Human labels to and from CSV or Label Studio JSON.")
app.add_typer(labels_app, name="labels", rich_help_panel=LABEL)


@labels_app.command("export")
def labels_export(
    out: Annotated[Path, typer.Option(help="Output file (.csv or .json).")],
    format: Annotated[str, typer.Option(help="csv or label-studio.")] = "csv",
    with_model: Annotated[
        bool,
        typer.Option(
            "--with-model",
            help="Label Studio tasks name their item and model (labelling is then blind only "
            "if the labelling config leaves them out).",
        ),
    ] = False,
    study_path: StudyOption = Path("study.yaml"),
) -> None:
    """Export labels as CSV, or the queued responses as blind Label Studio tasks."""
    if format not in ("csv", "label-studio"):
        raise InputError(f"--format: unknown format '{format}'; use csv or label-studio")
    if with_model and format != "label-studio":
        raise InputError("--with-model: only for --format label-studio (CSV names the model)")
    study = load_study(study_path)
    with open_workspace(study.workspace_path) as workspace:
        exported = export_labels(
            workspace,
            out,
            format=format,  # type: ignore[arg-type]
            with_model=with_model,
        )
    if format == "csv":
        console.print(f"wrote {exported.written:,} labels to {out}")
        return
    blind = "with item and model" if with_model else "blind: no item or model in them"
    console.print(f"wrote {exported.written:,} Label Studio tasks to {out} ({blind})")
    if exported.left_out:
        console.print(
            f"{exported.left_out:,} labelled responses are not in the label queue and were left "
            "out (a blind task names its response by its queue ref); --with-model includes them"
        )
    console.print("the matching labelling config: `changeover labels config`")


@labels_app.command("import")
def labels_import(
    file: Annotated[Path, typer.Argument(help="Labels: .csv, or Label Studio's JSON export.")],
    study_path: StudyOption = Path("study.yaml"),
    add_annotators: Annotated[
        bool,
        typer.Option(
            "--add-annotators",
            help="Register the file's annotators the workspace does not know yet (else an "
            "unknown name is an error: a misspelt one would count as another person).",
        ),
    ] = False,
) -> None:
    """Import labels from CSV or Label Studio JSON; all or nothing."""
    study = load_study(study_path)
    with open_workspace(study.workspace_path) as workspace:
        result = import_labels(workspace, file, study, add_annotators=add_annotators)
    unchanged = f" ({result.unchanged:,} already present, unchanged)" if result.unchanged else ""
    console.print(f"imported {result.added:,} labels from {file}{unchanged}")
    print_next(study_path)


@labels_app.command("config")
def labels_config(
    dimension: Annotated[
        list[str] | None,
        typer.Option("--dimension", help="Dimensions to ask (repeat); default the study's."),
    ] = None,
    study_path: StudyOption = Path("study.yaml"),
) -> None:
    """Print the Label Studio labelling config that matches the exported tasks."""
    study = load_study(study_path)
    dimensions = dimension or default_dimensions(study)
    if not dimensions:
        raise InputError(
            "labels config: the study names no dimensions (no `dimensions:` and no gates); "
            "pass --dimension, e.g. --dimension correctness"
        )
    guide = study.style_guide
    lines = [guide.text or "", *guide.rules()] if guide is not None else []
    print(labeling_config(dimensions, style_guide=[line for line in lines if line]), end="")
