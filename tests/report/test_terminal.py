"""The terminal summary at 80 columns and piped into a CI log (issue 14, items 7 and 8)."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from rich.console import Console

from changeover.calibrate.blocks import Block
from changeover.calibrate.decide import Result, decide
from changeover.calibrate.diagnostics import Diagnostics
from changeover.calibrate.next import NextPlan, StratumPick
from changeover.calibrate.posterior import Draws
from changeover.report.terminal import print_plan, print_summary
from changeover.study import parse_study

SEGMENTS = ("north-america", "europe-middle-east", "united-kingdom", "latin-america", "japan")
MODELS = ("incumbent-model-2024", "candidate-long-name-a", "candidate-long-name-b")


@pytest.fixture(scope="module")
def result() -> Result:
    study = parse_study({
        "incumbent": MODELS[0],
        "candidates": list(MODELS[1:]),
        "segments": dict.fromkeys(SEGMENTS, 1),
        "gates": [{"name": "correctness", "dimension": "quality", "better": "higher",
                   "margin": 0.02, "scope": "both", "segment_margin": 0.05}],
    })  # fmt: skip
    rng = np.random.default_rng(0)
    means = np.array([[0.8] * 5, [0.81] * 5, [0.6, 0.62, 0.65, 0.6, 0.79]])
    theta = means[None] + rng.normal(0, 0.02, (2000, 3, 5))
    n = np.ones((3, 5, 2))
    block = Block("quality", "", MODELS, SEGMENTS, ("0", "1"), n * 40, n * 3, n * 2)
    given = np.full((2000, 3, 2), 0.5)
    draws = Draws([block], {block.key: theta}, {block.key: given}, {block.key: given},
                  Diagnostics(1.0, 1000.0, 0, 2, 1000))  # fmt: skip
    return decide(study, draws)


def test_the_why_names_every_failing_condition_and_the_table_says_its_state(
    result: Result,
) -> None:
    verdict = result.candidates["candidate-long-name-b"]
    assert verdict.verdict == "not-ready"
    failed = verdict.in_state("failed")
    assert len(failed) >= 5
    assert verdict.reason.startswith(f"fails correctness {failed[0].place} (P = ")
    assert re.search(r" and \d+ more( failing| unsettled| \(\d+ failing, \d+ unsettled\))$",
                     verdict.reason)  # fmt: skip
    console = Console(file=io.StringIO(), width=80)
    print_summary(result, console)
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert result.n_labels == 150 and "Decided on 150 human labels." in out
    rows = [line for line in out.splitlines() if line.strip().startswith("candidate-long-name-b")]
    assert sum("failed" in row for row in rows) == len(failed)


def test_at_80_columns_names_and_intervals_stay_whole(result: Result) -> None:
    console = Console(file=io.StringIO(), force_terminal=True, color_system=None, width=80)
    print_summary(result, console)
    lines = console.file.getvalue().splitlines()  # type: ignore[attr-defined]
    assert max(len(line) for line in lines) <= 80, max(lines, key=len)
    assert sum(line.strip() == "candidate-long-name-b" for line in lines) == 1  # heads its rows
    rows = [line for line in lines if re.search(r"\[[+-]\d+\.\d, ", line)]
    assert len(rows) == 12  # 2 candidates x (overall + 5 segments), one line each
    for row in rows:
        assert re.search(r"[+-]\d+\.\d \[[+-]\d+\.\d, [+-]\d+\.\d\]", row), row  # unwrapped
        assert re.match(rf"\s+({'|'.join(('overall', *SEGMENTS))}) ", row), row  # uncut
        assert re.search(r" (held|failed|unsettled)\s*$", row), row
    assert "P(holds)" in "\n".join(lines)


def test_piped_output_is_plain_text_one_row_per_line(result: Result) -> None:
    console = Console(file=io.StringIO(), width=80)  # not a terminal: a pipe, a CI log
    print_summary(result, console)
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert "─" not in out and "\x1b[" not in out
    reason = result.candidates["candidate-long-name-b"].reason
    assert f"why: {reason}" in out  # never wrapped
    assert sum(line.startswith("candidate-long-name-a  ") for line in out.splitlines()) == 6


def test_next_says_a_repeated_reason_once() -> None:
    reason = "no labels yet: a stratified random start across model x segment cells"
    picks = tuple(
        StratumPick("quality", "", model, segment, None, 1, 0.0, reason)
        for model in MODELS
        for segment in SEGMENTS
    )
    plan = NextPlan("stratified-start", picks, 15, float("nan"), float("nan"), (), "15 labels")
    console = Console(file=io.StringIO(), width=80)
    print_plan(plan, console)
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert out.count(reason) == 1
    assert "15 labels for " + reason in out
    assert all(segment in out for segment in SEGMENTS)
