"""`provider: anthropic`: the official `anthropic` SDK, the messages API and Message Batches."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from changeover.providers.base import (
    BatchAPI,
    BatchOutcome,
    BatchStatus,
    CallError,
    Completion,
    ErrorKind,
    Request,
    load_answer,
    short,
)
from changeover.providers.sdk import SDKProvider, read_usage

__all__ = ["AnthropicProvider", "batch_outcome", "message_completion", "parse_message"]

#: The kind of error of each error type Anthropic names (docs: "Errors").
_ERROR_KINDS: dict[str, ErrorKind] = {
    "invalid_request_error": "client",
    "request_too_large": "client",
    "authentication_error": "fatal",
    "permission_error": "fatal",
    "not_found_error": "fatal",
    "rate_limit_error": "rate_limit",
    "api_error": "server",
    "overloaded_error": "server",
    "timeout_error": "timeout",
}


class AnthropicProvider(SDKProvider, BatchAPI):
    package = "anthropic"
    client_class = "AsyncAnthropic"
    path = "/v1/messages"
    max_batch_requests = 100_000

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

    # -- Message Batches: the requests in one POST, results as JSONL once the batch ends --------

    async def submit_batch(self, entries: Sequence[tuple[str, Request]]) -> str:
        requests = [
            {"custom_id": custom_id, "params": self.body(request)} for custom_id, request in entries
        ]
        batches = self._client.messages.batches
        batch = await self._sdk_call(lambda: batches.create(requests=requests), self._batch_timeout)
        return str(batch.id)

    async def batch_status(self, batch_id: str) -> BatchStatus:
        batches = self._client.messages.batches
        batch = await self._sdk_call(lambda: batches.retrieve(batch_id), self._settings.timeout)
        counts = batch.request_counts
        failed = counts.errored + counts.canceled + counts.expired
        total = counts.processing + counts.succeeded + failed
        ended = batch.processing_status == "ended"
        detail = "expired" if counts.expired else str(batch.processing_status)
        return BatchStatus(
            batch_id, "ended" if ended else "in_progress", total, total - counts.processing,
            failed, detail,
        )  # fmt: skip

    async def batch_results(self, batch_id: str) -> list[BatchOutcome]:
        batches = self._client.messages.batches

        async def read() -> list[dict[str, Any]]:
            decoder = await batches.results(batch_id)
            return [entry.to_dict() async for entry in decoder]

        return [batch_outcome(entry) for entry in await self._sdk_call(read, self._batch_timeout)]

    async def cancel_batch(self, batch_id: str) -> None:
        batches = self._client.messages.batches
        await self._sdk_call(lambda: batches.cancel(batch_id), self._settings.timeout)


def batch_outcome(entry: Any) -> BatchOutcome:
    """One line of a Message Batch's results (Anthropic's documented JSON), parsed."""
    custom_id = str(entry.get("custom_id", "")) if isinstance(entry, dict) else ""
    result = entry.get("result") if isinstance(entry, dict) else None
    kind = result.get("type") if isinstance(result, dict) else None
    if kind == "succeeded":
        assert isinstance(result, dict)
        try:
            return BatchOutcome(custom_id, message_completion(result.get("message")), None)
        except CallError as failure:
            return BatchOutcome(custom_id, None, failure)
    if kind in ("expired", "canceled"):
        word = "was cancelled" if kind == "canceled" else "expired"
        return BatchOutcome(
            custom_id, None, CallError("expired", f"the batch {word} before this request ran")
        )
    if kind == "errored":
        assert isinstance(result, dict)
        response = result.get("error")
        found = response.get("error") if isinstance(response, dict) else None
        found = found if isinstance(found, dict) else {}
        error_type = str(found.get("type", "error"))
        message = f"{error_type}: {short(found.get('message', ''))}"
        return BatchOutcome(
            custom_id, None, CallError(_ERROR_KINDS.get(error_type, "client"), message)
        )
    return BatchOutcome(custom_id, None, CallError("malformed", f"unknown batch result {kind!r}"))


def parse_message(raw: bytes) -> Completion:
    """A messages-API answer (Anthropic's documented JSON) as a Completion."""
    return message_completion(load_answer(raw))


def message_completion(answer: Any) -> Completion:
    """A messages-API answer, parsed from JSON, as a Completion."""
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
