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
        self._completion_type = openai.types.chat.ChatCompletion
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
            # The client's low-level `post` with the SDK's own response type: the typed
            # `chat.completions.create` re-walks every parameter and costs twice the CPU per
            # request, which caps throughput at high concurrency (docs/generate.md).
            answer = await self._client.post(
                "/chat/completions", body=self._body(request), cast_to=self._completion_type
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
        except (json.JSONDecodeError, openai.APIResponseValidationError) as error:
            raise CallError("malformed", f"the answer is not valid JSON ({short(error)})") from None
        choices = getattr(answer, "choices", None)
        if not isinstance(choices, list) or not choices:
            raise CallError("malformed", "the answer has no choices")
        choice = choices[0]
        message = getattr(choice, "message", None)
        text = getattr(message, "content", None)
        finish_reason = getattr(choice, "finish_reason", None)
        if text is not None and not isinstance(text, str):
            raise CallError("malformed", "the message content is not text")
        if not text:
            raise CallError("empty", f"the answer has no text (finish_reason={finish_reason})")
        usage = getattr(answer, "usage", None)
        return Completion(
            text=text,
            finish_reason=finish_reason if isinstance(finish_reason, str) else None,
            input_tokens=_int_or_none(getattr(usage, "prompt_tokens", None)),
            output_tokens=_int_or_none(getattr(usage, "completion_tokens", None)),
        )

    async def aclose(self) -> None:
        await self._client.close()


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) else None


def _http_client(sdk: Any, settings: ModelSettings) -> Any:
    """The SDK's aiohttp transport when aiohttp is installed: at high concurrency it needs less
    than half the CPU per request of the default httpx transport (docs/generate.md)."""
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        return None
    return sdk.DefaultAioHttpClient(timeout=settings.timeout)
