"""`provider: replay`: serves responses recorded elsewhere, from a file, by item id.

The file is a responses file (CSV, JSONL or Parquet) with `item_id, response` and optionally
`error` and `model` (rows of other models are skipped), validated like `import responses`. Its
token counts and `latency_s`, when given, are kept as the response's own (the time a replay
takes says nothing of the model).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from changeover.providers.base import CallError, Completion, Provider, Request
from changeover.records import ResponseRecord

__all__ = ["ReplayProvider"]


class ReplayProvider(Provider):
    is_cacheable = False
    is_timed = False

    def __init__(self, records: Sequence[ResponseRecord], *, path: Path) -> None:
        self._by_item = {record.item_id: record for record in records}
        self._path = path

    async def complete(self, request: Request) -> Completion:
        record = self._by_item.get(request.tag or "")
        if record is None:
            raise CallError(
                "missing", f"no recorded response for item '{request.tag}' in {self._path}"
            )
        if record.response is None:
            raise CallError("client", f"recorded error: {record.error}")
        return Completion(
            text=record.response,
            finish_reason=record.finish_reason,
            input_tokens=record.input_tokens,
            output_tokens=record.output_tokens,
            latency_s=record.latency_s,
        )
