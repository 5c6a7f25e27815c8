"""Batch requests: a model with `batch: true` is sent its requests through the provider's batch
endpoints (OpenAI's Batch API, Anthropic's Message Batches), billed at about half the price.

`run_batch` takes the place of `call_many` for such a model:

1. what the request cache holds is answered from it;
2. the batches an earlier run submitted (the workspace's `batches` table) are resumed for the
   requests still wanted: a request in a submitted batch is never submitted again;
3. the other requests are submitted in batches of at most `batch_size` (the provider's maximum
   by default), their worst case reserved against the budget first, and each batch is recorded
   the moment the provider returns its id;
4. every `batch_poll_interval` seconds each batch is polled and the caller's
   `on_batch_progress` told how they stand (submitted, in progress, completed);
5. an ended batch's answers go into the request cache with their spend, in one transaction that
   also marks the batch collected: a run killed at any moment loses nothing and counts nothing
   twice;
6. entries that failed in a batch (it expired or was cancelled first, a server error) are sent
   again online (`batch_retry: online`, the default) or in a new batch (`batch_retry: batch`, at
   most `max_retries` rounds, then online); an entry refused as malformed (a 400) is a failure,
   as it would be online. A batch the provider refused as a whole goes online; one it no longer
   knows (404) is submitted again.

Batch answers have no latency of their own (their wait is the queue's), so they add none to the
latency quantiles.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from functools import partial
from typing import TypeVar

from changeover.calls.caller import (
    BatchProgress,
    BatchStore,
    Caller,
    CallResult,
    StoredCall,
    as_cached,
)
from changeover.calls.spend import SpendEntry, request_chars
from changeover.providers import BatchAPI, BatchStatus, CallError, Request, redact
from changeover.providers.base import BatchOutcome, short

__all__ = ["run_batch"]

_T = TypeVar("_T")


async def run_batch(
    caller: Caller,
    requests: Sequence[Request],
    *,
    on_result: Callable[[int, CallResult], None] | None = None,
) -> list[CallResult]:
    """Answer `requests` through the batch endpoints of `caller`'s model; results in order.

    The caller's `batches` keeps the submitted batches and `cache` their answers; a request that
    is never sent (the budget, a model stopped by a 401) is answered with the caller's `stopped`
    error and no attempt."""
    run = _BatchRun(caller, requests, on_result)
    await run.run()
    return run.ordered()


class _BatchRun:
    """The state of one `run_batch`: which requests are still wanted, which batches are open."""

    def __init__(
        self,
        caller: Caller,
        requests: Sequence[Request],
        on_result: Callable[[int, CallResult], None] | None,
    ) -> None:
        if not isinstance(caller.provider, BatchAPI) or caller.batches is None:
            raise TypeError(f"{caller.name}: run_batch needs a batch provider and a batch store")
        self.caller = caller
        self.api: BatchAPI = caller.provider
        self.store: BatchStore = caller.batches
        self.requests = requests
        self.on_result = on_result
        self.results: list[CallResult | None] = [None] * len(requests)
        self.wanted: dict[str, list[int]] = {}  # cache key -> the indices waiting for it
        self.open: dict[str, frozenset[str]] = {}  # batch id -> the keys it holds
        self.finished: dict[str, int] = {}  # batch id -> its entries finished so far
        self.reserved: dict[str, float] = {}  # cache key -> its hold on the budget
        self.rounds: Counter[str] = Counter()  # cache key -> batches it was submitted in
        self.to_resubmit: list[str] = []
        self.deferred: list[str] = []  # waiting for the budget to free (batches in flight)
        self.to_send_online: list[str] = []
        self.why_again: dict[str, CallError] = {}  # the failure each is sent again after
        self.poll_failures: Counter[str] = Counter()  # batch id -> failed polls in a row
        self.progress = BatchProgress()

    # -- the run ---------------------------------------------------------------------------------

    async def run(self) -> None:
        caller = self.caller
        for index, request in enumerate(self.requests):
            key = caller.key(request)
            hit = caller.cached(request, key)
            if hit is not None:
                self._give(index, hit)
            else:
                self.wanted.setdefault(key, []).append(index)
        if not self.wanted:
            return
        self._resume()
        held = set().union(*self.open.values()) if self.open else set()
        await self._submit([key for key in self.wanted if key not in held])
        while not self._is_halted() and (
            self.open or self.to_resubmit or self.to_send_online or self.deferred
        ):
            for batch_id in list(self.open):
                await self._poll(batch_id)
                if self._is_halted():
                    break
            if self.to_resubmit and not self._is_halted():
                keys, self.to_resubmit = self.to_resubmit, []
                self.progress.resubmitted += len(keys)
                await self._submit(keys)
            if self.to_send_online and not self._is_halted():
                keys, self.to_send_online = self.to_send_online, []
                await self._send_online(keys)
            if self.deferred and not self._is_halted():
                if not self.open and caller.limit is not None:
                    await caller.limit.settled()  # the requests of other models in flight
                keys, self.deferred = self.deferred, []
                await self._submit(keys)
            if self.open and not self._is_halted():
                await asyncio.sleep(caller.settings.batch_poll_interval)
        # What is still wanted was never sent (the budget) or never came back (a stopped model):
        # nothing is recorded for it, and the next run resumes or submits it.
        stopped = caller.stopped or CallError("client", "not sent")
        for key in list(self.wanted):
            self._release(key)
            self._deliver(key, CallResult(key, None, stopped))

    def ordered(self) -> list[CallResult]:
        return [result for result in self.results if result is not None]

    def _is_halted(self) -> bool:
        """A model stopped by an error every call would meet (a 401): polling stops too, and the
        open batches are left for the next run. The budget stops submitting only."""
        stopped = self.caller.stopped
        return stopped is not None and stopped.kind != "budget"

    def _resume(self) -> None:
        """Adopt the batches earlier runs submitted that hold requests wanted now."""
        caller = self.caller
        for batch in self.store.open_batches(caller.name, caller.purpose):
            wanted = batch.keys & self.wanted.keys()
            if not wanted:
                continue
            self.open[batch.batch_id] = batch.keys
            self.finished[batch.batch_id] = 0
            self.progress.batches += 1
            self.progress.submitted += len(batch.keys)
            self.progress.resumed += len(batch.keys)
            for key in wanted:
                self.rounds[key] += 1
                if caller.limit is not None:  # paid whatever the budget says: hold it
                    held = caller.reserve_committed(self._request(key), is_batch=True)
                    self.reserved[key] = held
        if self.open:
            self._report()

    # -- submitting ------------------------------------------------------------------------------

    async def _submit(self, keys: Sequence[str]) -> None:
        """Submit what the budget allows now; the rest waits for batches in flight to settle
        (`deferred`), or is not sent once the budget is exceeded."""
        caller = self.caller
        chosen = []
        for key in keys:
            if caller.stopped is not None:
                break
            held = caller.try_reserve(self._request(key), is_batch=True)
            if held is None:
                break
            self.reserved[key] = held
            chosen.append(key)
        rest = list(keys[len(chosen) :])
        if rest and caller.stopped is None:
            self.deferred += rest
        else:
            for key in rest:
                self._deliver(key, CallResult(key, None, caller.stopped))
        limit = self.api.max_batch_requests
        size = min(caller.settings.batch_size or limit, limit)
        for start in range(0, len(chosen), size):
            chunk = chosen[start : start + size]
            entries = [(key, self._request(key)) for key in chunk]
            try:
                batch_id = await self._with_retries(partial(self.api.submit_batch, entries))
            except CallError as error:
                for key in chunk:
                    self._release(key)
                    if error is caller.stopped:
                        self._deliver(key, CallResult(key, None, error))
                    else:
                        self._deliver(key, CallResult(key, None, error, attempts=1))
                continue
            self.store.record_batch(
                batch_id,
                model=caller.name,
                purpose=caller.purpose,
                provider=caller.settings.provider,
                keys=chunk,
                run_id=caller.run_id,
            )
            self.open[batch_id] = frozenset(chunk)
            self.finished[batch_id] = 0
            self.rounds.update(chunk)
            self.progress.batches += 1
            self.progress.submitted += len(chunk)
            self._report()

    async def _with_retries(self, call: Callable[[], Awaitable[_T]]) -> _T:
        """A batch endpoint call, retried on transient failures as one request would be."""
        caller = self.caller
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._call(call)
            except CallError as failure:
                error = caller.note_failure(failure)
                if error is caller.stopped or not error.is_retryable:
                    raise error from None
                if attempt > caller.settings.max_retries:
                    raise error from None
                await asyncio.sleep(caller.backoff(attempt, error))

    async def _call(self, call: Callable[[], Awaitable[_T]]) -> _T:
        """One call of a batch endpoint: its errors redacted, and an unexpected exception from
        the SDK taken as a failed request rather than the end of the run."""
        secrets = self.caller.secrets
        try:
            return await call()
        except asyncio.CancelledError:
            raise
        except CallError as error:
            raise error.redacted(secrets) from None
        except Exception as error:  # noqa: BLE001
            message = short(redact(f"{type(error).__name__}: {error}", secrets))
            raise CallError("client", message) from None

    # -- polling and collecting ------------------------------------------------------------------

    async def _poll(self, batch_id: str) -> None:
        caller = self.caller
        try:
            status = await self._call(lambda: self.api.batch_status(batch_id))
            if status.state == "ended":
                outcomes = await self._call(lambda: self.api.batch_results(batch_id))
        except CallError as failure:
            if failure.status == 404:
                self._lose(batch_id, failure)
                return
            error = caller.note_failure(failure)  # a 401, or nothing answering: stopped
            self.poll_failures[batch_id] += 1
            if self.poll_failures[batch_id] > caller.settings.max_retries and not caller.stopped:
                caller.stopped = CallError(
                    error.kind,
                    f"polling batch {batch_id} failed {self.poll_failures[batch_id]} times in a "
                    f"row, the last with {error}; the batch is kept: re-run to go on polling it",
                )
            return
        self.poll_failures.pop(batch_id, None)
        self.finished[batch_id] = status.completed
        if status.state == "in_progress":
            self._report()
        elif status.state == "failed":
            self._collect(batch_id, status, [], online=True)
        else:
            self._collect(batch_id, status, outcomes, online=False)

    def _collect(
        self,
        batch_id: str,
        status: BatchStatus,
        outcomes: Sequence[BatchOutcome],
        *,
        online: bool,
    ) -> None:
        """Store an ended batch's answers (and mark it collected), deliver them, and queue its
        failed entries to be sent again. `online`: the provider refused the whole batch."""
        caller = self.caller
        keys = self.open.pop(batch_id)
        said = redact(status.detail, caller.secrets)  # the provider's words may quote a key
        answers: dict[str, CallResult] = {}
        failures: dict[str, CallError] = {}
        for outcome in outcomes:
            key = outcome.custom_id
            if key not in keys or key in answers or key in failures:
                continue
            if outcome.completion is None:
                assert outcome.error is not None
                failures[key] = outcome.error.redacted(caller.secrets)
                continue
            completion = outcome.completion.redacted(caller.secrets)
            cost = caller.cost(completion, is_batch=True)
            online_cost = caller.cost(completion)
            saving = None if cost is None or online_cost is None else online_cost - cost
            answers[key] = CallResult(
                key, completion, None, attempts=1, cost=cost, mode="batch", saving=saving
            )
        why = f"the batch failed ({said})" if online else "no result for it in the batch"
        for key in keys - answers.keys() - failures.keys():
            failures[key] = CallError("server" if online else "expired", why)
        stored = [self._stored(key, result) for key, result in answers.items()]
        detail = json.dumps({"status": said, "succeeded": len(answers), "failed": len(failures)})
        self.store.collect_batch(batch_id, stored, run_id=caller.run_id, detail=detail)
        self.finished[batch_id] = len(keys)
        self.progress.collected += len(answers)
        self.progress.failed += len(failures)
        if any(error.kind == "expired" for error in failures.values()):
            self.progress.expired += 1
        for key, result in answers.items():
            self._release(key, result)
            self._deliver(key, result)
        for key, error in failures.items():
            self._release(key)
            self._again(key, error, online=online)
        self._report()

    def _stored(self, key: str, result: CallResult) -> StoredCall:
        caller = self.caller
        completion = result.completion
        assert completion is not None
        request = self._request(key) if key in self.wanted else None
        spend = SpendEntry(
            model=caller.name,
            purpose=caller.purpose,
            mode="batch",
            input_chars=None if request is None else request_chars(request),
            input_tokens=completion.input_tokens,
            output_tokens=completion.output_tokens,
            cost=result.cost,
            saving=result.saving,
            latency_s=None,
        )
        return StoredCall(key, caller.settings.provider, caller.model_id, as_cached(result), spend)

    def _lose(self, batch_id: str, error: CallError) -> None:
        """The provider no longer knows the batch (a 404): its wanted requests go again."""
        keys = self.open.pop(batch_id)
        self.finished.pop(batch_id, None)
        self.store.lose_batch(batch_id, detail=str(error))
        self.progress.lost += 1
        for key in keys & self.wanted.keys():
            self._release(key)
            self.to_resubmit.append(key)

    def _again(self, key: str, error: CallError, *, online: bool) -> None:
        """Queue an entry that failed in a batch to be sent again, or deliver its failure."""
        if key not in self.wanted:
            return
        if not (error.is_retryable or error.kind == "expired"):
            self._deliver(key, CallResult(key, None, error, attempts=1))
            return
        self.why_again[key] = error
        settings = self.caller.settings
        rounds_left = self.rounds[key] <= settings.max_retries
        if not online and settings.batch_retry == "batch" and rounds_left:
            self.to_resubmit.append(key)
        else:
            self.to_send_online.append(key)

    async def _send_online(self, keys: list[str]) -> None:
        """Send failed entries again one by one, with the caller's concurrency and retries."""
        caller = self.caller
        self.progress.retried_online += len(keys)
        self._report()
        queue = list(reversed(keys))

        async def worker() -> None:
            while queue:
                key = queue.pop()
                result = await caller.call(self._request(key))
                if result.attempts:
                    retries = Counter(result.retries)
                    retries[self.why_again.pop(key).kind] += 1
                    result = replace(result, attempts=result.attempts + 1, retries=retries)
                self._deliver(key, result)

        workers = min(caller.settings.concurrency, len(keys))
        await asyncio.gather(*(worker() for _ in range(workers)))

    # -- bookkeeping -----------------------------------------------------------------------------

    def _request(self, key: str) -> Request:
        return self.requests[self.wanted[key][0]]

    def _release(self, key: str, result: CallResult | None = None) -> None:
        """Settle the key's hold on the budget at what it cost (nothing for a failure)."""
        held = self.reserved.pop(key, None)
        if held is not None:
            completion = result.completion if result is not None else None
            self.caller.settle(held, completion, result.cost if result is not None else None)

    def _deliver(self, key: str, result: CallResult) -> None:
        """Give the result to every request with this key (the first pays; the others share it,
        as identical requests in flight do online)."""
        for n, index in enumerate(self.wanted.pop(key, [])):
            shared = result
            if n:
                shared = replace(result, is_cached=result.completion is not None, cost=None,
                                 saving=None, retries=Counter())  # fmt: skip
            self._give(index, shared)

    def _give(self, index: int, result: CallResult) -> None:
        self.results[index] = result
        if self.on_result is not None:
            self.on_result(index, result)

    def _report(self) -> None:
        self.progress.completed = sum(self.finished.values())
        if self.caller.on_batch_progress is not None:
            self.caller.on_batch_progress(self.progress)
