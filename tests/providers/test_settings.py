"""The `models:` entries of the study file, and the pieces providers share."""

from __future__ import annotations

import email.utils
import time
from typing import Any

import pytest

from changeover.errors import StudyError
from changeover.providers import ModelSettings, api_key_for
from changeover.providers.base import classify_status, parse_retry_after, redact
from changeover.study import parse_study


def _study(models: dict[str, Any]) -> dict[str, Any]:
    return {"incumbent": "legacy", "candidates": ["cand"], "segments": {"na": 1}, "models": models}


def test_the_issue_example_is_valid() -> None:
    study = parse_study(
        _study(
            {
                "legacy": {
                    "provider": "openai", "model": "gpt-4-0613",
                    "base_url": "http://127.0.0.1:8010/v1", "api_key_env": "OPENAI_API_KEY",
                    "temperature": 0, "max_tokens": 512, "concurrency": 16,
                },
                "cand": {
                    "provider": "anthropic", "model": "claude-sonnet-x",
                    "api_key_env": "ANTHROPIC_API_KEY", "requests_per_minute": 600,
                },
                "cand-b": {"provider": "replay", "file": "cand-b.jsonl"},
            }
        )
    )  # fmt: skip
    assert study.models is not None
    assert study.models["cand"].effective_max_tokens == 1024
    assert study.models["legacy"].effective_max_tokens == 512


@pytest.mark.parametrize(
    ("legacy", "message"),
    [
        ({"provider": "openai"}, "study: models.legacy: provider openai needs 'model'"),
        ({"provider": "replay"}, "study: models.legacy: provider replay needs 'file'"),
        (
            {"provider": "openai", "model": "m", "file": "x.jsonl"},
            "models.legacy: 'file' is only for provider replay",
        ),
        (
            {"provider": "openai", "model": "m", "params": {"temperature": 1}},
            "models.legacy: params: 'temperature' has its own key",
        ),
        ({"provider": "gemini", "model": "m"}, "models.legacy.provider"),
        ({"provider": "openai", "model": "m", "concurrency": 0}, "models.legacy.concurrency"),
        (
            {"provider": "openai", "model": "m", "api_key": "sk-1"},
            "unknown key 'models.legacy.api_key'",
        ),
    ],
)
def test_bad_model_entries_name_the_key(legacy: dict[str, Any], message: str) -> None:
    cand = {"provider": "replay", "file": "c.jsonl"}
    with pytest.raises(StudyError) as raised:
        parse_study(_study({"legacy": legacy, "cand": cand}))
    assert message in str(raised.value)


def test_keys_come_from_the_named_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = ModelSettings(provider="anthropic", model="m", api_key_env="MY_KEY")
    monkeypatch.delenv("MY_KEY", raising=False)
    with pytest.raises(StudyError, match="models.cand: environment variable MY_KEY"):
        api_key_for("cand", settings)
    monkeypatch.setenv("MY_KEY", "secret")
    assert api_key_for("cand", settings) == "secret"
    local = ModelSettings(provider="openai", model="m", base_url="http://127.0.0.1:1/v1")
    assert api_key_for("local", local) is None  # a local endpoint needs no key by default
    assert ModelSettings(provider="openai", model="m").effective_api_key_env == "OPENAI_API_KEY"


def test_retry_after_forms() -> None:
    assert parse_retry_after({"retry-after": "2"}) == 2.0
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    future = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 < (parse_retry_after({"retry-after": future}) or 0) <= 30
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None


def test_status_kinds() -> None:
    assert [classify_status(s) for s in (429, 500, 503, 408, 401, 404, 400, 422)] == [
        "rate_limit", "server", "server", "server", "fatal", "fatal", "client", "client",
    ]  # fmt: skip


def test_redact_takes_out_every_key_but_not_short_placeholders() -> None:
    key, longer = "sk-abc123456789", "sk-abc123456789-extended"
    text = f"Bearer {longer}; x-api-key: {key}; api_key=EMPTY"
    assert redact(text, [key, longer, "EMPTY"]) == (
        "Bearer [redacted]; x-api-key: [redacted]; api_key=EMPTY"
    )
