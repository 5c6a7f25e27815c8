"""`provider: openai`: the official `openai` SDK, chat completions.

`base_url` makes it cover any OpenAI-compatible endpoint: vLLM, Ollama, LiteLLM proxies, Azure.
"""

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
from changeover.providers.settings import ModelSettings

__all__ = ["OpenAIProvider"]


class OpenAIProvider(Provider):
    def __init__(self, settings: ModelSettings, *, api_key: str | None) -> None:
        import openai  # the SDK is imported only when this provider is used

        self._openai = openai
        self._settings = settings
        # Retries are ours (generate.py), so that they are counted, honour Retry-After across
        # all workers of a model, and show in the summary.
        self._client = openai.AsyncOpenAI(
            api_key=api_key or "unused",
            base_url=settings.base_url,
            timeout=settings.timeout,
            max_retries=0,
            http_client=_http_client(openai, settings),
        )

    def _body(self, request: Request) -> dict[str, Any]:
        settings = self._settings
        body: dict[str, Any] = {
            "model": settings.model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            **settings.params,
        }
        if settings.temperature is not None:
            body["temperature"] = settings.temperature
        if settings.max_tokens is not None:
            body["max_tokens"] = settings.max_tokens
        return body

    async def complete(self, request: Request) -> Completion:
        raw = await post_raw(
            self._openai,
            self._client,
            "/chat/completions",
            self._body(request),
            self._settings.timeout,
        )
        return parse_chat_completion(raw)

    async def aclose(self) -> None:
        await self._client.close()


def parse_chat_completion(raw: bytes) -> Completion:
    """A chat-completions answer (OpenAI's documented JSON) as a Completion."""
    answer = load_answer(raw)
    choices = answer.get("choices") if isinstance(answer, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise CallError("malformed", "the answer has no choices")
    choice = choices[0]
    message = choice.get("message")
    text = message.get("content") if isinstance(message, dict) else None
    finish_reason = choice.get("finish_reason")
    if text is not None and not isinstance(text, str):
        raise CallError("malformed", "the message content is not text")
    if not text:
        raise CallError("empty", f"the answer has no text (finish_reason={finish_reason})")
    usage = answer.get("usage")
    usage = usage if isinstance(usage, dict) else {}
    return Completion(
        text=text,
        finish_reason=finish_reason if isinstance(finish_reason, str) else None,
        input_tokens=_int_or_none(usage.get("prompt_tokens")),
        output_tokens=_int_or_none(usage.get("completion_tokens")),
    )


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _http_client(sdk: Any, settings: ModelSettings) -> Any:
    """The SDK's aiohttp transport when aiohttp is installed: at high concurrency it needs less
    than half the CPU per request of the default httpx transport (docs/generate.md)."""
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        return None
    return sdk.DefaultAioHttpClient(timeout=settings.timeout)
