"""How a fit is run: the engine, its prior scales and the sampler's settings.

Kept apart from the model and the sampler (which import JAX) so that stages and the report can
name and fingerprint a fit without loading them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

__all__ = ["Engine", "FitSettings", "PriorScales"]

Engine = Literal["calibration", "error"]


class PriorScales(NamedTuple):
    """Prior scales, named as in the module docstring."""

    location: float = 1.5  # the error engine's a and psi
    shift: float = 1.0
    shape: float = 0.5
    curve_location: float = 2.5  # the calibration curve's mu


@dataclass(frozen=True)
class FitSettings:
    """How the posterior is sampled: `changeover run`, `report`, `next` and `fit` share these
    defaults, so that they decide from the same fit. `allow_uncalibrated` fits a dimension
    without any human label (its estimates rest on the prior) instead of refusing."""

    seed: int = 0
    num_samples: int = 1000
    num_warmup: int = 500
    num_chains: int = 2
    interval: float = 0.95
    engine: Engine = "calibration"
    allow_uncalibrated: bool = False
