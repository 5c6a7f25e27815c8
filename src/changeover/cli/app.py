"""The Typer application every command module registers on."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

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
# Piped into a file or a CI log, lines are not wrapped at a guessed width: they stay whole.
console.soft_wrap = not console.is_terminal
err_console.soft_wrap = not err_console.is_terminal

# `changeover --help` lists the commands in these panels, in the order a study goes through them.
TRY = "Try it"
SET_UP = "Set up a study"
PRODUCE = "Responses and signals"
DECIDE = "Decide"
LABEL = "Human labels"
PIPELINE = "The whole pipeline"

StudyOption = Annotated[Path, typer.Option("--study", help="The study file.", show_default=True)]


class _TimeLeft(TimeRemainingColumn):
    """ "eta 0:01:02"; nothing for a task added with `eta=False`, whose steps are of unequal
    length (the stages of `changeover run`: a fit is not as quick as an import)."""

    def render(self, task: Task) -> Text:
        if not task.fields.get("eta", True):
            return Text("")
        return Text.assemble("eta ", super().render(task))


def progress_bars(*, label_width: int, status: bool = False) -> Progress:
    """One bar per task on stderr, with count, elapsed time and ETA (and a status field); none
    when stderr is not a terminal (a CI log gets the summary lines, not redrawn bars)."""
    columns: list[ProgressColumn] = [
        TextColumn(f"{{task.description:<{label_width}}}"),
        BarColumn(),
        MofNCompleteColumn(),
    ]
    if status:
        columns.append(TextColumn("{task.fields[status]}"))
    columns += [TimeElapsedColumn(), _TimeLeft()]
    return Progress(
        *columns,
        console=err_console,
        refresh_per_second=4,
        disable=not err_console.is_terminal,
    )


def split_names(values: list[str] | None) -> list[str] | None:
    """Names given as repeated options and/or comma-separated lists; None when none given."""
    names = [n.strip() for value in values or [] for n in value.split(",") if n.strip()]
    return names or None


def print_next(study_path: Path, *, budget: int = 100) -> None:
    """End a command the way every pipeline step ends: by naming the next command to run
    (`changeover.status.next_command`, what `changeover status` says)."""
    from changeover.status import next_command, study_status
    from changeover.study import load_study
    from changeover.workspace import open_workspace

    study = load_study(study_path)
    if not study.workspace_path.exists():
        return
    with open_workspace(study.workspace_path) as workspace:
        state = study_status(study, workspace)
    console.print(next_command(state, budget=budget), highlight=False, markup=False)
