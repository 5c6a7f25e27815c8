"""`changeover report`: the report of a study's current state (HTML, Markdown or JSON)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from changeover.calibrate.settings import FitSettings
from changeover.cli.app import PIPELINE, StudyOption, app, console, print_next
from changeover.errors import ChangeoverError
from changeover.files import replacing
from changeover.study import Study, load_study

if TYPE_CHECKING:
    from changeover.report.document import ReportDocument

FORMATS = ("html", "json", "md")


def write_report(document: ReportDocument, out: Path, fmt: str) -> None:
    """Render the document in `fmt` and write it to `out` (temp file, then rename)."""
    if fmt == "json":
        text = document.to_json()
    elif fmt == "md":
        from changeover.report.markdown import render_markdown

        text = render_markdown(document)
    else:
        from changeover.report.html import render_html

        text = render_html(document)
    with replacing(out) as tmp:
        tmp.write_text(text, encoding="utf-8")


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise ChangeoverError(f"--format: unknown format '{fmt}'; use html, json or md")
    return fmt


def default_out(study: Study, fmt: str, out: Path | None) -> Path:
    if out is None:
        out = study.resolve(f"report.{fmt}")
    if not out.parent.exists():
        raise ChangeoverError(f"--out {out}: folder {out.parent} does not exist; create it first")
    return out


SeedOption = Annotated[int, typer.Option(help="Random seed; the same seed gives the same fit.")]


SamplesOption = Annotated[int, typer.Option(help="Posterior draws per chain.", min=100)]


WarmupOption = Annotated[int, typer.Option(help="Warm-up iterations per chain.", min=100)]


BudgetOption = Annotated[
    int, typer.Option(help="How many labels the report proposes to label next.", min=1)
]


RefitOption = Annotated[
    bool, typer.Option("--refit", help="Sample again even when nothing changed since last fit.")
]


UncalibratedOption = Annotated[
    bool,
    typer.Option(
        help="Fit even a dimension without any human label (its estimates rest on the prior, "
        "uncalibrated) instead of showing a preview."
    ),
]


@app.command(
    rich_help_panel=PIPELINE,
    short_help="Write the report of the study's current state (report.html); re-uses the last fit.",
)
def report(
    study_path: StudyOption = Path("study.yaml"),
    out: Annotated[
        Path | None,
        typer.Option(help="Where to write it (default: report.<format> beside the study)."),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="html, json or md.")] = "html",
    seed: SeedOption = 0,
    num_samples: SamplesOption = 1000,
    num_warmup: WarmupOption = 500,
    budget: BudgetOption = 100,
    refit: RefitOption = False,
    allow_uncalibrated: UncalibratedOption = False,
) -> None:
    """Write the report of the study's current state: verdicts, gates, calibration, labels,
    what to label next, diagnostics. Re-uses the last fit when nothing changed; before the first
    labels, a preview (raw signal rates and how labelling starts; no verdict)."""
    from changeover.calibrate.next import PlanRequest
    from changeover.run import analyse
    from changeover.workspace import open_workspace

    study = load_study(study_path)
    out = default_out(study, check_format(fmt), out)
    settings = fit_settings(seed, num_samples, num_warmup, allow_uncalibrated)
    with (
        open_workspace(study.workspace_path) as workspace,
        console.status("counting and fitting (NUTS)…"),
    ):
        analysis = analyse(
            study, workspace, settings=settings, plan=PlanRequest(budget), refit=refit
        )
    write_report(analysis.document, out, fmt)
    reused = " (fit re-used: nothing changed)" if analysis.reused else ""
    console.print(Text.assemble(summary_line(analysis.document), reused), highlight=False)
    console.print(f"report written to {out}", highlight=False, markup=False)
    print_next(study_path, budget=budget)


def fit_settings(
    seed: int, num_samples: int, num_warmup: int, allow_uncalibrated: bool
) -> FitSettings:
    """The fit settings the CLI options say; the others are FitSettings' shared defaults."""
    return FitSettings(
        seed=seed,
        num_samples=num_samples,
        num_warmup=num_warmup,
        allow_uncalibrated=allow_uncalibrated,
    )


def summary_line(document: ReportDocument) -> Text:
    """One line: each candidate's verdict (provisional when the fit did not converge), or that
    the report is a preview."""
    from changeover.report.terminal import verdict_text

    result = document.result
    if result is None:
        missing = ", ".join(document.unlabelled_dimensions)
        return Text(f"preview: no verdict without labels (none yet for {missing})")
    line = Text()
    for i, (name, verdict) in enumerate(result.candidates.items()):
        line.append(", " if i else "")
        line.append(f"{name} ")
        line.append_text(verdict_text(verdict, converged=result.diagnostics.converged))
    return line
