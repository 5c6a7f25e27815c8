"""`score`: deterministic signals and judges over a workspace, resumable, combined per dimension,
and read back by `changeover.counts.workspace_rows`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from changeover.counts import workspace_rows
from changeover.errors import InputError, StudyError
from changeover.io import import_items, import_responses
from changeover.records import Item, ResponseRecord
from changeover.score import estimate_scoring, score, score_responses
from changeover.study import Study, load_study
from changeover.workspace import Workspace, open_workspace
from tests.fakes.judge import fake_judge
from tests.fakes.llm_server import FakeLLMServer


@pytest.fixture
def judge_server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(reply=fake_judge) as running:
        yield running


def _grader(server: FakeLLMServer, protocol: str = "openai", **extra: Any) -> dict[str, Any]:
    url = server.openai_url if protocol == "openai" else server.anthropic_url
    return {"provider": protocol, "model": f"{protocol}-judge", "base_url": url,
            "api_key_env": "CHANGEOVER_TEST_KEY", "max_tokens": 100, "timeout": 2,
            "max_retries": 0, **extra}  # fmt: skip


def _setup(
    tmp_path: Path,
    responses: dict[str, str],
    *,
    signals: dict[str, Any],
    models: dict[str, Any],
    refuse: frozenset[str] = frozenset(),
    **extra: Any,
) -> tuple[Study, Workspace]:
    replay = {"provider": "replay", "file": "unused.jsonl"}
    data = {
        "incumbent": "legacy",
        "candidates": ["cand"],
        "segments": {"na": 1, "emea": 1},
        "models": {"legacy": replay, "cand": replay, **models},
        "signals": signals,
        **extra,
    }
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    study = load_study(path)
    items = tmp_path / "items.jsonl"
    items.write_text(
        "".join(
            json.dumps(
                {
                    "item_id": i,
                    "prompt": f"question {i}?",
                    "segment": "na",
                    "reference": "Paris",
                    "expected_behaviour": "refuse" if i in refuse else "answer",
                }
            )
            + "\n"
            for i in responses
        )  # fmt: skip
    )
    answers = tmp_path / "responses.jsonl"
    answers.write_text(
        "".join(
            json.dumps({"item_id": i, "model": "legacy", "response": r}) + "\n"
            for i, r in responses.items()
        )
    )
    workspace = open_workspace(study.resolve(study.workspace), create=True)
    import_items(workspace, items, study)
    import_responses(workspace, answers, study)
    return study, workspace


def _levels(workspace: Workspace, signal: str) -> dict[str, str]:
    frame = workspace.frame("signals")
    return {
        row["item_id"]: row["level"]
        for row in frame.iter_rows(named=True)
        if row["signal"] == signal
    }


def test_a_study_template_with_an_anthropic_style_judge(
    tmp_path: Path, judge_server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHANGEOVER_TEST_KEY", "sk-test")
    (tmp_path / "house.j2").write_text(
        "HOUSE RUBRIC ({{ rubric }}, {{ scale }}).\n{{ style_guide }}\n"
        "{% for rule in style_rules %}* {{ rule }}\n{% endfor %}"
        'Answer {"verdict": ..., "violated_rules": [...]}'
    )
    study, workspace = _setup(
        tmp_path,
        {"a": "**Paris** !judge:violates", "b": "Paris. The Acme team !judge:adheres"},
        signals={
            "tone": {"kind": "judge", "rubric": "style", "model": "grader", "template": "house.j2"}
        },
        models={"grader": _grader(judge_server, "anthropic")},
        style_guide={"text": "Warm and brief.", "markdown": False, "sign_off": "The Acme team"},
    )
    with workspace:
        (tone,) = score(study, workspace).signals
        details = {
            r["item_id"]: r["detail"] for r in workspace.frame("signals").iter_rows(named=True)
        }
    assert tone.levels == {"adheres": 1, "violates": 1}
    assert details["a"] == "violated: no markdown; sign-off"
    (request, _) = judge_server.log
    assert request.protocol == "anthropic"
    assert request.system.startswith("HOUSE RUBRIC (style, binary).\nWarm and brief.")
    assert '* End with the sign-off "The Acme team".' in request.system
    assert "sk-test" in request.authorization


def test_combinations_follow_their_parts_and_feed_rows(
    tmp_path: Path, judge_server: FakeLLMServer
) -> None:
    study, workspace = _setup(
        tmp_path,
        {
            "a": "I'm sorry, but I can't help with that. !judge:refused",
            "b": "Sure, here it is. !judge:complied",
            "c": "Here you go. !script:500,ok !judge:partial",
        },
        signals={
            "phrases": {"kind": "refusal", "scale": "binary"},
            "judge": {"kind": "judge", "rubric": "refusal", "model": "grader"},
        },
        models={"grader": _grader(judge_server, api_key_env=None)},
    )
    with workspace:
        summary = score(study, workspace)
        (combined,) = summary.combined
        assert (combined.signal, combined.scored) == ("phrases|judge", 3)
        assert _levels(workspace, "phrases|judge") == {
            "a": "refused|refused",
            "b": "complied|complied",
            "c": "complied|error",
        }
        rows = workspace_rows(workspace)
        assert sorted(rows["level"].to_list()) == [
            "complied|complied", "complied|error", "refused|refused",
        ]  # fmt: skip
        # The failed judge call is judged again; its combination follows, the others stay.
        summary = score(study, workspace, retry_failed=True)
        assert [s.scored for s in summary.signals] == [0, 1]
        assert summary.combined[0].scored == 1 and summary.combined[0].stored == 2
        assert _levels(workspace, "phrases|judge")["c"] == "complied|partial"
        # Another stored combination of other parts makes the choice ambiguous again.
        workspace.store_signals([], run_id=None)
        workspace._db.execute(
            "INSERT INTO signals (item_id, model, signal, dimension, level, created_at)"
            " VALUES ('a', 'legacy', 'judge|phrases', 'refusal', 'x', '2026-01-01')"
        )
        with pytest.raises(InputError, match="several signals"):
            workspace_rows(workspace)


def test_quantile_bins_are_recut_when_responses_arrive(tmp_path: Path) -> None:
    study, workspace = _setup(
        tmp_path,
        {"a": "Paris", "b": "Paris, France", "c": "Lyon", "d": "It is Paris of course"},
        signals={"overlap": {"kind": "reference", "quantiles": 2}},
        models={},
    )
    with workspace:
        (first,) = score(study, workspace).signals
        assert first.scored == 4 and not first.recomputed
        assert score(study, workspace).signals[0].scored == 0
        workspace.add_items([Item("e", "question e?", "na", reference="Paris")])
        workspace.add_responses([ResponseRecord("e", "legacy", "Paris", source="import")])
        (again,) = score(study, workspace).signals
        assert again.recomputed and again.scored == 5 and again.stored == 0
        assert sum(again.levels.values()) == 5


def test_a_fatal_error_stops_the_judge_and_stores_only_what_was_sent(
    tmp_path: Path, judge_server: FakeLLMServer
) -> None:
    study, workspace = _setup(
        tmp_path,
        {f"q{i}": f"!script:401 answer {i}" for i in range(6)},
        signals={"judge": {"kind": "judge", "rubric": "correctness", "model": "grader"}},
        models={"grader": _grader(judge_server, api_key_env=None, concurrency=1)},
    )
    with workspace:
        (judge,) = score(study, workspace).signals
        assert judge.stopped is not None and "401" in judge.stopped
        assert judge.levels == {"error": 1} and len(judge_server.log) == 1


@pytest.mark.parametrize("first", ["!script:html answer", "fine !judge:correct"])
def test_a_judge_whose_first_calls_all_fail_is_stopped(
    first: str, tmp_path: Path, judge_server: FakeLLMServer
) -> None:
    # An endpoint answering an HTML page (200, not JSON) once gave 120 of 120 `error` levels.
    # The scripted marker in a response reaches the judge inside its prompt.
    responses = {"q00": first} | {f"q{i:02d}": f"!script:html answer {i}" for i in range(1, 15)}
    study, workspace = _setup(
        tmp_path,
        responses,
        signals={"judge": {"kind": "judge", "rubric": "correctness", "model": "grader"}},
        models={"grader": _grader(judge_server, api_key_env=None, concurrency=1)},
    )
    with workspace:
        (judge,) = score(study, workspace).signals
    if first.startswith("fine"):  # a judge that worked once is not stopped by later failures
        assert judge.stopped is None and judge.levels == {"correct": 1, "error": 14}
        assert len(judge_server.log) == 15
    else:
        assert judge.stopped is not None
        assert judge.stopped.startswith("its first 10 calls all failed, the last with malformed")
        assert judge.levels == {"error": 10} and len(judge_server.log) == 10


def test_correctness_is_scored_on_should_answer_items_only(
    tmp_path: Path, judge_server: FakeLLMServer
) -> None:
    # A correctness verdict on a should-refuse item is never used: 20 of 120 paid judge calls
    # were spent on them. Refusal is judged on every item, style too.
    responses = {f"q{i}": f"answer {i} !judge:correct" for i in range(6)}
    study, workspace = _setup(
        tmp_path,
        responses,
        refuse=frozenset({"q4", "q5"}),
        signals={
            "correct_judge": {"kind": "judge", "rubric": "correctness", "model": "grader"},
            "contained": {"kind": "reference", "metric": "containment"},
            "refusal_phrases": {"kind": "refusal"},
        },
        models={"grader": _grader(judge_server, api_key_env=None)},
    )
    with workspace:
        summaries = {s.signal: s for s in score(study, workspace).signals}
        scored = {
            name: sorted(_levels(workspace, name))
            for name in ("correct_judge", "contained", "refusal_phrases")
        }
        again = {s.signal: (s.scored, s.stored) for s in score(study, workspace).signals}
    answer_items = ["q0", "q1", "q2", "q3"]
    assert scored == {
        "correct_judge": answer_items, "contained": answer_items,
        "refusal_phrases": [*answer_items, "q4", "q5"],
    }  # fmt: skip
    assert len(judge_server.log) == 4
    assert all("answer 4" not in r.prompt and "answer 5" not in r.prompt for r in judge_server.log)
    assert (summaries["correct_judge"].total, summaries["refusal_phrases"].total) == (4, 6)
    assert again == {"correct_judge": (0, 4), "contained": (0, 4), "refusal_phrases": (0, 6)}


def test_an_interrupted_run_resumes_where_it_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeLLMServer(reply=fake_judge, latency=0.05) as server:
        study, workspace = _setup(
            tmp_path,
            {f"q{i}": f"answer {i} !judge:correct" for i in range(12)},
            signals={"judge": {"kind": "judge", "rubric": "correctness", "model": "grader"}},
            models={"grader": _grader(server, api_key_env=None, concurrency=2)},
        )

        async def interrupted() -> None:
            task = asyncio.create_task(score_responses(study, workspace))
            while len(server.log) < 5:
                await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        with workspace:
            asyncio.run(interrupted())
            stored = len(_levels(workspace, "judge"))
            assert 3 <= stored < 12
            runs = workspace.frame("runs")
            assert runs["status"].to_list()[-1] == "interrupted"
            sent = len(server.log)
            (judge,) = score(study, workspace).signals
            assert judge.stored == stored and judge.scored == 12 - stored
            # Requests in flight at the interruption are answered from the cache or sent again;
            # nothing stored is asked again.
            assert len(server.log) - sent <= 12 - stored
            assert set(_levels(workspace, "judge").values()) == {"correct"}


def test_a_relative_template_is_checked_before_any_call(
    tmp_path: Path, judge_server: FakeLLMServer
) -> None:
    study, workspace = _setup(
        tmp_path,
        {"a": "Paris"},
        signals={"j": {"kind": "judge", "rubric": "correctness", "model": "grader",
                       "template": "rubrics/mine.j2"}},
        models={"grader": _grader(judge_server, api_key_env=None)},
    )  # fmt: skip
    with workspace, pytest.raises(StudyError, match=r"signals\.j\.template: file .*mine\.j2 not"):
        score(study, workspace)
    assert judge_server.log == []
    (tmp_path / "rubrics").mkdir()
    (tmp_path / "rubrics" / "mine.j2").write_text("Grade {{ rubric }}; answer JSON.")
    with open_workspace(study.resolve(study.workspace)) as workspace:
        (judge,) = score(study, workspace).signals
    assert judge.scored == 1
    assert judge_server.log[0].system == "Grade correctness; answer JSON."


def test_changed_settings_are_flagged_until_rescored(tmp_path: Path) -> None:
    study, workspace = _setup(
        tmp_path,
        {"a": "Paris", "b": "Lyon, not Paris", "c": "Lyon"},
        signals={"overlap": {"kind": "reference", "metric": "token_f1", "bins": [0.5]}},
        models={},
    )
    with workspace:
        assert not score(study, workspace).signals[0].settings_changed
        path = tmp_path / "study.yaml"
        path.write_text(path.read_text().replace("- 0.5", "- 0.2\n    - 0.6"))
        changed = load_study(path)
        for _ in range(2):  # flagged on every run while the stored rows are stale
            (overlap,) = score(changed, workspace).signals
            assert overlap.settings_changed and overlap.scored == 0
            assert set(overlap.levels) <= {"0-0.5", "0.5-1"}
        (overlap,) = score(changed, workspace, rescore=True).signals
        assert not overlap.settings_changed and overlap.scored == 3
        assert set(overlap.levels) <= {"0-0.2", "0.2-0.6", "0.6-1"}
        assert not score(changed, workspace).signals[0].settings_changed


# -- money: batch judges, dry runs, budgets ------------------------------------------------------


def _priced_grader(server: FakeLLMServer, protocol: str = "anthropic", **extra: Any) -> Any:
    prices = {"price_input_per_million": 1000.0, "price_output_per_million": 4000.0}
    return _grader(server, protocol, **(prices | extra))


def test_batch_judges_are_submitted_together_and_their_spend_kept(
    tmp_path: Path, judge_server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHANGEOVER_TEST_KEY", "sk-test-key-0123456789")
    responses = {f"q{i}": f"Paris {i} !judge:correct" for i in range(5)}
    responses["q5"] = "I'm sorry, I can't. !judge:refused"
    grader = _priced_grader(judge_server, batch=True, batch_poll_interval=0.02)
    study, workspace = _setup(
        tmp_path,
        responses,
        signals={
            "judge": {"kind": "judge", "rubric": "correctness", "model": "grader"},
            "refusal_judge": {"kind": "judge", "rubric": "refusal", "model": "grader"},
        },
        models={"grader": grader},
    )
    with workspace:
        summary = score(study, workspace)
        judge, refusal = summary.signals
        assert judge.levels["correct"] == 5 and refusal.levels["refused"] == 1
        assert "error" not in judge.levels | refusal.levels
        assert (judge.batch_requests, refusal.batch_requests) == (6, 6)
        assert judge.batch_cost > 0 and judge.saving == pytest.approx(judge.batch_cost)
        assert judge.batch is not None and judge.batch.collected == 6
        (spend,) = workspace.spend_summary()
        assert (spend.model, spend.purpose, spend.requests, spend.batch_requests) == (
            "grader", "judging", 12, 12,
        )  # fmt: skip
        assert spend.saving == pytest.approx(spend.cost)
        again = score(study, workspace)
        assert [s.scored for s in again.signals] == [0, 0]
    # One batch per judge, both waited on at once; nothing went through the online endpoint.
    assert len(judge_server.created_batches()) == 2 and judge_server.log == []


def test_a_scoring_dry_run_counts_what_the_judges_would_be_sent(
    tmp_path: Path, judge_server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHANGEOVER_TEST_KEY", "sk-test-key-0123456789")
    responses = {f"q{i}": f"Paris, number {i}. !judge:correct" for i in range(10)}
    study, workspace = _setup(
        tmp_path,
        responses,
        signals={
            "judge": {"kind": "judge", "rubric": "correctness", "model": "grader"},
            "phrases": {"kind": "refusal", "scale": "binary"},
        },
        models={"grader": _priced_grader(judge_server, "openai")},
    )
    with workspace:
        score(study, workspace, signals=["judge"])  # a pilot: 10 judge requests, usage kept
        assert len(judge_server.log) == 10
        rescore = estimate_scoring(study, workspace, rescore=True)
        (estimate,) = rescore.estimates  # the deterministic signal costs nothing
        assert (estimate.signal, estimate.model, estimate.purpose) == ("judge", "grader", "judging")
        # Every answer is in the request cache: a rescore sends nothing and costs nothing.
        assert (estimate.requests, estimate.cached, estimate.cost) == (0, 10, 0.0)
        workspace.add_items([Item(f"n{i}", f"new question {i}?", "na", reference="Paris")
                             for i in range(4)])  # fmt: skip
        workspace.add_responses(
            [ResponseRecord(f"n{i}", "legacy", f"Paris {i}", source="import") for i in range(4)]
        )
        plan = estimate_scoring(study, workspace)
        (estimate,) = plan.estimates
        assert (estimate.requests, estimate.cached) == (4, 0)
        assert estimate.basis.startswith("recorded usage of 10 requests")
        assert estimate.cost is not None and estimate.cost > 0
        assert len(judge_server.log) == 10  # nothing sent
        runs = workspace.frame("runs").height
        summary = score(study, workspace, signals=["judge"])
        actual = sum(s.cost or 0 for s in workspace.spend_summary(run_id=summary.run_id))
        assert workspace.frame("runs").height == runs + 1
    assert abs(estimate.cost - actual) <= 0.15 * actual


def test_a_budget_stops_judging_and_a_rerun_continues(
    tmp_path: Path, judge_server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHANGEOVER_TEST_KEY", "sk-test-key-0123456789")
    responses = {f"q{i:02d}": f"Paris, answer {i} !judge:correct" for i in range(12)}
    signals = {"judge": {"kind": "judge", "rubric": "correctness", "model": "grader"}}
    # A judge request holds ~1,500 characters of rubric: at most ~$0.55, in fact ~$0.07.
    grader = _priced_grader(judge_server, "openai", concurrency=2, price_input_per_million=100.0)
    models = {"grader": grader}
    study, workspace = _setup(
        tmp_path, responses, signals=signals, models=models, budget={"per_run": 1.0}
    )
    with workspace:
        first = score(study, workspace)
        assert first.budget_exceeded is not None
        assert first.budget_exceeded.startswith("budget.per_run ($1.00) would be exceeded")
        (judge,) = first.signals
        assert 0 < judge.scored < 12 and judge.stopped is None  # the budget is said once
        assert "error" not in judge.levels  # what was not sent is not an error: it is missing
        assert workspace.spend_total() <= 1.0 and judge.scored == len(judge_server.log)
        study = study.model_copy(update={"budget": None})
        second = score(study, workspace)
        assert second.budget_exceeded is None
        assert second.signals[0].levels == {"correct": 12}
    assert len(judge_server.log) == 12
