"""Both SDK providers against a real local server speaking their protocol: every scenario of a
provider's life (success, 429 with Retry-After, 500, timeout, malformed JSON, empty content),
driven through `changeover.generate` and the official SDK clients, counted in the summary."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from changeover.generate import generate
from tests.fakes.llm_server import FakeLLMServer
from tests.fakes.studies import run_cli, study_with_items

SCENARIOS = {
    "plain": "what is the capital of France?",
    "rate_limited": "!script:429,ok tell me about rate limits",
    "flaky": "!script:500,ok a flaky server",
    "broken": "!script:500 a broken server",
    "slow_once": "!script:timeout,ok a slow server",
    "too_slow": "!script:timeout a server that never answers in time",
    "malformed": "!script:malformed a broken proxy",
    "empty": "!script:empty a model with nothing to say",
}


def _settings(protocol: str, server: FakeLLMServer) -> dict[str, object]:
    url = server.openai_url if protocol == "openai" else server.anthropic_url
    return {
        "provider": protocol,
        "model": f"{protocol}-model",
        "base_url": url,
        "api_key_env": "CHANGEOVER_TEST_KEY",
        "temperature": 0,
        "max_tokens": 64,
        "concurrency": 8,
        "timeout": 0.5,
        "max_retries": 1,
        "retry_wait": 0.01,
        "price_input_per_million": 1.0,
        "price_output_per_million": 2.0,
    }


@pytest.mark.parametrize("protocol", ["openai", "anthropic"])
def test_every_scenario_is_counted(
    protocol: str, server: FakeLLMServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHANGEOVER_TEST_KEY", "sk-test-secret-123")
    other = "anthropic" if protocol == "openai" else "openai"
    study, workspace = study_with_items(
        tmp_path,
        {"legacy": _settings(protocol, server), "cand": _settings(other, server)},
        list(SCENARIOS.values()),
    )
    with workspace:
        summary = generate(study, workspace, models=["legacy"])
        (model,) = summary.models
        assert (model.total, model.done, model.failed) == (8, 4, 4)
        assert dict(model.failed_by_kind) == {"server": 1, "timeout": 1, "malformed": 1, "empty": 1}
        assert dict(model.retries_by_kind) == {
            "rate_limit": 1, "server": 2, "timeout": 2,
        }  # fmt: skip
        assert model.requests == 13  # 8 items + 5 retries
        assert model.input_tokens > 0 and model.output_tokens > 0
        expected_cost = (model.input_tokens * 1.0 + model.output_tokens * 2.0) / 1e6
        assert model.cost == pytest.approx(expected_cost)
        p50, p95 = model.p50, model.p95
        assert p50 is not None and p95 is not None and 0 < p50 <= p95 < 5

        rows = {r["item_id"]: r for r in workspace.frame("responses").iter_rows(named=True)}
        answers = {prompt: rows[f"q{i:04d}"] for i, prompt in enumerate(SCENARIOS.values())}
        assert answers[SCENARIOS["plain"]]["response"] == f"echo: {SCENARIOS['plain']}"
        assert answers[SCENARIOS["rate_limited"]]["attempts"] == 2
        assert answers[SCENARIOS["broken"]]["error"].startswith("server: HTTP 500")
        assert answers[SCENARIOS["too_slow"]]["error"].startswith("timeout:")
        assert answers[SCENARIOS["malformed"]]["error"].startswith("malformed:")
        assert answers[SCENARIOS["empty"]]["error"].startswith("empty:")
        assert all((r["response"] is None) != (r["error"] is None) for r in rows.values())

    log = server.log
    assert len(log) == 13
    assert {r.protocol for r in log} == {protocol}
    assert {r.model for r in log} == {f"{protocol}-model"}
    # Retry-After (0.3 s) is honoured although the backoff alone would wait 0.01 s.
    limited = [r.received_at for r in log if r.prompt == SCENARIOS["rate_limited"]]
    assert len(limited) == 2 and limited[1] - limited[0] >= 0.3
    # The key reaches the server from the environment, and is stored nowhere.
    assert all("sk-test-secret-123" in r.authorization for r in log)
    for path in tmp_path.iterdir():
        assert b"sk-test-secret-123" not in path.read_bytes(), path


@pytest.mark.parametrize("protocol", ["openai", "anthropic"])
def test_messages_reach_the_server_as_the_protocol_says(
    protocol: str, server: FakeLLMServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHANGEOVER_TEST_KEY", "k")
    settings = _settings(protocol, server) | {"system": "Be brief."}
    study, workspace = study_with_items(
        tmp_path, {"legacy": settings, "cand": settings}, ["hello there"]
    )
    with workspace:
        generate(study, workspace, models=["legacy"])
        (row,) = workspace.frame("responses").iter_rows(named=True)
    assert row["response"] == "echo: hello there"
    assert row["finish_reason"] == ("stop" if protocol == "openai" else "end_turn")
    assert row["input_tokens"] is not None and row["output_tokens"] is not None
    assert [r.prompt for r in server.log] == ["hello there"]


def test_an_authentication_failure_stops_the_model(
    server: FakeLLMServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHANGEOVER_TEST_KEY", "k")
    settings = _settings("openai", server) | {"concurrency": 1}
    prompts = ["!script:401 first", "second", "third"]
    study, workspace = study_with_items(tmp_path, {"legacy": settings, "cand": settings}, prompts)
    with workspace:
        (model,) = generate(study, workspace, models=["legacy"]).models
        assert model.stopped is not None and "401" in model.stopped
        assert model.failed == 1 and model.done == 0
        assert workspace.frame("responses").height == 1
    assert len(server.log) == 1


@pytest.mark.parametrize("protocol", ["openai", "anthropic"])
def test_implausible_usage_is_unknown_and_the_response_kept(
    protocol: str,
    server: FakeLLMServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # 10**30 output tokens once aborted a run (nothing after it stored); -5 and 2.5 were kept.
    monkeypatch.setenv("CHANGEOVER_TEST_KEY", "k")
    settings = _settings(protocol, server)
    prompts = ["!script:hugeusage a", "!script:negusage b", "plain c", "!script:hugeusage d"]
    study, workspace = study_with_items(tmp_path, {"legacy": settings, "cand": settings}, prompts)
    with workspace:
        (model,) = generate(study, workspace, models=["legacy"]).models
        assert (model.done, model.failed, model.implausible_usage) == (4, 0, 3)
        assert model.implausible_example is not None
        assert "tokens=1e+30" in model.implausible_example or "=-5" in model.implausible_example
        rows = {r["item_id"]: r for r in workspace.frame("responses").iter_rows(named=True)}
    assert all(row["response"].startswith("echo: ") for row in rows.values())
    assert (rows["q0000"]["input_tokens"], rows["q0000"]["output_tokens"]) == (3, None)
    assert (rows["q0001"]["input_tokens"], rows["q0001"]["output_tokens"]) == (None, None)
    assert rows["q0002"]["output_tokens"] > 0

    monkeypatch.chdir(tmp_path)
    workspace.path.unlink()
    assert run_cli(["import", "items", str(tmp_path / "items.jsonl")], monkeypatch) == 0
    assert run_cli(["generate", "--models", "legacy"], monkeypatch) == 0
    out = capsys.readouterr().out
    assert out.count("token usage that cannot be true") == 1  # once per model


@pytest.mark.parametrize("protocol", ["openai", "anthropic"])
def test_the_timeout_bounds_the_whole_request(
    protocol: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One byte every 0.2 s keeps every read within any per-read timeout; the answer would take
    # a minute. `timeout: 1` must end the request, not each read.
    monkeypatch.setenv("CHANGEOVER_TEST_KEY", "k")
    with FakeLLMServer(drip_interval=0.2) as server:
        settings = _settings(protocol, server) | {"timeout": 1, "max_retries": 0}
        prompt = "!script:drip a provider that drips"
        study, workspace = study_with_items(
            tmp_path, {"legacy": settings, "cand": settings}, [prompt]
        )
        with workspace:
            (model,) = generate(study, workspace, models=["legacy"]).models
            (row,) = workspace.frame("responses").iter_rows(named=True)
        assert dict(model.failed_by_kind) == {"timeout": 1}
        assert row["error"] == "timeout: no answer within 1s"
        for _ in range(100):  # the server notices the hang-up at its next byte
            if server.cut:
                break
            time.sleep(0.05)
        assert server.cut == [prompt]


@pytest.mark.parametrize("protocol", ["openai", "anthropic"])
def test_nothing_listening_at_base_url_stops_the_model_after_a_few_attempts(
    protocol: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A wrong base_url once looked like a slow server: "timeout: no answer within 60s", retried
    # six times per item. With the default retry settings, three refused attempts stop it.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed when the block ends: nothing listens there
    url = f"http://127.0.0.1:{port}" + ("/v1" if protocol == "openai" else "")
    settings = {"provider": protocol, "model": "m", "base_url": url, "api_key_env": "KEY",
                "concurrency": 1}  # fmt: skip
    monkeypatch.setenv("KEY", "k")
    study, workspace = study_with_items(
        tmp_path, {"legacy": settings, "cand": settings}, ["a", "b", "c", "d", "e"]
    )
    with workspace:
        (model,) = generate(study, workspace, models=["legacy"]).models
        errors = workspace.frame("responses")["error"].to_list()
    assert model.requests == 3 and model.failed == 1 and model.done == 0
    assert dict(model.retries_by_kind) == {"unreachable": 2}
    assert model.stopped is not None and f"nothing answers at {url}" in model.stopped
    assert "connection refused" in model.stopped and "base_url" in model.stopped
    assert errors == [f"unreachable: {model.stopped}"]  # the other items were never sent

    monkeypatch.chdir(tmp_path)
    assert run_cli(["generate", "--models", "legacy", "--retry-failed"], monkeypatch) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert f"legacy: stopped early — nothing answers at {url}" in out
