"""`provider: openai`: the official `openai` SDK, chat completions.

`base_url` makes it cover any OpenAI-compatible endpoint: vLLM, Ollama, LiteLLM proxies, Azure.
"""

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
        openai = self._openai
        try:
            # The client's low-level `post`, reading the body as bytes: the typed
            # `chat.completions.create` re-walks every parameter and builds pydantic models, which
            # doubles the CPU per request and caps throughput at high concurrency
            # (docs/generate.md). Errors still come as the SDK's exception classes.
            raw = await self._client.post(
                "/chat/completions", body=self._body(request), cast_to=bytes
            )
        except openai.APIStatusError as error:
            status = error.status_code
            raise CallError(
                classify_status(status),
                f"HTTP {status}: {short(error.message)}",
                status=status,
                retry_after=parse_retry_after(error.response.headers),
            ) from None
        except openai.APITimeoutError:
            raise CallError("timeout", f"no answer within {self._settings.timeout:g}s") from None
        except openai.APIConnectionError as error:
            raise CallError("connection", f"connection failed: {short(error)}") from None
        return parse_chat_completion(raw)

    async def aclose(self) -> None:
        await self._client.close()


def parse_chat_completion(raw: bytes) -> Completion:
    """A chat-completions answer (OpenAI's documented JSON) as a Completion."""
    try:
        answer = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CallError("malformed", f"the answer is not valid JSON ({short(error)})") from None
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
