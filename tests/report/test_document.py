"""The report document's own computations: the raw signal rate and the judge flags."""

from __future__ import annotations

import numpy as np
import pytest

from changeover.calibrate.blocks import Block
from changeover.calibrate.decide import ErrorModel, Interval
from changeover.report.document import judge_flags, raw_rates, signal_readings
from changeover.study import parse_study

STUDY = {"incumbent": "a", "candidates": ["b"], "segments": {"x": 3, "y": 1}}


def _block(levels: tuple[str, ...], n_all: np.ndarray, dimension: str = "correctness") -> Block:
    zeros = np.zeros_like(n_all)
    return Block(dimension, "", ("a", "b"), ("x", "y"), levels, n_all, zeros, zeros)


def test_raw_rate_is_traffic_weighted_share_of_passing_levels() -> None:
    study = parse_study(
        {**STUDY, "signals": {"judge": {"kind": "reference", "metric": "exact_match"}}}
    )
    n_all = np.zeros((2, 2, 3))
    n_all[0, 0] = [8, 2, 0]  # levels (match, no_match, no_reference): a in x 80%
    n_all[0, 1] = [1, 2, 1]  # a in y 25%: no_reference reads as 0
    n_all[1] = [[5, 5, 0], [0, 0, 0]]  # b has no response in y
    block = _block(("match", "no_match", "no_reference"), n_all)
    rates = raw_rates([block], study)["correctness"]["all"]["judge"]
    assert rates["a"].overall == pytest.approx(0.75 * 0.8 + 0.25 * 0.25)
    assert rates["a"].segments == {"x": pytest.approx(0.8), "y": pytest.approx(0.25)}
    assert rates["b"].overall is None and rates["b"].segments["y"] is None


def test_each_signal_of_a_combined_dimension_has_its_own_raw_rate() -> None:
    """Two signals on one dimension feed the fit as their cross product ("a|b"); the report
    reads each part with its own signal's pass levels (issue 14, item 9)."""
    study = parse_study({
        **STUDY,
        "signals": {
            "overlap": {"kind": "reference", "metric": "containment"},
            "grader": {"kind": "reference", "metric": "token_f1", "bins": [0.5]},
        },
    })  # fmt: skip
    levels = ("contained|0-0.5", "contained|0.5-1", "not_contained|0-0.5", "not_contained|0.5-1")
    n_all = np.zeros((2, 2, 4))
    n_all[:, :] = [1, 2, 3, 4]  # contained: 3 of 10; f1 >= 0.5: 6 of 10
    rates = raw_rates([_block(levels, n_all)], study)["correctness"]["all"]
    assert list(rates) == ["overlap", "grader"]
    assert rates["overlap"]["a"].overall == pytest.approx(0.3)
    assert rates["grader"]["b"].overall == pytest.approx(0.6)


def test_no_raw_rate_without_the_signals_that_made_the_levels() -> None:
    """A counts file fitted on a study without signals (`fit --counts`) has no raw rate, and
    neither have levels that do not come from the study's signals."""
    n_all = np.ones((2, 2, 2))
    assert raw_rates([_block(("pass", "fail"), n_all)], parse_study(STUDY)) == {
        "correctness": {"all": {}}
    }
    two = parse_study({
        **STUDY,
        "signals": {"r1": {"kind": "refusal"}, "r2": {"kind": "refusal", "scale": "binary"}},
    })  # fmt: skip
    block = _block(("refused", "complied"), n_all, dimension="refusal")
    assert signal_readings(block, two) == {}


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


def test_examples_show_the_worst_and_the_disagreements_where_a_gate_fails() -> None:
    """Issue 14, item 12: for the region a candidate fails, the worst responses (labelled as
    failing, then read so by the signal) and those where the signal and the people disagree."""
    import polars as pl

    from changeover.calibrate.decide import decide
    from changeover.calibrate.diagnostics import Diagnostics
    from changeover.calibrate.posterior import Draws
    from changeover.report.document import gate_examples

    study = parse_study({
        **STUDY,
        "signals": {"overlap": {"kind": "reference", "metric": "exact_match"}},
        "gates": [{"name": "g", "dimension": "correctness", "better": "higher", "margin": 0.02,
                   "scope": "segments"}],
    })  # fmt: skip
    rng = np.random.default_rng(0)
    theta = np.array([[0.8, 0.8], [0.85, 0.5]])[None] + rng.normal(0, 0.01, (1000, 2, 2))
    n = np.ones((2, 2, 2))
    block = _block(("match", "no_match"), n)
    given = np.full((1000, 2, 2), 0.5)
    draws = Draws([block], {block.key: theta}, {block.key: given}, {block.key: given},
                  Diagnostics(1.0, 1000.0, 0, 2, 500))  # fmt: skip
    result = decide(study, draws)
    assert result.gates["g"].contrasts["b"].segments["y"].state == "failed"
    rows = pl.DataFrame(
        [
            # item, model, segment, level, human
            ("y1", "b", "y", "match", 1),  # agrees: never shown
            ("y2", "b", "y", "no_match", None),  # unlabelled, the signal says it fails
            ("y3", "b", "y", "match", 0),  # labelled as failing, and the signal disagrees
            ("y4", "b", "y", "no_match", 1),  # the signal and the person disagree
            ("y5", "a", "y", "no_match", 0),  # the incumbent's: not the candidate's example
            ("x1", "b", "x", "no_match", 0),  # a region the candidate does not fail
        ],
        schema=["item_id", "model", "segment", "level", "human"],
        orient="row",
    ).with_columns(group=pl.lit(""), dimension=pl.lit("correctness"))
    asked: list[tuple[str, str]] = []

    def texts(keys):  # type: ignore[no-untyped-def]
        asked.extend(keys)
        return {k: (f"prompt {k[0]}", f"<response {k[0]}>") for k in keys}

    [region] = gate_examples(study, result, rows, texts)
    assert (region.candidate, region.segment, region.state) == ("b", "y", "failed")
    shown = [(e.item_id, e.why, e.human) for e in region.examples]
    assert shown == [("y3", "worst", 0), ("y2", "worst", None), ("y4", "disagrees", 1)]
    assert region.examples[0].response == "<response y3>"
    assert sorted(asked) == [("y2", "b"), ("y3", "b"), ("y4", "b")]
