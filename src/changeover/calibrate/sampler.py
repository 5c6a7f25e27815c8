"""The sampler: NUTS over all blocks at once, diagnostics on every fit.

Compute first, render elsewhere: this module returns draws and diagnostics, never prints.
"""

from __future__ import annotations

import os
import time
import warnings
from functools import partial
from pathlib import Path

import jax
import jax.flatten_util
import jax.numpy as jnp
import jax.scipy.optimize
import numpy as np
from numpyro.infer import MCMC, NUTS, init_to_median, init_to_value
from numpyro.infer.util import initialize_model

from changeover.calibrate.blocks import Block
from changeover.calibrate.diagnostics import Diagnostics, bulk_ess, rank_rhat
from changeover.calibrate.model import (
    BlockArrays,
    calibration_curve,
    calibration_sampled,
    curve_effect_sizes,
    curve_scales,
    error_model,
)
from changeover.calibrate.posterior import Draws
from changeover.calibrate.settings import Engine, PriorScales
from changeover.errors import CalibrationError

__all__ = ["Draws", "sample_posterior", "use_compilation_cache"]

LEVEL_PRIOR_TOTAL = 1.0  # Perks: Dirichlet(1/K, ..., 1/K)


def _joint_model(engine: Engine, priors: PriorScales, data: BlockArrays) -> None:
    model = calibration_sampled if engine == "calibration" else error_model
    model(data, priors)


def _stack(blocks: list[Block]) -> BlockArrays:
    """Pad every block to the largest segment and level counts and stack them."""
    m = len(blocks[0].models)
    s = max(len(b.segments) for b in blocks)
    k = max(len(b.levels) for b in blocks)
    arrays = np.zeros((3, len(blocks), m, s, k))
    mask = np.zeros((len(blocks), k))
    for i, b in enumerate(blocks):
        _, bs, bk = b.n_all.shape
        arrays[0, i, :, :bs, :bk] = b.n_all
        arrays[1, i, :, :bs, :bk] = b.n_pass
        arrays[2, i, :, :bs, :bk] = b.n_fail
        mask[i, :bk] = 1.0
    n_all, n_pass, n_fail = (jnp.asarray(a) for a in arrays)
    return BlockArrays(n_all, n_pass, n_fail, level_mask=jnp.asarray(mask))


def use_compilation_cache() -> None:
    """Keep compiled samplers on disk, so a fit of a known shape skips XLA compilation.

    NumPyro traces a fresh closure on every run, which JAX's in-memory cache does not reuse;
    the persistent cache keys on the compiled program itself. Set CHANGEOVER_CACHE_DIR to move
    it, or to an empty string to turn it off. A cache directory the caller set is respected.
    """
    if getattr(jax.config, "jax_compilation_cache_dir", None):
        return
    where = os.environ.get(
        "CHANGEOVER_CACHE_DIR",
        str(Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "changeover" / "jax"),
    )
    if not where:
        return
    jax.config.update("jax_compilation_cache_dir", where)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


def _sampler(
    engine: Engine,
    priors: PriorScales,
    num_warmup: int,
    num_samples: int,
    num_chains: int,
    target_accept: float,
) -> MCMC:
    """A new sampler per fit: NumPyro traces its closure afresh on every run anyway, so keeping
    one would save nothing, and a kept one fails its second run once JAX's caches are cleared
    (vectorized chains). The persistent compilation cache is what skips the compilation."""
    kernel = NUTS(
        partial(_joint_model, engine, priors),
        target_accept_prob=target_accept,
        # The calibration engine's single site has no prior to take a median of: its chains
        # start from `_curve_init`.
        init_strategy=init_to_median(num_samples=15) if engine == "error" else init_to_value(),
    )
    return MCMC(
        kernel,
        num_warmup=num_warmup,
        num_samples=num_samples,
        num_chains=num_chains,
        chain_method="parallel" if jax.local_device_count() >= num_chains else "vectorized",
        progress_bar=False,
        jit_model_args=True,
    )


