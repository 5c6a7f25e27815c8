"""`provider: anthropic`: the official `anthropic` SDK, the messages API."""

from __future__ import annotations

import json
from typing import Any

from changeover.providers.base import (
    CallError,
    Completion,
    Provider,
    Request,
    classify_status,
    parse_retry_after,
    short,
)
from changeover.providers.openai import _http_client, _int_or_none
from changeover.providers.settings import ModelSettings

__all__ = ["AnthropicProvider"]


class AnthropicProvider(Provider):
    def __init__(self, settings: ModelSettings, *, api_key: str | None) -> None:
        import anthropic  # the SDK is imported only when this provider is used

        self._anthropic = anthropic
        self._settings = settings
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key,
            base_url=settings.base_url,
            timeout=settings.timeout,
            max_retries=0,
            http_client=_http_client(anthropic, settings),
        )

    def _body(self, request: Request) -> dict[str, Any]:
        settings = self._settings
        system = "\n\n".join(m.content for m in request.messages if m.role == "system")
        body: dict[str, Any] = {
            "model": settings.model,
            "max_tokens": settings.effective_max_tokens,
            "messages": [
                {"role": m.role, "content": m.content}
                for m in request.messages
                if m.role != "system"
            ],
            **settings.params,
        }
        if system:
            body["system"] = system
        if settings.temperature is not None:
            body["temperature"] = settings.temperature
        return body

    async def complete(self, request: Request) -> Completion:
        anthropic = self._anthropic
        try:
            # Low-level `post` read as bytes; see providers/openai.py for why.
            raw = await self._client.post("/v1/messages", body=self._body(request), cast_to=bytes)
        except anthropic.APIStatusError as error:
            status = error.status_code
            raise CallError(
                classify_status(status),
                f"HTTP {status}: {short(error.message)}",
                status=status,
                retry_after=parse_retry_after(error.response.headers),
            ) from None
        except anthropic.APITimeoutError:
            raise CallError("timeout", f"no answer within {self._settings.timeout:g}s") from None
        except anthropic.APIConnectionError as error:
            raise CallError("connection", f"connection failed: {short(error)}") from None
        return parse_message(raw)

    async def aclose(self) -> None:
        await self._client.close()


def parse_message(raw: bytes) -> Completion:
    """A messages-API answer (Anthropic's documented JSON) as a Completion."""
    try:
        answer = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CallError("malformed", f"the answer is not valid JSON ({short(error)})") from None
    content = answer.get("content") if isinstance(answer, dict) else None
    if not isinstance(content, list):
        raise CallError("malformed", "the answer has no content list")
    text = "".join(
        block["text"]
        for block in content
        if isinstance(block, dict)
        and block.get("type") == "text"
        and isinstance(block.get("text"), str)
    )
    stop_reason = answer.get("stop_reason")
    if not text:
        raise CallError("empty", f"the answer has no text (stop_reason={stop_reason})")
    usage = answer.get("usage")
    usage = usage if isinstance(usage, dict) else {}
    return Completion(
        text=text,
        finish_reason=stop_reason if isinstance(stop_reason, str) else None,
        input_tokens=_int_or_none(usage.get("input_tokens")),
        output_tokens=_int_or_none(usage.get("output_tokens")),
    )
