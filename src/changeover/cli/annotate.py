"""`changeover annotate`: serve the annotation web app."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from changeover.annotate import (
    list_annotators,
    queue_status,
)
from changeover.cli.app import LABEL, StudyOption, app, console
from changeover.errors import ChangeoverError
from changeover.study import load_study
from changeover.workspace import open_workspace


@app.command(rich_help_panel=LABEL)
def annotate(
    study_path: StudyOption = Path("study.yaml"),
    host: Annotated[
        str, typer.Option(help="Interface to listen on; 127.0.0.1 keeps it on this machine.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8000,
    seed: Annotated[int, typer.Option(help="Seeds every annotator's queue order.")] = 0,
    secure_cookie: Annotated[
        bool,
        typer.Option(
            "--secure-cookie",
            help="Send the sign-in cookie over HTTPS only: set it behind a TLS proxy.",
        ),
    ] = False,
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
    application = create_app(
        path, style_guide=study.style_guide, seed=seed, secure_cookie=secure_cookie
    )
    if host not in ("127.0.0.1", "localhost", "::1"):
        console.print(
            f"[yellow]warning:[/yellow] listening on {host}: anyone who can reach it and holds "
            "a token can label; tokens travel in clear text unless a TLS proxy is in front "
            "(then add --secure-cookie); docs/annotate.md, Security"
        )
    console.print(f"annotation app on http://{host}:{port}/ (Ctrl-C to stop)")
    uvicorn.run(application, host=host, port=port, log_level="warning")
