"""Gates and verdicts on hand-made posterior draws, where the right answer is known exactly."""

from __future__ import annotations

import json

import numpy as np
import pytest

from changeover import StudyError, parse_study
from changeover.calibrate.blocks import Block
from changeover.calibrate.decide import Result, decide
from changeover.calibrate.diagnostics import Diagnostics
from changeover.calibrate.posterior import Draws

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
    assert set(contrast) == {"mean", "lo", "hi", "p_gate", "margin", "gated", "state"}
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
