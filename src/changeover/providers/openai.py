"""`provider: openai`: the official `openai` SDK, chat completions and the Batch API.

`base_url` makes it cover any OpenAI-compatible endpoint: vLLM, Ollama, LiteLLM proxies, Azure.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import partial
from typing import Any

from changeover.providers.base import (
    BatchAPI,
    BatchOutcome,
    BatchState,
    BatchStatus,
    CallError,
    Completion,
    Request,
    classify_status,
    load_answer,
    short,
)
from changeover.providers.sdk import SDKProvider, read_usage

__all__ = ["OpenAIProvider", "chat_completion", "parse_chat_completion"]

#: The endpoint every line of a batch file is addressed to.
BATCH_ENDPOINT = "/v1/chat/completions"
#: What the Batch API calls an entry it never ran (the batch expired or was cancelled).
_NOT_RUN = {"batch_expired": "expired", "batch_cancelled": "was cancelled"}


class OpenAIProvider(SDKProvider, BatchAPI):
    package = "openai"
    client_class = "AsyncOpenAI"
    path = "/chat/completions"
    max_batch_requests = 50_000

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

    # -- the Batch API: a JSONL file uploaded with purpose "batch", then a batch over it --------

    async def submit_batch(self, entries: Sequence[tuple[str, Request]]) -> str:
        lines = b"".join(
            json.dumps(
                {"custom_id": custom_id, "method": "POST", "url": BATCH_ENDPOINT,
                 "body": self.body(request)},
                ensure_ascii=False,
            ).encode()
            + b"\n"
            for custom_id, request in entries
        )  # fmt: skip
        client = self._client
        upload = await self._sdk_call(
            lambda: client.files.create(
                file=("changeover-batch.jsonl", lines, "application/jsonl"), purpose="batch"
            ),
            self._batch_timeout,
        )
        batch = await self._sdk_call(
            lambda: client.batches.create(
                input_file_id=upload.id, endpoint=BATCH_ENDPOINT, completion_window="24h"
            ),
            self._batch_timeout,
        )
        return str(batch.id)

    async def batch_status(self, batch_id: str) -> BatchStatus:
        client = self._client
        batch = await self._sdk_call(
            lambda: client.batches.retrieve(batch_id), self._settings.timeout
        )
        counts = batch.request_counts
        total, completed, failed = (
            (counts.total, counts.completed, counts.failed) if counts else (0, 0, 0)
        )
        state: BatchState = "in_progress"
        if batch.status in ("completed", "expired", "cancelled"):
            state = "ended"
        elif batch.status == "failed":
            state = "failed"
        detail = str(batch.status)
        if batch.status == "failed" and batch.errors and batch.errors.data:
            detail = "; ".join(f"{error.code}: {error.message}" for error in batch.errors.data[:3])
        return BatchStatus(batch_id, state, total, completed + failed, failed, short(detail))

    async def batch_results(self, batch_id: str) -> list[BatchOutcome]:
        client = self._client
        batch = await self._sdk_call(
            lambda: client.batches.retrieve(batch_id), self._settings.timeout
        )
        outcomes = []
        for file_id in (batch.output_file_id, batch.error_file_id):
            if not file_id:
                continue
            content = await self._sdk_call(
                partial(client.files.content, file_id), self._batch_timeout
            )
            for line in content.content.splitlines():
                if line.strip():
                    outcomes.append(batch_outcome(line))
        return outcomes

    async def cancel_batch(self, batch_id: str) -> None:
        client = self._client
        await self._sdk_call(lambda: client.batches.cancel(batch_id), self._settings.timeout)


def batch_outcome(line: bytes) -> BatchOutcome:
    """One line of a batch's output or error file (OpenAI's documented JSONL)."""
    try:
        record = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return BatchOutcome("", None, CallError("malformed", "a batch result line is not JSON"))
    if not isinstance(record, dict):
        return BatchOutcome("", None, CallError("malformed", "a batch result line is not JSON"))
    custom_id = str(record.get("custom_id", ""))
    response = record.get("response")
    error = record.get("error")
    if isinstance(response, dict) and response.get("status_code") == 200:
        try:
            return BatchOutcome(custom_id, chat_completion(response.get("body")), None)
        except CallError as unusable:
            return BatchOutcome(custom_id, None, unusable)
    if isinstance(response, dict) and isinstance(response.get("status_code"), int):
        status = response["status_code"]
        body = response.get("body")
        found = body.get("error") if isinstance(body, dict) else None
        message = found.get("message") if isinstance(found, dict) else None
        failure = CallError(
            classify_status(status), f"HTTP {status}: {short(message or body)}", status=status
        )
    else:
        code = error.get("code") if isinstance(error, dict) else None
        message = error.get("message") if isinstance(error, dict) else None
        if code in _NOT_RUN:
            failure = CallError("expired", f"the batch {_NOT_RUN[code]} before this request ran")
        else:
            failure = CallError("client", f"{code or 'error'}: {short(message or error)}")
    return BatchOutcome(custom_id, None, failure)


def parse_chat_completion(raw: bytes) -> Completion:
    """A chat-completions answer (OpenAI's documented JSON) as a Completion."""
    return chat_completion(load_answer(raw))


def chat_completion(answer: Any) -> Completion:
    """A chat-completions answer, parsed from JSON, as a Completion."""
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
