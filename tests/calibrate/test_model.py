"""Simulation-based calibration of the calibration-curve model (Talts et al. 2018).

Draw parameters from the prior, data from the model, fit, and rank the true rate among the
posterior draws: if the fit is right the ranks are uniform. The replications run as independent
blocks of one fit, which the model treats as separate posteriors.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from numpyro.infer import Predictive
from scipy import stats

from changeover.calibrate.blocks import Block
from changeover.calibrate.model import BlockArrays, calibration_model
from changeover.calibrate.sampler import LEVEL_PRIOR_TOTAL, sample_posterior

REPLICATIONS = 40
M, S, K = 2, 2, 3
RESPONSES, LABELS = 150, 12  # per cell


def _prior_draws(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    zeros = jnp.zeros((1, M, S, K))
    data = BlockArrays(zeros, zeros, zeros, jnp.ones((1, K)))
    q = Predictive(calibration_model, num_samples=REPLICATIONS)(jax.random.PRNGKey(7), data)["q"]
    pi = rng.dirichlet(np.full(K, LEVEL_PRIOR_TOTAL / K), size=(REPLICATIONS, M, S))
    return np.asarray(q)[:, 0], pi  # [R, M, S, K] each


def _simulate_block(i: int, q: np.ndarray, pi: np.ndarray, rng: np.random.Generator) -> Block:
    n_all = np.zeros((M, S, K))
    n_pass = np.zeros((M, S, K))
    n_fail = np.zeros((M, S, K))
    for m in range(M):
        for s in range(S):
            levels = rng.multinomial(RESPONSES, pi[m, s])
            labelled = rng.multivariate_hypergeometric(levels, LABELS)
            passed = rng.binomial(labelled, q[m, s])
            n_all[m, s], n_pass[m, s], n_fail[m, s] = levels, passed, labelled - passed
    return Block(f"rep{i}", "", ("a", "b"), ("s0", "s1"), ("1", "2", "3"), n_all, n_pass, n_fail)


def test_simulation_based_calibration_ranks_are_uniform() -> None:
    rng = np.random.default_rng(2026)
    q, pi = _prior_draws(rng)
    blocks = [_simulate_block(i, q[i], pi[i], rng) for i in range(REPLICATIONS)]
    draws = sample_posterior(
        blocks,
        {"s0": 1.0, "s1": 1.0},
        num_warmup=400,
        num_samples=400,
        seed=1,
        keep_inference_data=False,
    )
    assert draws.diagnostics.max_rhat < 1.05
    true_theta = (pi * q).sum(-1)  # [R, M, S]
    ranks = []
    for i, block in enumerate(blocks):
        theta = draws.theta[block.key][::8]  # thin to 100 roughly independent draws
        ranks.extend((theta < true_theta[i][None]).mean(axis=0).ravel())
    ranks = np.asarray(ranks)  # rank fractions in [0, 1], 160 of them
    counts, _ = np.histogram(ranks, bins=5, range=(0, 1))
    p_value = stats.chisquare(counts).pvalue
    assert p_value > 0.001, f"SBC ranks not uniform: bins {counts.tolist()}, p = {p_value:.2g}"
    assert abs(ranks.mean() - 0.5) < 0.08
    # The central 90% posterior interval should hold the truth about 90% of the time.
    inside = ((ranks > 0.05) & (ranks < 0.95)).mean()
    assert 0.8 <= inside <= 0.98, f"90% intervals hold the truth {inside:.0%} of the time"


def test_the_sampled_coordinates_have_the_model_density() -> None:
    """NUTS runs `calibration_sampled` (signed scales, one flat site); its density must be
    `calibration_model`'s, once the scales are taken positive (log scale + Jacobian there)."""
    from numpyro.infer import init_to_value
    from numpyro.infer.util import initialize_model

    from changeover.calibrate.model import calibration_sampled

    rng = np.random.default_rng(0)
    b, m, s, k = 2, 3, 4, 5
    n_pass = jnp.asarray(rng.integers(0, 6, (b, m, s, k)).astype(float))
    n_fail = jnp.asarray(rng.integers(0, 6, (b, m, s, k)).astype(float))
    data = BlockArrays(n_pass + n_fail + 7, n_pass, n_fail, jnp.ones((b, k)))
    key = jax.random.PRNGKey(0)
    model = initialize_model(key, calibration_model, model_args=(data,))
    p = model.param_info.z["z"].shape[-1]
    sampled = initialize_model(
        key,
        calibration_sampled,
        model_args=(data,),
        init_strategy=init_to_value(values={"x": jnp.zeros((b, k + 5 + p))}),
    )
    gaps = []
    for _ in range(4):
        mu = rng.normal(size=(b, k))
        sd = np.exp(rng.normal(-1.0, 0.7, size=(b, 5)))
        z = rng.normal(size=(b, p))
        sign = rng.choice([-1.0, 1.0], size=(b, 5))  # a signed scale with flipped effects
        flat = np.concatenate(
            [mu, sign * sd, z * np.repeat(sign, [m * k, s, m * s, s * k, m * s * k], axis=1)], 1
        )
        u_model = model.potential_fn({"mu": mu, "sd": np.log(sd), "z": z})
        u_sampled = sampled.potential_fn({"x": jnp.asarray(flat)})
        gaps.append(float(u_sampled - (u_model + np.log(sd).sum())))
    assert np.ptp(gaps) < 1e-3 * max(1.0, abs(gaps[0]))
