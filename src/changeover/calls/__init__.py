"""Model calls: the machinery shared by generation and the LLM judges.

* `caller`: one model's `Caller` (request cache, rate limits, retries, cost, budget, redaction);
* `batch`: `run_batch`, the same requests through the provider's batch endpoints;
* `spend`: prices, the run's `SpendLimit`, what a request costs at worst, and estimates made
  before anything is sent.

`call_many` runs a list of requests for one model and returns results in order: the judges'
entry point (through a batch for a model with `batch: true`). Generation drives `Caller.send`
itself, to write each response the moment it arrives.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Sequence
from pathlib import Path

from changeover.calls.batch import run_batch
from changeover.calls.caller import (
    UNREACHABLE_LIMIT,
    BatchProgress,
    BatchStore,
    CachedCall,
    CallCache,
    Caller,
    CallResult,
    LatencyHistogram,
    OpenBatch,
    RateLimiter,
    StoredCall,
    as_cached,
    cache_key,
    estimate_tokens,
    request_key,
)
from changeover.calls.spend import (
    CHARS_PER_TOKEN,
    Mode,
    Purpose,
    SpendEntry,
    SpendEstimate,
    SpendLimit,
    SpendPlan,
    SpendSummary,
    UsageHistory,
    dollars,
    estimate_spend,
    request_chars,
    request_cost,
    worst_case_cost,
)
from changeover.providers import ModelSettings, Request, make_provider

__all__ = [
    "CHARS_PER_TOKEN",
    "UNREACHABLE_LIMIT",
    "BatchProgress",
    "BatchStore",
    "CachedCall",
    "CallCache",
    "CallResult",
    "Caller",
    "LatencyHistogram",
    "Mode",
    "OpenBatch",
    "Purpose",
    "RateLimiter",
    "SpendEntry",
    "SpendEstimate",
    "SpendLimit",
    "SpendPlan",
    "SpendSummary",
    "StoredCall",
    "UsageHistory",
    "as_cached",
    "cache_key",
    "call_many",
    "call_model",
    "dollars",
    "estimate_spend",
    "estimate_tokens",
    "request_chars",
    "request_cost",
    "request_key",
    "run_batch",
    "worst_case_cost",
]


async def call_many(
    caller: Caller,
    requests: Sequence[Request],
    *,
    on_result: Callable[[int, CallResult], None] | None = None,
) -> list[CallResult]:
    """Run `requests` through `caller` with at most `concurrency` in flight; results in order.

    The entry point for LLM judges: cached answers cost nothing, fresh ones are cached.
    `on_result(index, result)` is called as each finishes (for progress or incremental writes).
    A model with `batch: true` whose caller has somewhere to keep its batches (`batches`) is
    sent them through the provider's batch endpoints (`run_batch`).
    """
    if caller.settings.batch and caller.batches is not None:
        return await run_batch(caller, requests, on_result=on_result)
    results: list[CallResult | None] = [None] * len(requests)
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        while next_index < len(requests):
            index = next_index
            next_index += 1
            result = await caller.call(requests[index])
            results[index] = result
            if on_result is not None:
                on_result(index, result)

    workers = min(caller.settings.concurrency, len(requests))
    await asyncio.gather(*(worker() for _ in range(workers)))
    return [result for result in results if result is not None]


async def call_model(
    name: str,
    settings: ModelSettings,
    requests: Sequence[Request],
    *,
    cache: CallCache | None,
    base: Path,
    run_id: int | None = None,
    secrets: Collection[str] | None = None,
    on_result: Callable[[int, CallResult], None] | None = None,
    batches: BatchStore | None = None,
) -> list[CallResult]:
    """`call_many` for one model of the study, from its settings: makes the provider and the
    caller, runs the requests (results in order) and closes the connections."""
    provider = make_provider(name, settings, base=base)
    caller = Caller(
        name, settings, provider, cache=cache, run_id=run_id, secrets=secrets, batches=batches
    )
    try:
        return await call_many(caller, requests, on_result=on_result)
    finally:
        await caller.aclose()
