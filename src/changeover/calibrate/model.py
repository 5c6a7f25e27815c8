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
    mu[k] ~ Normal(0, 2.5): the calibrated probability of a level. A useful judge's extreme
        levels are near-certain (P(pass | top level) of 0.97-0.99 is common, logit 3.5-4.6), which
        a Normal(0, 1.5) treats as a 2-3 sd event and shrinks towards 0.5, widening every
        interval when labels are few (the 50-label coverage scenario covered 0.990 with it,
        0.972 with 2.5; docs/engine.md); 2.5 is the default scale of Gelman et al. (2008) for
        logistic regression coefficients and keeps 0.99 within 2 sd.
    a[m], psi ~ Normal(0, 1.5): a rate between about 0.05 and 0.95 a priori, flat enough on the
        probability scale not to pull estimates to 0.5.
    scales of u, v, w (model, segment, cell shifts) ~ HalfNormal(1): differences of up to a
        couple of logits between models or regions are plausible, larger ones need data.
    scales of x, z (segment- and cell-specific curve shape) ~ HalfNormal(0.5): a judge usually
        behaves alike across regions; the tighter prior lets the labels decide.
    b, c scales and the model deviation scale of phi ~ HalfNormal(1).
    pi[m, s, :] ~ Dirichlet(1/K, ..., 1/K) (Perks): one pseudo-response per cell in total, so
        the level distribution follows the data even in small cells whatever K is.
All random effects are non-centred (standard normals times their scale), which NUTS samples
without funnels when labels are few. NUTS runs on `calibration_sampled`, the same density with
signed scales (see there).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jax import Array

from changeover.calibrate.settings import PriorScales

__all__ = [
    "BlockArrays",
    "calibration_curve",
    "calibration_model",
    "curve_effect_sizes",
    "curve_scales",
    "calibration_sampled",
    "error_model",
]


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
    mu = numpyro.sample("mu", dist.Normal(0.0, priors.curve_location).expand([b, k]).to_event(2))
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


_CURVE_EFFECTS: dict[str, tuple[str, ...]] = {
    "model_level": ("m", "k"),
    "segment": ("s",),
    "cell": ("m", "s"),
    "segment_level": ("s", "k"),
    "cell_level": ("m", "s", "k"),
}


def _effect_index(n_models: int, n_segments: int, n_levels: int) -> np.ndarray:
    """For every effect and cell (m, s, k), the column of `z` the effect reads: [E, M*S*K].

    `z` holds the effects one after the other, each in C order over its own axes (the layout
    `_effects` slices in `calibration_logits`).
    """
    sizes = {"m": n_models, "s": n_segments, "k": n_levels}
    grid = np.meshgrid(
        np.arange(n_models), np.arange(n_segments), np.arange(n_levels), indexing="ij"
    )
    where = {axis: g.ravel() for axis, g in zip("msk", grid, strict=True)}
    rows, offset = [], 0
    for axes in _CURVE_EFFECTS.values():
        index = np.zeros(n_models * n_segments * n_levels, dtype=np.int64)
        for axis in axes:
            index = index * sizes[axis] + where[axis]
        rows.append(offset + index)
        offset += int(np.prod([sizes[a] for a in axes]))
    return np.stack(rows)


def curve_effect_sizes(n_models: int, n_segments: int, n_levels: int) -> list[int]:
    """How many columns of `z` each effect of the curve takes, in order."""
    m, s, k = n_models, n_segments, n_levels
    return [m * k, s, m * s, s * k, m * s * k]


def curve_scales(priors: PriorScales) -> np.ndarray:
    """Prior scale of each effect's standard deviation, in order."""
    shift, shape = priors.shift, priors.shape
    return np.array([shift, shift, shift, shape, shape], dtype=np.float32)


def calibration_curve(
    mu: np.ndarray, sd: np.ndarray, z: np.ndarray, n_models: int, n_segments: int
) -> np.ndarray:
    """The curve's logits from draws of `mu` [..., B, K], `sd` [..., B, E], `z` [..., B, P].

    The same function as `calibration_logits`, in NumPy, for any leading draw axes; returns
    [..., B, M, S, K].
    """
    n_levels = mu.shape[-1]
    index = _effect_index(n_models, n_segments, n_levels)
    eta = np.broadcast_to(
        mu[..., None, None, :], (*mu.shape[:-1], n_models, n_segments, n_levels)
    ).copy()
    for e, columns in enumerate(index):
        part = z[..., columns] * sd[..., e : e + 1]
        eta += part.reshape(eta.shape)
    return eta


def calibration_sampled(data: BlockArrays, priors: PriorScales = PriorScales()) -> None:
    """What NUTS runs for the calibration engine: `calibration_model`'s density, one flat site.

    The site `x` holds, per block, ``[mu (K) | t (E) | z (P)]`` and each effect is ``t * z`` with
    ``t ~ Normal(0, scale)``: as `z` is symmetric, ``|t| * z`` has exactly the model's prior
    (scale ~ HalfNormal), so the posterior is `calibration_model`'s with ``sd = |t|`` and `z`
    flipped with the sign of `t` (a test checks the densities agree). NumPyro would sample
    ``log sd``, whose long left tail (labels say little against a scale near zero) forced long
    trajectories and divergences; the signed scale has no tail. Written out by hand, the program
    XLA compiles is also a fraction of the size (one gather for the sum of effects, no
    distribution objects), so compilation is faster and each leapfrog step cheaper.
    """
    b, m, s, k = data.n_all.shape
    scales = curve_scales(priors)
    n_effects = len(scales)
    index = _effect_index(m, s, k)
    sizes = curve_effect_sizes(m, s, k)
    column_effect = np.repeat(np.arange(n_effects), sizes)  # the effect each column of z is of
    width = k + n_effects + len(column_effect)
    x = numpyro.sample("x", dist.ImproperUniform(dist.constraints.real, (), event_shape=(b, width)))
    mu, sd, z = x[:, :k], x[:, k : k + n_effects], x[:, k + n_effects :]
    eta = (z * sd[:, column_effect])[:, index].sum(axis=1) + jnp.tile(mu, (1, m * s))
    n_pass = data.n_pass.reshape(b, -1)
    n_fail = data.n_fail.reshape(b, -1)
    loglik = n_pass * jax.nn.log_sigmoid(eta) + n_fail * jax.nn.log_sigmoid(-eta)
    log_prior = (
        -0.5 * jnp.sum(jnp.square(mu / priors.curve_location))
        - 0.5 * jnp.sum(jnp.square(sd / scales))
        - 0.5 * jnp.sum(jnp.square(z))
    )
    numpyro.factor("posterior", loglik.sum() + log_prior)


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
