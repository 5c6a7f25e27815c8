"""A provider worker process (see pool.py): JSON lines in on stdin, JSON lines out on stdout.

The first line names the model and its settings; every later line is one request
`{"id", "messages": [[role, content], ...], "tag"}`, answered, in any order, by
`{"id", "text", "finish_reason", "input_tokens", "output_tokens", "implausible_usage"}` or
`{"id", "error": {...}}`.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Any

from changeover.providers import make_provider
from changeover.providers.base import CallError, Message, Provider, Request
from changeover.providers.pool import encode_error
from changeover.providers.settings import ModelSettings

_LINE_LIMIT = 1 << 26


async def _answer(provider: Provider, data: dict[str, Any], out: asyncio.StreamWriter) -> None:
    request = Request(
        tuple(Message(role, content) for role, content in data["messages"]), tag=data["tag"]
    )
    reply: dict[str, Any] = {"id": data["id"]}
    try:
        completion = await provider.complete(request)
    except CallError as error:
        reply["error"] = encode_error(error)
    except Exception as error:  # noqa: BLE001  (reported to the main process, not lost)
        reply["error"] = {
            "kind": "client",
            "message": f"{type(error).__name__}: {error}",
            "status": None,
            "retry_after": None,
        }
    else:
        reply |= {
            "text": completion.text,
            "finish_reason": completion.finish_reason,
            "input_tokens": completion.input_tokens,
            "output_tokens": completion.output_tokens,
            "implausible_usage": completion.implausible_usage,
        }
    out.write(json.dumps(reply).encode() + b"\n")


async def serve() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=_LINE_LIMIT)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin.buffer)
    transport, protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, sys.stdout.buffer
    )
    out = asyncio.StreamWriter(transport, protocol, reader, loop)
    hello = json.loads(await reader.readline())
    settings = ModelSettings.model_validate(hello["settings"] | {"processes": 1})
    provider = make_provider(hello["name"], settings, base=Path.cwd())
    tasks: set[asyncio.Task[None]] = set()
    try:
        while line := await reader.readline():
            task = asyncio.create_task(_answer(provider, json.loads(line), out))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            if out.transport.get_write_buffer_size() > 1 << 20:
                await out.drain()
    finally:
        for task in tasks:
            task.cancel()
        await provider.aclose()


def main() -> None:
    # Ctrl-C reaches the whole process group; the main process decides, and closes our stdin.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    asyncio.run(serve())


if __name__ == "__main__":
    main()
