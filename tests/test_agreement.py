"""Agreement between annotators: worked examples and a simulation with a known truth."""

from __future__ import annotations

import numpy as np
import pytest

from changeover.agreement import agreement, cohen_kappa, krippendorff_alpha
from changeover.records import LabelRecord


def test_cohen_kappa_matches_a_worked_example() -> None:
    # 50 pairs: 20 yes/yes, 5 yes/no, 10 no/yes, 15 no/no: p_o = 0.7, p_e = 0.5, kappa = 0.4
    first = np.array([1] * 25 + [0] * 25)
    second = np.array([1] * 20 + [0] * 5 + [1] * 10 + [0] * 15)
    assert cohen_kappa(first, second) == pytest.approx(0.4)
    assert cohen_kappa(np.ones(5), np.ones(5)) is None  # every label the same


def test_krippendorff_alpha_matches_krippendorff_2011() -> None:
    # Krippendorff (2011), binary data, two observers, ten units: alpha = 0.095
    a = [0, 1, 0, 0, 0, 0, 0, 0, 1, 0]
    b = [1, 1, 1, 0, 0, 1, 0, 0, 0, 0]
    assert krippendorff_alpha(np.array([a, b], dtype=float)) == pytest.approx(0.095, abs=5e-4)


def test_agreement_per_dimension_by_simulation() -> None:
    """Two annotators who each flip a known truth with probability e agree with kappa close to
    (1 - 2e)^2 when the truth is balanced."""
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 2, size=4000)
    labels = []
    for annotator in ("a", "b"):
        noisy = np.where(rng.random(truth.size) < 0.1, 1 - truth, truth)
        labels += [
            LabelRecord(f"q{i}", "m", "refusal", annotator, int(v), time=f"t{annotator}")
            for i, v in enumerate(noisy)
        ]
    labels.append(LabelRecord("q0", "m", "style", "a", 1))  # style: nobody doubled
    (refusal, style) = agreement(labels)
    assert refusal.dimension == "refusal" and refusal.responses == 4000
    assert refusal.cohen_kappa == pytest.approx(0.64, abs=0.04)
    assert refusal.krippendorff_alpha == pytest.approx(0.64, abs=0.04)
    assert style.responses == 0 and style.cohen_kappa is None and style.krippendorff_alpha is None
