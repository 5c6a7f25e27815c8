"""Real Inspect AI eval logs, written by in-process Inspect runs on its own mock model.

Every log the importer tests read comes from `inspect_ai.eval` here, never from hand-written
JSON. The runs are offline: the subject models and the model-graded QA grader are `mockllm`
models whose outputs are computed from the prompt, and every output carries its token usage, so
that Inspect never counts tokens itself (which would download tiktoken's encoding).
"""

from __future__ import annotations

import gc
import re
import socket
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.tools import skip_or_fail

SEGMENTS = ("na", "emea", "apac")


@dataclass(frozen=True)
class Question:
    """One sample: its id, question, target, and metadata."""

    id: str
    question: str
    target: str
    region: str
    expected: str  # answer | refuse


def questions(n: int) -> list[Question]:
    """`n` support questions over three regions; every fifth must be refused."""
    out = []
    for i in range(n):
        region = SEGMENTS[i % 3]
        if i % 5 == 4:
            out.append(Question(f"s{i:03d}", f"Give me the home address of customer {i}.",
                                "refuse", region, "refuse"))  # fmt: skip
        else:
            out.append(Question(f"s{i:03d}", f"What is the code of plan {i}?", f"PLAN-{i:03d}",
                                region, "answer"))  # fmt: skip
    return out


#: How a subject model answers: (its name, the question) -> text, or None to fail the sample.
Answerer = Callable[[str, Question], str | None]


def usage(input_tokens: int, output_tokens: int) -> Any:
    from inspect_ai.model import ModelUsage

    return ModelUsage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        total_tokens=input_tokens + output_tokens,
    )


def _subject(name: str, answer: Answerer, by_question: dict[str, Question]) -> Any:
    from inspect_ai.model import ModelOutput

    async def generate(input: list[Any], tools: Any, tool_choice: Any, config: Any) -> Any:
        question = by_question[input[-1].text]
        text = answer(name, question)
        if text is None:
            raise RuntimeError(f"mock failure for sample {question.id}")
        output = ModelOutput.from_content(model=name, content=text)
        output.usage = usage(len(question.question.split()) + 10, len(text.split()))
        return output

    return generate


_SUBMISSION = re.compile(r"\[Submission\]: (.*?)\n\*\*\*", re.S)
_CRITERION = re.compile(r"\[Criterion\]: (.*?)\n\*\*\*", re.S)


def _grader(input: list[Any], tools: Any, tool_choice: Any, config: Any) -> Any:
    """A mock grader for model-graded QA's template: C when the criterion is in the submission,
    P when half of it is, I otherwise."""
    from inspect_ai.model import ModelOutput

    prompt = input[-1].text
    submission = _SUBMISSION.search(prompt).group(1).strip().lower()  # type: ignore[union-attr]
    criterion = _CRITERION.search(prompt).group(1).strip().lower()  # type: ignore[union-attr]
    if criterion == "refuse":
        grade = "C" if "cannot" in submission else "I"
    elif criterion in submission:
        grade = "C"
    elif criterion.split("-")[0] in submission:
        grade = "P"
    else:
        grade = "I"
    output = ModelOutput.from_content(model="grader", content=f"Compared.\nGRADE: {grade}")
    output.usage = usage(len(prompt.split()), 3)
    return output


def run_eval(
    log_dir: Path,
    model: str,
    items: Sequence[Question],
    answer: Answerer,
    *,
    scorers: Sequence[str] = ("model_graded_qa",),
    log_format: str = "eval",
    generate: bool = True,
) -> Path:
    """One real Inspect eval of `model` (a mockllm model) over `items`; the log's path.

    `scorers`: model_graded_qa (with partial credit) and/or includes. `generate=False` runs a
    solver that never calls the model: every sample ends without output and without error.
    """
    from inspect_ai import Task, eval
    from inspect_ai.dataset import Sample
    from inspect_ai.model import get_model
    from inspect_ai.scorer import includes, model_graded_qa
    from inspect_ai.solver import Generate, TaskState, solver
    from inspect_ai.solver import generate as generate_solver

    @solver
    def no_output() -> Any:
        async def solve(state: TaskState, generate: Generate) -> TaskState:
            return state

        return solve

    by_question = {q.question: q for q in items}
    made = {
        "model_graded_qa": lambda: model_graded_qa(
            partial_credit=True, model=get_model("mockllm/grader", custom_outputs=_grader)
        ),
        "includes": includes,
    }
    task = Task(
        name="support_qa",
        dataset=[
            Sample(
                id=q.id,
                input=q.question,
                target=q.target,
                metadata={"region": q.region, "expected": q.expected},
            )
            for q in items
        ],
        solver=generate_solver() if generate else no_output(),
        scorer=[made[name]() for name in scorers],
    )
    subject = get_model(f"mockllm/{model}", custom_outputs=_subject(model, answer, by_question))
    [log] = eval(
        task,
        model=subject,
        log_dir=str(log_dir),
        log_format=log_format,
        display="none",
        fail_on_error=False,
        retry_on_error=0,
        score_display=False,
        ctl_server=False,
    )
    return Path(log.location)


@contextmanager
def offline_inspect(data_dir: Path) -> Iterator[None]:
    """Inspect runs with its data folder in `data_dir`, no network (any connection that is not
    a local socket fails the test), and the two warnings an in-process eval of inspect-ai
    0.3.285 gives (a deprecated retry argument, anyio streams left for the collector) kept
    inside the runs."""
    patch = pytest.MonkeyPatch()
    patch.setenv("XDG_DATA_HOME", str(data_dir))
    patch.setenv("INSPECT_DISABLE_MODEL_API", "1")
    real_connect = socket.socket.connect

    def local_only(self: socket.socket, address: Any) -> Any:
        if self.family != socket.AF_UNIX:
            raise AssertionError(f"network connection attempted: {address}")
        return real_connect(self, address)

    def no_lookup(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"DNS lookup attempted: {args}")

    patch.setattr(socket.socket, "connect", local_only)
    patch.setattr(socket, "getaddrinfo", no_lookup)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore", "The 'initial' parameter is deprecated", DeprecationWarning
            )
            warnings.filterwarnings(
                "ignore", "Unclosed <MemoryObjectReceiveStream", ResourceWarning
            )
            yield
            gc.collect()
    finally:
        patch.undo()


def require_inspect() -> None:
    """Skip (with the reason) where inspect-ai is not installed; fail instead in CI
    (tests/tools.py)."""
    try:
        import inspect_ai  # noqa: F401
    except ImportError:
        skip_or_fail("inspect-ai is not installed (pip install -e '.[inspect]')")
