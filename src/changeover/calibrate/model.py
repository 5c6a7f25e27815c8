"""The calibration models: how a cheap automated signal relates to the human verdict.

For one dimension (and group), a response of model m in segment s has a human verdict
y in {0, 1} (seen only for labelled responses) and a signal level k in {0..K-1} (always seen).
All data reduce to three count arrays of shape [M, S, K]: responses per level (`n_all`), and
labelled responses per level judged pass (`n_pass`) or fail (`n_fail`) by humans.

Two factorisations of the same joint distribution P(y, k | m, s) are offered.

``calibration`` (the default)
    P(k | m, s) = pi[m, s, k] and P(y = 1 | k, m, s) = q[m, s, k] (the calibration curve), so
    ``theta[m, s] = sum_k pi[m, s, k] * q[m, s, k]``. Unlabelled responses inform only `pi`,
    labels only `q`, and with independent priors the two parts are independent given the data:
    `pi` has a conjugate Dirichlet posterior sampled exactly, and NUTS runs only on `q`, whose
    size and difficulty depend on the labels, never on the number of unlabelled responses.
    This is what keeps a fit of 5 million responses as fast as one of 500. The assumption: the
    calibration curve is partially pooled, i.e. it transfers across models and segments as far
    as the labels say it does, with

        logit q[m, s, k] = mu[k] + u[m, k] + v[s] + w[m, s] + x[s, k] + z[m, s, k].

    `v[s] + w[m, s]` shift the whole curve of a cell; this is exactly how the curve moves when
    only the base rate changes and the judge's error rates stay put (Bayes' rule adds
    logit theta to the log likelihood ratio of the level), so data from the error-model world
    are fitted by main effects alone, while `x` and `z` (tighter priors) let the judge behave
    differently in a segment if the labels show it.

``error``
    The generative judge-error model of DESIGN.md: ``logit theta[m, s] = a[m] + b[s] + c[m, s]``
    and ``phi[m, y, :] = softmax(psi[y, :] + e[m, y, :])``, with `y` summed out. It assumes the
    judge's error rates do not depend on the segment; with many unlabelled responses that
    assumption alone identifies the error rates (mixture identifiability), so at scale the
    answer rests on it rather than on the labels, and the posterior becomes a thin ridge that
    NUTS crosses slowly. Kept for comparison in the benchmarks.

Priors (weakly informative, on the logit scale unless stated):
    mu[k], a[m], psi ~ Normal(0, 1.5): a rate or calibrated probability between about 0.05 and
        0.95 a priori, flat enough on the probability scale not to pull estimates to 0.5.
    scales of u, v, w (model, segment, cell shifts) ~ HalfNormal(1): differences of up to a
        couple of logits between models or regions are plausible, larger ones need data.
    scales of x, z (segment- and cell-specific curve shape) ~ HalfNormal(0.5): a judge usually
        behaves alike across regions; the tighter prior lets the labels decide.
    b, c scales and the model deviation scale of phi ~ HalfNormal(1).
    pi[m, s, :] ~ Dirichlet(1/K, ..., 1/K) (Perks): one pseudo-response per cell in total, so
        the level distribution follows the data even in small cells whatever K is.
All random effects are non-centred (standard normals times their scale), which NUTS samples
without funnels when labels are few.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jax import Array

__all__ = [
    "Engine",
    "PriorScales",
    "BlockArrays",
    "calibration_model",
    "error_model",
]

Engine = Literal["calibration", "error"]


class PriorScales(NamedTuple):
    """Prior scales, named as in the module docstring."""

    location: float = 1.5
    shift: float = 1.0
    shape: float = 0.5


class BlockArrays(NamedTuple):
    """Counts of B blocks (dimension and group), each of shape [B, M, S, K].

    Blocks are padded to a common number of segments and levels with zero counts; a padded cell
    adds nothing to the likelihood, so batching blocks changes no posterior while one compiled
    program serves any number of dimensions.
    """

    n_all: Array
    n_pass: Array
    n_fail: Array
    level_mask: Array  # [B, K]: 1 for a block's real levels, 0 for padding


def _effects(
    shapes: dict[str, tuple[int, ...]], scales: dict[str, float], n_blocks: int
) -> dict[str, Array]:
    """Non-centred random effects, each with its own scale per block.

    All standard normals share one sample site and all scales another: a handful of large sites
    compile far faster under NUTS than one site per effect.
    """
    names = list(shapes)
    sizes = [int(np.prod(shapes[n])) for n in names]
    scale = jnp.array([scales[n] for n in names])
    sd = numpyro.sample(
        "sd", dist.HalfNormal(jnp.broadcast_to(scale, (n_blocks, len(names)))).to_event(2)
    )
    z = numpyro.sample("z", dist.Normal(0.0, 1.0).expand([n_blocks, sum(sizes)]).to_event(2))
    out = {}
    offset = 0
    for i, (name, size) in enumerate(zip(names, sizes, strict=True)):
        part = z[:, offset : offset + size].reshape((n_blocks, *shapes[name]))
        out[name] = sd[:, i].reshape((n_blocks,) + (1,) * len(shapes[name])) * part
        offset += size
    return out


def calibration_logits(
    n_blocks: int, n_models: int, n_segments: int, n_levels: int, priors: PriorScales
) -> Array:
    """Sample the calibration curve's logits, shape [B, M, S, K]."""
    b, m, s, k = n_blocks, n_models, n_segments, n_levels
    mu = numpyro.sample("mu", dist.Normal(0.0, priors.location).expand([b, k]).to_event(2))
    e = _effects(
        {
            "model_level": (m, k),
            "segment": (s,),
            "cell": (m, s),
            "segment_level": (s, k),
            "cell_level": (m, s, k),
        },
        {
            "model_level": priors.shift,
            "segment": priors.shift,
            "cell": priors.shift,
            "segment_level": priors.shape,
            "cell_level": priors.shape,
        },
        b,
    )
    return (
        mu[:, None, None, :]
        + e["model_level"][:, :, None, :]
        + e["segment"][:, None, :, None]
        + e["cell"][:, :, :, None]
        + e["segment_level"][:, None, :, :]
        + e["cell_level"]
    )


