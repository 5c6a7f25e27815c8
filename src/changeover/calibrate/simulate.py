"""Studies with a known truth, for tests, benchmarks and the demo.

The data-generating process is the judge-error world of DESIGN.md: each model has a true pass
rate per segment, and a judge whose error rates (sensitivity and specificity for a binary judge,
an ordered-probit separation for a 1..K score) differ by model. `segment_drift` makes the judge
also behave differently per segment, the case where the error-model assumption breaks.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import polars as pl
from scipy.special import expit, logit
from scipy.stats import norm

from changeover.calibrate.blocks import COUNTS_COLUMNS, Block, blocks_from_counts
from changeover.study import Study, parse_study

__all__ = ["Scenario", "Simulated", "simulate"]


@dataclass(frozen=True)
class Scenario:
    """The shape of a simulated study."""

    n_models: int = 3
    n_segments: int = 4
    n_levels: int = 2
    responses_per_cell: int = 500
    n_labels: int = 200
    accuracy: tuple[float, float] = (0.7, 0.95)  # judge sensitivity/specificity range, per model
    base_rate: float = 0.8
    model_spread: float = 0.4  # sd of model effects on the logit scale
    segment_spread: float = 0.5
    cell_spread: float = 0.2
    segment_drift: float = 0.0  # sd of per-segment judge shifts (0: error rates transfer)
    label_cells: int | None = None  # spread labels over only this many random model x segment cells
    weights: tuple[float, ...] | None = None
    models: tuple[str, ...] | None = None  # default: incumbent, cand-1, ...
    segments: tuple[str, ...] | None = None  # default: seg0, seg1, ...
    model_shift: tuple[float, ...] | None = None  # fixed logit offsets per model, else random
    dimension: str = "quality"
    group: str = ""
    name: str = "scenario"


@dataclass
class Simulated:
    """A simulated study: its counts, and the truth they were drawn from."""

    study: Study
    counts: pl.DataFrame
    theta: np.ndarray  # [M, S] true pass rates
    pass_levels: list[str]  # levels a naive reader would count as "pass"
    scores: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))  # level -> [0,1]

    @property
    def overall(self) -> np.ndarray:
        w = np.array(list(self.study.weights.values()))
        return self.theta @ w

    def block(self, name: str) -> Block:
        """This study's counts as one engine block named `name` (to fit many studies at once)."""
        (block,) = blocks_from_counts(self.counts, self.study.model_names, self.study.segment_names)
        return dataclasses.replace(block, dimension=name)

    def contrasts(self) -> np.ndarray:
        """True overall contrasts of each candidate against the incumbent (model 0)."""
        return self.overall[1:] - self.overall[0]


def _judge(rng: np.random.Generator, scenario: Scenario, n_models: int) -> np.ndarray:
    """P(level | truth) per model, shape [M, 2, K]."""
    lo, hi = scenario.accuracy
    k = scenario.n_levels
    phi = np.zeros((n_models, 2, k))
    for m in range(n_models):
        sens, spec = rng.uniform(lo, hi, size=2)
        if k == 2:
            phi[m, 1] = [1 - sens, sens]
            phi[m, 0] = [spec, 1 - spec]
        else:
            # Ordered probit: latent N(+-d/2, 1) cut at equally spaced thresholds.
            d = norm.ppf(sens) + norm.ppf(spec)
            cuts = np.linspace(-d, d, k - 1) * 0.75
            for y, centre in ((1, d / 2), (0, -d / 2)):
                cdf = np.concatenate([[0.0], norm.cdf(cuts - centre), [1.0]])
                phi[m, y] = np.diff(cdf)
    return phi


def simulate(scenario: Scenario, rng: np.random.Generator) -> Simulated:
    """Draw one study from the scenario: true rates, judge levels, and labels at random."""
    models = list(
        scenario.models or ["incumbent"] + [f"cand-{i}" for i in range(1, scenario.n_models)]
    )
    segments = list(scenario.segments or [f"seg{j}" for j in range(scenario.n_segments)])
    m_count, s_count, k = len(models), len(segments), scenario.n_levels
    weights = scenario.weights or tuple(float(x) for x in rng.uniform(1, 3, size=s_count))
    study = parse_study(
        {
            "incumbent": models[0],
            "candidates": models[1:],
            "segments": dict(zip(segments, weights, strict=True)),
            "gates": [
                {
                    "name": "quality",
                    "dimension": "quality",
                    "better": "higher",
                    "margin": 0.02,
                    "scope": "both",
                    "segment_margin": 0.05,
                }
            ],
        },
        source="simulated",
    )
    if scenario.model_shift is not None:
        a = logit(scenario.base_rate) + np.asarray(scenario.model_shift, dtype=float)
    else:
        a = logit(scenario.base_rate) + rng.normal(0, scenario.model_spread, m_count)
    b = rng.normal(0, scenario.segment_spread, s_count)
    c = rng.normal(0, scenario.cell_spread, (m_count, s_count))
    theta = expit(a[:, None] + b[None, :] + c)
    phi = _judge(rng, scenario, m_count)
    levels = [str(i + 1) for i in range(k)] if k > 2 else ["fail", "pass"]

    n = scenario.responses_per_cell
    labels_per_cell = np.zeros((m_count, s_count), dtype=int)
    cells = m_count * s_count
    if scenario.label_cells is None:
        chosen = np.arange(cells)
    else:
        chosen = rng.choice(cells, size=min(scenario.label_cells, cells), replace=False)
    alloc = rng.multinomial(scenario.n_labels, np.ones(len(chosen)) / len(chosen))
    labels_per_cell.flat[chosen] = np.minimum(alloc, n)

    rows = []
    for m in range(m_count):
        for s in range(s_count):
            log_shift = (
                rng.normal(0, scenario.segment_drift, (2, k)) if scenario.segment_drift else 0
            )
            cell_phi = phi[m] * np.exp(log_shift)
            cell_phi = cell_phi / cell_phi.sum(-1, keepdims=True)
            n_pass = rng.binomial(n, theta[m, s])
            by_truth = np.stack(
                [rng.multinomial(n - n_pass, cell_phi[0]), rng.multinomial(n_pass, cell_phi[1])]
            )  # [2, K]
            labelled = rng.multivariate_hypergeometric(by_truth.ravel(), labels_per_cell[m, s])
            labelled = labelled.reshape(2, k)
            unlabelled = by_truth - labelled
            for j, level in enumerate(levels):
                for human, count in (
                    (None, unlabelled[:, j].sum()),
                    (1, labelled[1, j]),
                    (0, labelled[0, j]),
                ):
                    if count:
                        rows.append(
                            (
                                scenario.dimension,
                                models[m],
                                segments[s],
                                scenario.group,
                                level,
                                human,
                                int(count),
                            )
                        )
    schema = {c: pl.String for c in COUNTS_COLUMNS} | {"human": pl.Int8, "n": pl.Int64}
    counts = pl.DataFrame(rows, schema=schema, orient="row")
    pass_levels = ["pass"] if k == 2 else levels[k // 2 + (k % 2) :]
    scores = np.linspace(0, 1, k)
    return Simulated(study, counts, theta, pass_levels, scores)
