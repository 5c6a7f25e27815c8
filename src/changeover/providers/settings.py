"""Per-model provider settings, the `models:` section of the study file.

Keys are never read from here: `api_key_env` names the environment variable that holds them, and
the key itself is read from the environment only when a request is sent.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    model_validator,
)
from pydantic_core import PydanticCustomError

__all__ = ["DEFAULT_ANTHROPIC_MAX_TOKENS", "ModelSettings", "ProviderName"]

ProviderName = Literal["openai", "anthropic", "replay"]

# The Anthropic messages API requires max_tokens; this is used when the study leaves it out.
DEFAULT_ANTHROPIC_MAX_TOKENS = 1024

# Settings that change what a model answers, and therefore the cache key. The others (where the
# endpoint is, how fast to call it, what it costs) do not.
_GENERATION_KEYS = ("temperature", "max_tokens", "params")  # system is in the messages
_BATCH_KEYS = ("batch", "batch_discount", "batch_poll_interval", "batch_retry", "batch_size")


class ModelSettings(BaseModel):
    """How to reach one model: provider, model id and request settings."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    provider: ProviderName
    model: str | None = Field(default=None, min_length=1)
    base_url: str | None = None
    api_key_env: str | None = Field(default=None, min_length=1)
    system: str | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: PositiveInt | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    concurrency: PositiveInt = 8
    processes: PositiveInt = 1
    requests_per_minute: PositiveFloat | None = None
    tokens_per_minute: PositiveFloat | None = None
    timeout: PositiveFloat = 60.0
    max_retries: NonNegativeInt = 6
    retry_wait: PositiveFloat = 1.0
    retry_max_wait: PositiveFloat = 60.0
    file: str | None = None
    price_input_per_million: float | None = Field(default=None, ge=0)
    price_output_per_million: float | None = Field(default=None, ge=0)
    batch: bool = False
    batch_discount: float = Field(default=0.5, ge=0, lt=1)
    batch_poll_interval: PositiveFloat = 30.0
    batch_retry: Literal["online", "batch"] = "online"
    batch_size: PositiveInt | None = None

    @model_validator(mode="after")
    def _check_provider_keys(self) -> ModelSettings:
        if self.provider == "replay":
            if not self.file:
                raise PydanticCustomError(
                    "model_settings",
                    "provider replay needs 'file' (the recorded responses: CSV, JSONL or "
                    "Parquet with item_id, response); add it",
                )
        elif not self.model:
            raise PydanticCustomError(
                "model_settings",
                "provider {provider} needs 'model' (the provider's model id); add it",
                {"provider": self.provider},
            )
        elif self.file is not None:
            raise PydanticCustomError(
                "model_settings",
                "'file' is only for provider replay; remove it or set provider: replay",
            )
        reserved = {"model", "messages", "system", "temperature", "max_tokens", "stream"}
        clash = sorted(reserved & set(self.params))
        if clash:
            raise PydanticCustomError(
                "model_settings",
                "params: '{key}' has its own key; set it directly, not under params",
                {"key": clash[0]},
            )
        if self.batch and self.provider == "replay":
            raise PydanticCustomError(
                "model_settings",
                "batch: true sends requests through a provider's batch API; provider replay has "
                "none (remove batch, or use openai or anthropic)",
            )
        if self.batch and self.processes > 1:
            raise PydanticCustomError(
                "model_settings",
                "processes: a batch model (batch: true) sends a few large requests, not many "
                "small ones; remove processes",
            )
        fields = type(self).model_fields
        stray = [k for k in _BATCH_KEYS[1:] if getattr(self, k) != fields[k].default]
        if stray and not self.batch:
            raise PydanticCustomError(
                "model_settings",
                "{key} applies to batch models only; add batch: true or remove it",
                {"key": stray[0]},
            )
        if self.retry_max_wait < self.retry_wait:
            raise PydanticCustomError(
                "model_settings", "retry_max_wait must be at least retry_wait"
            )
        return self

    @property
    def effective_max_tokens(self) -> int | None:
        """max_tokens as sent: Anthropic requires one, so it gets a default."""
        if self.max_tokens is None and self.provider == "anthropic":
            return DEFAULT_ANTHROPIC_MAX_TOKENS
        return self.max_tokens

    @property
    def effective_api_key_env(self) -> str | None:
        """The environment variable holding the key, or None when none is needed.

        An OpenAI-compatible endpoint given by `base_url` (vLLM, Ollama, a local proxy) often
        needs no key, so none is required unless `api_key_env` names one.
        """
        if self.api_key_env is not None:
            return self.api_key_env
        if self.provider == "openai":
            return None if self.base_url else "OPENAI_API_KEY"
        if self.provider == "anthropic":
            return "ANTHROPIC_API_KEY"
        return None

    @property
    def is_priced(self) -> bool:
        """Whether the study says what the model's tokens cost (either price)."""
        return self.price_input_per_million is not None or self.price_output_per_million is not None

    def generation_settings(self) -> dict[str, Any]:
        """The settings that change the answer: part of the cache key, with provider and model."""
        data = self.model_dump(include=set(_GENERATION_KEYS))
        data["max_tokens"] = self.effective_max_tokens
        return data
