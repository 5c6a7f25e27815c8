"""`provider: anthropic`: the official `anthropic` SDK, the messages API."""

from __future__ import annotations

from typing import Any

from changeover.providers.base import CallError, Completion, Request, load_answer
from changeover.providers.sdk import SDKProvider, read_usage

__all__ = ["AnthropicProvider", "parse_message"]


class AnthropicProvider(SDKProvider):
    package = "anthropic"
    client_class = "AsyncAnthropic"
    path = "/v1/messages"

    def body(self, request: Request) -> dict[str, Any]:
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

    def parse(self, raw: bytes) -> Completion:
        return parse_message(raw)


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
    usage = read_usage(answer.get("usage"), input_key="input_tokens", output_key="output_tokens")
    return Completion(
        text=text,
        finish_reason=stop_reason if isinstance(stop_reason, str) else None,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        implausible_usage=usage.implausible,
    )
