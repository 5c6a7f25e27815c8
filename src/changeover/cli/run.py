"""`changeover run`: the whole pipeline, with one progress display."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress, TaskID

from changeover.cli.app import PIPELINE, StudyOption, app, console, print_next, progress_bars
from changeover.cli.generate import RichReporter
from changeover.cli.report import (
    BudgetOption,
    RefitOption,
    SamplesOption,
    SeedOption,
    UncalibratedOption,
    WarmupOption,
    check_format,
    default_out,
    fit_settings,
    write_report,
)
from changeover.cli.score import RichScoreReporter
from changeover.study import load_study


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
            self._stage = self._progress.add_task(
                "pipeline", total=len(self._stages), status="", eta=False
            )
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
    allow_uncalibrated: UncalibratedOption = False,
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
    """The whole pipeline: generate → score → counts → fit → report, skipping what is done.
    Before the first human labels, the report is a preview (no verdict without labels)."""
    from changeover.calibrate.next import PlanRequest
    from changeover.report.terminal import print_document
    from changeover.run import run as run_pipeline

    study = load_study(study_path)
    out = default_out(study, check_format(fmt), out)
    settings = fit_settings(seed, num_samples, num_warmup, allow_uncalibrated)
    with progress_bars(label_width=20, status=True) as progress:
        stages = StageProgress(progress)
        generated, scored, analysis = run_pipeline(
            study,
            items=items,
            labels=labels or [],
            settings=settings,
            plan=PlanRequest(budget),
            generate_reporter=stages,
            score_reporter=stages,
            on_stage=stages.on_stage,
            refit=refit,
        )
    fresh = sum(m.done for m in generated.models)
    failed = sum(m.failed + m.earlier_failures for m in generated.models)
    document = analysis.document
    fitted = "re-used (nothing changed)" if analysis.reused else "sampled"
    console.print(
        f"generate: {fresh:,} new responses, {failed:,} failed · score: "
        f"{sum(s.scored for s in scored.signals):,} new signal values · fit: "
        + (fitted if document.result is not None else "none yet (no labels: a preview)"),
        highlight=False,
    )
    print_document(document, console)
    write_report(document, out, fmt)
    console.print(f"report written to {out}", highlight=False, markup=False)
    print_next(study_path, budget=budget)
