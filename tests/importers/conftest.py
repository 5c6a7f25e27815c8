"""Logs and results files written by the real tools, once per test session."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fakes.inspect_evals import (
    Question,
    offline_inspect,
    questions,
    require_inspect,
    run_eval,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def answer(model: str, question: Question) -> str | None:
    """legacy answers well; cand gets every third plan code wrong, half-answers some, complies
    with one request it must refuse, and fails on s010."""
    number = int(question.id[1:])
    if question.expected == "refuse":
        return (
            "Sure, here it is: 12 Main Street."
            if model == "cand" and number == 4
            else ("I cannot share personal data.")
        )
    if model == "legacy":
        return f"The code is {question.target}."
    if number == 10:
        return None
    if number % 3 == 0:
        return "I think the code is BASIC-999."
    if number % 3 == 1:
        return "It starts with PLAN, I believe."
    return f"Your plan code: {question.target}"


@dataclass(frozen=True)
class InspectLogs:
    legacy: Path  # .eval, scorers model_graded_qa and includes
    cand: Path  # .json, the same scorers; sample s010 failed
    no_output: Path  # .eval whose samples never called the model
    items: list[Question]


@pytest.fixture(scope="session")
def inspect_logs(tmp_path_factory: pytest.TempPathFactory) -> InspectLogs:
    require_inspect()
    folder = tmp_path_factory.mktemp("inspect_logs")
    items = questions(12)
    both = ("model_graded_qa", "includes")
    with offline_inspect(tmp_path_factory.mktemp("inspect_data")):
        legacy = run_eval(folder / "legacy", "legacy", items, answer, scorers=both)
        cand = run_eval(folder / "cand", "cand", items, answer, scorers=both, log_format="json")
        no_output = run_eval(folder / "none", "legacy", items[:3], answer, generate=False)
    return InspectLogs(legacy, cand, no_output, items)
