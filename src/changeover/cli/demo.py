"""`changeover demo`: the whole method on an offline study whose truth is known."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from changeover.cli.app import TRY, app, console, progress_bars
from changeover.cli.report import write_report
from changeover.cli.run import StageProgress
from changeover.errors import ChangeoverError

# When a candidate is undecided after the first labels, the demo plays up to ROUNDS rounds of
# the labelling loop: `changeover next` picks LABELS_PER_ROUND labels, simulated annotators give
# them (from the truth, with noise), and the study is fitted again.
ROUNDS = 3
LABELS_PER_ROUND = 300


@app.command(
    rich_help_panel=TRY,
    short_help="A study with a known truth, run end to end offline: the quickest look at "
    "changeover.",
)
def demo(
    directory: Annotated[
        Path, typer.Argument(help="Folder for the demo study (created; re-used when run again).")
    ] = Path("changeover-demo"),
    items: Annotated[int, typer.Option(help="How many support questions.", min=60)] = 1500,
    seed: Annotated[int, typer.Option(help="Seeds the demo's data and the fit.")] = 0,
    num_samples: Annotated[int, typer.Option(help="Posterior draws per chain.", min=100)] = 1000,
    num_warmup: Annotated[int, typer.Option(help="Warm-up iterations per chain.", min=100)] = 500,
) -> None:
    """Build a support-assistant study with a known truth (an incumbent, three candidates, six
    regions, "human" labels on a sample) and run the whole pipeline on it, offline; while a
    candidate is undecided, label what `changeover next` picks (simulated annotators) and fit
    again. Ends with the verdicts, the estimates beside the true rates, and report.html."""
    from changeover.calibrate.settings import FitSettings
    from changeover.demo import CANDIDATES, INCUMBENT, SEGMENTS, run_demo
    from changeover.report.terminal import print_document, print_truth

    started = time.monotonic()
    marker = directory / "demo.json"
    wanted = {"items": items, "seed": seed}
    if marker.exists() and json.loads(marker.read_text()) != wanted:
        built = json.loads(marker.read_text())
        raise ChangeoverError(
            f"{directory}: holds a demo built with --items {built.get('items')} --seed "
            f"{built.get('seed')}; pass those, or another folder"
        )
    if directory.exists() and not marker.exists() and any(directory.iterdir()):
        raise ChangeoverError(
            f"{directory}: the folder is not empty and holds no demo; pick a new folder"
        )
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps(wanted), encoding="utf-8")
    settings = FitSettings(seed=seed, num_samples=num_samples, num_warmup=num_warmup)
    console.print(
        f"demo study in {directory}: {items:,} support questions in {len(SEGMENTS)} regions; "
        f"incumbent {INCUMBENT}, candidates {', '.join(CANDIDATES)}",
        highlight=False,
        markup=False,
    )
    with progress_bars(label_width=20, status=True) as progress:
        stages = StageProgress(progress)
        outcome = run_demo(
            directory,
            items=items,
            seed=seed,
            settings=settings,
            rounds=ROUNDS,
            labels_per_round=LABELS_PER_ROUND,
            generate_reporter=stages,
            score_reporter=stages,
            on_stage=stages.on_stage,
        )
    for number, verdicts in enumerate(outcome.verdicts):
        said = ", ".join(f"{c} {v}" for c, v in verdicts.items())
        if number < len(outcome.labels_added):
            console.print(
                f"fit {number + 1}: {said} — so the simulated annotators label the "
                f"{outcome.labels_added[number]} responses `changeover next` picks, and again",
                highlight=False,
            )
    document = outcome.document
    print_document(document, console)
    print_truth(document, console)
    designed = outcome.demo.designed.get("verdicts", {})
    if designed and document.result is not None:
        got = {c: v.verdict for c, v in document.result.candidates.items()}
        matches = sum(got.get(c) == v for c, v in designed.items())
        console.print(
            f"designed verdicts: {', '.join(f'{c} {v}' for c, v in designed.items())} — "
            f"{matches} of {len(designed)} recovered",
            highlight=False,
        )
    out = directory / "report.html"
    write_report(document, out, "html")
    study = outcome.demo.study
    console.print(
        f"report written to {out} ({time.monotonic() - started:.0f} s). Next: open it, then "
        f"try `changeover next --budget 50 --study {study}` and label what it queues: "
        f"`changeover annotators add YOUR-NAME --study {study}` prints your token, "
        f"`changeover annotate --study {study}` serves the queue.",
        highlight=False,
        markup=False,
    )
