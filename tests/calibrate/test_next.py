"""`changeover next` as pure functions: which strata to label, on hand-made posteriors."""

from __future__ import annotations

import json
import warnings

import numpy as np
import polars as pl
import pytest
from pydantic import TypeAdapter

from changeover.calibrate.blocks import Block
from changeover.calibrate.decide import Result, decide
from changeover.calibrate.diagnostics import Diagnostics
from changeover.calibrate.next import (
    NextPlan,
    StratumPick,
    choose_responses,
    plan_next,
    spread,
    stratified_start,
    stratum_q,
)
from changeover.calibrate.posterior import Draws
from changeover.study import Study, parse_study

MODELS = ("legacy", "cand")
SEGMENTS = ("na", "emea")
LEVELS = ("fail", "pass")


def _study(scope: str = "both", candidates: tuple[str, ...] = ("cand",)) -> Study:
    return parse_study(
        {
            "incumbent": "legacy",
            "candidates": list(candidates),
            "segments": {"na": 1.0, "emea": 1.0},
            "gates": [
                {
                    "name": "quality",
                    "dimension": "quality",
                    "better": "higher",
                    "margin": 0.02,
                    "scope": scope,
                    "segment_margin": 0.05,
                }
            ],
        },
        source="test",
    )


def _block(n_pass: float = 20.0, n_fail: float = 5.0, n_all: float = 500.0) -> Block:
    shape = (2, 2, 2)
    return Block(
        "quality",
        "",
        MODELS,
        SEGMENTS,
        LEVELS,
        np.full(shape, n_all),
        np.full(shape, n_pass),
        np.full(shape, n_fail),
    )


def _result(theta_mean: np.ndarray, theta_sd: np.ndarray, block: Block, seed: int = 0) -> Result:
    """A posterior with independent normal rates per cell and a judge that separates well."""
    rng = np.random.default_rng(seed)
    d = 2000
    theta = np.clip(theta_mean + theta_sd * rng.standard_normal((d, 2, 2)), 0.01, 0.99)
    lp = np.broadcast_to(np.array([0.1, 0.9]), (d, 2, 2)).copy()
    lf = np.broadcast_to(np.array([0.8, 0.2]), (d, 2, 2)).copy()
    draws = Draws(
        [block],
        {block.key: theta},
        {block.key: lp},
        {block.key: lf},
        Diagnostics(1.0, 1000.0, 0, 2, 1000),
    )
    return decide(_study(), draws)


def test_picks_the_strata_of_the_uncertain_undecided_cell() -> None:
    # Everything is pinned down except the candidate's rate in emea, which sits on the margin.
    mean = np.array([[0.80, 0.80], [0.85, 0.77]])
    sd = np.array([[0.005, 0.005], [0.005, 0.06]])
    result = _result(mean, sd, _block())
    assert result.candidates["cand"].verdict == "undecided"
    plan = plan_next(_study(), result, 10)
    assert plan.mode == "targeted" and plan.n_labels == 10
    top = plan.picks[0]
    assert (top.model, top.segment) == ("cand", "emea")
    assert sum(p.n for p in plan.picks if (p.model, p.segment) == ("cand", "emea")) >= 8
    assert plan.expected_gain > 0 and "emea" in top.reason
    assert plan.risk > plan.expected_risk


def test_several_labels_per_stratum_with_diminishing_returns() -> None:
    mean = np.array([[0.80, 0.80], [0.85, 0.77]])
    sd = np.array([[0.005, 0.005], [0.005, 0.06]])
    result = _result(mean, sd, _block())
    small = plan_next(_study(), result, 5, step=1)
    large = plan_next(_study(), result, 40, step=1)
    assert large.expected_gain > small.expected_gain
    assert large.expected_gain / 40 < small.expected_gain / 5


def test_nothing_to_do_when_every_candidate_is_decided() -> None:
    mean = np.array([[0.80, 0.80], [0.90, 0.90]])
    sd = np.full((2, 2), 0.005)
    result = _result(mean, sd, _block())
    assert result.candidates["cand"].verdict == "ready"
    plan = plan_next(_study(), result, 25)
    assert plan.mode == "nothing-to-do" and plan.picks == () and plan.n_labels == 0
    assert "decided" in plan.message and "cand ready" in plan.message


