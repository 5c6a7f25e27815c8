"""Run a provider's SDK client in worker processes, for endpoints fast enough to outrun one CPU.

The official SDKs spend about 1.5-2 ms of CPU per request (building the request, headers,
parsing), so one process tops out near 500-600 requests per second whatever the concurrency
(docs/generate.md). `processes: N` in a model's settings spreads the HTTP work over N worker
processes; everything else (cache, rate limits, retries, the workspace) stays in the main
process, which sends each attempt to the least busy worker and gets back a `Completion` or a
`CallError`.

Workers speak JSON lines over their stdin/stdout (`python -m changeover.providers.worker`). They
read the API key from the environment variable the settings name, like the main process, and
exit when their stdin closes, so a killed main process takes them with it.
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import dataclass, field
from typing import Any

from changeover.providers.base import CallError, Completion, Provider, Request
from changeover.providers.settings import ModelSettings

__all__ = ["ProcessPoolProvider", "decode_error", "encode_error"]

_LINE_LIMIT = 1 << 26  # the longest answer a worker can send back: 64 MiB


def encode_error(error: CallError) -> dict[str, Any]:
    return {
        "kind": error.kind,
        "message": str(error),
        "status": error.status,
        "retry_after": error.retry_after,
    }


def decode_error(data: dict[str, Any]) -> CallError:
    return CallError(
        data["kind"], data["message"], status=data["status"], retry_after=data["retry_after"]
    )


@dataclass
class _Worker:
    process: asyncio.subprocess.Process
    pending: dict[int, asyncio.Future[Completion]] = field(default_factory=dict)
    reader: asyncio.Task[None] | None = None
    is_alive: bool = True


class ProcessPoolProvider(Provider):
    """A provider whose requests are sent by `processes` worker processes."""

    def __init__(self, name: str, settings: ModelSettings) -> None:
        self._name = name
        self._settings = settings
        self._workers: list[_Worker] = []
        self._next_id = 0
        self._starting: asyncio.Lock | None = None

    async def _start(self) -> None:
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if self._workers:
                return
            hello = json.dumps(
                {"name": self._name, "settings": self._settings.model_dump(mode="json")}
            )
            for _ in range(self._settings.processes):
                process = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "changeover.providers.worker",
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    limit=_LINE_LIMIT,
                )
                assert process.stdin is not None
                process.stdin.write(hello.encode() + b"\n")
                worker = _Worker(process)
                worker.reader = asyncio.create_task(self._read(worker))
                self._workers.append(worker)

    async def _read(self, worker: _Worker) -> None:
        stdout = worker.process.stdout
        assert stdout is not None
        while True:
            line = await stdout.readline()
            if not line:
                break
            data = json.loads(line)
            future = worker.pending.pop(data["id"], None)
            if future is None or future.done():
                continue
            if "error" in data:
                future.set_exception(decode_error(data["error"]))
            else:
                future.set_result(
                    Completion(
                        data["text"],
                        data["finish_reason"],
                        data["input_tokens"],
                        data["output_tokens"],
                        data["implausible_usage"],
                    )
                )
        worker.is_alive = False
        for future in worker.pending.values():
            if not future.done():
                future.set_exception(
                    CallError("connection", "the worker process sending the request exited")
                )
        worker.pending.clear()

    async def complete(self, request: Request) -> Completion:
        if not self._workers:
            await self._start()
        alive = [w for w in self._workers if w.is_alive]
        if not alive:
            raise CallError("fatal", "every worker process exited; see the errors above")
        worker = min(alive, key=lambda w: len(w.pending))
        self._next_id += 1
        request_id = self._next_id
        future: asyncio.Future[Completion] = asyncio.get_running_loop().create_future()
        worker.pending[request_id] = future
        message = {
            "id": request_id,
            "messages": [[m.role, m.content] for m in request.messages],
            "tag": request.tag,
        }
        stdin = worker.process.stdin
        assert stdin is not None
        try:
            stdin.write(json.dumps(message).encode() + b"\n")
        except (BrokenPipeError, ConnectionResetError):
            worker.pending.pop(request_id, None)
            worker.is_alive = False
            raise CallError("connection", "a worker process exited") from None
        return await future

    async def aclose(self) -> None:
        for worker in self._workers:
            stdin = worker.process.stdin
            if stdin is not None and not stdin.is_closing():
                stdin.close()
        for worker in self._workers:
            try:
                await asyncio.wait_for(worker.process.wait(), timeout=10)
            except TimeoutError:
                worker.process.kill()
                await worker.process.wait()
            if worker.reader is not None:
                await worker.reader
        self._workers.clear()
