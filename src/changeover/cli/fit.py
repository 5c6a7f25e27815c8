"""`changeover fit`: calibrate the signals against the labels and decide every candidate."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from changeover.cli.app import DECIDE, app, console
from changeover.counts import read_counts, read_measurements
from changeover.errors import ChangeoverError
from changeover.files import replacing
from changeover.study import load_study


@app.command(rich_help_panel=DECIDE)
def fit(
    counts: Annotated[
        Path,
        typer.Option(
            help="Counts table (.csv or .parquet): dimension, model, "
            "segment, group, level, human, n."
        ),
    ],
    study: Annotated[Path, typer.Option(help="The study file.")] = Path("study.yaml"),
    measurements: Annotated[
        Path | None,
        typer.Option(
            help="Per-response cost and latency (.csv or .parquet: item_id, model, segment, "
            "cost, latency_s): each model's cost and latency, and the gates on them."
        ),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Write the result as JSON here.")] = None,
    draws: Annotated[
        Path | None, typer.Option(help="Save the posterior (ArviZ netCDF) here.")
    ] = None,
    seed: Annotated[
        int, typer.Option(help="Random seed; the same seed gives the same result.")
    ] = 0,
    interval: Annotated[float, typer.Option(help="Central interval reported (0-1).")] = 0.95,
    engine: Annotated[
        str, typer.Option(help="calibration (default) or error; see the README.")
    ] = "calibration",
    num_samples: Annotated[int, typer.Option(help="Posterior draws per chain.")] = 1000,
    num_warmup: Annotated[int, typer.Option(help="Warm-up iterations per chain.")] = 500,
    num_chains: Annotated[int, typer.Option(help="Chains (at least 2, for R-hat).")] = 2,
    allow_uncalibrated: Annotated[
        bool, typer.Option(help="Fit even a dimension with no human labels.")
    ] = False,
    exit_code: Annotated[
        bool,
        typer.Option(
            help="Exit 0 if all candidates are ready, 1 if some is "
            "not ready, 3 if undecided or the fit did not converge (2 stays bad input)."
        ),
    ] = False,
) -> None:
    """Calibrate the automated signals against the human labels and decide every candidate."""
    from changeover.calibrate import fit as fit_counts
    from changeover.report.terminal import print_result

    if engine not in ("calibration", "error"):
        raise ChangeoverError(f"--engine: unknown engine '{engine}'; use calibration or error")
    for path in (out, draws):
        if path is not None and not path.parent.exists():
            raise ChangeoverError(f"{path}: folder {path.parent} does not exist; create it first")
    the_study = load_study(study)
    table = read_counts(counts, the_study)
    measured = None if measurements is None else read_measurements(measurements, the_study)
    with console.status("fitting (NUTS)…"):
        result = fit_counts(
            the_study,
            table,
            engine=engine,  # type: ignore[arg-type]
            interval=interval,
            num_samples=num_samples,
            num_warmup=num_warmup,
            num_chains=num_chains,
            seed=seed,
            allow_uncalibrated=allow_uncalibrated,
            measurements=measured,
        )
    print_result(result, console)
    if out is not None:
        with replacing(out) as tmp:
            tmp.write_text(result.to_json(), encoding="utf-8")
        console.print(f"result written to {out}", markup=False, highlight=False)
    if draws is not None and result.draws is not None and result.draws.inference_data is not None:
        with replacing(draws) as tmp:
            result.draws.inference_data.to_netcdf(str(tmp))
        console.print(f"posterior written to {draws}", markup=False, highlight=False)
    if exit_code:
        verdicts = {c.verdict for c in result.candidates.values()}
        if not result.diagnostics.converged:
            raise typer.Exit(3)  # no decision from a fit that did not converge
        if "not-ready" in verdicts:
            raise typer.Exit(1)
        if "undecided" in verdicts:
            raise typer.Exit(3)
