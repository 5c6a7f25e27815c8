"""Agreement between annotators, per dimension: pure functions of the labels.

* Cohen's kappa (Cohen 1960) between the first and the second label of each response that two or
  more people labelled (in the order they labelled it): chance-corrected agreement of two
  readings of the same response.
* Krippendorff's alpha (Krippendorff 2011, "Computing Krippendorff's alpha-reliability"),
  nominal, over every label, any number of annotators per response, missing ones allowed;
  computed by the maintained `krippendorff` package.

Both are 1 for perfect agreement and 0 for agreement at chance level; they are undefined (None)
when fewer than two responses are doubly labelled or when every label has the same value.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import krippendorff
import numpy as np

from changeover.records import LabelRecord

__all__ = ["DimensionAgreement", "agreement", "cohen_kappa", "krippendorff_alpha"]


@dataclass(frozen=True)
class DimensionAgreement:
    dimension: str
    responses: int  # responses with at least two labels
    pairs_agreeing: float | None  # share of first/second label pairs that agree
    cohen_kappa: float | None
    krippendorff_alpha: float | None


def cohen_kappa(first: np.ndarray, second: np.ndarray) -> float | None:
    """Cohen's kappa of two binary label vectors; None when undefined."""
    first = np.asarray(first, dtype=float)
    second = np.asarray(second, dtype=float)
    if first.shape != second.shape or first.size < 2:
        return None
    observed = float(np.mean(first == second))
    p1, p2 = first.mean(), second.mean()
    expected = float(p1 * p2 + (1 - p1) * (1 - p2))
    if expected >= 1.0:
        return None
    return (observed - expected) / (1.0 - expected)


def krippendorff_alpha(reliability: np.ndarray) -> float | None:
    """Nominal alpha of an (annotators x responses) matrix with NaN for missing labels; None
    when fewer than two responses are pairable or only one value occurs."""
    reliability = np.asarray(reliability, dtype=float)
    pairable = np.sum(~np.isnan(reliability), axis=0) >= 2
    values = reliability[:, pairable]
    if pairable.sum() < 2 or np.unique(values[~np.isnan(values)]).size < 2:
        return None
    return float(krippendorff.alpha(reliability_data=values, level_of_measurement="nominal"))


def agreement(labels: Sequence[LabelRecord]) -> list[DimensionAgreement]:
    """Agreement per dimension over the responses that two or more annotators labelled."""
    by_unit: dict[str, dict[tuple[str, str], list[LabelRecord]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for record in labels:
        by_unit[record.dimension][(record.item_id, record.model)].append(record)
    results = []
    for dimension in sorted(by_unit):
        units = [
            sorted(records, key=lambda r: (r.time or "", r.annotator))
            for records in by_unit[dimension].values()
            if len(records) >= 2
        ]
        annotators = sorted({r.annotator for records in units for r in records})
        column = {name: i for i, name in enumerate(annotators)}
        matrix = np.full((len(annotators), len(units)), np.nan)
        for j, records in enumerate(units):
            for record in records:
                matrix[column[record.annotator], j] = record.label
        first = np.array([records[0].label for records in units], dtype=float)
        second = np.array([records[1].label for records in units], dtype=float)
        results.append(
            DimensionAgreement(
                dimension=dimension,
                responses=len(units),
                pairs_agreeing=float(np.mean(first == second)) if units else None,
                cohen_kappa=cohen_kappa(first, second),
                krippendorff_alpha=krippendorff_alpha(matrix) if units else None,
            )
        )
    return results