def test_no_label_is_planned_for_a_verdict_open_only_on_cost() -> None:
    """A candidate that holds its quality gates but whose price gate is not measured (a fit from
    counts alone) is undecided; labels cannot settle it, and the plan says so."""
    study = parse_study(
        _study().model_dump(exclude={"path"})
        | {"gates": [*(g.model_dump() for g in _study().gates),
                     {"name": "price", "dimension": "cost", "better": "lower", "margin": 0.1,
                      "relative": True}]},
    )  # fmt: skip
    mean = np.array([[0.80, 0.80], [0.90, 0.90]])
    rng = np.random.default_rng(0)
    theta = np.clip(mean + 0.005 * rng.standard_normal((2000, 2, 2)), 0.01, 0.99)
    given = np.full((2000, 2, 2), 0.5)
    block = _block()
    draws = Draws([block], {block.key: theta}, {block.key: given}, {block.key: given},
                  Diagnostics(1.0, 1000.0, 0, 2, 1000))  # fmt: skip
    result = decide(study, draws)
    assert result.candidates["cand"].verdict == "undecided"
    plan = plan_next(study, result, 25)
    assert plan.mode == "nothing-to-do" and plan.n_labels == 0
    assert "cand undecided only on gates on cost or latency" in plan.message


def test_respects_the_budget_and_never_picks_an_empty_stratum() -> None:
    mean = np.array([[0.80, 0.80], [0.82, 0.78]])
    sd = np.full((2, 2), 0.04)
    block = _block()
    result = _result(mean, sd, block)
    available = np.zeros((2, 2, 2))
    available[0, 1, 0] = 3  # legacy, emea, level fail: three responses left
    available[1, 0, 1] = 2  # cand, na, level pass: two
    plan = plan_next(_study(), result, 30, available={block.key: available})
    assert plan.n_labels == 5 and "only 5 of the 30" in plan.message
    got = {(p.model, p.segment, p.level): p.n for p in plan.picks}
    assert got == {("legacy", "emea", "fail"): 3, ("cand", "na", "pass"): 2}
    for budget in (1, 7, 33):
        plan = plan_next(_study(), result, budget)
        assert plan.n_labels == budget
    # the block's own counts cap it too: labelled responses are not offered again
    tiny = _block(n_pass=4.0, n_fail=0.0, n_all=5.0)
    plan = plan_next(_study(), _result(mean, sd, tiny), 50)
    assert plan.n_labels == 8 and all(p.n <= 1 for p in plan.picks)


@pytest.mark.parametrize("budget", [0, 1, 7, 13, 100])
def test_spread_is_as_even_as_the_capacity_allows(budget: int) -> None:
    capacity = [5, 0, 2, 9, 3]
    taken = spread(budget, capacity, np.random.default_rng(1))
    assert taken.sum() == min(budget, sum(capacity))
    assert all(0 <= t <= c for t, c in zip(taken, capacity, strict=True))
    not_full = [t for t, c in zip(taken, capacity, strict=True) if t < c]
    assert not not_full or max(taken) - min(not_full) <= 1  # a cell short of its share is full
    again = spread(budget, capacity, np.random.default_rng(1))
    assert again.tolist() == taken.tolist()


def test_spread_chooses_the_cells_of_the_remainder_at_random() -> None:
    draws = {tuple(spread(2, [3, 3, 3, 3], np.random.default_rng(seed))) for seed in range(40)}
    assert len(draws) > 3 and all(sum(d) == 2 and max(d) == 1 for d in draws)
    with pytest.raises(ValueError, match="negative"):
        spread(-1, [1], np.random.default_rng(0))


def test_stratified_start_spreads_over_every_cell() -> None:
    block = _block(n_pass=0.0, n_fail=0.0)
    plan = stratified_start([block], 10, seed=3)
    assert plan.mode == "stratified-start" and plan.n_labels == 10
    per_cell = sorted(p.n for p in plan.picks)
    assert len(per_cell) == 4 and per_cell[-1] - per_cell[0] <= 1
    assert all(p.level is None for p in plan.picks)
    available = np.zeros((2, 2, 2))
    available[1, 1] = [1, 1]
    plan = stratified_start([block], 10, available={block.key: available})
    assert [(p.model, p.segment, p.n) for p in plan.picks] == [("cand", "emea", 2)]
    with pytest.raises(ValueError, match="budget"):
        stratified_start([block], 0)


def test_choose_responses_draws_within_the_strata() -> None:
    mean = np.array([[0.80, 0.80], [0.85, 0.77]])
    sd = np.array([[0.005, 0.005], [0.005, 0.06]])
    plan = plan_next(_study(), _result(mean, sd, _block()), 6)
    rows = pl.DataFrame(
        [
            (f"q{i}", m, s, "", "quality", k)
            for i in range(40)
            for m in MODELS
            for s in SEGMENTS
            for k in LEVELS
            if (i % 2 == 0) == (k == "pass")
        ],
        schema=["item_id", "model", "segment", "group", "dimension", "level"],
        orient="row",
    )
    picks = choose_responses(plan, rows, seed=1)
    assert len(picks) == 6
    assert len({(p.item_id, p.model, p.dimension) for p in picks}) == 6
    wanted = {(p.model, p.segment, p.level) for p in plan.picks}
    assert all((p.model, p.segment, p.level) in wanted for p in picks)
    assert all(p.priority > 0 and p.reason for p in picks)


