"""`provider: anthropic`: the official `anthropic` SDK, the messages API."""

from __future__ import annotations

from typing import Any

from changeover.providers.base import (
    CallError,
    Completion,
    Provider,
    Request,
    load_answer,
    post_raw,
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
        raw = await post_raw(
            self._anthropic,
            self._client,
            "/v1/messages",
            self._body(request),
            self._settings.timeout,
        )
        return parse_message(raw)

    async def aclose(self) -> None:
        await self._client.close()


def parse_message(raw: bytes) -> Completion:
    """A messages-API answer (Anthropic's documented JSON) as a Completion."""
    answer = load_answer(raw)
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
