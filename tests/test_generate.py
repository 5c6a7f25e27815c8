"""Generation: the request cache, resume, --retry-failed, --limit, rate limits, replay, the
judges' `call_many`, and a SIGKILL in the middle of a run."""

from __future__ import annotations

import asyncio
import os
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
from changeover.generate import build_request, generate
from changeover.io import import_items
from changeover.providers import Message, ModelSettings, Request, make_provider
from changeover.records import Item
from changeover.study import load_study
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
