"""`provider: openai`: the official `openai` SDK, chat completions.

`base_url` makes it cover any OpenAI-compatible endpoint: vLLM, Ollama, LiteLLM proxies, Azure.
"""

from __future__ import annotations

from typing import Any

from changeover.providers.base import CallError, Completion, Request, load_answer
from changeover.providers.sdk import SDKProvider, read_usage

__all__ = ["OpenAIProvider", "parse_chat_completion"]


class OpenAIProvider(SDKProvider):
    package = "openai"
    client_class = "AsyncOpenAI"
    path = "/chat/completions"

    def body(self, request: Request) -> dict[str, Any]:
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

    def parse(self, raw: bytes) -> Completion:
        return parse_chat_completion(raw)


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
    usage = read_usage(
        answer.get("usage"), input_key="prompt_tokens", output_key="completion_tokens"
    )
    return Completion(
        text=text,
        finish_reason=finish_reason if isinstance(finish_reason, str) else None,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        implausible_usage=usage.implausible,
    )