def _mode_init(
    rng_key: jax.Array,
    engine: Engine,
    data: BlockArrays,
    priors: PriorScales,
    num_chains: int,
    restarts: int = 4,
) -> dict[str, jax.Array]:
    """Start every chain near the best of several posterior modes found by optimisation.

    The error model's mixture likelihood has local modes in which randomly started chains stall.
    """
    info = initialize_model(
        rng_key,
        partial(_joint_model, engine, priors),
        model_args=(data,),
        init_strategy=init_to_median(num_samples=15),
    )
    flat0, unravel = jax.flatten_util.ravel_pytree(info.param_info.z)
    potential = info.potential_fn
    starts = flat0 + jax.random.normal(rng_key, (restarts, flat0.size)).at[0].set(0.0)

    @jax.jit
    def optimise(starts: jax.Array) -> tuple[jax.Array, jax.Array]:
        def one(x0: jax.Array) -> tuple[jax.Array, jax.Array]:
            found = jax.scipy.optimize.minimize(
                lambda x: potential(unravel(x)), x0, method="BFGS", options={"maxiter": 300}
            )
            return found.x, found.fun

        return jax.vmap(one)(starts)

    found, values = optimise(starts)
    values = jnp.where(jnp.isfinite(values), values, jnp.inf)
    best = found[jnp.argmin(values)]
    jitter = 0.01 * jax.random.normal(jax.random.fold_in(rng_key, 1), (num_chains, best.size))
    return jax.vmap(unravel)(best[None, :] + jitter)


def _curve_init(
    rng_key: jax.Array, data: BlockArrays, priors: PriorScales, num_chains: int
) -> dict[str, jax.Array]:
    """Start each chain near the prior medians (mu = 0, sd = 0.67 x its scale, effects 0).

    A small jitter per chain keeps the chains' starting points apart, for R-hat to compare.
    """
    b, m, s, k = data.n_all.shape
    sd = 0.6745 * curve_scales(priors)
    centre = np.concatenate([np.zeros(k), sd, np.zeros(sum(curve_effect_sizes(m, s, k)))])
    jitter = 0.1 * jax.random.normal(rng_key, (num_chains, b, centre.size))
    return {"x": jnp.asarray(centre, dtype=jitter.dtype) + jitter}


def _level_shares(rng: np.random.Generator, n_all: np.ndarray, num_draws: int) -> np.ndarray:
    """Exact Dirichlet posterior draws of each cell's level distribution, [D, M, S, K]."""
    k = n_all.shape[-1]
    gamma = rng.gamma(n_all[None] + LEVEL_PRIOR_TOTAL / k, size=(num_draws, *n_all.shape))
    return gamma / gamma.sum(axis=-1, keepdims=True)


