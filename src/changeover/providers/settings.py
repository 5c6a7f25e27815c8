"""Per-model provider settings, the `models:` section of the study file.

Keys are never read from here: `api_key_env` names the environment variable that holds them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt


class ModelSettings(BaseModel):
    """How to reach one model: provider, model id and request settings."""

    model_config = ConfigDict(extra="forbid")

    provider: Literal["openai", "anthropic", "replay"]
    model: str | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    system: str | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: PositiveInt | None = None
    concurrency: PositiveInt = 8
    requests_per_minute: PositiveFloat | None = None
    tokens_per_minute: PositiveFloat | None = None
    timeout: PositiveFloat = 60.0
    file: str | None = None
    price_input_per_million: float | None = Field(default=None, ge=0)
    price_output_per_million: float | None = Field(default=None, ge=0)
