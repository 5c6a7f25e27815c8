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
from changeover.providers.openai import _http_client
from changeover.providers.settings import ModelSettings

__all__ = ["AnthropicProvider"]


class AnthropicProvider(Provider):
    def __init__(self, settings: ModelSettings, *, api_key: str | None) -> None:
        import anthropic  # the SDK is imported only when this provider is used

        self._anthropic = anthropic
        self._settings = settings
        self._message_type = anthropic.types.Message
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
            # Low-level `post` with the SDK's response type; see providers/openai.py for why.
            answer = await self._client.post(
                "/v1/messages", body=self._body(request), cast_to=self._message_type
            )
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
        except (json.JSONDecodeError, anthropic.APIResponseValidationError) as error:
            raise CallError("malformed", f"the answer is not valid JSON ({short(error)})") from None
        content = getattr(answer, "content", None)
        if not isinstance(content, list):
            raise CallError("malformed", "the answer has no content list")
        text = "".join(block.text for block in content if getattr(block, "type", None) == "text")
        stop_reason = getattr(answer, "stop_reason", None)
        if not text:
            raise CallError("empty", f"the answer has no text (stop_reason={stop_reason})")
        usage = getattr(answer, "usage", None)
        input_tokens = getattr(usage, "input_tokens", None)
        output_tokens = getattr(usage, "output_tokens", None)
        return Completion(
            text=text,
            finish_reason=stop_reason if isinstance(stop_reason, str) else None,
            input_tokens=input_tokens if isinstance(input_tokens, int) else None,
            output_tokens=output_tokens if isinstance(output_tokens, int) else None,
        )

    async def aclose(self) -> None:
        await self._client.close()
