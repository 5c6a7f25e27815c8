"""The `changeover` command: thin wrappers that parse, call the Python API and print."""

from __future__ import annotations

import os
import sys
import warnings
from typing import Any

import typer
from rich.markup import escape

# Typer carries its own copy of click: its usage errors are caught here to print one line.
from typer._click.exceptions import NoArgsIsHelpError, UsageError
from typer.core import TyperGroup

# Two chains run in parallel on a 2-core machine only if XLA exposes two host devices, and that
# must be said before JAX is first imported.
os.environ.setdefault(
    "XLA_FLAGS", f"--xla_force_host_platform_device_count={max(2, min(os.cpu_count() or 2, 4))}"
)

# Importing a command module registers its commands on `app`.
from changeover.cli import (  # noqa: E402,F401
    agreement,
    annotate,
    annotators,
    counts,
    demo,
    fit,
    generate,
    import_export,
    init,
    labels,
    queue,
    report,
    run,
    score,
    status,
)
from changeover.cli import next as next_command  # noqa: E402,F401
from changeover.cli.app import app, err_console  # noqa: E402
from changeover.errors import ChangeoverError  # noqa: E402

__all__ = ["app", "main"]

# `changeover --help` lists the commands in this order: the demo, then a study's stages.
COMMAND_ORDER = (
    "demo",
    "init",
    "import",
    "export",
    "generate",
    "score",
    "counts",
    "fit",
    "next",
    "annotate",
    "queue",
    "agreement",
    "run",
    "report",
    "status",
)


def command_name(info: typer.models.CommandInfo) -> str:
    """The name a user types for a registered command."""
    return info.name or getattr(info.callback, "__name__", "").replace("_", "-")


def _place(name: str) -> int:
    return COMMAND_ORDER.index(name) if name in COMMAND_ORDER else len(COMMAND_ORDER)


app.registered_commands.sort(key=lambda info: _place(command_name(info)))


class _InOrder(TyperGroup):
    """Lists command groups (`import`) among the commands, in `COMMAND_ORDER`."""

    def list_commands(self, ctx: Any) -> list[str]:
        return sorted(super().list_commands(ctx), key=_place)


app.info.cls = _InOrder


def _show_warning(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001
    err_console.print(
        f"[yellow]warning:[/yellow] {escape(str(message))}", highlight=False, soft_wrap=True
    )


def _error(message: str) -> None:
    # The message quotes user text (a model named "[/x]"): never read it as Rich markup.
    err_console.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)


def main() -> None:
    """Entry point: user mistakes (a bad file, a wrong option) become one line on stderr and
    exit status 2."""
    warnings.showwarning = _show_warning
    try:
        status = app(standalone_mode=False)
    except ChangeoverError as error:
        _error(str(error))
        sys.exit(error.exit_code)
    except NoArgsIsHelpError as error:  # `changeover` alone: the map of the tool
        assert error.ctx is not None
        typer.echo(error.ctx.get_help())
        sys.exit(0)
    except UsageError as error:
        command = error.ctx.command_path if error.ctx is not None else "changeover"
        _error(f"{error.format_message()} (see `{command} --help`)")
        sys.exit(2)
    except typer.Abort:
        err_console.print("interrupted")
        sys.exit(130)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
    if isinstance(status, int) and status:
        sys.exit(status)