def test_stratum_q_by_bayes_rule_without_the_sampled_curve() -> None:
    mean = np.array([[0.80, 0.80], [0.85, 0.77]])
    result = _result(mean, np.full((2, 2), 0.01), _block())
    assert result.draws is not None
    q = stratum_q(result.draws)[("quality", "")]
    assert q.shape == (2000, 2, 2, 2)
    expected = 0.8 * 0.9 / (0.8 * 0.9 + 0.2 * 0.2)
    assert abs(q[:, 0, 0, 1].mean() - expected) < 0.01


@pytest.mark.slow
def test_stratum_q_rebuilds_the_calibration_curve_draw_for_draw() -> None:
    from changeover.calibrate import fit
    from changeover.calibrate.simulate import Scenario, simulate

    sim = simulate(
        Scenario(n_models=2, n_segments=2, responses_per_cell=300, n_labels=60),
        np.random.default_rng(0),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = fit(sim.study, sim.counts, num_warmup=200, num_samples=200)
    assert result.draws is not None
    (block,) = result.draws.blocks
    q = stratum_q(result.draws)[block.key]
    pi = (block.n_all + 0.5) / (block.n_all + 0.5).sum(-1, keepdims=True)
    theta = result.draws.theta[block.key]
    rebuilt = (pi[None] * q).sum(-1)
    for m in range(2):
        for s in range(2):
            assert np.corrcoef(rebuilt[:, m, s], theta[:, m, s])[0, 1] > 0.9
    plan = plan_next(sim.study, result, 20)
    assert plan.n_labels in (0, 20)


def test_coverage_floor_before_targeting() -> None:
    # legacy in na has only 2 labels: the plan first brings that cell up to the floor, spread
    # over its levels, whatever the preposterior thinks of it; then it targets.
    block = _block()
    block.n_pass[0, 0] = [1.0, 1.0]
    block.n_fail[0, 0] = [0.0, 0.0]
    mean = np.array([[0.80, 0.80], [0.85, 0.77]])
    sd = np.array([[0.005, 0.005], [0.005, 0.06]])
    result = _result(mean, sd, block)
    plan = plan_next(_study(), result, 10, min_per_cell=8)
    cover = {p.level: p.n for p in plan.picks if (p.model, p.segment) == ("legacy", "na")}
    assert cover == {"fail": 3, "pass": 3}
    assert all(
        p.reason.startswith("coverage")
        for p in plan.picks
        if (p.model, p.segment) == ("legacy", "na")
    )
    assert sum(p.n for p in plan.picks if (p.model, p.segment) == ("cand", "emea")) == 4
    assert plan.n_labels == 10
    # a budget smaller than the floor goes to the least-labelled cells first
    assert {(p.model, p.segment) for p in plan_next(_study(), result, 3, min_per_cell=8).picks} == {
        ("legacy", "na")
    }
    # by default (min_per_cell=0) no floor: the plan only targets
    bare = plan_next(_study(), result, 10)
    assert sum(p.n for p in bare.picks if (p.model, p.segment) == ("cand", "emea")) >= 8
    assert not any(p.reason.startswith("coverage") for p in bare.picks)
    with pytest.raises(ValueError, match="min_per_cell"):
        plan_next(_study(), result, 10, min_per_cell=-1)


def test_plans_for_named_candidates_even_when_decided() -> None:
    mean = np.array([[0.80, 0.80], [0.90, 0.90]])
    result = _result(mean, np.full((2, 2), 0.005), _block())
    assert result.candidates["cand"].verdict == "ready"
    plan = plan_next(_study(), result, 12, candidates=["cand"])
    assert plan.mode == "targeted" and plan.n_labels == 12 and plan.undecided == ("cand",)
    with pytest.raises(ValueError, match="not a candidate"):
        plan_next(_study(), result, 12, candidates=["nobody"])


def test_a_plan_survives_the_report_document_round_trip() -> None:
    picks = (
        StratumPick("refusal", "answer", "cand", "na", "refused", 12, 0.03, "unsettled gate"),
        StratumPick("correctness", "", "legacy", "emea", None, 5, 0.01, "start"),
    )
    plan = NextPlan("targeted", picks, 17, 0.2, 0.1, ("cand",), "label 17")
    adapter = TypeAdapter(NextPlan)
    data = json.loads(adapter.dump_json(plan))
    assert [p["group"] for p in data["picks"]] == ["answer", "all"]
    assert adapter.validate_json(adapter.dump_json(plan)) == plan
    start = NextPlan("stratified-start", picks, 17, float("nan"), float("nan"), (), "start")
    assert np.isnan(adapter.validate_json(adapter.dump_json(start)).risk)


def test_undecided_probability_and_excess_are_what_the_plan_aims_at() -> None:
    from changeover.calibrate.next import _excess, _undecided

    z = np.array(1.645)
    one = np.array(1.0)
    # no information: a condition stays as it is (undecided at t = 1, decided at t = 2)
    assert _undecided(np.array(1.0), one, one, z) > 0.999
    assert _undecided(np.array(2.0), one, one, z) < 0.001
    # more information settles an undecided condition more often, and full information always
    sds = np.array([0.9, 0.6, 0.3, 1e-6])
    p = _undecided(np.full(4, 1.0), np.ones(4), sds, np.full(4, 1.645))
    assert np.all(np.diff(p) < 0) and p[-1] < 1e-3
    # the excess is zero at or below the target variance and grows with the ratio above it
    excess = _excess(np.array([0.5, 1.0, 2.0, 4.0]), np.ones(4), "linear")
    assert excess.tolist() == [0.0, 0.0, 1.0, 3.0]
    assert _excess(np.array([np.e]), np.ones(1), "log")[0] == pytest.approx(1.0)


def test_target_spends_nothing_on_a_condition_already_settled() -> None:
    # Gated per segment: in na the candidate is clearly better (settled), in emea it sits on
    # the margin. The target objective gives na's strata nothing while emea is short of its
    # decision variance (a settled condition has no excess to reduce).
    mean = np.array([[0.80, 0.80], [0.90, 0.77]])
    sd = np.array([[0.02, 0.02], [0.02, 0.04]])
    block = _block()
    rng = np.random.default_rng(0)
    d = 2000
    theta = np.clip(mean + sd * rng.standard_normal((d, 2, 2)), 0.01, 0.99)
    draws = Draws(
        [block],
        {block.key: theta},
        {block.key: np.broadcast_to(np.array([0.1, 0.9]), (d, 2, 2)).copy()},
        {block.key: np.broadcast_to(np.array([0.8, 0.2]), (d, 2, 2)).copy()},
        Diagnostics(1.0, 1000.0, 0, 2, 1000),
    )
    study = _study("segments")
    result = decide(study, draws)
    contrasts = result.gates["quality"].contrasts["cand"].segments
    assert contrasts["na"].p_gate > 0.99 and 0.2 < contrasts["emea"].p_gate < 0.95
    plan = plan_next(study, result, 12)
    assert plan.n_labels == 12
    assert all(p.segment == "emea" for p in plan.picks)
    # a budget far beyond what settles emea is still spent, by the wrong-verdict risk
    big = plan_next(study, result, 400, step=10)
    assert big.n_labels == 400 and big.expected_risk < big.risk


def test_the_incumbent_serves_both_contrasts() -> None:
    # Two candidates, both on the margin, every model equally uncertain: a label of the
    # incumbent moves both contrasts, so it gets more labels than either candidate.
    models = ("legacy", "a", "b")
    study = _study("overall", candidates=models[1:])
    shape = (3, 2, 2)
    block = Block(
        "quality",
        "",
        models,
        SEGMENTS,
        LEVELS,
        np.full(shape, 500.0),
        np.full(shape, 20.0),
        np.full(shape, 5.0),
    )
    rng = np.random.default_rng(1)
    d = 4000
    mean = np.array([[0.80, 0.80], [0.79, 0.79], [0.79, 0.79]])
    theta = np.clip(mean + 0.02 * rng.standard_normal((d, 3, 2)), 0.01, 0.99)
    draws = Draws(
        [block],
        {block.key: theta},
        {block.key: np.broadcast_to(np.array([0.1, 0.9]), (d, 3, 2)).copy()},
        {block.key: np.broadcast_to(np.array([0.8, 0.2]), (d, 3, 2)).copy()},
        Diagnostics(1.0, 1000.0, 0, 2, 1000),
    )
    result = decide(study, draws)
    assert {v.verdict for v in result.candidates.values()} == {"undecided"}
    for objective in ("target", "risk"):
        plan = plan_next(study, result, 600, objective=objective)
        per_model = {m: sum(p.n for p in plan.picks if p.model == m) for m in models}
        assert per_model["legacy"] > max(per_model["a"], per_model["b"]), (objective, per_model)
        assert min(per_model["a"], per_model["b"]) > 0


def test_rejects_an_unknown_objective() -> None:
    mean = np.array([[0.80, 0.80], [0.85, 0.77]])
    result = _result(mean, np.full((2, 2), 0.04), _block())
    with pytest.raises(ValueError, match="objective"):
        plan_next(_study(), result, 10, objective="fastest")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="t_floor"):
        plan_next(_study(), result, 10, t_floor=0.0)
