"""A local HTTP/1.1 server (asyncio, keep-alive) speaking the OpenAI and Anthropic protocols.

It is a real server on 127.0.0.1, so the official SDKs are exercised end to end (HTTP, JSON,
their error classes) with no patched client method. What it answers is scripted by the prompt:
a user message containing ``!script:429,500,ok`` gets a 429 on the first request, a 500 on the
second and a normal answer from the third on (the last step repeats). Steps:

    ok          a normal answer: "echo: <prompt>"
    429         rate limited, with ``Retry-After`` (seconds, from ``retry_after``)
    500         an internal server error
    401         an authentication error
    timeout     sleeps ``timeout_sleep`` seconds before answering (the client gives up first)
    malformed   status 200 with a body that is not JSON
    empty       status 200 with empty content
    html        status 200 with an HTML page (a wrong endpoint, a login page)
    400echo     a 400 whose body quotes the request's credentials header (some gateways do),
    401echo     a 401 likewise; quoted five times, so that an excerpt of the first 200
                characters is likely to cut through one of them
    okecho      a normal answer whose text quotes the credentials header (a debugging proxy)
    drip        a normal answer sent one byte every ``drip_interval`` seconds; a client that
                hangs up in the middle is noted in ``cut``
    hugeusage   a normal answer reporting 10**30 output tokens
    negusage    a normal answer reporting -5 input tokens and 2.5 output tokens

``script``, when given, is the script of prompts that have none (a judge model whose every
answer is scripted, say).

**Batches.** The server also speaks OpenAI's Batch API (``POST /v1/files`` with purpose
``batch``, ``POST /v1/batches``, ``GET /v1/batches/{id}``, ``POST /v1/batches/{id}/cancel``,
``GET /v1/files/{id}/content``) and Anthropic's Message Batches (``POST /v1/messages/batches``,
``GET /v1/messages/batches/{id}``, ``GET .../results``, ``POST .../cancel``). A batch stays in
progress for ``batch_polls`` retrievals (or, with ``hold_batches``, until ``release_batches()``),
then runs every entry through the same script as a request online (so a prompt scripted
``500,ok`` fails in its batch and succeeds when sent again), with these batch-only steps:

    400         the entry is refused as malformed (a 400 in the error file / ``errored``);
                ``400echo`` quotes the credentials the batch was created with in the message
    expire      the entry is never run: the batch ends ``expired`` (OpenAI: the entry is in
                the error file as ``batch_expired``; Anthropic: its result is ``expired``)
    batchfail   OpenAI: the whole batch fails validation (status ``failed``)

``events`` lists what the batch endpoints were asked, in order (``("create", batch_id)``, ...),
and ``batch_log`` the entries batches ran.

``reply(prompt, system)``, when given, writes the text of normal answers instead of the echo (a
fake judge, see tests/fakes/judge.py); returning None keeps the echo.

Run it on its own (for benchmarks) with ``python -m tests.fakes.llm_server --latency 0.1``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = ["FakeLLMServer", "LoggedRequest"]

_SCRIPT = re.compile(r"!script:([a-z0-9,]+)")


@dataclass(frozen=True)
class LoggedRequest:
    """One request the server received."""

    protocol: str  # "openai" or "anthropic"
    model: str
    prompt: str
    step: str
    authorization: str
    received_at: float
    system: str = ""


@dataclass
class _State:
    latency: float = 0.0
    retry_after: float = 0.2
    timeout_sleep: float = 3.0
    drip_interval: float = 0.5
    script: str | None = None
    reply: Callable[[str, str], str | None] | None = None
    attempts: dict[str, int] = field(default_factory=dict)
    log: list[LoggedRequest] = field(default_factory=list)
    cut: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    batch_polls: int = 1
    hold_batches: bool = False
    files: dict[str, bytes] = field(default_factory=dict)
    batches: dict[str, _Batch] = field(default_factory=dict)
    events: list[tuple[str, str]] = field(default_factory=list)
    batch_log: list[LoggedRequest] = field(default_factory=list)


@dataclass
class _Batch:
    """A batch the server holds: its entries and, once it has ended, their results."""

    batch_id: str
    protocol: str
    entries: list[tuple[str, dict[str, Any]]]
    created_at: float
    input_file_id: str = ""
    authorization: str = ""
    polls: int = 0
    status: str = "in_progress"  # OpenAI's words; Anthropic's are derived from them
    results: list[dict[str, Any]] = field(default_factory=list)
    output_file_id: str | None = None
    error_file_id: str | None = None


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def _system_text(protocol: str, body: dict[str, Any]) -> str:
    if protocol == "anthropic":
        system = body.get("system", "")
        return system if isinstance(system, str) else ""
    return "\n\n".join(
        str(m.get("content", "")) for m in body.get("messages", []) if m.get("role") == "system"
    )


def _error(protocol: str, kind: str, message: str) -> dict[str, Any]:
    if protocol == "anthropic":
        return {"type": "error", "error": {"type": kind, "message": message}}
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


def _answer(
    protocol: str, model: str, prompt: str, text: str, usage: tuple[Any, Any] | None = None
) -> dict[str, Any]:
    input_tokens, output_tokens = usage or (max(1, len(prompt) // 4), len(text) // 4)
    if protocol == "anthropic":
        return {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": text}] if text else [],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
        }
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
        "usage": {
            "prompt_tokens": input_tokens,
            "completion_tokens": output_tokens,
            "total_tokens": input_tokens + output_tokens,
        },
    }


_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
            429: "Too Many Requests", 500: "Internal Server Error"}  # fmt: skip


def _http(
    status: int,
    data: bytes,
    headers: dict[str, str] | None = None,
    *,
    content_type: str = "application/json",
) -> bytes:
    lines = [
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(data)}",
        *(f"{name}: {value}" for name, value in (headers or {}).items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + data


@dataclass(frozen=True)
class _Drip:
    """An answer to send one byte at a time."""

    prompt: str
    data: bytes


class FakeLLMServer:
    """The server, on an asyncio loop in a background thread; use as a context manager.

    `log` lists every request received, in order, so tests can check what was (not) called.
    """

    def __init__(
        self,
        *,
        port: int = 0,
        latency: float = 0.0,
        retry_after: float = 0.2,
        timeout_sleep: float = 3.0,
        drip_interval: float = 0.5,
        script: str | None = None,
        reply: Callable[[str, str], str | None] | None = None,
        batch_polls: int = 1,
        hold_batches: bool = False,
    ) -> None:
        self.state = _State(
            latency=latency,
            retry_after=retry_after,
            timeout_sleep=timeout_sleep,
            drip_interval=drip_interval,
            script=script,
            reply=reply,
            batch_polls=batch_polls,
            hold_batches=hold_batches,
        )
        self._requested_port = port
        self._port = 0
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None

    @property
    def port(self) -> int:
        return self._port

    @property
    def openai_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def anthropic_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> list[LoggedRequest]:
        with self.state.lock:
            return list(self.state.log)

    @property
    def events(self) -> list[tuple[str, str]]:
        """What the batch endpoints were asked, in order: ("upload", file id), ("create",
        batch id), ("retrieve", batch id), ("results", batch id), ("cancel", batch id)."""
        with self.state.lock:
            return list(self.state.events)

    @property
    def batch_log(self) -> list[LoggedRequest]:
        """The entries the batches ran, in order."""
        with self.state.lock:
            return list(self.state.batch_log)

    def created_batches(self) -> list[str]:
        return [batch_id for event, batch_id in self.events if event == "create"]

    def release_batches(self) -> None:
        """Let held batches end at their next retrieval."""
        with self.state.lock:
            self.state.hold_batches = False

    @property
    def cut(self) -> list[str]:
        """The prompts whose dripping answer the client hung up on."""
        with self.state.lock:
            return list(self.state.cut)

    def start(self) -> FakeLLMServer:
        self._thread.start()
        if not self._ready.wait(timeout=10):
            raise RuntimeError("the fake server did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=10)

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        asyncio.run(self.serve())

    async def serve(self, *, on_ready: Any = None) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        handlers: set[asyncio.Task[None]] = set()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            handlers.add(task)
            try:
                await self._connection(reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
                pass
            finally:
                handlers.discard(task)
                writer.close()

        server = await asyncio.start_server(
            handle, "127.0.0.1", self._requested_port, backlog=1024, limit=1 << 24
        )
        self._port = int(server.sockets[0].getsockname()[1])
        self._ready.set()
        if on_ready is not None:
            on_ready(self._port)
        await self._stop.wait()
        server.close()
        for task in list(handlers):
            task.cancel()
        await asyncio.sleep(0)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            request_line = await reader.readline()
            if not request_line:
                return
            method, path, _ = request_line.decode("latin-1").split(" ", 2)
            headers: dict[str, str] = {}
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b"\n", b""):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            answer = await self._respond(method, path, headers, body)
            if isinstance(answer, _Drip):
                await self._drip(answer, writer)
                return
            writer.write(answer)
            await writer.drain()

    async def _drip(self, answer: _Drip, writer: asyncio.StreamWriter) -> None:
        head, _, data = answer.data.partition(b"\r\n\r\n")
        try:
            writer.write(head + b"\r\n\r\n")
            for index in range(len(data)):
                await asyncio.sleep(self.state.drip_interval)
                if writer.is_closing() or writer.transport.get_extra_info("socket") is None:
                    raise ConnectionResetError
                writer.write(data[index : index + 1])
                await writer.drain()
        except ConnectionError:
            with self.state.lock:
                self.state.cut.append(answer.prompt)

    async def _respond(
        self, method: str, path: str, headers: dict[str, str], raw: bytes
    ) -> bytes | _Drip:
        state = self.state
        if method == "GET" and path == "/_count":
            with state.lock:
                count = len(state.log)
            return _http(200, json.dumps({"requests": count}).encode())
        if "/batches" in path or "/files" in path:
            return self._batch_endpoint(method, path, headers, raw)
        if path.endswith("/chat/completions"):
            protocol = "openai"
        elif path.endswith("/messages"):
            protocol = "anthropic"
        else:
            return _http(404, json.dumps({"error": {"message": f"no route {path}"}}).encode())
        body = json.loads(raw or b"{}")
        prompt = _last_user_text(body.get("messages", []))
        system = _system_text(protocol, body)
        model = str(body.get("model", ""))
        with state.lock:
            attempt = state.attempts.get(prompt, 0)
            state.attempts[prompt] = attempt + 1
        step = self._step(prompt, attempt)
        auth = headers.get("authorization") or headers.get("x-api-key") or ""
        with state.lock:
            state.log.append(
                LoggedRequest(protocol, model, prompt, step, auth, time.time(), system)
            )
        if state.latency:
            await asyncio.sleep(state.latency)
        if step == "timeout":
            await asyncio.sleep(state.timeout_sleep)
        if step == "429":
            payload = _error(protocol, "rate_limit_error", "slow down")
            return _http(
                429, json.dumps(payload).encode(), {"Retry-After": f"{state.retry_after:g}"}
            )
        if step == "401":
            return _http(
                401, json.dumps(_error(protocol, "authentication_error", "bad key")).encode()
            )
        if step in ("400echo", "401echo"):
            status = int(step[:3])
            named = "x-api-key" if "x-api-key" in headers else "authorization"
            quoted = "invalid credentials; headers received: " + "; ".join([f"{named}: {auth}"] * 5)
            payload = _error(protocol, "invalid_request_error", quoted)
            return _http(status, json.dumps(payload).encode())
        if step == "html":
            page = b"<!doctype html><html><body><h1>Sign in</h1></body></html>"
            return _http(200, page, content_type="text/html")
        if step == "500":
            return _http(500, json.dumps(_error(protocol, "api_error", "internal error")).encode())
        if step == "malformed":
            return _http(200, b'{"id": "x", "choices": [ {not json')
        text = self._text(step, prompt, system)
        if step == "okecho":
            text = f"echo: {prompt} (sent with {auth})"
        usage = {"hugeusage": (3, 10**30), "negusage": (-5, 2.5)}.get(step)
        answer = _http(200, json.dumps(_answer(protocol, model, prompt, text, usage)).encode())
        return _Drip(prompt, answer) if step == "drip" else answer

    def _step(self, prompt: str, attempt: int) -> str:
        """The script's step for the prompt's `attempt`-th request (the last step repeats)."""
        match = _SCRIPT.search(prompt)
        script = match.group(1) if match else self.state.script or "ok"
        steps = script.split(",")
        return steps[min(attempt, len(steps) - 1)]

    def _text(self, step: str, prompt: str, system: str) -> str:
        text = "" if step == "empty" else f"echo: {prompt}"
        if step == "ok" and self.state.reply is not None:
            reply = self.state.reply(prompt, system)
            text = text if reply is None else reply
        return text

    # -- batches ---------------------------------------------------------------------------------

    def _batch_endpoint(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> bytes:
        state = self.state
        parts = [part for part in path.split("?")[0].split("/") if part]
        with state.lock:
            if parts[-1] == "files" and method == "POST":
                return self._upload(headers, raw)
            if parts[-1] == "content" and parts[-3] == "files":
                state.events.append(("content", parts[-2]))
                data = state.files.get(parts[-2])
                if data is None:
                    return _http(404, json.dumps(_error("openai", "not_found", "no file")).encode())
                return _http(200, data, content_type="application/octet-stream")
            protocol = "anthropic" if "messages" in parts else "openai"
            if parts[-1] == "batches" and method == "POST":
                auth = headers.get("authorization") or headers.get("x-api-key") or ""
                return self._create(protocol, json.loads(raw or b"{}"), auth)
            if parts[-1] in ("cancel", "results"):
                batch_id, action = parts[-2], parts[-1]
            else:
                batch_id, action = parts[-1], "retrieve"
            batch = state.batches.get(batch_id)
            if batch is None:
                payload = _error(protocol, "not_found_error", f"no batch {batch_id}")
                return _http(404, json.dumps(payload).encode())
            state.events.append((action, batch_id))
            if action == "cancel":
                if batch.status == "in_progress":
                    batch.status = "cancelled"
                    self._finish(batch, cancelled=True)
                return _http(200, json.dumps(self._batch_json(batch)).encode())
            if action == "results":
                lines = b"".join(json.dumps(r).encode() + b"\n" for r in batch.results)
                return _http(200, lines, content_type="application/binary")
            batch.polls += 1
            is_due = batch.polls > state.batch_polls and not state.hold_batches
            if batch.status == "in_progress" and is_due:
                self._finish(batch, cancelled=False)
            return _http(200, json.dumps(self._batch_json(batch)).encode())

    def _upload(self, headers: dict[str, str], raw: bytes) -> bytes:
        """A multipart/form-data upload of a batch input file (the lock is held)."""
        boundary = headers.get("content-type", "").partition("boundary=")[2].strip('"')
        fields: dict[str, bytes] = {}
        for part in raw.split(b"--" + boundary.encode()):
            head, _, body = part.partition(b"\r\n\r\n")
            found = re.search(rb'name="([^"]+)"', head)
            if found:
                fields[found.group(1).decode()] = body.removesuffix(b"\r\n")
        file_id = f"file-{len(self.state.files) + 1}"
        self.state.files[file_id] = fields.get("file", b"")
        self.state.events.append(("upload", file_id))
        answer = {
            "id": file_id, "object": "file", "bytes": len(fields.get("file", b"")),
            "created_at": int(time.time()), "filename": "batch.jsonl",
            "purpose": fields.get("purpose", b"").decode(), "status": "processed",
        }  # fmt: skip
        return _http(200, json.dumps(answer).encode())

    def _create(self, protocol: str, body: dict[str, Any], authorization: str) -> bytes:
        """A new batch (the lock is held)."""
        state = self.state
        batch_id = f"{'msgbatch' if protocol == 'anthropic' else 'batch'}_{len(state.batches) + 1}"
        if protocol == "anthropic":
            entries = [(r["custom_id"], r["params"]) for r in body.get("requests", [])]
            batch = _Batch(batch_id, protocol, entries, time.time())
        else:
            data = state.files.get(body.get("input_file_id", ""), b"")
            lines = [json.loads(line) for line in data.splitlines() if line.strip()]
            entries = [(line["custom_id"], line["body"]) for line in lines]
            batch = _Batch(batch_id, protocol, entries, time.time(), body["input_file_id"])
        batch.authorization = authorization
        state.batches[batch_id] = batch
        state.events.append(("create", batch_id))
        return _http(200, json.dumps(self._batch_json(batch)).encode())

    def _finish(self, batch: _Batch, *, cancelled: bool) -> None:
        """Run the batch's entries through their scripts and end it (the lock is held)."""
        state = self.state
        steps = []
        for custom_id, body in batch.entries:
            prompt = _last_user_text(body.get("messages", []))
            attempt = state.attempts.get(prompt, 0)
            state.attempts[prompt] = attempt + 1
            step = "cancel" if cancelled else self._step(prompt, attempt)
            steps.append((custom_id, body, prompt, step))
        if batch.protocol == "openai" and any(step == "batchfail" for *_, step in steps):
            batch.status = "failed"
            return
        for custom_id, body, prompt, step in steps:
            system = _system_text(batch.protocol, body)
            model = str(body.get("model", ""))
            state.batch_log.append(
                LoggedRequest(batch.protocol, model, prompt, step, "", time.time(), system)
            )
            result = self._entry_result(batch.protocol, custom_id, model, prompt, system, step)
            if step == "400echo":  # a gateway quoting the credentials of the batch's creation
                quoted = f"invalid credentials; headers received: {batch.authorization}"
                result = json.loads(json.dumps(result).replace("scripted 400echo", quoted))
            batch.results.append(result)
        if not cancelled:
            is_expired = any(step == "expire" for *_, step in steps)
            batch.status = "expired" if is_expired else "completed"
        if batch.protocol == "openai":
            good = [
                r for r in batch.results if r["response"] and r["response"]["status_code"] == 200
            ]
            bad = [r for r in batch.results if r not in good]
            for kind, rows in (("output", good), ("error", bad)):
                if rows:
                    file_id = f"file-{len(state.files) + 1}"
                    state.files[file_id] = b"".join(json.dumps(r).encode() + b"\n" for r in rows)
                    setattr(batch, f"{kind}_file_id", file_id)

    def _entry_result(
        self, protocol: str, custom_id: str, model: str, prompt: str, system: str, step: str
    ) -> dict[str, Any]:
        if protocol == "anthropic":
            if step in ("expire", "cancel"):
                kind = "expired" if step == "expire" else "canceled"
                return {"custom_id": custom_id, "result": {"type": kind}}
            if step in ("400", "400echo", "500", "429"):
                kind = {"500": "api_error", "429": "rate_limit_error"}.get(
                    step, "invalid_request_error"
                )
                error = {"type": "error", "error": {"type": kind, "message": f"scripted {step}"}}
                return {"custom_id": custom_id, "result": {"type": "errored", "error": error}}
            message = _answer(protocol, model, prompt, self._text(step, prompt, system))
            return {"custom_id": custom_id, "result": {"type": "succeeded", "message": message}}
        record: dict[str, Any] = {"id": f"batch_req_{custom_id[:12]}", "custom_id": custom_id}
        if step in ("expire", "cancel"):
            code = "batch_expired" if step == "expire" else "batch_cancelled"
            error = {"code": code, "message": "not run before the batch ended"}
            return record | {"response": None, "error": error}
        if step in ("400", "400echo", "500", "429"):
            status = int(step[:3])
            body = _error(protocol, "invalid_request_error", f"scripted {step}")
            return record | {"response": {"status_code": status, "body": body}, "error": None}
        answer = _answer(protocol, model, prompt, self._text(step, prompt, system))
        return record | {"response": {"status_code": 200, "body": answer}, "error": None}

    def _batch_json(self, batch: _Batch) -> dict[str, Any]:
        total = len(batch.entries)
        ended = batch.status != "in_progress"
        progress = (
            total if ended else min(total, total * batch.polls // (self.state.batch_polls + 1))
        )
        if batch.protocol == "anthropic":
            kinds = [r["result"]["type"] for r in batch.results]
            created = datetime.fromtimestamp(batch.created_at, UTC)
            return {
                "id": batch.batch_id, "type": "message_batch",
                "processing_status": "ended" if ended else "in_progress",
                "request_counts": {
                    "processing": 0 if ended else total,
                    "succeeded": kinds.count("succeeded"), "errored": kinds.count("errored"),
                    "canceled": kinds.count("canceled"), "expired": kinds.count("expired"),
                },
                "created_at": created.isoformat(),
                "expires_at": (created + timedelta(days=1)).isoformat(),
                "ended_at": datetime.now(UTC).isoformat() if ended else None,
                "cancel_initiated_at": None, "archived_at": None,
                "results_url": (
                    f"{self.anthropic_url}/v1/messages/batches/{batch.batch_id}/results"
                    if ended else None
                ),
            }  # fmt: skip
        failed = sum(1 for r in batch.results if r not in self._good(batch))
        errors = None
        if batch.status == "failed":
            errors = {"object": "list", "data": [
                {"code": "invalid_request", "message": "scripted batch failure", "line": 1}
            ]}  # fmt: skip
        return {
            "id": batch.batch_id, "object": "batch", "endpoint": "/v1/chat/completions",
            "errors": errors, "input_file_id": batch.input_file_id, "completion_window": "24h",
            "status": batch.status, "output_file_id": batch.output_file_id,
            "error_file_id": batch.error_file_id, "created_at": int(batch.created_at),
            "expires_at": int(batch.created_at) + 86400,
            "request_counts": {
                "total": total, "completed": progress - failed if ended else progress,
                "failed": failed,
            },
            "metadata": None,
        }  # fmt: skip

    @staticmethod
    def _good(batch: _Batch) -> list[dict[str, Any]]:
        return [
            r for r in batch.results if r.get("response") and r["response"]["status_code"] == 200
        ]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per request")
    args = parser.parse_args()
    server = FakeLLMServer(port=args.port, latency=args.latency)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(server.serve(on_ready=lambda port: print(port, flush=True)))


if __name__ == "__main__":
    main()
