from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from changeover import CalibrationError
from changeover.calibrate import fit
from changeover.calibrate.sampler import sample_posterior
from changeover.calibrate.simulate import Scenario, simulate

FAST = {"num_warmup": 300, "num_samples": 300}
# Short chains in tests: convergence is asserted loosely where it is not the subject.
pytestmark = pytest.mark.filterwarnings("ignore:the sampler did not converge:UserWarning")
SCENARIO = Scenario(
    n_models=3,
    n_segments=3,
    n_levels=2,
    responses_per_cell=400,
    n_labels=180,
    weights=(3.0, 2.0, 1.0),
)


def test_quick_coverage_of_rates_and_contrasts() -> None:
    """30 simulated studies fitted as independent blocks of one fit; the benchmark does 200+."""
    rng = np.random.default_rng(11)
    sims = [simulate(SCENARIO, rng) for _ in range(30)]
    blocks = [sim.block(f"rep{i}") for i, sim in enumerate(sims)]
    weights = sims[0].study.weights
    draws = sample_posterior(blocks, weights, seed=3, keep_inference_data=False, **FAST)
    w = np.array(list(weights.values()))
    hits, contrast_hits = [], []
    for sim, block in zip(sims, blocks, strict=True):
        overall = draws.theta[block.key] @ w  # [D, M]
        lo, hi = np.quantile(overall, [0.025, 0.975], axis=0)
        hits.extend((lo <= sim.overall) & (sim.overall <= hi))
        diff = overall[:, 1:] - overall[:, :1]
        lo, hi = np.quantile(diff, [0.025, 0.975], axis=0)
        contrast_hits.extend((lo <= sim.contrasts()) & (sim.contrasts() <= hi))
    assert 0.86 <= np.mean(hits) <= 1.0, f"rates covered {np.mean(hits):.0%} of 90"
    assert 0.85 <= np.mean(contrast_hits) <= 1.0, f"contrasts covered {np.mean(contrast_hits):.0%}"
    # Calibration must beat the raw judge: the naive pass share is biased by the judge's errors.
    sim, block = sims[0], blocks[0]
    naive = (block.n_all[..., 1] / block.n_all.sum(-1)) @ w
    assert (
        np.abs(draws.theta[block.key].mean(0) @ w - sim.overall).mean()
        < np.abs(naive - sim.overall).mean()
    )


def test_fit_decides_and_is_reproducible() -> None:
    sim = simulate(SCENARIO, np.random.default_rng(5))
    first = fit(sim.study, sim.counts, seed=4, **FAST)
    again = fit(sim.study, sim.counts, seed=4, **FAST)
    assert first.to_json() == again.to_json()
    assert set(first.candidates) == {"cand-1", "cand-2"}
    assert first.diagnostics.divergences == 0
    assert first.diagnostics.max_rhat < 1.05


def test_no_labels_at_all_is_refused_unless_allowed() -> None:
    sim = simulate(SCENARIO, np.random.default_rng(6))
    unlabelled = (
        sim.counts.with_columns(pl.lit(None, dtype=pl.Int8).alias("human"))
        .group_by(["dimension", "model", "segment", "group", "level", "human"])
        .agg(pl.col("n").sum())
        .select(sim.counts.columns)
    )
    with pytest.raises(CalibrationError, match="quality: no human labels at all"):
        fit(sim.study, unlabelled, **FAST)
    with pytest.warns(UserWarning, match="uncalibrated"):
        result = fit(sim.study, unlabelled, allow_uncalibrated=True, **FAST)
    rate = result.rates["quality"]["all"]["incumbent"].overall
    assert rate.hi - rate.lo > 0.3  # honest: the prior alone says little