def _judge_given_truth(
    pi: np.ndarray, q: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """P(level | pass) and P(level | fail) per model, traffic-weighted over segments."""
    w = weights[None, None, :, None]
    joint_pass = (w * pi * q).sum(axis=2)
    joint_fail = (w * pi * (1 - q)).sum(axis=2)
    return (
        joint_pass / joint_pass.sum(-1, keepdims=True),
        joint_fail / joint_fail.sum(-1, keepdims=True),
    )


def sample_posterior(
    blocks: list[Block],
    weights: dict[str, float],
    *,
    engine: Engine = "calibration",
    num_warmup: int = 500,
    num_samples: int = 1000,
    num_chains: int = 2,
    seed: int = 0,
    target_accept: float = 0.95,
    priors: PriorScales = PriorScales(),
    keep_inference_data: bool = True,
) -> Draws:
    """Draw from the posterior of every block; diagnostics are computed on every fit.

    `target_accept` 0.95 rather than NumPyro's 0.8: with the wide prior on the curve's extreme
    levels, the 5.3M-response benchmark diverged once in about one fit in five at 0.9 (0 of 12
    seeds at 0.95, for about 1 s more).
    """
    if num_chains < 2:
        raise CalibrationError("num_chains must be at least 2, so that R-hat can compare chains")
    start = time.perf_counter()
    use_compilation_cache()
    data = _stack(blocks)
    mcmc = _sampler(engine, priors, num_warmup, num_samples, num_chains, target_accept)
    rng_key = jax.random.PRNGKey(seed)
    init_key, run_key = jax.random.split(rng_key)
    if engine == "error":
        init_params = _mode_init(init_key, engine, data, priors, num_chains)
    else:
        init_params = _curve_init(init_key, data, priors, num_chains)
    with warnings.catch_warnings():
        # numpyro warns when chains fall back to vectorized on one device; that is expected.
        warnings.filterwarnings(
            "ignore", message="There are not enough devices", category=UserWarning
        )
        mcmc.run(run_key, data, init_params=init_params, extra_fields=("diverging", "num_steps"))
    samples = mcmc.get_samples(group_by_chain=True)
    extra = mcmc.get_extra_fields()
    # NumPyro compiles a fresh closure on every run and JAX keeps each executable's code mapped:
    # about 540 memory maps per fit, so a process that fits ~120 times (a benchmark, a labelling
    # loop) hit the kernel's map limit and died in LLVM. The in-memory cache never hit anyway
    # (a new closure each run); the persistent cache makes the next compilation a disk read.
    jax.clear_caches()
    divergences = int(np.asarray(extra["diverging"]).sum())
    steps_per_draw = float(np.asarray(extra["num_steps"]).mean())

    rng = np.random.default_rng(seed)
    theta: dict[tuple[str, str], np.ndarray] = {}
    given_pass: dict[tuple[str, str], np.ndarray] = {}
    given_fail: dict[tuple[str, str], np.ndarray] = {}
    posterior: dict[str, np.ndarray] = {}
    if engine == "calibration":
        x = np.asarray(samples.pop("x"))  # [C, D, B, K + E + P]
        k, e = data.n_all.shape[-1], len(curve_scales(priors))
        signed = x[..., k : k + e]
        sizes = curve_effect_sizes(*data.n_all.shape[1:])
        flip = np.repeat(np.sign(signed), sizes, axis=-1)
        samples = {"mu": x[..., :k], "sd": np.abs(signed), "z": x[..., k + e :] * flip}
        logits = calibration_curve(
            samples["mu"], samples["sd"], samples["z"], *data.n_all.shape[1:3]
        )
        samples["q"] = 1.0 / (1.0 + np.exp(-logits))
    for i, block in enumerate(blocks):
        _, bs, bk = block.n_all.shape
        w = np.array([weights[s] for s in block.segments])
        w = w / w.sum()
        if engine == "calibration":
            q = np.asarray(samples["q"][:, :, i, :, :bs, :bk])  # [C, D, M, S, K]
            pi = _level_shares(rng, block.n_all, num_chains * num_samples).reshape(q.shape)
            th = (pi * q).sum(-1)
            flat = (-1, *q.shape[2:])
            lp, lf = _judge_given_truth(pi.reshape(flat), q.reshape(flat), w)
        else:
            th = np.asarray(samples["theta"][:, :, i, :, :bs])
            phi = np.asarray(samples["phi"][:, :, i, :, :, :bk]).reshape(
                -1, len(block.models), 2, bk
            )
            lp, lf = phi[:, :, 1, :], phi[:, :, 0, :]
        theta[block.key] = th.reshape(-1, *th.shape[2:])
        given_pass[block.key], given_fail[block.key] = lp, lf
        posterior[f"theta[{block.dimension},{block.group_key}]"] = th
    for name, value in samples.items():
        if name not in ("q", "theta", "phi"):
            posterior[name] = np.asarray(value)

    # Convergence is judged on what decisions are made of (every cell's rate) and on the
    # hyper-parameters; the standard-normal effects behind them are nuisance coordinates.
    watched = [v for v in posterior if v.startswith("theta[") or v in ("mu", "sd", "a", "psi")]
    max_rhat = float(max(np.nanmax(rank_rhat(posterior[v])) for v in watched))
    min_ess = float(min(np.nanmin(bulk_ess(posterior[v])) for v in watched))
    diagnostics = Diagnostics(
        max_rhat=max_rhat,
        min_ess_bulk=min_ess,
        divergences=divergences,
        num_chains=num_chains,
        num_samples=num_samples,
        seconds=time.perf_counter() - start,
        steps_per_draw=steps_per_draw,
    )
    return Draws(
        blocks=blocks,
        theta=theta,
        level_given_pass=given_pass,
        level_given_fail=given_fail,
        diagnostics=diagnostics,
        posterior=posterior if keep_inference_data else None,
    )
