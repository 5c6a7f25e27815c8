"""Human labelling commands: annotate (the web app), annotators, queue, agreement, labels."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from changeover.annotate import (
    add_annotator,
    add_to_queue,
    agreement,
    default_dimensions,
    export_labels,
    import_labels,
    list_annotators,
    queue_status,
    random_start,
    read_labels,
    read_queue_csv,
    revoke_annotator,
)
from changeover.cli.app import LABEL, StudyOption, app, console
from changeover.errors import ChangeoverError, InputError
from changeover.study import load_study
from changeover.workspace import open_workspace

annotators_app = typer.Typer(help="Who may label: add annotators (prints a token), list, revoke.")
labels_app = typer.Typer(help="Human labels to and from CSV or Label Studio JSON.")
app.add_typer(annotators_app, name="annotators", rich_help_panel=LABEL)
app.add_typer(labels_app, name="labels", rich_help_panel=LABEL)


@app.command(rich_help_panel=LABEL)
def annotate(
    study_path: StudyOption = Path("study.yaml"),
    host: Annotated[
        str, typer.Option(help="Interface to listen on; 127.0.0.1 keeps it on this machine.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8000,
    seed: Annotated[int, typer.Option(help="Seeds every annotator's queue order.")] = 0,
) -> None:
    """Serve the annotation web app until interrupted (Ctrl-C)."""
    import uvicorn

    from changeover.annotate.app import create_app

    study = load_study(study_path)
    path = study.workspace_path
    with open_workspace(path) as workspace:
        if not any(a.is_active for a in list_annotators(workspace)):
            raise ChangeoverError(
                "no annotators yet; add one with `changeover annotators add NAME` and give "
                "them the token it prints"
            )
        if queue_status(workspace).open_entries == 0:
            console.print(
                "[yellow]warning:[/yellow] nothing is queued to label; fill the queue with "
                "`changeover queue --random N` (or `--from FILE`)"
            )
    application = create_app(path, style_guide=study.style_guide, rng_key=seed)
    if host not in ("127.0.0.1", "localhost", "::1"):
        console.print(
            f"[yellow]warning:[/yellow] listening on {host}: anyone who can reach it and holds "
            "a token can label; tokens travel in clear text unless a TLS proxy is in front"
        )
    console.print(f"annotation app on http://{host}:{port}/ (Ctrl-C to stop)")
    uvicorn.run(application, host=host, port=port, log_level="warning")


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
    dimensions = dimension or default_dimensions(study)
    if (random_n is not None or from_csv is not None) and not dimensions:
        raise InputError(
            "queue: the study names no dimensions (no `dimensions:` and no gates); pass "
            "--dimension, e.g. --dimension correctness"
        )
    with open_workspace(study.workspace_path) as workspace:
        if random_n is not None:
            entries = random_start(
                workspace, study, num_responses=random_n, dimensions=dimensions,
                rng_key=seed, overlap=overlap,
            )  # fmt: skip
            result = add_to_queue(workspace, entries, source="random")
        elif from_csv is not None:
            entries = read_queue_csv(from_csv, dimensions=dimensions, overlap=overlap, rng_key=seed)
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


def _format(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


@app.command(name="agreement", rich_help_panel=LABEL)
def agreement_command(study_path: StudyOption = Path("study.yaml")) -> None:
    """Agreement between annotators per dimension: Cohen's kappa, Krippendorff's alpha."""
    study = load_study(study_path)
    with open_workspace(study.workspace_path) as workspace:
        results = agreement(read_labels(workspace))
    table = Table(title="agreement between annotators", title_justify="left")
    for column in ("dimension", "responses", "agree", "Cohen's kappa", "Krippendorff's alpha"):
        table.add_column(column, justify="left" if column == "dimension" else "right")
    for row in results:
        agree = "n/a" if row.pairs_agreeing is None else f"{row.pairs_agreeing:.1%}"
        table.add_row(
            row.dimension, f"{row.responses:,}", agree,
            _format(row.cohen_kappa), _format(row.krippendorff_alpha),
        )  # fmt: skip
    console.print(table)
    if all(row.responses < 2 for row in results):
        console.print(
            "too few responses with two labels to measure agreement; queue some for a second "
            "annotator (`changeover queue --random N --overlap K`)"
        )


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
