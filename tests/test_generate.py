"""Generation: the request cache, resume, --retry-failed, --limit, rate limits, replay, the
judges' `call_many`, and a SIGKILL in the middle of a run."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from changeover.calls import (
    Caller,
    LatencyHistogram,
    RateLimiter,
    cache_key,
    call_many,
    call_model,
)
from changeover.errors import StudyError
from changeover.generate import build_request, estimate_generation, generate
from changeover.io import import_items
from changeover.providers import Message, ModelSettings, Request, make_provider
from changeover.records import Item
from changeover.study import Study, load_study
from changeover.workspace import WorkspaceError, open_workspace
from tests.fakes.llm_server import FakeLLMServer
from tests.fakes.studies import CHANGEOVER, study_with_items, write_items, write_study


@pytest.fixture
def server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(retry_after=0.05) as running:
        yield running


def _openai(server: FakeLLMServer, **extra: object) -> dict[str, object]:
    return {
        "provider": "openai",
        "model": "gpt-test",
        "base_url": server.openai_url,
        "temperature": 0,
        "max_tokens": 32,
        "concurrency": 4,
        "retry_wait": 0.01,
        "max_retries": 1,
        **extra,
    }


def test_a_second_run_sends_nothing(server: FakeLLMServer, tmp_path: Path) -> None:
    prompts = [f"question {i}" for i in range(10)]
    study, workspace = study_with_items(
        tmp_path, {"legacy": _openai(server), "cand": _openai(server, model="gpt-new")}, prompts
    )
    with workspace:
        first = generate(study, workspace)
        assert [(m.done, m.cached) for m in first.models] == [(10, 0), (10, 0)]
        assert len(server.log) == 20
        second = generate(study, workspace)
        assert [(m.done, m.cached, m.requests) for m in second.models] == [(0, 10, 0), (0, 10, 0)]
        assert len(server.log) == 20
        runs = workspace.frame("runs").filter(kind="generate")
        assert runs["status"].to_list() == ["finished", "finished"]


def test_the_request_cache_serves_identical_requests(server: FakeLLMServer, tmp_path: Path) -> None:
    # Two names for the same model and settings: the second is served from the cache.
    prompts = ["alpha", "beta"]
    same = _openai(server)
    study, workspace = study_with_items(tmp_path, {"legacy": same, "alias": same}, prompts)
    with workspace:
        (legacy,) = generate(study, workspace, models=["legacy"]).models
        (alias,) = generate(study, workspace, models=["alias"]).models
        assert (legacy.done, legacy.cached, alias.done, alias.cached) == (2, 0, 0, 2)
        assert workspace.frame("responses").height == 4
    assert len(server.log) == 2


def test_failures_are_kept_until_retry_failed(server: FakeLLMServer, tmp_path: Path) -> None:
    prompts = ["fine", "!script:500,500,ok flaky"]
    settings = _openai(server, max_retries=1)
    study, workspace = study_with_items(tmp_path, {"legacy": settings, "cand": settings}, prompts)
    with workspace:
        (first,) = generate(study, workspace, models=["legacy"]).models
        assert (first.done, first.failed) == (1, 1)
        (again,) = generate(study, workspace, models=["legacy"]).models
        assert (again.done, again.failed, again.earlier_failures, again.requests) == (0, 0, 1, 0)
        (retried,) = generate(study, workspace, models=["legacy"], retry_failed=True).models
        assert (retried.done, retried.cached, retried.requests) == (1, 1, 1)
        errors = workspace.frame("responses")["error"].to_list()
        assert errors == [None, None]


def test_two_runs_never_share_a_workspace(server: FakeLLMServer, tmp_path: Path) -> None:
    settings = _openai(server)
    study, workspace = study_with_items(tmp_path, {"legacy": settings, "cand": settings}, ["a"])
    busy = "another `changeover generate` is running"
    with (
        workspace,
        open_workspace(workspace.path) as other,
        other.exclusive("generate"),
        pytest.raises(WorkspaceError, match=busy),
    ):
        generate(study, workspace)
    assert server.log == []
    with open_workspace(tmp_path / "changeover.db") as workspace:
        assert generate(study, workspace).models[0].done == 1


def test_a_failed_write_stops_the_run_with_a_clear_error(
    server: FakeLLMServer, tmp_path: Path
) -> None:
    settings = _openai(server, concurrency=1)
    prompts = [f"p{i}" for i in range(5)]
    study, workspace = study_with_items(tmp_path, {"legacy": settings, "cand": settings}, prompts)
    with workspace:
        workspace._db.execute(
            "CREATE TRIGGER full BEFORE INSERT ON responses WHEN NEW.item_id = 'q0002'"
            " BEGIN SELECT RAISE(ABORT, 'disk full'); END"
        )
        with pytest.raises(WorkspaceError, match="cannot store responses .*disk full.*re-run"):
            generate(study, workspace, models=["legacy"])
        assert sorted(workspace.frame("responses")["item_id"]) == ["q0000", "q0001"]
        assert workspace.frame("runs")["status"].to_list()[-1] == "failed"


def test_limit_takes_the_first_items(server: FakeLLMServer, tmp_path: Path) -> None:
    prompts = [f"p{i}" for i in range(6)]
    settings = _openai(server)
    study, workspace = study_with_items(tmp_path, {"legacy": settings, "cand": settings}, prompts)
    with workspace:
        (model,) = generate(study, workspace, models=["legacy"], limit=3).models
        assert model.total == 3
        assert sorted(workspace.frame("responses")["item_id"]) == ["q0000", "q0001", "q0002"]
    assert sorted(r.prompt for r in server.log) == ["p0", "p1", "p2"]


def test_changed_settings_are_reported_not_silently_mixed(
    server: FakeLLMServer, tmp_path: Path
) -> None:
    settings = _openai(server)
    study, workspace = study_with_items(tmp_path, {"legacy": settings, "cand": settings}, ["a"])
    with workspace:
        generate(study, workspace, models=["legacy"])
    write_study(tmp_path, {"legacy": _openai(server, temperature=0.7), "cand": settings})
    study = load_study(tmp_path / "study.yaml")
    with open_workspace(tmp_path / "changeover.db") as workspace:
        (model,) = generate(study, workspace, models=["legacy"]).models
    assert (model.cached, model.stale, model.requests) == (1, 1, 0)


def test_requests_per_minute_is_respected(server: FakeLLMServer, tmp_path: Path) -> None:
    prompts = [f"limited {i}" for i in range(30)]
    settings = _openai(server, concurrency=30, requests_per_minute=1200)  # 20/s, burst 20
    study, workspace = study_with_items(tmp_path, {"legacy": settings, "cand": settings}, prompts)
    started = time.monotonic()
    with workspace:
        generate(study, workspace, models=["legacy"])
    assert time.monotonic() - started >= 0.45
    times = sorted(r.received_at for r in server.log)
    # No more than a burst of 20 plus the refill in any half second.
    for i, t in enumerate(times):
        assert sum(1 for u in times[i:] if u - t < 0.5) <= 20 + 10 + 1


def test_tokens_per_minute_is_respected() -> None:
    async def run() -> tuple[float, float]:
        limiter = RateLimiter(requests_per_minute=None, tokens_per_minute=60_000)  # 1000/s
        started = time.monotonic()
        for _ in range(5):
            await limiter.acquire(300)
        spent = time.monotonic() - started
        limiter.settle(300, 0)  # the last request cost nothing after all: refund it
        refunded = time.monotonic()
        await limiter.acquire(300)
        return spent, time.monotonic() - refunded

    spent, after_refund = asyncio.run(run())
    assert 0.4 <= spent <= 1.0  # 1500 tokens against a 1000-token bucket refilling at 1000/s
    assert after_refund < 0.05


def test_latency_quantiles_in_constant_memory() -> None:
    histogram = LatencyHistogram()
    for i in range(1, 1001):
        histogram.add(i / 1000)  # 1 ms .. 1 s
    assert histogram.quantile(0.5) == pytest.approx(0.5, rel=0.02)
    assert histogram.quantile(0.95) == pytest.approx(0.95, rel=0.02)
    assert LatencyHistogram().quantile(0.5) is None


def test_cache_key_covers_what_changes_the_answer() -> None:
    base = ModelSettings(provider="openai", model="m", temperature=0, max_tokens=10)
    messages = (Message("user", "hi"),)

    def key(settings: ModelSettings, msgs: tuple[Message, ...] = messages) -> str:
        return cache_key("openai", "m", settings.generation_settings(), msgs)

    same = base.model_copy(update={"base_url": "http://elsewhere/v1", "concurrency": 99})
    assert key(same) == key(base)
    assert key(base.model_copy(update={"temperature": 0.5})) != key(base)
    assert key(base.model_copy(update={"params": {"seed": 1}})) != key(base)
    assert key(base, (Message("user", "hi!"),)) != key(base)


def test_build_request_joins_system_prompts_and_context() -> None:
    settings = ModelSettings(provider="openai", model="m", system="Be brief.")
    item = Item("q1", "What now?", "na", system="You are a bank.", context="Doc: rates")
    request = build_request(item, settings)
    assert request.messages == (
        Message("system", "Be brief.\n\nYou are a bank."),
        Message("user", "Doc: rates\n\nWhat now?"),
    )
    assert request.tag == "q1"
    bare = build_request(Item("q2", "Hi", "na"), ModelSettings(provider="openai", model="m"))
    assert bare.messages == (Message("user", "Hi"),)


def test_call_many_is_the_judges_entry_point(server: FakeLLMServer, tmp_path: Path) -> None:
    settings = ModelSettings.model_validate(_openai(server, concurrency=3))
    requests = [Request((Message("user", f"judge this {i}"),)) for i in range(7)]

    async def run() -> list[str]:
        with open_workspace(tmp_path / "w.db", create=True) as workspace:
            provider = make_provider("judge", settings, base=tmp_path)
            caller = Caller("judge", settings, provider, cache=workspace)
            try:
                seen: list[int] = []
                results = await call_many(caller, requests, on_result=lambda i, r: seen.append(i))
                assert sorted(seen) == list(range(7))
                again = await call_many(caller, requests)
                assert all(r.is_cached for r in again)
            finally:
                await caller.aclose()
        return [r.completion.text for r in results if r.completion is not None]

    texts = asyncio.run(run())
    assert texts == [f"echo: judge this {i}" for i in range(7)]
    assert len(server.log) == 7


def test_call_model_runs_one_model_from_its_settings(server: FakeLLMServer, tmp_path: Path) -> None:
    settings = ModelSettings.model_validate(_openai(server))
    requests = [Request((Message("system", "Grade."), Message("user", f"r{i}"))) for i in range(3)]
    with open_workspace(tmp_path / "w.db", create=True) as workspace:
        results = asyncio.run(
            call_model("judge", settings, requests, cache=workspace, base=tmp_path)
        )
        assert [r.completion.text for r in results if r.completion] == [
            "echo: r0",
            "echo: r1",
            "echo: r2",
        ]
        assert workspace.frame("calls").height == 3


def test_identical_requests_in_flight_are_sent_once(server: FakeLLMServer, tmp_path: Path) -> None:
    settings = ModelSettings.model_validate(_openai(server, concurrency=8))
    same = Request((Message("user", "I cannot help with that."),))
    requests = [same] * 6 + [Request((Message("user", "other"),))]

    async def run() -> list[bool]:
        provider = make_provider("judge", settings, base=tmp_path)
        caller = Caller("judge", settings, provider)
        try:
            results = await call_many(caller, requests)
        finally:
            await caller.aclose()
        assert all(r.completion is not None for r in results)
        return [r.is_cached for r in results]

    assert sorted(asyncio.run(run())) == [False, False] + [True] * 5
    assert sorted(r.prompt for r in server.log) == ["I cannot help with that.", "other"]


def test_replay_serves_recorded_responses(tmp_path: Path) -> None:
    (tmp_path / "recorded.jsonl").write_text(
        '{"item_id": "q0000", "response": "recorded answer", "output_tokens": 3}\n'
        '{"item_id": "q0001", "response": "", "error": "content filter"}\n'
    )
    replay = {"provider": "replay", "file": "recorded.jsonl"}
    study, workspace = study_with_items(
        tmp_path, {"legacy": replay, "cand": replay}, ["a", "b", "c"]
    )
    with workspace:
        (model,) = generate(study, workspace, models=["legacy"]).models
        assert (model.done, model.failed) == (1, 2)
        assert dict(model.failed_by_kind) == {"client": 1, "missing": 1}
        rows = workspace.frame("responses").sort("item_id")
        assert rows["response"].to_list() == ["recorded answer", None, None]
        assert rows["source"].to_list() == ["replay"] * 3
        assert workspace.frame("calls").height == 0


def _stored(db: Path) -> set[str]:
    connection = sqlite3.connect(db, timeout=10)
    try:
        return {
            row[0] for row in connection.execute("SELECT item_id || '/' || model FROM responses")
        }
    except sqlite3.OperationalError:
        return set()
    finally:
        connection.close()


def test_sigkill_mid_run_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    items = 160
    with FakeLLMServer(latency=0.04) as server:
        models = {"legacy": _openai(server), "cand": _openai(server, model="gpt-new")}
        study_path = write_study(tmp_path, models)
        prompts = [f"prompt number {i}" for i in range(items)]
        study = load_study(study_path)
        with open_workspace(tmp_path / "changeover.db", create=True) as workspace:
            import_items(workspace, write_items(tmp_path / "items.jsonl", prompts), study)
        db = tmp_path / "changeover.db"
        command = [*CHANGEOVER, "generate", "--study", str(study_path)]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while len(_stored(db)) < 40 and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        stored_at_kill = _stored(db)
        requests_before = len(server.log)
        assert 40 <= len(stored_at_kill) < 2 * items, "the kill came too late to test anything"

        subprocess.run(command, check=True, capture_output=True, timeout=120)
        resumed = server.log[requests_before:]

    connection = sqlite3.connect(db)
    try:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        per_response = connection.execute(
            "SELECT item_id, model, count(*) FROM responses GROUP BY item_id, model"
        ).fetchall()
        statuses = [
            r[0] for r in connection.execute("SELECT status FROM runs WHERE kind = 'generate'")
        ]
    finally:
        connection.close()
    # Every item has exactly one response per model, and no error.
    assert len(per_response) == 2 * items and {n for *_, n in per_response} == {1}
    # Nothing stored before the kill was requested again.
    model_of = {"gpt-test": "legacy", "gpt-new": "cand"}
    item_of = {prompt: f"q{i:04d}" for i, prompt in enumerate(prompts)}
    asked_again = {f"{item_of[r.prompt]}/{model_of[r.model]}" for r in resumed}
    assert not asked_again & stored_at_kill
    # Only the requests in flight at the kill (at most `concurrency` per model) were sent twice.
    assert requests_before + len(resumed) - 2 * items <= 2 * 4
    assert statuses == ["interrupted", "finished"]  # the killed run, closed by the next


def test_ctrl_c_says_what_was_stored_and_how_to_resume(tmp_path: Path) -> None:
    with FakeLLMServer(latency=0.3) as server:
        models = {"legacy": _openai(server, concurrency=2), "cand": _openai(server, model="n")}
        study_path = write_study(tmp_path, models)
        study = load_study(study_path)
        db = tmp_path / "changeover.db"
        with open_workspace(db, create=True) as workspace:
            prompts = [f"prompt {i}" for i in range(40)]
            import_items(workspace, write_items(tmp_path / "items.jsonl", prompts), study)
        command = [*CHANGEOVER, "generate", "--study", str(study_path), "--models", "legacy"]
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        deadline = time.monotonic() + 60
        while len(_stored(db)) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=60)
    stored = len(_stored(db))
    assert process.returncode == 130
    out = " ".join(out.split())
    assert out.startswith(f"interrupted: this run received legacy {stored}; each response was")
    assert f"the workspace holds legacy {stored} of 40" in out
    resume = f"changeover generate --study {study_path} --models legacy"
    assert f"resume with `{resume}`: it sends only the {40 - stored} requests still missing" in out
    with open_workspace(db) as workspace:
        assert workspace.frame("runs").filter(kind="generate")["status"].to_list() == [
            "interrupted"
        ]


def test_worker_processes_send_the_requests(server: FakeLLMServer, tmp_path: Path) -> None:
    prompts = [f"pooled {i}" for i in range(12)] + ["!script:429,ok pooled limited"]
    settings = _openai(server, processes=2, concurrency=6)
    study, workspace = study_with_items(tmp_path, {"legacy": settings, "cand": settings}, prompts)
    with workspace:
        (model,) = generate(study, workspace, models=["legacy"]).models
        assert (model.done, model.failed, dict(model.retries_by_kind)) == (13, 0, {"rate_limit": 1})
        texts = workspace.frame("responses").sort("item_id")["response"].to_list()
    assert texts == [f"echo: {p}" for p in prompts]
    assert len(server.log) == 14


# -- money: dry runs, budgets, batches --------------------------------------------------------


def _priced(server: FakeLLMServer, protocol: str = "openai", **extra: object) -> dict[str, object]:
    """A model with prices high enough for cents to show (the fake server's usage is about a
    token per four characters)."""
    url = server.openai_url if protocol == "openai" else server.anthropic_url
    return {
        "provider": protocol, "model": f"{protocol}-m", "base_url": url, "max_tokens": 64,
        "api_key_env": "CHANGEOVER_TEST_KEY", "price_input_per_million": 1000.0,
        "price_output_per_million": 4000.0, "concurrency": 4, "retry_wait": 0.01,
        "max_retries": 1, "batch_poll_interval": 0.02 if extra.get("batch") else 30.0, **extra,
    }  # fmt: skip


def _questions(n: int) -> list[str]:
    return [f"Question {i}: where is " + "the office " * (4 + i % 5) + "today?" for i in range(n)]


def _with_budget(study_path: Path, budget: str) -> Study:
    text = "\n".join(line for line in study_path.read_text().splitlines() if "budget" not in line)
    study_path.write_text(f"{text}\nbudget: {budget}\n")
    return load_study(study_path)


def test_a_dry_run_estimate_is_within_15_percent_of_what_the_run_spends(
    server: FakeLLMServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHANGEOVER_TEST_KEY", "sk-test-key-0123456789")
    models = {"legacy": _priced(server), "cand": _priced(server, "anthropic", batch=True)}
    study, workspace = study_with_items(tmp_path, models, _questions(60))
    with workspace:
        cold = estimate_generation(study, workspace)
        assert [e.basis.startswith("no recorded usage") for e in cold.estimates] == [True, True]
        generate(study, workspace, limit=10)  # a pilot: the models' usage is recorded
        runs, spend = workspace.frame("runs").height, workspace.frame("spend").height
        requests = len(server.log) + len(server.batch_log)
        plan = estimate_generation(study, workspace)
        # Nothing was sent and nothing written.
        assert len(server.log) + len(server.batch_log) == requests
        assert (workspace.frame("runs").height, workspace.frame("spend").height) == (runs, spend)
        assert [(e.model, e.requests, e.cached) for e in plan.estimates] == [
            ("legacy", 50, 0), ("cand", 50, 0),
        ]  # fmt: skip
        assert all(e.basis.startswith("recorded usage of 10 requests") for e in plan.estimates)
        summary = generate(study, workspace)
        spent = {s.model: s.cost for s in workspace.spend_summary(run_id=summary.run_id)}
    for estimate in plan.estimates:
        actual = spent[estimate.model]
        assert estimate.cost is not None and actual is not None
        assert abs(estimate.cost - actual) <= 0.15 * actual, (estimate.model, estimate.cost, actual)
    # Without a pilot the output is taken at max_tokens: an upper bound, far above.
    assert cold.cost is not None and plan.cost is not None and cold.cost > 2 * plan.cost


def test_a_budget_stops_the_run_before_it_is_exceeded_and_a_rerun_continues(
    server: FakeLLMServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHANGEOVER_TEST_KEY", "sk-test-key-0123456789")
    models = {"legacy": _priced(server), "cand": _priced(server, model="openai-n")}
    prompts = _questions(30)
    study, workspace = study_with_items(tmp_path, models, prompts)
    study_path = tmp_path / "study.yaml"
    with workspace:
        full = estimate_generation(study, workspace).cost
        assert full is not None  # about $5.70 at max_tokens
        study = _with_budget(study_path, "{per_run: 1.50}")
        first = generate(study, workspace)
        assert first.budget_exceeded is not None
        assert first.budget_exceeded.startswith("budget.per_run ($1.50) would be exceeded")
        assert workspace.spend_total() <= 1.50
        # It stopped only when the next request's worst case could not fit.
        assert workspace.spend_total() > 1.50 - 2 * 0.33
        # Nothing lost: every answer the server gave is stored, and nothing else.
        stored = workspace.frame("responses")
        assert stored.height == len(server.log) and stored["error"].null_count() == stored.height
        assert 0 < stored.height < 60
        # The study's limit counts earlier runs too.
        study = _with_budget(study_path, "{per_study: 2.50}")
        second = generate(study, workspace)
        assert second.budget_exceeded is not None
        assert second.budget_exceeded.startswith("budget.per_study ($2.50) would be exceeded")
        assert 1.50 < workspace.spend_total() <= 2.50
        study = _with_budget(study_path, "{per_run: 50, per_study: 100}")
        third = generate(study, workspace)
        assert third.budget_exceeded is None
        responses = workspace.frame("responses")
        assert responses.height == 60 and responses["error"].null_count() == 60
    assert len(server.log) == 60  # no request was sent twice
    assert sorted(r.prompt for r in server.log) == sorted(prompts * 2)


def test_a_budget_needs_prices_and_a_bound_on_output(tmp_path: Path) -> None:
    unpriced = {"provider": "openai", "model": "m", "base_url": "http://127.0.0.1:9/v1"}
    study_path = write_study(tmp_path, {"legacy": unpriced, "cand": unpriced})
    with pytest.raises(StudyError, match="models.legacy.price_input_per_million: the study has"):
        _with_budget(study_path, "{per_run: 5}")
    priced = {**unpriced, "price_input_per_million": 1, "price_output_per_million": 2}
    study_path = write_study(tmp_path, {"legacy": priced, "cand": priced})
    with pytest.raises(StudyError, match="models.legacy.max_tokens: .* no upper bound"):
        _with_budget(study_path, "{per_run: 5}")
    with pytest.raises(StudyError, match="budget.per_run: Input should be greater than 0"):
        _with_budget(study_path, "{per_run: -1}")
    with pytest.raises(StudyError, match="budget.per_study: Input should be a finite number"):
        _with_budget(study_path, "{per_study: .inf}")
    with pytest.raises(StudyError, match="budget: set per_run and/or per_study"):
        _with_budget(study_path, "{}")


def _events(server: FakeLLMServer, event: str) -> list[str]:
    return [batch_id for name, batch_id in server.events if name == event]


def test_batch_generation_killed_after_submitting_resumes_without_resubmitting(
    tmp_path: Path,
) -> None:
    """Must show: kill the process after submission and re-run: none submitted again, every
    result stored; an expired entry and a partial failure sent again online; the saving said."""
    # Both models' batches meet the failures (the scripts step per prompt, across models); the
    # third attempt, online, succeeds.
    late, flaky = "!script:expire,expire,ok a late one", "!script:500,500,ok a flaky one"
    prompts = [f"batched question {i}" for i in range(20)] + [late, flaky]
    environment = {**os.environ, "CHANGEOVER_TEST_KEY": "sk-test-key-0123456789"}
    with FakeLLMServer(hold_batches=True) as server:
        models = {
            "legacy": _priced(server, batch=True),
            "cand": _priced(server, "anthropic", batch=True),
        }
        study_path = write_study(tmp_path, models)
        study = load_study(study_path)
        db = tmp_path / "changeover.db"
        with open_workspace(db, create=True) as workspace:
            import_items(workspace, write_items(tmp_path / "items.jsonl", prompts), study)
        command = [*CHANGEOVER, "generate", "--study", str(study_path)]
        process = subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)  # fmt: skip
        deadline = time.monotonic() + 60
        # Both batches submitted, and each polled once: the process has recorded them.
        while time.monotonic() < deadline and (
            len(_events(server, "create")) < 2
            or set(_events(server, "retrieve")) < set(_events(server, "create"))
        ):
            time.sleep(0.01)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        assert len(server.created_batches()) == 2 and _stored(db) == set()
        server.release_batches()
        rerun = subprocess.run(
            command, env=environment, check=True, capture_output=True, text=True, timeout=120
        )
        created = server.created_batches()
        online = sorted(r.prompt for r in server.log)
    assert len(created) == 2  # 0 submitted again
    assert online == sorted([late, flaky] * 2)
    connection = sqlite3.connect(db)
    try:
        rows = connection.execute(
            "SELECT model, count(*), count(response) FROM responses GROUP BY model ORDER BY model"
        ).fetchall()
        statuses = [r[0] for r in connection.execute("SELECT status FROM runs ORDER BY run_id")]
        modes = dict(connection.execute("SELECT mode, count(*) FROM spend GROUP BY mode"))
    finally:
        connection.close()
    assert rows == [("cand", 22, 22), ("legacy", 22, 22)]  # every result stored, once
    assert statuses[-2:] == ["interrupted", "finished"]
    assert modes == {"batch": 40, "online": 4}
    out = " ".join(rerun.stdout.split())
    assert "legacy: 22 requests were in batches an earlier run submitted" in out
    assert re.search(
        r"legacy: 20 answers through the batch API cost \$([\d.]+), saving \$\1 \(50%\)", out
    )
    assert "legacy: 2 entries failed in a batch (1 batch expired or was cancelled); 2 sent " in out
