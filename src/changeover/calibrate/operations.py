"""Cost and latency: what each model costs and how fast it answers at the study's traffic mix,
with bootstrap draws for their uncertainty.

The input is one row per successful response, `MEASUREMENT_COLUMNS`: `item_id, model, segment,
cost, latency_s` (cost in US dollars, latency in seconds; null where unknown). With traffic
weights `w[s]` (normalised) the measures of a model are

    cost          1,000 · Σ_s w[s] · mean cost of its responses in s  (US dollars per 1,000
                  interactions)
    latency_p50   the median of its latency at the traffic mix: the mixture over segments in
                  which segment s carries weight w[s] and each of its responses an equal share
    latency_p95   the 95th percentile of the same mixture (nearest rank: the smallest latency
                  with at least 95% of the traffic at or below it)

Uncertainty comes from a bootstrap (Efron & Tibshirani 1993, ch. 6): items are resampled with
replacement within each segment (stratified, so the traffic mix is fixed) and every measure is
computed again. The same resampled items serve every model (the models answered the same
prompts, so a candidate's cost is compared with the incumbent's on the same draw: a paired
bootstrap) and every measure (so gates on cost and on latency are judged jointly, draw by draw).

A model is measured on a measure only when every segment has at least `MIN_RESPONSES` of its
responses with that value: a traffic-weighted figure needs every segment, and a percentile of
a handful of responses is not one. Otherwise it is missing, with the reason.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from changeover.study import MEASURES, Measure

__all__ = [
    "MEASUREMENT_COLUMNS",
    "MIN_RESPONSES",
    "NUM_DRAWS",
    "OperationalDraws",
    "format_measure",
    "measure_label",
    "operational_draws",
]

MEASUREMENT_COLUMNS = ("item_id", "model", "segment", "cost", "latency_s")
#: Fewest responses with a value a model needs in every segment to be measured.
MIN_RESPONSES = 10
#: Bootstrap draws per measure and model.
NUM_DRAWS = 2000
#: Most bootstrap weights held at once (draws × responses), to bound memory.
_CHUNK = 2_000_000

_SOURCE: dict[Measure, str] = {
    "cost": "cost",
    "latency_p50": "latency_s",
    "latency_p95": "latency_s",
}
_QUANTILE: dict[Measure, float] = {"latency_p50": 0.5, "latency_p95": 0.95}
_REMEDY = {
    "cost": "give the model prices in the study (price_input_per_million, "
    "price_output_per_million) and responses with token counts",
    "latency_s": "responses generated online record it; imported or replayed ones need a "
    "latency_s column",
}


def measure_label(measure: Measure) -> str:
    """The measure as a sentence names it."""
    return {
        "cost": "cost per 1,000 interactions",
        "latency_p50": "p50 latency",
        "latency_p95": "p95 latency",
    }[measure]


def format_measure(measure: Measure, value: float | None, *, difference: bool = False) -> str:
    """A value of a measure to three significant digits with its unit: "$0.202" (per 1,000
    interactions), "$1,234", "0.845 s"; a `difference` is signed; "–" where there is none."""
    if value is None or value != value:
        return "–"
    sign = ("+" if value >= 0 else "-") if difference else ("-" if value < 0 else "")
    size = abs(value)
    decimals = 2 if size == 0 else min(4, max(0, 2 - math.floor(math.log10(size))))
    number = f"{size:,.{decimals}f}"
    return f"{sign}${number}" if measure == "cost" else f"{sign}{number} s"


@dataclass(frozen=True)
class OperationalDraws:
    """Each model's measures at the traffic mix: the estimate from every measured response once,
    `draws` bootstrap draws of it (NaN where a resample held none of the model's responses in
    some segment), how many responses were measured, and for a model not measured, why."""

    estimate: dict[Measure, dict[str, float]]
    draws: dict[Measure, dict[str, np.ndarray]]
    responses: dict[Measure, dict[str, int]]
    missing: dict[Measure, dict[str, str]]


@dataclass(frozen=True)
class _Segment:
    name: str
    weight: float
    n_items: int
    values: dict[tuple[str, str], np.ndarray]  # (model, column) -> [n_items], NaN where unknown


def _segments(
    rows: pl.DataFrame, weights: Mapping[str, float], models: Sequence[str]
) -> list[_Segment]:
    total = sum(weights.values())
    out = []
    for segment, weight in weights.items():
        here = rows.filter(pl.col("segment") == segment)
        items = here["item_id"].unique().sort()
        index = {item: i for i, item in enumerate(items.to_list())}
        values = {}
        for model in models:
            mine = here.filter(pl.col("model") == model)
            at = np.array([index[i] for i in mine["item_id"].to_list()], dtype=np.int64)
            for column in ("cost", "latency_s"):
                vector = np.full(len(index), np.nan)
                vector[at] = mine[column].cast(pl.Float64).fill_null(np.nan).to_numpy()
                values[(model, column)] = vector
        out.append(_Segment(segment, weight / total, len(index), values))
    return out


def _why_missing(model: str, column: str, segments: Sequence[_Segment]) -> str | None:
    what = "a cost" if column == "cost" else "a latency"
    counts = {s.name: int(np.isfinite(s.values[(model, column)]).sum()) for s in segments}
    if not any(counts.values()):
        return f"no response of '{model}' has {what}; {_REMEDY[column]}"
    short = {s: n for s, n in counts.items() if n < MIN_RESPONSES}
    if short:
        listed = ", ".join(f"{n} in {s}" for s, n in short.items())
        return (
            f"'{model}' has too few responses with {what} ({listed}; at least {MIN_RESPONSES} "
            f"needed in every segment); {_REMEDY[column]}"
        )
    return None


def _mean(
    counts: list[np.ndarray], segments: Sequence[_Segment], key: tuple[str, str]
) -> np.ndarray:
    """Σ_s w[s] · the weighted mean of the values in s, per row of resampling counts."""
    out = np.zeros(counts[0].shape[0])
    for c, segment in zip(counts, segments, strict=True):
        x = segment.values[key]
        known = np.isfinite(x)
        den = c @ known
        num = c @ np.where(known, x, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            out += segment.weight * np.where(den > 0, num / den, np.nan)
    return out


def _quantiles(
    counts: list[np.ndarray],
    segments: Sequence[_Segment],
    key: tuple[str, str],
    qs: Sequence[float],
) -> list[np.ndarray]:
    """Nearest-rank quantiles of the traffic-weighted mixture, per row of resampling counts."""
    parts, weights = [], []
    for c, segment in zip(counts, segments, strict=True):
        x = segment.values[key]
        known = np.isfinite(x)
        den = c[:, known].sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            weights.append(np.where(den > 0, segment.weight * c[:, known] / den, np.nan))
        parts.append(x[known])
    values = np.concatenate(parts)
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(np.concatenate(weights, axis=1)[:, order], axis=1)
    total = cumulative[:, -1:]
    out = []
    for q in qs:
        first = np.argmax(cumulative >= q * total - 1e-12, axis=1)
        out.append(np.where(np.isfinite(total[:, 0]), values[order][first], np.nan))
    return out


def _measures(
    counts: list[np.ndarray], segments: Sequence[_Segment], model: str, measured: set[Measure]
) -> dict[Measure, np.ndarray]:
    found: dict[Measure, np.ndarray] = {}
    if "cost" in measured:
        found["cost"] = 1000.0 * _mean(counts, segments, (model, "cost"))
    latency = [m for m in MEASURES if m in measured and m != "cost"]
    if latency:
        qs = [_QUANTILE[m] for m in latency]
        for m, q in zip(
            latency, _quantiles(counts, segments, (model, "latency_s"), qs), strict=True
        ):
            found[m] = q
    return found


def operational_draws(
    measurements: pl.DataFrame,
    weights: Mapping[str, float],
    models: Sequence[str],
    *,
    num_draws: int = NUM_DRAWS,
    seed: int = 0,
) -> OperationalDraws:
    """Cost per 1,000 interactions and p50 / p95 latency of each model at the traffic mix
    `weights`, each with `num_draws` paired, stratified bootstrap draws (module docstring).

    `measurements` has `MEASUREMENT_COLUMNS`, one row per response (an item answered twice by
    one model is an error); rows of other models or segments are left out."""
    missing_columns = [c for c in MEASUREMENT_COLUMNS if c not in measurements.columns]
    if missing_columns:
        raise ValueError(f"measurements: missing column(s) {', '.join(missing_columns)}")
    rows = measurements.filter(
        pl.col("model").is_in(list(models)) & pl.col("segment").is_in(list(weights))
    )
    if rows.select(pl.struct("item_id", "model").is_duplicated().any()).item():
        raise ValueError("measurements: an item has two rows for one model; keep one per response")
    segments = _segments(rows, weights, models)
    estimate: dict[Measure, dict[str, float]] = {m: {} for m in MEASURES}
    draws: dict[Measure, dict[str, np.ndarray]] = {m: {} for m in MEASURES}
    responses: dict[Measure, dict[str, int]] = {m: {} for m in MEASURES}
    missing: dict[Measure, dict[str, str]] = {m: {} for m in MEASURES}
    measured: dict[str, set[Measure]] = {}
    for model in models:
        measured[model] = set()
        for measure in MEASURES:
            column = _SOURCE[measure]
            responses[measure][model] = sum(
                int(np.isfinite(s.values[(model, column)]).sum()) for s in segments
            )
            why = _why_missing(model, column, segments)
            if why is None:
                measured[model].add(measure)
            else:
                missing[measure][model] = why
    if not any(measured.values()):
        return OperationalDraws(estimate, draws, responses, missing)
    ones = [np.ones((1, s.n_items)) for s in segments]
    for model in models:
        for measure, value in _measures(ones, segments, model, measured[model]).items():
            estimate[measure][model] = float(value[0])
    # One stream per segment, so that the draws do not depend on the chunk size.
    rngs = np.random.default_rng(seed).spawn(len(segments))
    chunk = max(1, min(num_draws, _CHUNK // max(1, sum(s.n_items for s in segments))))
    found: dict[tuple[str, Measure], list[np.ndarray]] = {}
    for start in range(0, num_draws, chunk):
        size = min(chunk, num_draws - start)
        counts = [
            rng.multinomial(s.n_items, np.full(s.n_items, 1.0 / s.n_items), size=size).astype(float)
            if s.n_items
            else np.zeros((size, 0))
            for s, rng in zip(segments, rngs, strict=True)
        ]
        for model in models:
            for measure, value in _measures(counts, segments, model, measured[model]).items():
                found.setdefault((model, measure), []).append(value)
    for (model, measure), parts in found.items():
        draws[measure][model] = np.concatenate(parts)
    return OperationalDraws(estimate, draws, responses, missing)
