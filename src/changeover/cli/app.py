"""The Typer application every command module registers on."""

from __future__ import annotations

import typer
from rich.console import Console

app = typer.Typer(
    name="changeover",
    help="Can we safely replace the LLM behind our product? Calibrate cheap automated judges "
    "against a few human labels and decide per candidate: ready, not ready or undecided.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)
