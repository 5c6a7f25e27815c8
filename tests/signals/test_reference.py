from __future__ import annotations

import csv

import numpy as np
import pytest

from changeover.signals.reference import (
    bin_values,
    normalise_answer,
    quantile_edges,
    quantile_levels,
    reference_scores,
    score_reference,
    score_references,
    split_references,
)
from changeover.signals.settings import ReferenceSignal
from tests.conftest import shared_dataset


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The Beatles!", "beatle"),
        ("Wilhelm Conrad Röntgen", "wilhelm conrad rontgen"),
        ("twenty-one", "21"),
        ("one hundred and twelve", "112"),
        ("3 million", "3 million"),
        ("two thousand five hundred", "2500"),
        ("1,000,000 people", "1000000 people"),
        ("R. H. Thomson", "r h thomson"),
        ("La Tour Eiffel", "tour eiffel"),
        ("  Mixed   spacing ", "mixed spacing"),
        ("glass", "glass"),
    ],
)
def test_normalise_answer(text: str, expected: str) -> None:
    assert normalise_answer(text) == expected


def test_split_references() -> None:
    assert split_references("Paris/ the city of Paris /", "/") == ["Paris", "the city of Paris"]
    assert split_references("AC/DC") == ["AC/DC"]
    assert split_references(["AC/DC", " ", "Acca Dacca"], "/") == ["AC/DC", "Acca Dacca"]
    assert split_references("a | b", "|") == ["a", "b"]
    assert split_references(None) == []


def test_reference_scores_take_the_best_reference() -> None:
    scores = reference_scores(
        "The first prize went to Wilhelm Röntgen in 1901.",
        ["Wilhelm Conrad Röntgen", "Röntgen"],
    )
    assert scores.exact_match == 0.0
    assert scores.containment == 1.0
    assert scores.token_recall == 1.0
    # 8 tokens ("the" dropped), 2 of the 3 of the first reference: F1 = 2PR / (P + R)
    assert scores.token_f1 == pytest.approx(2 * (2 / 8) * (2 / 3) / (2 / 8 + 2 / 3))
    assert scores.best_reference == "Wilhelm Conrad Röntgen"


def test_exact_match_and_f1() -> None:
    scores = reference_scores("the Eiffel Tower.", ["Eiffel tower"])
    assert (scores.exact_match, scores.containment, scores.token_f1) == (1.0, 1.0, 1.0)
    partial = reference_scores("Barack Obama", ["Michelle Obama"])
    assert partial.token_f1 == pytest.approx(0.5)
    assert partial.token_recall == pytest.approx(0.5)
    assert partial.containment == 0.0


def test_cjk_is_compared_character_by_character() -> None:
    assert normalise_answer("東京タワー") == "東 京 タ ワ ー"
    scores = reference_scores("日本の首都は東京です。", ["東京"])
    assert scores.containment == 1.0 and scores.token_recall == 1.0
    assert reference_scores("首都は大阪です", ["東京"]).token_recall == 0.0


def test_containment_is_on_whole_words() -> None:
    assert reference_scores("It is in Parisian style", ["Paris"]).containment == 0.0
    assert reference_scores("six seasons", ["6"]).containment == 1.0


def test_no_reference_scores_zero() -> None:
    scores = reference_scores("anything", [])
    assert scores.token_f1 == 0.0 and scores.best_reference == ""
    assert reference_scores("anything", ["!!!"]).token_f1 == 0.0


def test_bins_and_quantiles() -> None:
    assert bin_values([0.0, 0.3, 0.5, 0.99, 1.0], [0.3, 0.6]) == [
        "0-0.3",
        "0.3-0.6",
        "0.3-0.6",
        "0.6-1",
        "0.6-1",
    ]
    with pytest.raises(ValueError, match="strictly increasing"):
        bin_values([0.1], [0.5, 0.2])
    rng = np.random.default_rng(0)
    edges = quantile_edges(rng.uniform(size=1000), 4)
    assert edges == pytest.approx((0.25, 0.5, 0.75), abs=0.05)
    assert quantile_levels([0.1, 0.3, 0.6, 0.9], edges) == ["q1", "q2", "q3", "q4"]
    # Ties: 60% zeros give coinciding edges; zeros share q1 and q2 stays empty.
    tied = [0.0] * 6 + [0.2, 0.4, 0.6, 0.8]
    tied_edges = quantile_edges(tied, 4)
    assert tied_edges[:2] == (0.0, 0.0)
    assert quantile_levels(tied, tied_edges) == ["q1"] * 6 + ["q3", "q4", "q4", "q4"]
    with pytest.raises(ValueError, match="at least 2"):
        quantile_edges([0.1], 1)
    with pytest.raises(ValueError, match="no finite values"):
        quantile_edges([float("nan")], 2)


def test_score_references_levels() -> None:
    settings = ReferenceSignal(metric="token_recall", bins=(0.5,), separator="/")
    results = score_references(
        ["It was Paris.", "London, I think", "no idea"],
        ["Paris/City of Light", ["London Heathrow"], None],
        settings=settings,
    )
    assert [r.level for r in results] == ["0.5-1", "0.5-1", "no_reference"]
    assert results[0].value == 1.0
    assert "best reference 'Paris'" in results[0].detail
    assert results[2].value is None


def test_binary_metrics_have_named_levels() -> None:
    contained = ReferenceSignal(metric="containment")
    assert score_reference("It was Paris.", "Paris", settings=contained).level == "contained"
    assert score_reference("Lyon", "Paris", settings=contained).level == "not_contained"
    exact = ReferenceSignal(metric="exact_match")
    assert score_reference("paris", "Paris", settings=exact).level == "match"


def test_quantile_levels_come_from_the_scored_responses() -> None:
    settings = ReferenceSignal(metric="token_recall", quantiles=2)
    responses = ["p q r s", "p q", "p", "z"]
    results = score_references(responses, ["p q r s"] * 4, settings=settings)
    assert [r.level for r in results] == ["q2", "q2", "q1", "q1"]
    assert "quantile edges 0.375" in results[0].detail
    assert settings.levels == ("q1", "q2")
    with pytest.raises(ValueError, match="use score_references"):
        score_reference("a", "a", settings=settings)


def test_lengths_must_match() -> None:
    with pytest.raises(ValueError, match="2 responses and 1 references"):
        score_references(["a", "b"], ["a"])


def test_evouna_slice_agrees_with_people() -> None:
    path = shared_dataset("evouna")
    with path.open(newline="", encoding="utf-8") as handle:
        rows = [row for i, row in enumerate(csv.DictReader(handle)) if i % 50 == 0]
    settings = ReferenceSignal(metric="token_recall", bins=(0.5,), separator="/")
    results = score_references(
        [row["response"] for row in rows], [row["golden_answer"] for row in rows], settings=settings
    )
    predicted = [r.level == "0.5-1" for r in results]
    human = [row["human_label"] == "1" for row in rows]
    accuracy = sum(p == h for p, h in zip(predicted, human, strict=True)) / len(rows)
    assert len(rows) > 500
    assert accuracy > 0.87
