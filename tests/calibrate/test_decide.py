"""Gates and verdicts on hand-made posterior draws, where the right answer is known exactly."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from changeover import StudyError, parse_study
from changeover.calibrate.blocks import Block
from changeover.calibrate.decide import Result, decide
from changeover.calibrate.diagnostics import Diagnostics
from changeover.calibrate.operations import MEASUREMENT_COLUMNS, OperationalDraws, operational_draws
from changeover.calibrate.posterior import Draws
from changeover.study import Study

D = 4000


def _study(**gate: object) -> object:
    base = {"name": "g", "dimension": "quality", "better": "higher", "margin": 0.02}
    return parse_study(
        {
            "incumbent": "inc",
            "candidates": ["good", "bad", "close"],
            "segments": {"x": 3, "y": 1},
            "gates": [base | gate],
        }
    )


def _draws(theta_means: np.ndarray, sd: float = 0.005, seed: int = 0) -> Draws:
    rng = np.random.default_rng(seed)
    theta = theta_means[None] + rng.normal(0, sd, (D, *theta_means.shape))
    block = Block(
        "quality",
        "",
        ("inc", "good", "bad", "close"),
        ("x", "y"),
        ("0", "1"),
        np.ones((4, 2, 2)),
        np.ones((4, 2, 2)),
        np.zeros((4, 2, 2)),
    )
    given = np.full((D, 4, 2), 0.5)
    diag = Diagnostics(1.0, 1000.0, 0, 2, D // 2)
    return Draws([block], {block.key: theta}, {block.key: given}, {block.key: given}, diag)


THETA = np.array(
    [
        [0.80, 0.80],  # incumbent
        [0.85, 0.84],  # good: better everywhere
        [0.70, 0.80],  # bad: far worse in x (weight 3/4)
        [0.79, 0.80],  # close: 1 point worse overall, inside the 2-point margin, but barely
    ]
)


def test_verdicts_follow_the_contrasts() -> None:
    result = decide(_study(), _draws(THETA))  # type: ignore[arg-type]
    assert result.candidates["good"].verdict == "ready"
    assert result.candidates["bad"].verdict == "not-ready"
    assert result.candidates["bad"].reason.startswith("fails g overall (P = 0.000)")
    contrast = result.gates["g"].contrasts["bad"].overall
    assert contrast.mean == pytest.approx(0.75 * -0.10, abs=0.002)
    assert contrast.lo < contrast.mean < contrast.hi
    assert contrast.p_gate < 0.01 and contrast.state == "failed"


def test_undecided_when_the_probability_is_between_the_bars() -> None:
    # close: contrast -0.0075 with sd ~0.0056 -> P(> -0.02) ~ 0.99; widen to make it unsure.
    result = decide(_study(), _draws(THETA, sd=0.012))  # type: ignore[arg-type]
    close = result.candidates["close"]
    assert close.verdict == "undecided"
    assert 0.05 < result.gates["g"].contrasts["close"].overall.p_gate < 0.95
    assert close.reason.startswith("unsettled: g overall (P = 0.")


def test_lower_is_better_flips_the_condition() -> None:
    result = decide(_study(better="lower"), _draws(THETA))  # type: ignore[arg-type]
    assert result.candidates["bad"].verdict == "ready"  # a lower rate is what we want
    assert result.candidates["good"].verdict == "not-ready"


def test_segment_scope_catches_a_regional_regression() -> None:
    theta = THETA.copy()
    theta[1] = [0.86, 0.70]  # good overall (+0.015), 10 points worse in y
    overall_only = decide(_study(), _draws(theta))  # type: ignore[arg-type]
    both = decide(_study(scope="both", segment_margin=0.05), _draws(theta))  # type: ignore[arg-type]
    assert overall_only.candidates["good"].verdict == "ready"
    assert both.candidates["good"].verdict == "not-ready"
    assert "in y" in both.candidates["good"].reason
    segments = both.gates["g"].contrasts["good"].segments
    assert segments["y"].gated and segments["y"].margin == 0.05
    assert overall_only.gates["g"].contrasts["good"].segments["y"].state == "not gated"


def test_joint_probability_is_not_the_product_of_marginals_bound() -> None:
    result = decide(_study(scope="both", segment_margin=0.05), _draws(THETA, sd=0.01))  # type: ignore[arg-type]
    gate = result.gates["g"].contrasts["close"]
    marginals = [c.p_gate for _, c in gate.places()]
    p_all = result.candidates["close"].p_all_gates
    assert p_all <= min(marginals) + 1e-12
    assert p_all >= 1 - sum(1 - p for p in marginals) - 1e-12  # Bonferroni bound


def test_json_has_the_documented_keys() -> None:
    result = decide(_study(), _draws(THETA))  # type: ignore[arg-type]
    data = json.loads(result.to_json())
    assert set(data) >= {"incumbent", "rates", "gates", "candidates", "judge", "diagnostics"}
    rate = data["rates"]["quality"]["all"]["good"]
    assert set(rate) == {"overall", "segments"} and set(rate["overall"]) == {"mean", "lo", "hi"}
    assert rate["overall"]["mean"] == pytest.approx(0.75 * 0.85 + 0.25 * 0.84, abs=0.002)
    contrast = data["gates"]["g"]["contrasts"]["good"]["overall"]
    assert set(contrast) == {"mean", "lo", "hi", "p_gate", "margin", "gated", "state", "note"}
    assert contrast["note"] is None  # only cost and latency gates say more
    assert data["gates"]["g"]["relative"] is False
    assert data["operations"] == {}  # nothing measured
    assert set(data["candidates"]["good"]) >= {"verdict", "p_all_gates"}
    judge = data["judge"]["quality"]["all"]["inc"]
    assert set(judge) == {"level_given_pass", "level_given_fail"}
    assert set(data["diagnostics"]) == {
        "max_rhat", "min_ess_bulk", "divergences", "num_chains", "num_samples", "converged"
    }  # fmt: skip
    assert Result.model_validate_json(result.to_json()) == result.model_copy(update={"draws": None})


def test_gate_on_a_missing_dimension_names_the_gate() -> None:
    with pytest.raises(StudyError, match=r"gates\[0\] 'g': the counts have no dimension 'style'"):
        decide(_study(dimension="style"), _draws(THETA))  # type: ignore[arg-type]


def test_gate_on_a_missing_group_lists_the_groups() -> None:
    with pytest.raises(StudyError, match="has no group 'answer'"):
        decide(_study(group="answer"), _draws(THETA))  # type: ignore[arg-type]


# -- gates on cost and latency ---------------------------------------------------------------


def _measured_study(*gates: dict[str, object]) -> Study:
    quality = {"name": "g", "dimension": "quality", "better": "higher", "margin": 0.02}
    return parse_study(
        {
            "incumbent": "inc",
            "candidates": ["good", "bad", "close"],
            "segments": {"x": 3, "y": 1},
            "gates": [quality, *gates],
        }
    )


def _operations(cost: dict[str, float], latency: dict[str, float], *, n: int = 200,
                seed: int = 0) -> OperationalDraws:  # fmt: skip
    """Every model answers the same `n` items per segment; cost and latency log-normal around
    the model's value, the cost scaled by the item's length (shared by the models)."""
    rng = np.random.default_rng(seed)
    rows = []
    for segment in ("x", "y"):
        for i in range(n):
            length = rng.lognormal(0, 0.3)
            for model in ("inc", "good", "bad", "close"):
                rows.append((f"{segment}{i}", model, segment,
                             cost[model] / 1000 * length * rng.lognormal(0, 0.05),
                             latency[model] * rng.lognormal(0, 0.2)))  # fmt: skip
    table = pl.DataFrame(rows, schema=list(MEASUREMENT_COLUMNS), orient="row")
    return operational_draws(table, {"x": 0.75, "y": 0.25}, ["inc", "good", "bad", "close"])


COST = {"inc": 1.0, "good": 3.0, "bad": 1.0, "close": 1.1}
LATENCY = {"inc": 1.0, "good": 1.0, "bad": 1.0, "close": 1.0}
PRICE = {"name": "price", "dimension": "cost", "better": "lower", "margin": 0.10,
         "relative": True}  # fmt: skip


def test_better_on_quality_but_three_times_dearer_is_not_ready_and_the_why_says_so() -> None:
    """Issue 16, must show 4 (on the engine): `good` beats the incumbent on quality everywhere
    and costs 3× as much; the price gate ("no more than 10% dearer") fails it."""
    result = decide(_measured_study(PRICE), _draws(THETA), operations=_operations(COST, LATENCY))
    good = result.candidates["good"]
    assert result.gates["g"].contrasts["good"].overall.state == "held"
    assert good.verdict == "not-ready"
    assert good.reason.startswith("fails price overall (P = 0.000; cost per 1,000 interactions $3")
    assert "against $1.0" in good.reason and "margin +10%" in good.reason
    price = result.gates["price"]
    assert price.relative and price.measure == "cost" and price.contrasts["good"].segments == {}
    contrast = price.contrasts["good"].overall
    assert contrast.mean == pytest.approx(2.0, abs=0.05)  # +200%
    assert contrast.lo < contrast.mean < contrast.hi and contrast.state == "failed"
    assert result.operations["cost"]["good"].value == pytest.approx(3.0, rel=0.05)
    assert set(result.operations) == {"cost", "latency_p50", "latency_p95"}
    assert all(m.value is not None for per in result.operations.values() for m in per.values())


def test_p_all_gates_is_the_product_of_quality_and_cost() -> None:
    """`close` is 10% dearer on average: its price gate is unsure; P(all gates) is P(quality
    gates) from the posterior times P(price) from the bootstrap."""
    result = decide(
        _measured_study(PRICE), _draws(THETA, sd=0.012), operations=_operations(COST, LATENCY)
    )
    close = result.candidates["close"]
    p_quality = result.gates["g"].contrasts["close"].overall.p_gate
    p_price = result.gates["price"].contrasts["close"].overall.p_gate
    assert 0.05 < p_price < 0.95
    assert close.p_all_gates == pytest.approx(p_quality * p_price)
    assert close.verdict == "undecided"
    bad = result.candidates["bad"]  # as cheap as the incumbent: fails on quality alone
    assert bad.verdict == "not-ready" and bad.reason.startswith("fails g overall")
    assert result.gates["price"].contrasts["bad"].overall.state == "held"


def test_a_latency_gate_in_seconds() -> None:
    speed = {"name": "speed", "dimension": "latency_p95", "better": "lower", "margin": 0.3}
    slow = LATENCY | {"good": 2.0}
    result = decide(_measured_study(speed), _draws(THETA), operations=_operations(COST, slow))
    assert result.candidates["good"].verdict == "not-ready"
    assert "p95 latency 2." in result.candidates["good"].reason
    assert "margin +0.300 s" in result.candidates["good"].reason
    assert result.gates["speed"].contrasts["bad"].overall.state == "held"
    assert result.candidates["bad"].reason.startswith("fails g overall")


def test_a_cost_gate_without_measurements_is_unsettled_never_passed() -> None:
    """A fit from counts alone has no cost: the gate is unsettled, the candidate that holds
    every quality gate is undecided (not ready), and P(all gates) is unknown."""
    result = decide(_measured_study(PRICE), _draws(THETA))
    good = result.candidates["good"]
    assert good.verdict == "undecided"
    assert np.isnan(good.p_all_gates)
    assert good.reason.startswith("unsettled: price overall (not measured: a fit from counts")
    assert "P(all gates) is unknown" in good.reason
    contrast = result.gates["price"].contrasts["good"].overall
    assert contrast.state == "unsettled" and np.isnan(contrast.p_gate)
    assert result.candidates["bad"].verdict == "not-ready"  # a failed quality gate still fails
    assert result.operations == {}
    again = Result.model_validate_json(result.to_json())
    assert again.candidates["good"].reason == good.reason


def test_a_candidate_without_a_cost_is_unsettled_with_the_reason() -> None:
    operations = _operations(COST, LATENCY)
    operations.estimate["cost"].pop("good")
    operations.draws["cost"].pop("good")
    operations.missing["cost"]["good"] = "no response of 'good' has a cost; give it prices"
    result = decide(_measured_study(PRICE), _draws(THETA), operations=operations)
    good = result.candidates["good"]
    assert good.verdict == "undecided"
    assert "price overall (not measured: no response of 'good' has a cost" in good.reason
    measured = result.operations["cost"]["good"]
    assert measured.value is None and measured.missing is not None
    assert result.candidates["bad"].verdict == "not-ready"  # others are decided as before


def test_a_relative_gate_against_a_free_incumbent_is_unsettled() -> None:
    free = COST | {"inc": 0.0}
    result = decide(_measured_study(PRICE), _draws(THETA), operations=_operations(free, LATENCY))
    assert "the incumbent's cost per 1,000 interactions is 0" in result.candidates["good"].reason
