"""Cost and latency at the traffic mix: exact on small tables, and intervals that cover by
simulation."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from changeover.calibrate.operations import (
    MIN_RESPONSES,
    format_measure,
    operational_draws,
)


def _table(rows: list[tuple[str, str, str, float | None, float | None]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={
            "item_id": pl.String,
            "model": pl.String,
            "segment": pl.String,
            "cost": pl.Float64,
            "latency_s": pl.Float64,
        },  # fmt: skip
        orient="row",
    )


def _world(rng: np.random.Generator, n: int, *, costs: dict[str, float],
           latency: dict[str, float]) -> pl.DataFrame:  # fmt: skip
    """`n` items per segment (a, b) answered by every model: a log-normal cost and latency whose
    scale depends on the model and (cost) on the item's length, shared by the models."""
    rows = []
    for segment, length in (("a", 1.0), ("b", 3.0)):
        for i in range(n):
            size = length * rng.lognormal(0, 0.5)  # the prompt: the same for every model
            for model in costs:
                rows.append(
                    (
                        f"{segment}{i}", model, segment,
                        costs[model] * size * rng.lognormal(0, 0.1),
                        latency[model] * rng.lognormal(0, 0.4),
                    )
                )  # fmt: skip
    return _table(rows)


def test_the_estimates_are_exact_on_a_small_table() -> None:
    """Cost: 1,000 × the traffic-weighted mean; latency: nearest-rank percentiles of the
    mixture in which each segment carries its traffic weight."""
    rows = []
    for i in range(MIN_RESPONSES):
        rows.append((f"a{i}", "m", "a", 0.001, 1.0 + i))  # latencies 1..10 in a
        rows.append((f"b{i}", "m", "b", 0.003, 100.0 + i))  # 100..109 in b
    out = operational_draws(_table(rows), {"a": 3, "b": 1}, ["m"], num_draws=50)
    assert out.estimate["cost"]["m"] == pytest.approx(1000 * (0.75 * 0.001 + 0.25 * 0.003))
    # Segment a holds 75% of the traffic, 7.5% per response: the median is a's 7th value
    # (cumulative 0.45 at the 6th, 0.525 at the 7th); the p95 is b's 8th (0.75 + 8 × 0.025).
    assert out.estimate["latency_p50"]["m"] == 7.0
    assert out.estimate["latency_p95"]["m"] == 107.0
    assert out.responses["cost"]["m"] == 2 * MIN_RESPONSES
    assert out.draws["cost"]["m"].shape == (50,)
    assert np.all(out.draws["latency_p95"]["m"] >= 100.0)  # always in b's share


def test_the_bootstrap_is_seeded() -> None:
    table = _world(np.random.default_rng(0), 30, costs={"m": 1.0}, latency={"m": 1.0})
    first = operational_draws(table, {"a": 1, "b": 1}, ["m"], num_draws=200, seed=3)
    again = operational_draws(table, {"a": 1, "b": 1}, ["m"], num_draws=200, seed=3)
    other = operational_draws(table, {"a": 1, "b": 1}, ["m"], num_draws=200, seed=4)
    assert np.array_equal(first.draws["cost"]["m"], again.draws["cost"]["m"])
    assert not np.array_equal(first.draws["cost"]["m"], other.draws["cost"]["m"])


def test_small_chunks_give_the_same_draws() -> None:
    """Memory is bounded by drawing in chunks; the draws do not depend on the chunk size."""
    import changeover.calibrate.operations as operations

    table = _world(np.random.default_rng(1), 40, costs={"m": 1.0}, latency={"m": 1.0})
    whole = operational_draws(table, {"a": 1, "b": 2}, ["m"], num_draws=64, seed=0)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(operations, "_CHUNK", 800)  # 10 draws at a time over 80 items
        chunked = operational_draws(table, {"a": 1, "b": 2}, ["m"], num_draws=64, seed=0)
    for measure in ("cost", "latency_p95"):  # equal but for the rounding of a matrix product
        assert np.allclose(whole.draws[measure]["m"], chunked.draws[measure]["m"], rtol=1e-12)


