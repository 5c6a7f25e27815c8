"""End-to-end commands: `run` (the whole pipeline), `report` (the HTML / Markdown / JSON report)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress, TaskID

from changeover.cli.app import PIPELINE, StudyOption, app, console, progress_bars
from changeover.cli.signals import RichScoreReporter
from changeover.cli.workspace import RichReporter
from changeover.errors import ChangeoverError
from changeover.io import replacing
from changeover.study import Study, load_study

FORMATS = ("html", "json", "md")


class StageProgress:
    """One progress display for the whole run: a line per stage, a bar per model and signal.

    It is both generation's and scoring's reporter; the bars are theirs."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._stage: TaskID | None = None
        self._stages = ("import", "generate", "score", "fit")
        self._generate = RichReporter(progress)
        self._score = RichScoreReporter(progress)

    def on_stage(self, stage: str) -> None:
        if self._stage is None:
            self._stage = self._progress.add_task("pipeline", total=len(self._stages), status="")
        done = self._stages.index(stage) if stage in self._stages else len(self._stages)
        label = {"fit": "fit (NUTS) and next labels", "done": "done"}.get(stage, stage)
        self._progress.update(self._stage, completed=done, status=label)

    # generate.Reporter, and signals.ScoreReporter (whose start also says how many are done)
    def start(self, name: str, total: int, done: int | None = None) -> None:
        if done is None:
            self._generate.start(name, total)
        else:
            self._score.start(name, total, done)

    def update(self, summary: Any) -> None:
        self._generate.update(summary)

    def advance(self, signal: str, n: int) -> None:
        self._score.advance(signal, n)


def write_report(document: dict[str, Any], out: Path, fmt: str) -> None:
    """Render the document in `fmt` and write it to `out` (temp file, then rename)."""
    if fmt == "json":
        text = json.dumps(document, indent=2)
    elif fmt == "md":
        from changeover.report.markdown import render_markdown

        text = render_markdown(document)
    else:
        from changeover.report.html import render_html

        text = render_html(document)
    with replacing(out) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise ChangeoverError(f"--format: unknown format '{fmt}'; use html, json or md")
    return fmt


def _default_out(study: Study, fmt: str, out: Path | None) -> Path:
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


@app.command(rich_help_panel=PIPELINE)
def run(
    study_path: StudyOption = Path("study.yaml"),
    out: Annotated[
        Path | None, typer.Option(help="Where to write the report (default: beside the study).")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="html, json or md.")] = "html",
    seed: SeedOption = 0,
    num_samples: SamplesOption = 1000,
    num_warmup: WarmupOption = 500,
    budget: BudgetOption = 100,
    refit: RefitOption = False,
    items: Annotated[
        Path | None, typer.Option(help="Import these items first (CSV, JSONL or Parquet).")
    ] = None,
    labels: Annotated[
        list[Path] | None,
        typer.Option(
            help="Import these human labels (CSV or Label Studio JSON) before fitting; repeat "
            "for several files."
        ),
    ] = None,
) -> None:
    """The whole pipeline: generate → score → counts → fit → report, skipping what is done."""
    from changeover.calibrate.settings import FitSettings
    from changeover.report.terminal import print_summary
    from changeover.run import run as run_pipeline

    study = load_study(study_path)
    out = _default_out(study, _check_format(fmt), out)
    settings = FitSettings(seed=seed, num_samples=num_samples, num_warmup=num_warmup)
    with progress_bars(label_width=20, status=True) as progress:
        stages = StageProgress(progress)
        generated, scored, analysis = run_pipeline(
            study,
            items=items,
            labels=labels or [],
            settings=settings,
            budget=budget,
            generate_reporter=stages,
            score_reporter=stages,
            on_stage=stages.on_stage,
            refit=refit,
        )
    fresh = sum(m.done for m in generated.models)
    failed = sum(m.failed + m.earlier_failures for m in generated.models)
    console.print(
        f"generate: {fresh:,} new responses, {failed:,} failed · score: "
        f"{sum(s.scored for s in scored.signals):,} new signal values · fit: "
        + ("re-used (nothing changed)" if analysis.reused else "sampled")
    )
    print_summary(analysis.document["result"], console)
    write_report(analysis.document, out, fmt)
    console.print(f"report written to {out}")


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
) -> None:
    """Write the report of the study's current state: verdicts, gates, calibration, labels,
    what to label next, diagnostics. Re-uses the last fit when nothing changed."""
    from changeover.calibrate.settings import FitSettings
    from changeover.run import analyse
    from changeover.workspace import open_workspace

    study = load_study(study_path)
    out = _default_out(study, _check_format(fmt), out)
    settings = FitSettings(seed=seed, num_samples=num_samples, num_warmup=num_warmup)
    with (
        open_workspace(study.workspace_path) as workspace,
        console.status("counting and fitting (NUTS)…"),
    ):
        analysis = analyse(study, workspace, settings=settings, budget=budget, refit=refit)
    write_report(analysis.document, out, fmt)
    verdicts = ", ".join(
        f"{name} {c['verdict']}" for name, c in analysis.document["result"]["candidates"].items()
    )
    reused = " (fit re-used: nothing changed)" if analysis.reused else ""
    console.print(f"{verdicts}{reused}\nreport written to {out}", highlight=False)