def calibration_model(data: BlockArrays, priors: PriorScales = PriorScales()) -> None:
    """The labelled part of the calibration factorisation: labels given level, per cell.

    `pi` is not sampled here: its Dirichlet posterior is exact and drawn outside NUTS.
    """
    b, m, s, k = data.n_all.shape
    eta = calibration_logits(b, m, s, k, priors)
    numpyro.deterministic("q", jax.nn.sigmoid(eta))
    loglik = data.n_pass * jax.nn.log_sigmoid(eta) + data.n_fail * jax.nn.log_sigmoid(-eta)
    numpyro.factor("labels", loglik.sum())


def error_model(data: BlockArrays, priors: PriorScales = PriorScales()) -> None:
    """The generative judge-error model with the discrete verdict summed out."""
    b, m, s, k = data.n_all.shape
    a = numpyro.sample("a", dist.Normal(0.0, priors.location).expand([b, m]).to_event(2))
    psi = numpyro.sample("psi", dist.Normal(0.0, priors.location).expand([b, 2, k]).to_event(3))
    effects = _effects(
        {"segment": (s,), "cell": (m, s), "model_signal": (m, 2, k)},
        {"segment": priors.shift, "cell": priors.shift, "model_signal": priors.shift},
        b,
    )
    logit_theta = a[:, :, None] + effects["segment"][:, None, :] + effects["cell"]
    numpyro.deterministic("theta", jax.nn.sigmoid(logit_theta))
    e = effects["model_signal"]
    padding = (1.0 - data.level_mask)[:, None, None, :] * -30.0  # no mass on padded levels
    log_phi = jax.nn.log_softmax(psi[:, None, :, :] + e + padding, axis=-1)  # [B, M, 2(y), K]
    numpyro.deterministic("phi", jnp.exp(log_phi))
    log_pass = jax.nn.log_sigmoid(logit_theta)[..., None] + log_phi[:, :, None, 1, :]
    log_fail = jax.nn.log_sigmoid(-logit_theta)[..., None] + log_phi[:, :, None, 0, :]
    n_unlabelled = data.n_all - data.n_pass - data.n_fail
    loglik = (
        n_unlabelled * jnp.logaddexp(log_pass, log_fail)
        + data.n_pass * log_pass
        + data.n_fail * log_fail
    )
    numpyro.factor("responses", loglik.sum())
