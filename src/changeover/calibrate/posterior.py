"""Posterior draws: what the sampler returns and decisions, plans and reports read.

Plain NumPy arrays, so that reading a posterior never loads the sampler.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from changeover.calibrate.blocks import Block
from changeover.calibrate.diagnostics import Diagnostics

__all__ = ["Draws"]


@dataclass
class Draws:
    """Posterior draws per block, flattened over chains: theta [D, M, S], judge [D, M, K].

    `posterior` holds every variable by chain and draw; `inference_data` wraps it as an ArviZ
    InferenceData (built on first use: importing ArviZ takes seconds, and a fit does not need
    it unless the posterior is saved).
    """

    blocks: list[Block]
    theta: dict[tuple[str, str], np.ndarray]
    level_given_pass: dict[tuple[str, str], np.ndarray]
    level_given_fail: dict[tuple[str, str], np.ndarray]
    diagnostics: Diagnostics
    posterior: dict[str, np.ndarray] | None = field(repr=False, default=None)
    _idata: Any = field(repr=False, default=None, init=False)

    @property
    def inference_data(self) -> Any:
        if self.posterior is None:
            return None
        if self._idata is None:
            import arviz as az

            self._idata = az.from_dict(posterior=self.posterior)
        return self._idata
