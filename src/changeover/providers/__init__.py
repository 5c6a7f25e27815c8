"""Provider adapters: one module per provider SDK, behind one interface (`Provider`).

Each SDK is imported only when a model uses it. `make_provider` turns a `models:` entry of the
study into a provider, reading the API key from the environment variable the entry names; the
key is handed to the SDK client and kept nowhere else. The SDK adapters also implement
`BatchAPI`, the provider's batch endpoints, for the models with `batch: true`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from changeover.errors import ChangeoverError, StudyError
from changeover.providers.base import (
    RETRYABLE,
    BatchAPI,
    BatchOutcome,
    BatchStatus,
    CallError,
    Completion,
    ErrorKind,
    Message,
    Provider,
    Request,
    redact,
)
from changeover.providers.settings import ModelSettings
from changeover.records import ResponseRecord

__all__ = [
    "RETRYABLE",
    "BatchAPI",
    "BatchOutcome",
    "BatchStatus",
    "CallError",
    "Completion",
    "ErrorKind",
    "Message",
    "ModelSettings",
    "Provider",
    "Request",
    "api_key_for",
    "configured_secrets",
    "make_provider",
    "redact",
]

_PACKAGES = {"openai": "openai", "anthropic": "anthropic"}


def api_key_for(name: str, settings: ModelSettings) -> str | None:
    """The model's API key, from the environment variable named by `api_key_env`."""
    variable = settings.effective_api_key_env
    if variable is None:
        return None
    key = os.environ.get(variable, "").strip()
    if not key:
        named = "api_key_env" if settings.api_key_env else f"the default {variable}"
        raise StudyError(
            f"models.{name}: environment variable {variable} ({named}) is not set; export the "
            "API key under that name (keys are read from the environment, never from files)"
        )
    return key


def configured_secrets(models: Mapping[str, ModelSettings]) -> frozenset[str]:
    """The values of the environment variables the models name for their keys (those that are
    set): what `redact` takes out of every text before it is stored or shown."""
    values = (
        os.environ.get(variable, "").strip()
        for settings in models.values()
        if (variable := settings.effective_api_key_env) is not None
    )
    return frozenset(value for value in values if value)


def make_provider(
    name: str,
    settings: ModelSettings,
    *,
    base: Path,
    recorded: Sequence[ResponseRecord] | None = None,
) -> Provider:
    """The provider for the model called `name` in the study; `base` resolves relative files.

    A replay model serves `recorded`, the responses its file holds (read by the caller, which
    validates them against the workspace's items)."""
    if settings.provider == "replay":
        from changeover.providers.replay import ReplayProvider

        assert settings.file is not None
        if recorded is None:
            raise StudyError(
                f"models.{name}: replays recorded responses (provider replay) and cannot be "
                "called here; name a model served by openai or anthropic"
            )
        return ReplayProvider(recorded, path=base / settings.file)
    key = api_key_for(name, settings)
    package = _PACKAGES[settings.provider]
    if settings.processes > 1:
        from changeover.providers.pool import ProcessPoolProvider

        return ProcessPoolProvider(name, settings)
    try:
        if settings.provider == "openai":
            from changeover.providers.openai import OpenAIProvider

            return OpenAIProvider(settings, api_key=key)
        from changeover.providers.anthropic import AnthropicProvider

        return AnthropicProvider(settings, api_key=key)
    except ImportError:
        raise ChangeoverError(
            f"models.{name}: provider {settings.provider} needs the {package} package; "
            f"pip install {package}"
        ) from None
