"""The report document's own computations: the raw signal rate and the judge flags."""

from __future__ import annotations

import numpy as np
import pytest

from changeover.calibrate.blocks import Block
from changeover.calibrate.decide import ErrorModel, Interval
from changeover.report.document import judge_flags, naive_reading, raw_rates
from changeover.study import parse_study


@pytest.mark.parametrize(
    ("dimension", "levels", "expected"),
    [
        ("correctness", ["correct", "incorrect", "unparseable"], [True, False, False]),
        ("correctness", ["contained", "not_contained", "no_reference"], [True, False, False]),
        ("correctness", ["1", "2", "3", "4", "5"], [False, False, False, True, True]),
        ("correctness", ["0-0.5", "0.5-1"], [False, True]),
        ("correctness", ["q1", "q2", "q3", "q4"], [False, False, True, True]),
        ("refusal", ["complied", "partial", "refused"], [False, True, True]),
        ("style", ["0", "1", "2", "3+"], [True, False, False, False]),
        ("style", ["fail", "pass"], [False, True]),
    ],
)
def test_naive_reading_of_known_levels(
    dimension: str, levels: list[str], expected: list[bool]
) -> None:
    assert naive_reading(dimension, levels) == expected


def test_unknown_or_one_sided_levels_have_no_raw_rate() -> None:
    assert naive_reading("correctness", ["correct", "a|b"]) is None
    assert naive_reading("correctness", ["correct"]) is None


def test_raw_rate_is_traffic_weighted_share_of_passing_levels() -> None:
    study = parse_study({"incumbent": "a", "candidates": ["b"], "segments": {"x": 3, "y": 1}})
    n_all = np.zeros((2, 2, 2))
    n_all[0, 0] = [8, 2]  # levels (correct, incorrect): a in x 80%
    n_all[0, 1] = [1, 3]  # a in y 25%
    n_all[1] = [[5, 5], [0, 0]]  # b has no response in y
    block = Block("correctness", "", ("a", "b"), ("x", "y"), ("correct", "incorrect"),
                  n_all, np.zeros_like(n_all), np.zeros_like(n_all))  # fmt: skip
    rates = raw_rates([block], study)["correctness"]["all"]
    assert rates["a"].overall == pytest.approx(0.75 * 0.8 + 0.25 * 0.25)
    assert rates["a"].segments == {"x": pytest.approx(0.8), "y": pytest.approx(0.25)}
    assert rates["b"].overall is None and rates["b"].segments["y"] is None


def _cell(mean: float, half: float = 0.03) -> Interval:
    return Interval(mean=mean, lo=mean - half, hi=mean + half)


def test_judge_flags_the_model_the_signal_treats_differently() -> None:
    def model(p_pass: float) -> ErrorModel:
        return ErrorModel(
            level_given_pass={"correct": _cell(p_pass), "incorrect": _cell(1 - p_pass)},
            level_given_fail={"correct": _cell(0.1), "incorrect": _cell(0.9)},
        )

    class Fitted:
        judge = {"correctness": {"all": {"a": model(0.9), "b": model(0.91), "c": model(0.7)}}}

    flags = judge_flags(Fitted())  # type: ignore[arg-type]
    assert {(f.model, f.given) for f in flags} == {("c", "pass")}
    assert {f.level for f in flags} == {"correct", "incorrect"}
