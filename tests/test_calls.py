"""`changeover.calls`: prices, the budget (`SpendLimit`), estimates before spending, and batches
(`run_batch`) through a `Caller` with a workspace, against the local server."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from changeover.calls import (
    BatchProgress,
    Caller,
    CallResult,
    SpendLimit,
    UsageHistory,
    call_many,
    estimate_spend,
    request_cost,
    run_batch,
    worst_case_cost,
)
from changeover.providers import Message, ModelSettings, Request, make_provider
from changeover.workspace import Workspace, open_workspace
from tests.fakes.llm_server import FakeLLMServer

SECRET = "sk-batch-secret-0123456789"


@pytest.fixture
def server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(retry_after=0.05) as running:
        yield running


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Workspace]:
    with open_workspace(tmp_path / "w.db", create=True) as opened:
        yield opened


def _settings(server: FakeLLMServer, protocol: str = "openai", **extra: Any) -> ModelSettings:
    url = server.openai_url if protocol == "openai" else server.anthropic_url
    return ModelSettings.model_validate(
        {"provider": protocol, "model": f"{protocol}-m", "base_url": url, "max_tokens": 50,
         "api_key_env": "CHANGEOVER_TEST_KEY", "price_input_per_million": 2.0,
         "price_output_per_million": 8.0, "batch": True, "batch_poll_interval": 0.02,
         "retry_wait": 0.01, "max_retries": 1, **extra}
    )  # fmt: skip


def _requests(*texts: str) -> list[Request]:
    return [Request((Message("user", text),)) for text in texts]


def _run(
    settings: ModelSettings,
    workspace: Workspace,
    requests: list[Request],
    *,
    limit: SpendLimit | None = None,
    progress: list[BatchProgress] | None = None,
) -> list[CallResult]:
    async def run() -> list[CallResult]:
        provider = make_provider("judge", settings, base=Path.cwd())
        caller = Caller(
            "judge", settings, provider, cache=workspace, batches=workspace, purpose="judging",
            limit=limit, secrets=[SECRET],
        )  # fmt: skip
        if progress is not None:
            caller.on_batch_progress = lambda p: progress.append(BatchProgress(**p.__dict__))
        try:
            return await call_many(caller, requests)
        finally:
            await caller.aclose()

    return asyncio.run(run())


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHANGEOVER_TEST_KEY", SECRET)


# -- prices, the budget and estimates ------------------------------------------------------------


def test_a_batch_request_costs_the_discount_less() -> None:
    settings = ModelSettings(
        provider="openai", model="m", price_input_per_million=2.0, price_output_per_million=8.0
    )
    assert request_cost(settings, 1_000_000, 500_000) == pytest.approx(6.0)
    assert request_cost(settings, 1_000_000, 500_000, is_batch=True) == pytest.approx(3.0)
    assert request_cost(ModelSettings(provider="openai", model="m"), 10, 10) is None


def test_the_worst_case_bounds_any_tokenizer() -> None:
    settings = ModelSettings(
        provider="anthropic", model="m", max_tokens=100, price_input_per_million=1.0,
        price_output_per_million=1.0,
    )  # fmt: skip
    for text in ("plain words", "日本語のテキスト", "emoji 🎉🎉🎉"):
        request = Request((Message("system", "rules"), Message("user", text)))
        # At most one token per byte (a token is at least one byte), plus the framing.
        most = len(text.encode()) + len(b"rules") + 8 + 100
        assert worst_case_cost(request, settings) == pytest.approx(most / 1e6)


def test_a_spend_limit_refuses_what_could_exceed_it_and_settles_the_real_cost() -> None:
    limit = SpendLimit(per_run=1.0, per_study=10.0, spent_before=8.5)
    assert limit.try_reserve(0.6)
    assert limit.try_reserve(0.3)
    limit.settle(0.6, 0.1)  # the answer cost less than its worst case
    assert (limit.spent, limit.reserved) == (pytest.approx(0.1), pytest.approx(0.3))
    assert limit.try_reserve(0.55)  # 0.1 + 0.3 + 0.55 <= 1.0
    assert not limit.try_reserve(0.2)
    assert limit.exceeded is None  # not yet: the requests in flight may give some back
    limit.settle(0.3, 0.05)
    limit.settle(0.55, 0.05)
    assert limit.try_reserve(0.2)  # 0.2 spent, 0.2 held
    assert not limit.try_reserve(0.7)
    limit.settle(0.2, 0.2)
    assert not limit.try_reserve(0.7)  # 0.4 spent, nothing in flight: over for good
    assert limit.exceeded is not None and limit.exceeded.startswith("budget.per_run ($1.00)")
    assert not limit.try_reserve(0.0001)
    study = SpendLimit(per_run=None, per_study=10.0, spent_before=9.99)
    assert not asyncio.run(study.reserve(0.02))
    assert study.exceeded is not None and "budget.per_study ($10.00)" in study.exceeded
    assert "the study has spent or holds $9.99" in study.exceeded
    unknown = SpendLimit(per_run=1.0, per_study=None)
    assert unknown.try_reserve(0.4)
    unknown.settle(0.4, None)  # usage unknown: the worst case is what it counts
    assert unknown.spent == pytest.approx(0.4)


def test_a_request_waits_for_those_in_flight_to_settle() -> None:
    async def run() -> list[str]:
        limit = SpendLimit(per_run=1.0, per_study=None)
        order = []
        assert limit.try_reserve(0.8)

        async def waiting() -> None:
            assert await limit.reserve(0.5)
            order.append("sent")

        task = asyncio.create_task(waiting())
        await asyncio.sleep(0.01)
        order.append("settling")
        limit.settle(0.8, 0.2)
        await task
        return order

    assert asyncio.run(run()) == ["settling", "sent"]


def test_estimates_come_from_recorded_usage_or_a_stated_rule() -> None:
    settings = ModelSettings(
        provider="openai", model="m", max_tokens=200, price_input_per_million=1.0,
        price_output_per_million=2.0,
    )  # fmt: skip
    fresh = estimate_spend(
        "m", settings, "generation", requests=10, input_chars=4000, messages=10, history=None
    )
    assert (fresh.input_tokens, fresh.output_tokens) == (1000 + 40, 2000)
    assert fresh.cost == fresh.cost_at_max_tokens == pytest.approx((1040 + 4000) / 1e6)
    assert fresh.basis.startswith("no recorded usage: 4 characters per input token")
    history = UsageHistory(requests=20, input_chars=6000, input_tokens=2000, output_tokens=600)
    known = estimate_spend(
        "m", settings, "generation", requests=10, input_chars=4500, messages=10, history=history
    )
    assert (known.input_tokens, known.output_tokens) == (1500, 300)  # 3 chars/token, 30 out
    assert known.cost == pytest.approx((1500 + 600) / 1e6)
    assert "recorded usage of 20 requests (3.0 characters per input token" in known.basis
    batch = estimate_spend(
        "m", settings.model_copy(update={"batch": True}), "generation", requests=10,
        input_chars=4500, messages=10, history=history,
    )  # fmt: skip
    assert batch.cost == pytest.approx(known.cost / 2)


# -- batches -------------------------------------------------------------------------------------


def test_a_batch_answers_stores_and_is_never_sent_twice(
    server: FakeLLMServer, workspace: Workspace
) -> None:
    settings = _settings(server)
    requests = _requests("one", "two", "two", "three")  # "two" twice: one entry, one payment
    progress: list[BatchProgress] = []
    results = _run(settings, workspace, requests, progress=progress)
    assert [r.completion.text for r in results if r.completion] == [
        "echo: one", "echo: two", "echo: two", "echo: three",
    ]  # fmt: skip
    assert [r.mode for r in results] == ["batch"] * 4
    assert [r.is_cached for r in results] == [False, False, True, False]
    assert all(r.saving == pytest.approx(r.cost) for r in results if r.cost)  # 50% off
    assert server.created_batches() == ["batch_1"] and server.log == []
    assert len(server.batch_log) == 3
    assert progress[0].batches == 1 and progress[-1].completed == progress[-1].submitted == 3
    (judge,) = workspace.spend_summary()
    assert (judge.purpose, judge.requests, judge.batch_requests) == ("judging", 3, 3)
    assert judge.latency_p50_s is None  # a batch answer's wait is not the model's latency
    assert workspace.frame("batches")["state"].to_list() == ["collected"]
    again = _run(settings, workspace, requests)
    assert all(r.is_cached for r in again) and server.created_batches() == ["batch_1"]


def test_a_run_stopped_after_submitting_resumes_the_same_batch(
    tmp_path: Path, workspace: Workspace
) -> None:
    with FakeLLMServer(hold_batches=True) as server:
        settings = _settings(server, "anthropic")
        requests = _requests("first", "second")

        async def submit_then_stop() -> None:
            provider = make_provider("judge", settings, base=tmp_path)
            caller = Caller(
                "judge", settings, provider, cache=workspace, batches=workspace, purpose="judging"
            )
            task = asyncio.create_task(run_batch(caller, requests))
            while ("retrieve", "msgbatch_1") not in server.events:
                await asyncio.sleep(0.01)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await caller.aclose()

        asyncio.run(submit_then_stop())
        assert workspace.frame("batches")["state"].to_list() == ["submitted"]
        assert workspace.frame("calls").height == 0
        server.release_batches()
        progress: list[BatchProgress] = []
        results = _run(settings, workspace, requests, progress=progress)
    assert [r.completion.text for r in results if r.completion] == ["echo: first", "echo: second"]
    assert server.created_batches() == ["msgbatch_1"]  # resumed, not submitted again
    assert progress[-1].resumed == 2
    assert workspace.frame("batches")["state"].to_list() == ["collected"]
    assert workspace.frame("spend").height == 2


@pytest.mark.parametrize("protocol", ["openai", "anthropic"])
def test_failed_and_expired_entries_are_sent_again_online(
    protocol: str, server: FakeLLMServer, workspace: Workspace
) -> None:
    requests = _requests(
        "fine", "!script:500,ok flaky", "!script:expire,ok late", "!script:400 bad"
    )
    progress: list[BatchProgress] = []
    results = _run(_settings(server, protocol), workspace, requests, progress=progress)
    by_prompt = {r.messages[0].content: res for r, res in zip(requests, results, strict=True)}
    assert by_prompt["fine"].mode == "batch"
    flaky, late = by_prompt["!script:500,ok flaky"], by_prompt["!script:expire,ok late"]
    assert (flaky.mode, flaky.attempts, dict(flaky.retries)) == ("online", 2, {"server": 1})
    assert (late.mode, dict(late.retries)) == ("online", {"expired": 1})
    bad = by_prompt["!script:400 bad"]
    assert bad.error is not None and (bad.error.kind, bad.attempts) == ("client", 1)
    online = sorted(r.prompt for r in server.log)
    assert online == ["!script:500,ok flaky", "!script:expire,ok late"]
    last = progress[-1]
    assert (last.failed, last.retried_online, last.expired) == (3, 2, 1)
    modes = sorted(workspace.frame("spend")["mode"].to_list())
    assert modes == ["batch", "online", "online"]


def test_batch_retry_batch_sends_failures_in_a_new_batch(
    server: FakeLLMServer, workspace: Workspace
) -> None:
    settings = _settings(server, batch_retry="batch")
    results = _run(settings, workspace, _requests("fine", "!script:500,ok flaky"))
    assert [r.mode for r in results] == ["batch", "batch"]
    assert server.created_batches() == ["batch_1", "batch_2"] and server.log == []


def test_a_batch_refused_as_a_whole_goes_online(
    server: FakeLLMServer, workspace: Workspace
) -> None:
    results = _run(_settings(server), workspace, _requests("!script:batchfail,ok a", "b"))
    assert [(r.mode, r.completion is not None) for r in results] == [("online", True)] * 2
    assert workspace.frame("batches")["detail"].to_list()[0].startswith('{"status": "invalid')


def test_a_batch_the_provider_no_longer_knows_is_submitted_again(
    server: FakeLLMServer, workspace: Workspace
) -> None:
    settings = _settings(server)
    requests = _requests("orphan")
    key = Caller("judge", settings, make_provider("judge", settings, base=Path.cwd())).key(
        requests[0]
    )
    workspace.record_batch(
        "batch_gone", model="judge", purpose="judging", provider="openai", keys=[key], run_id=None
    )
    results = _run(settings, workspace, requests)
    assert results[0].completion is not None and server.created_batches() == ["batch_1"]
    states = dict(workspace.frame("batches").select("batch_id", "state").iter_rows())
    assert states == {"batch_gone": "lost", "batch_1": "collected"}


def test_batch_errors_are_redacted(server: FakeLLMServer, workspace: Workspace) -> None:
    results = _run(_settings(server, "anthropic"), workspace, _requests("!script:400echo x"))
    error = results[0].error
    assert error is not None and "invalid credentials" in str(error)
    assert SECRET not in str(error) and "[redacted]" in str(error)


def test_a_budget_submits_what_it_can_pay_for_and_more_as_batches_settle(
    server: FakeLLMServer, workspace: Workspace
) -> None:
    settings = _settings(server)
    requests = _requests(*(f"question number {i}" for i in range(10)))
    worst = worst_case_cost(requests[0], settings, is_batch=True)
    limit = SpendLimit(per_run=worst * 1.4, per_study=None)
    results = _run(settings, workspace, requests, limit=limit)
    sent = [r for r in results if r.completion is not None]
    # One request fits at a time; each batch settles far below its worst case, which frees
    # room for the next, until the next one's worst case no longer fits.
    assert 2 <= len(sent) == len(server.batch_log) == len(server.created_batches()) < 10
    unsent = [r for r in results if r.error is not None]
    assert {(r.error.kind, r.attempts) for r in unsent if r.error} == {("budget", 0)}
    assert limit.exceeded is not None and limit.spent <= worst * 1.4
    assert limit.spent + worst > worst * 1.4  # it stopped only when the next could not fit
    assert workspace.spend_total() == pytest.approx(limit.spent)
    detail = json.loads(workspace.frame("batches")["detail"].to_list()[0])
    assert detail == {"status": "completed", "succeeded": 1, "failed": 0}