def test_a_model_without_labels_borrows_through_pooling() -> None:
    sim = simulate(SCENARIO, np.random.default_rng(7))
    counts = (
        sim.counts.with_columns(
            pl.when(pl.col("model") == "cand-2")
            .then(None)
            .otherwise(pl.col("human"))
            .alias("human")
        )
        .group_by(["dimension", "model", "segment", "group", "level", "human"])
        .agg(pl.col("n").sum())
    )
    with pytest.warns(UserWarning, match="'cand-2' has no human labels"):
        result = fit(sim.study, counts.select(sim.counts.columns), **FAST)
    rates = result.rates["quality"]["all"]
    width = {m: r.overall.hi - r.overall.lo for m, r in rates.items()}
    assert width["cand-2"] > width["cand-1"]
    assert width["cand-2"] < 0.9


@pytest.mark.parametrize("engine", ["error"])
def test_error_engine_recovers_the_rates(engine: str) -> None:
    scenario = dataclasses.replace(SCENARIO, n_labels=400, accuracy=(0.85, 0.95))
    sim = simulate(scenario, np.random.default_rng(8))
    result = fit(sim.study, sim.counts, engine=engine, seed=1, **FAST)  # type: ignore[arg-type]
    for m, model in enumerate(sim.study.model_names):
        rate = result.rates["quality"]["all"][model].overall
        assert rate.lo - 0.02 <= sim.overall[m] <= rate.hi + 0.02
    assert result.engine == "error"


def test_a_single_level_signal_leaves_the_rates_to_the_labels() -> None:
    """A signal that puts every response at one level (a model that never refuses) carries no
    information; the fit says so and estimates the rates from the human labels."""
    sim = simulate(SCENARIO, np.random.default_rng(9))
    one_level = sim.counts.with_columns(pl.lit("pass").alias("level"))
    with pytest.warns(UserWarning, match="single level .* rest on the human labels alone"):
        result = fit(sim.study, one_level, seed=0, **FAST)
    labelled = one_level.filter(pl.col("human").is_not_null())
    for m, model in enumerate(sim.study.model_names):
        rate = result.rates["quality"]["all"][model].overall
        assert rate.lo <= sim.overall[m] <= rate.hi
        mine = labelled.filter(model=model)
        share = (mine["human"] * mine["n"]).sum() / mine["n"].sum()
        assert abs(rate.mean - share) < 0.1  # the labels' rate, shrunk a little by pooling


def test_rhat_and_ess_agree_with_arviz() -> None:
    import arviz as az

    from changeover.calibrate.diagnostics import bulk_ess, rank_rhat

    rng = np.random.default_rng(0)
    good = rng.normal(size=(2, 500, 3))
    drift = good + np.array([0.0, 0.4])[:, None, None]  # chains that disagree
    sticky = np.cumsum(rng.normal(size=(2, 500, 3)), axis=1) * 0.1 + good  # autocorrelated
    for x in (good, drift, sticky):
        idata = az.from_dict(posterior={"v": x})
        assert np.allclose(rank_rhat(x), az.rhat(idata)["v"].values, rtol=1e-6)
        assert np.allclose(bulk_ess(x), az.ess(idata, method="bulk")["v"].values, rtol=0.1)


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs Linux's /proc/self/maps")
def test_repeated_fits_do_not_accumulate_compiled_code() -> None:
    """Every fit used to keep ~540 more memory maps; ~120 fits in one process crashed."""
    sim = simulate(SCENARIO, np.random.default_rng(0))
    blocks = [sim.block("a")]

    def maps() -> int:
        return len(Path("/proc/self/maps").read_text().splitlines())

    settings = {"num_warmup": 50, "num_samples": 50, "keep_inference_data": False}
    sample_posterior(blocks, sim.study.weights, seed=0, **settings)
    before = maps()
    for seed in (1, 2, 3):
        sample_posterior(blocks, sim.study.weights, seed=seed, **settings)
    assert maps() - before < 300


def test_a_second_fit_with_vectorized_chains() -> None:
    """More chains than devices run vectorized; a kept sampler failed its second run there."""
    sim = simulate(SCENARIO, np.random.default_rng(1))
    settings = {"num_warmup": 50, "num_samples": 50, "num_chains": 3, "keep_inference_data": False}
    for seed in (0, 1):
        draws = sample_posterior([sim.block("a")], sim.study.weights, seed=seed, **settings)
        assert draws.theta[("a", "")].shape[0] == 150
