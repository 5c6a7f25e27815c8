"""A local HTTP server that speaks the OpenAI chat-completions and Anthropic messages protocols.

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

Run it on its own (for benchmarks) with ``python -m tests.fakes.llm_server --latency 0.1``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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


@dataclass
class _State:
    latency: float = 0.0
    retry_after: float = 0.2
    timeout_sleep: float = 3.0
    attempts: dict[str, int] = field(default_factory=dict)
    log: list[LoggedRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  (silence stderr)
        pass

    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/_count":
            with self.server.state.lock:
                count = len(self.server.state.log)
            self._send(200, {"requests": count})
        else:
            self._send(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:  # noqa: N802  (http.server's naming)
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length) or b"{}")
        if self.path.endswith("/chat/completions"):
            protocol = "openai"
        elif self.path.endswith("/messages"):
            protocol = "anthropic"
        else:
            self._send(404, {"error": {"message": f"no route {self.path}"}})
            return
        prompt = _last_user_text(body.get("messages", []))
        model = str(body.get("model", ""))
        state = self.server.state
        with state.lock:
            attempt = state.attempts.get(prompt, 0)
            state.attempts[prompt] = attempt + 1
        match = _SCRIPT.search(prompt)
        steps = match.group(1).split(",") if match else ["ok"]
        step = steps[min(attempt, len(steps) - 1)]
        auth = self.headers.get("Authorization") or self.headers.get("x-api-key") or ""
        with state.lock:
            state.log.append(LoggedRequest(protocol, model, prompt, step, auth, time.time()))
        if state.latency:
            state.stopping.wait(state.latency)
        if step == "timeout":
            state.stopping.wait(state.timeout_sleep)
        if step == "429":
            kind = "rate_limit_error"
            headers = {"Retry-After": f"{state.retry_after:g}"}
            self._send(429, self._error(protocol, kind, "slow down"), headers)
        elif step == "401":
            self._send(401, self._error(protocol, "authentication_error", "invalid key"))
        elif step == "500":
            self._send(500, self._error(protocol, "api_error", "internal error"))
        elif step == "malformed":
            self._send_raw(200, b'{"id": "x", "choices": [ {not json', "application/json")
        else:
            text = "" if step == "empty" else f"echo: {prompt}"
            self._send(200, self._answer(protocol, model, prompt, text))

    @staticmethod
    def _error(protocol: str, kind: str, message: str) -> dict[str, Any]:
        if protocol == "anthropic":
            return {"type": "error", "error": {"type": kind, "message": message}}
        return {"error": {"message": message, "type": kind, "param": None, "code": None}}

    @staticmethod
    def _answer(protocol: str, model: str, prompt: str, text: str) -> dict[str, Any]:
        input_tokens = max(1, len(prompt) // 4)
        output_tokens = len(text) // 4
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
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": input_tokens,
                "completion_tokens": output_tokens,
                "total_tokens": input_tokens + output_tokens,
            },
        }

    def _send(
        self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        self._send_raw(status, json.dumps(payload).encode(), "application/json", headers)

    def _send_raw(
        self, status: int, data: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout scenario)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    state: _State


class FakeLLMServer:
    """The server, run on a background thread; use as a context manager.

    `log` lists every request received, in order, so tests can check what was (not) called.
    """

    def __init__(
        self,
        *,
        port: int = 0,
        latency: float = 0.0,
        retry_after: float = 0.2,
        timeout_sleep: float = 3.0,
    ) -> None:
        self._server = _Server(("127.0.0.1", port), _Handler)
        self._server.state = _State(
            latency=latency, retry_after=retry_after, timeout_sleep=timeout_sleep
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def openai_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def anthropic_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> list[LoggedRequest]:
        with self._server.state.lock:
            return list(self._server.state.log)

    def start(self) -> FakeLLMServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.state.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per request")
    args = parser.parse_args()
    server = FakeLLMServer(port=args.port, latency=args.latency)
    print(server.port, flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server._server.serve_forever()


if __name__ == "__main__":
    main()
