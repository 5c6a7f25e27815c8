"""Convergence diagnostics: rank-normalised split R-hat and bulk ESS (Vehtari et al. 2021).

Pure functions of draws shaped [chains, draws, ...], checked against ArviZ in the tests; the
sampler computes them on every fit and a fit that fails them says so.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field, computed_field
from pydantic.dataclasses import dataclass
from scipy.special import ndtri

__all__ = ["Diagnostics", "bulk_ess", "rank_rhat"]


@dataclass(frozen=True)
class Diagnostics:
    """Convergence of the sampler; a fit with max R-hat > 1.01 or divergences is not trusted.

    A typed record (as written to JSON: `converged` included; the timings, which differ from
    run to run, left out)."""

    max_rhat: float
    min_ess_bulk: float
    divergences: int
    num_chains: int
    num_samples: int
    seconds: float = Field(default=0.0, exclude=True)
    # mean NUTS leapfrog steps per draw (the cost of one draw)
    steps_per_draw: float = Field(default=0.0, exclude=True)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def converged(self) -> bool:
        return self.max_rhat <= 1.01 and self.divergences == 0

    def problems(self) -> list[str]:
        out = []
        if not self.max_rhat <= 1.01:
            out.append(f"max R-hat {self.max_rhat:.3f} > 1.01: chains disagree")
        if self.divergences:
            out.append(f"{self.divergences} divergent transitions")
        if self.min_ess_bulk < 100 * self.num_chains:
            out.append(f"min bulk ESS {self.min_ess_bulk:.0f} is low")
        return out


def _z_scale(x: np.ndarray) -> np.ndarray:
    """Rank-normalise over chains and draws (axes 0 and 1), per variable (Vehtari et al. 2021)."""
    c, n = x.shape[:2]
    flat = x.reshape(c * n, -1)
    ranks = np.empty_like(flat)
    order = np.argsort(flat, axis=0, kind="stable")
    np.put_along_axis(ranks, order, np.arange(1, c * n + 1, dtype=float)[:, None], axis=0)
    z = ndtri((ranks - 0.375) / (c * n + 0.25))
    return np.asarray(z).reshape(x.shape)


def _split(x: np.ndarray) -> np.ndarray:
    """Each chain's first and second halves as two chains: [C, N, ...] -> [2C, N // 2, ...]."""
    half = x.shape[1] // 2
    return np.concatenate([x[:, :half], x[:, x.shape[1] - half :]], axis=0)


def rank_rhat(x: np.ndarray) -> np.ndarray:
    """Rank-normalised split R-hat, the larger of bulk and tail (as ArviZ's `rhat`): [C, N, ...]."""
    from numpyro.diagnostics import gelman_rubin  # NumPy code, but importing numpyro loads JAX

    split = _split(np.asarray(x, dtype=float))
    folded = np.abs(split - np.median(split, axis=(0, 1)))
    bulk = gelman_rubin(_z_scale(split))
    tail = gelman_rubin(_z_scale(folded))
    return np.maximum(bulk, tail)


def bulk_ess(x: np.ndarray) -> np.ndarray:
    """Bulk effective sample size (rank-normalised split chains, as ArviZ's `ess`): [C, N, ...]."""
    from numpyro.diagnostics import effective_sample_size

    return np.asarray(effective_sample_size(_z_scale(_split(np.asarray(x, dtype=float)))))