def test_intervals_cover_the_truth() -> None:
    """90% percentile intervals of cost per 1,000 interactions and of p95 latency, over 200
    simulated studies (150 items per segment), cover the population value 84-96% of the time;
    and the paired difference of two models' costs is narrower than their separate intervals
    suggest (the prompts are shared)."""
    weights = {"a": 3.0, "b": 1.0}
    # Population values, from one very large draw of the same world.
    population = _world(np.random.default_rng(99), 40_000, costs={"m": 1.0}, latency={"m": 0.8})
    truth = operational_draws(population, weights, ["m"], num_draws=1)
    true_cost = truth.estimate["cost"]["m"]
    true_p95 = truth.estimate["latency_p95"]["m"]
    rng = np.random.default_rng(0)
    covered = {"cost": 0, "latency_p95": 0}
    narrower = 0
    replications = 200
    for seed in range(replications):
        table = _world(rng, 150, costs={"m": 1.0, "n": 2.0}, latency={"m": 0.8, "n": 0.8})
        out = operational_draws(table, weights, ["m", "n"], num_draws=400, seed=seed)
        for measure, true in (("cost", true_cost), ("latency_p95", true_p95)):
            lo, hi = np.quantile(out.draws[measure]["m"], [0.05, 0.95])
            covered[measure] += lo <= true <= hi
        diff = out.draws["cost"]["n"] - out.draws["cost"]["m"]
        separate = np.hypot(out.draws["cost"]["n"].std(), out.draws["cost"]["m"].std())
        narrower += diff.std() < 0.8 * separate
    for measure, hits in covered.items():
        assert 0.84 <= hits / replications <= 0.96, (measure, hits)
    assert narrower == replications


def test_a_model_without_values_or_with_too_few_is_missing_with_the_reason() -> None:
    rows = []
    for i in range(12):
        rows.append((f"a{i}", "inc", "a", 0.001, 1.0))
        rows.append((f"b{i}", "inc", "b", 0.001, 1.0))
        rows.append((f"a{i}", "free", "a", None, 1.0))  # no cost at all
        rows.append((f"b{i}", "free", "b", None, 1.0 if i < 3 else None))  # 3 latencies in b
    out = operational_draws(_table(rows), {"a": 1, "b": 1}, ["inc", "free"], num_draws=20)
    assert "free" not in out.estimate["cost"] and "free" not in out.draws["cost"]
    assert out.missing["cost"]["free"].startswith("no response of 'free' has a cost")
    assert "price_input_per_million" in out.missing["cost"]["free"]
    assert "3 in b" in out.missing["latency_p95"]["free"]
    assert f"at least {MIN_RESPONSES}" in out.missing["latency_p95"]["free"]
    assert out.responses["latency_p95"]["free"] == 15
    assert out.estimate["cost"]["inc"] == pytest.approx(1.0)
    assert out.missing["cost"] == {"free": out.missing["cost"]["free"]}


def test_rows_of_other_models_and_segments_are_left_out_and_duplicates_refused() -> None:
    rows = [(f"a{i}", "m", "a", 0.002, 1.0) for i in range(10)]
    rows += [(f"z{i}", "m", "elsewhere", 9.0, 9.0) for i in range(10)]
    rows += [(f"a{i}", "other", "a", 9.0, 9.0) for i in range(10)]
    out = operational_draws(_table(rows), {"a": 1}, ["m"], num_draws=10)
    assert out.estimate["cost"]["m"] == pytest.approx(2.0)
    with pytest.raises(ValueError, match="two rows for one model"):
        operational_draws(_table(rows + rows[:1]), {"a": 1}, ["m"])


@pytest.mark.parametrize(
    ("measure", "value", "difference", "expected"),
    [
        ("cost", 0.2016, False, "$0.202"),
        ("cost", 1234.5, False, "$1,234"),
        ("cost", -0.0847, True, "-$0.0847"),
        ("cost", 0.4, True, "+$0.400"),
        ("latency_p95", 0.3, True, "+0.300 s"),
        ("latency_p50", 12.34, False, "12.3 s"),
        ("latency_p50", None, False, "–"),
        ("cost", float("nan"), False, "–"),
    ],
)
def test_values_are_shown_to_three_significant_digits(
    measure: str, value: float | None, difference: bool, expected: str
) -> None:
    assert format_measure(measure, value, difference=difference) == expected  # type: ignore[arg-type]
