"""The batch endpoints of both SDK adapters, through the official SDKs' typed batch methods
(`files.create`, `batches.create/retrieve/cancel`, `files.content`; `messages.batches.create/
retrieve/results/cancel`) against the local server: a round trip with partial failures, an
expired entry, a cancelled batch, a batch refused as a whole, and a batch the server never had."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from changeover.providers import (
    BatchAPI,
    BatchStatus,
    CallError,
    Message,
    ModelSettings,
    Request,
    make_provider,
)
from changeover.providers.anthropic import AnthropicProvider
from changeover.providers.openai import OpenAIProvider
from tests.fakes.llm_server import FakeLLMServer

PROTOCOLS = ("openai", "anthropic")


def _provider(
    server: FakeLLMServer, protocol: str, **extra: Any
) -> OpenAIProvider | AnthropicProvider:
    url = server.openai_url if protocol == "openai" else server.anthropic_url
    settings = ModelSettings(
        provider=protocol, model=f"{protocol}-m", base_url=url, api_key_env="CHANGEOVER_TEST_KEY",
        max_tokens=50, batch=True, **extra,
    )  # fmt: skip
    provider = make_provider("m", settings, base=Path.cwd())
    assert isinstance(provider, OpenAIProvider | AnthropicProvider)
    return provider


def _request(text: str) -> Request:
    return Request((Message("system", "Be brief."), Message("user", text)))


async def _until_ended(provider: BatchAPI, batch_id: str) -> BatchStatus:
    for _ in range(20):
        status = await provider.batch_status(batch_id)
        if status.state != "in_progress":
            return status
    raise AssertionError("the batch never ended")


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHANGEOVER_TEST_KEY", "sk-batch-secret-0123456789")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_batch_round_trip_with_partial_failures(protocol: str, server: FakeLLMServer) -> None:
    entries = [
        ("k-ok", _request("a fine question")),
        ("k-500", _request("!script:500 a server error")),
        ("k-400", _request("!script:400 a malformed request")),
        ("k-expire", _request("!script:expire never run")),
    ]

    async def run() -> tuple[str, BatchStatus, BatchStatus, dict[str, Any]]:
        provider = _provider(server, protocol)
        try:
            batch_id = await provider.submit_batch(entries)
            first = await provider.batch_status(batch_id)
            ended = await _until_ended(provider, batch_id)
            outcomes = {o.custom_id: o for o in await provider.batch_results(batch_id)}
        finally:
            await provider.aclose()
        return batch_id, first, ended, outcomes

    batch_id, first, ended, outcomes = asyncio.run(run())
    assert first.state == "in_progress" and first.total == 4
    assert (ended.state, ended.total, ended.completed, ended.failed) == ("ended", 4, 4, 3)
    assert ended.detail == "expired"  # one entry never ran
    ok = outcomes["k-ok"].completion
    assert ok is not None and ok.text == "echo: a fine question"
    assert ok.input_tokens == len("a fine question") // 4  # the server's usage, read back
    kinds = {key: o.error.kind for key, o in outcomes.items() if o.error is not None}
    assert kinds == {"k-500": "server", "k-400": "client", "k-expire": "expired"}
    # What the server was sent: the protocol's own body in each entry (Anthropic's system apart).
    logged = {r.prompt: r for r in server.batch_log}
    assert logged["a fine question"].system == "Be brief."
    assert logged["a fine question"].model == f"{protocol}-m"
    events = [event for event, _ in server.events]
    expected = ["upload", "create"] if protocol == "openai" else ["create"]
    assert events[: len(expected)] == expected and server.created_batches() == [batch_id]
    assert server.log == []  # nothing went through the online endpoint


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_cancelled_batch_ends_with_nothing_run(protocol: str, server: FakeLLMServer) -> None:
    async def run() -> tuple[BatchStatus, list[str]]:
        provider = _provider(server, protocol)
        try:
            batch_id = await provider.submit_batch([("k1", _request("cancel me"))])
            await provider.cancel_batch(batch_id)
            status = await _until_ended(provider, batch_id)
            outcomes = await provider.batch_results(batch_id)
        finally:
            await provider.aclose()
        return status, [str(o.error) for o in outcomes if o.error is not None]

    status, errors = asyncio.run(run())
    assert (status.state, status.failed) == ("ended", 1)
    assert errors == ["the batch was cancelled before this request ran"]
    assert ("cancel", "batch_1" if protocol == "openai" else "msgbatch_1") in server.events


def test_an_openai_batch_refused_as_a_whole(server: FakeLLMServer) -> None:
    async def run() -> BatchStatus:
        provider = _provider(server, "openai")
        try:
            batch_id = await provider.submit_batch([("k1", _request("!script:batchfail x"))])
            return await _until_ended(provider, batch_id)
        finally:
            await provider.aclose()

    status = asyncio.run(run())
    assert status.state == "failed"
    assert status.detail == "invalid_request: scripted batch failure"


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_an_unknown_batch_is_a_404(protocol: str, server: FakeLLMServer) -> None:
    async def run() -> None:
        provider = _provider(server, protocol)
        try:
            await provider.batch_status("batch_nowhere")
        finally:
            await provider.aclose()

    with pytest.raises(CallError) as raised:
        asyncio.run(run())
    assert (raised.value.status, raised.value.kind) == (404, "fatal")


def test_batch_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="provider replay has none"):
        ModelSettings(provider="replay", file="r.jsonl", batch=True)
    with pytest.raises(ValueError, match="batch_retry applies to batch models only"):
        ModelSettings(provider="openai", model="m", batch_retry="batch")
    with pytest.raises(ValueError, match="processes: a batch model"):
        ModelSettings(provider="openai", model="m", batch=True, processes=2)
    with pytest.raises(ValueError, match="less than 1"):
        ModelSettings(provider="openai", model="m", batch=True, batch_discount=1.0)
    settings = ModelSettings(provider="anthropic", model="m", batch=True, batch_size=10)
    # A round trip through a dump (the worker processes' way) keeps it valid.
    assert ModelSettings.model_validate(settings.model_dump()) == settings
