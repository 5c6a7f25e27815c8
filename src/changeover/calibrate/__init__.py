"""The calibration engine: counts in, calibrated rates, contrasts and verdicts out.

Importing the package is light; the sampler (JAX, NumPyro) is loaded by the first `fit`.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import polars as pl

from changeover.calibrate.blocks import COUNTS_COLUMNS, Block, blocks_from_counts
from changeover.calibrate.decide import Result, check_gates, decide
from changeover.calibrate.diagnostics import Diagnostics
from changeover.calibrate.operations import MEASUREMENT_COLUMNS, operational_draws
from changeover.calibrate.posterior import Draws
from changeover.calibrate.settings import Engine, FitSettings, PriorScales
from changeover.errors import CalibrationError
from changeover.study import Study, load_study

__all__ = [
    "COUNTS_COLUMNS",
    "MEASUREMENT_COLUMNS",
    "Block",
    "Diagnostics",
    "Draws",
    "Engine",
    "FitSettings",
    "PriorScales",
    "Result",
    "fit",
]


def _check_labels(blocks: list[Block], allow_uncalibrated: bool) -> list[str]:
    notes = []
    for block in blocks:
        if len(block.levels) < 2:
            notes.append(
                f"{block.label}: the signal has a single level ('{block.levels[0]}'), which tells "
                "responses apart not at all: its rates rest on the human labels alone (and on "
                "pooling across models and segments); for a signal that helps, change its bins or "
                "metric (docs/signals.md) and rescore, or add another signal of this dimension"
            )
        if block.n_labels == 0:
            if not allow_uncalibrated:
                raise CalibrationError(
                    f"{block.label}: no human labels at all, so the judge cannot be calibrated; "
                    "label some responses (changeover next) or pass --allow-uncalibrated to rely "
                    "on the prior and on pooling alone"
                )
            notes.append(
                f"{block.label}: no human labels; estimates rest on the prior and are uncalibrated"
            )
            continue
        for m, model in enumerate(block.models):
            if block.n_all[m].sum() == 0:
                notes.append(
                    f"{block.label}: model '{model}' has no responses; its rate is a guess"
                )
            elif block.n_pass[m].sum() + block.n_fail[m].sum() == 0:
                notes.append(
                    f"{block.label}: model '{model}' has no human labels; its calibration is "
                    "borrowed from the other models through pooling"
                )
    return notes


def fit(
    study: Study | str | Path,
    counts: pl.DataFrame,
    *,
    engine: Engine = "calibration",
    interval: float = 0.95,
    num_warmup: int = 500,
    num_samples: int = 1000,
    num_chains: int = 2,
    seed: int = 0,
    allow_uncalibrated: bool = False,
    priors: PriorScales = PriorScales(),
    measurements: pl.DataFrame | None = None,
) -> Result:
    """Fit the calibration model to a counts table and decide every candidate.

    `counts` is a validated table (`changeover.read_counts` reads and checks a file);
    `measurements`, one row per response with its cost and latency (`MEASUREMENT_COLUMNS`), gives
    each model's cost and latency and decides the gates on them (without, they are unsettled).
    """
    if not isinstance(study, Study):
        study = load_study(study)
    if not 0 < interval < 1:
        raise CalibrationError(f"interval must be between 0 and 1 (got {interval})")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        blocks = blocks_from_counts(counts, study.model_names, study.segment_names)
    notes = [str(w.message) for w in caught]
    if not blocks:
        raise CalibrationError("the counts table is empty; nothing to fit")
    check_gates(study, blocks)
    notes += _check_labels(blocks, allow_uncalibrated)
    from changeover.calibrate.sampler import sample_posterior

    draws = sample_posterior(
        blocks,
        study.weights,
        engine=engine,
        num_warmup=num_warmup,
        num_samples=num_samples,
        num_chains=num_chains,
        seed=seed,
        priors=priors,
    )
    operations = (
        None
        if measurements is None
        else operational_draws(measurements, study.weights, study.model_names, seed=seed)
    )
    result = decide(study, draws, interval=interval, engine=engine, operations=operations)
    problems = draws.diagnostics.problems()
    if problems:
        notes.append(
            "the sampler did not converge: " + "; ".join(problems) + " — do not trust this fit"
        )
    for note in notes:
        warnings.warn(note, stacklevel=2)
    return result.model_copy(update={"warnings": notes})
