"""Generation: run every model over the items, resumably, and the call machinery behind it.

The machinery is shared with the LLM judges (issue 4). For one model, a `Caller` owns:

* a **request cache** in the workspace (`calls` table), keyed by `cache_key` (a hash of provider,
  model id, generation settings and messages): a request answered once is never sent again;
* **client-side rate limits**: token buckets for requests and tokens per minute (`RateLimiter`);
* **retries** with exponential backoff and jitter on 429, 5xx, timeouts and broken connections,
  honouring Retry-After (which also pauses the model's other workers, since the limit is shared);
* **accounting**: tokens, cost, latency, retries and failures by kind.

`call_many` runs a list of requests for one model with bounded concurrency and returns results in
order: that is the judges' entry point. `generate_responses` drives every model of the study over
the workspace's items, writing each response in its own transaction the moment it arrives, so a
process killed at any moment loses nothing received, and a re-run calls no provider for what is
stored (`--retry-failed` also re-sends the stored failures).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Generic, Literal, Protocol, TypeVar

from changeover.errors import InputError, StudyError
from changeover.providers import (
    CallError,
    Completion,
    Message,
    ModelSettings,
    Provider,
    Request,
    make_provider,
)
from changeover.providers.base import short
from changeover.study import Study
from changeover.workspace import (
    CachedCall,
    GeneratedResponse,
    Item,
    ResponseRecord,
    ResponseSource,
    Workspace,
    WorkspaceError,
)

__all__ = [
    "BatchWriter",
    "CallResult",
    "Caller",
    "GenerateSummary",
    "LatencyHistogram",
    "ModelSummary",
    "RateLimiter",
    "Reporter",
    "build_request",
    "cache_key",
    "call_many",
    "call_model",
    "estimate_tokens",
    "generate",
    "generate_responses",
]

_MAX_RETRY_AFTER = 600.0  # seconds; a longer Retry-After is taken as this


def cache_key(
    provider: str, model_id: str, settings: dict[str, Any], messages: Sequence[Message]
) -> str:
    """The request cache key: SHA-256 of (provider, model id, generation settings, messages).

    Where the endpoint is (`base_url`), how fast it is called and what it costs do not change the
    answer and are left out, so moving a model behind a proxy keeps its cache.
    """
    payload = json.dumps(
        [provider, model_id, settings, [[m.role, m.content] for m in messages]],
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def build_request(item: Item, settings: ModelSettings) -> Request:
    """The messages for one item: the model's system prompt then the item's (joined by a blank
    line), and the item's context before its prompt."""
    system = "\n\n".join(part for part in (settings.system, item.system) if part)
    user = f"{item.context}\n\n{item.prompt}" if item.context else item.prompt
    messages = (
        (Message("system", system), Message("user", user)) if system else (Message("user", user),)
    )
    return Request(messages=messages, tag=item.item_id)


def estimate_tokens(request: Request, settings: ModelSettings) -> int:
    """Tokens a request counts against a tokens-per-minute limit before its usage is known:
    about 4 characters per input token, plus max_tokens (as providers count it)."""
    chars = sum(len(m.content) for m in request.messages)
    return chars // 4 + 4 * len(request.messages) + (settings.effective_max_tokens or 256)


class _Bucket:
    """A token bucket: `rate` per second, holding at most one second's worth (or one request's
    cost, which may leave it in debt), so traffic is smooth rather than bursty."""

    def __init__(self, per_minute: float, clock: Callable[[], float]) -> None:
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate)
        self.level = self.capacity
        self._clock = clock
        self._updated = clock()
        self._lock = asyncio.Lock()  # waiters are served in arrival order

    def _refill(self) -> None:
        now = self._clock()
        self.level = min(self.capacity, self.level + (now - self._updated) * self.rate)
        self._updated = now

    async def take(self, cost: float) -> None:
        async with self._lock:
            while True:
                self._refill()
                need = min(cost, self.capacity)
                if self.level >= need:
                    self.level -= cost
                    return
                await asyncio.sleep((need - self.level) / self.rate)

    def give_back(self, amount: float) -> None:
        """Correct the level once a request's real cost is known (negative: charge more)."""
        self._refill()
        self.level = min(self.capacity, self.level + amount)


class RateLimiter:
    """Client-side limits for one model: requests per minute and tokens per minute."""

    def __init__(
        self,
        *,
        requests_per_minute: float | None,
        tokens_per_minute: float | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._requests = _Bucket(requests_per_minute, clock) if requests_per_minute else None
        self._tokens = _Bucket(tokens_per_minute, clock) if tokens_per_minute else None

    @property
    def is_active(self) -> bool:
        return self._requests is not None or self._tokens is not None

    async def acquire(self, tokens: int) -> None:
        if self._requests is not None:
            await self._requests.take(1)
        if self._tokens is not None:
            await self._tokens.take(tokens)

    def settle(self, estimated: int, actual: int | None) -> None:
        if self._tokens is not None and actual is not None:
            self._tokens.give_back(estimated - actual)


class LatencyHistogram:
    """Latency quantiles in constant memory: log-spaced bins 1% wide from 1 ms to 1 hour."""

    _LOW = 1e-3
    _STEP = math.log(1.01)

    def __init__(self) -> None:
        self._bins: Counter[int] = Counter()
        self.count = 0

    def add(self, seconds: float) -> None:
        index = max(0, int(math.log(max(seconds, self._LOW) / self._LOW) / self._STEP))
        self._bins[index] += 1
        self.count += 1

    def quantile(self, q: float) -> float | None:
        if not self.count:
            return None
        target = q * self.count
        seen = 0
        for index in sorted(self._bins):
            seen += self._bins[index]
            if seen >= target:
                return float(self._LOW * math.exp((index + 0.5) * self._STEP))
        return None


@dataclass
class CallResult:
    """The outcome of one request: a completion, or the error that ended its retries."""

    key: str
    completion: Completion | None
    error: CallError | None
    is_cached: bool = False
    attempts: int = 0
    latency_s: float | None = None
    retries: Counter[str] = field(default_factory=Counter)
    cost: float | None = None


class Caller:
    """One model's provider with its cache, rate limits and retry policy."""

    def __init__(
        self,
        name: str,
        settings: ModelSettings,
        provider: Provider,
        *,
        workspace: Workspace | None = None,
        run_id: int | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.settings = settings
        self.provider = provider
        self.workspace = workspace
        self.run_id = run_id
        self.limiter = RateLimiter(
            requests_per_minute=settings.requests_per_minute,
            tokens_per_minute=settings.tokens_per_minute,
            clock=clock,
        )
        self.stopped: CallError | None = None  # set by a fatal error: every call would fail
        self._rng = rng or random.Random()
        self._clock = clock
        self._resume_at = 0.0
        self._generation = settings.generation_settings()
        self._in_flight: dict[str, asyncio.Future[CallResult]] = {}

    @property
    def model_id(self) -> str:
        return self.settings.model or self.name

    def key(self, request: Request) -> str:
        return cache_key(self.settings.provider, self.model_id, self._generation, request.messages)

    def cost(self, completion: Completion) -> float | None:
        settings = self.settings
        if settings.price_input_per_million is None and settings.price_output_per_million is None:
            return None
        return (
            (completion.input_tokens or 0) * (settings.price_input_per_million or 0.0)
            + (completion.output_tokens or 0) * (settings.price_output_per_million or 0.0)
        ) / 1e6

    def cached(self, request: Request, key: str | None = None) -> CallResult | None:
        """The cached answer to `request`, if any (no provider call)."""
        key = key or self.key(request)
        if self.workspace is None or not self.provider.is_cacheable:
            return None
        hit = self.workspace.cached_call(key)
        if hit is None:
            return None
        completion = Completion(hit.text, hit.finish_reason, hit.input_tokens, hit.output_tokens)
        return CallResult(key, completion, None, is_cached=True, latency_s=hit.latency_s)

    async def send(self, request: Request, key: str | None = None) -> CallResult:
        """Send `request`, retrying transient failures; never raises CallError."""
        key = key or self.key(request)
        settings = self.settings
        retries: Counter[str] = Counter()
        estimate = estimate_tokens(request, settings)
        attempt = 0
        while True:
            attempt += 1
            if self.stopped is not None:
                return CallResult(key, None, self.stopped, attempts=attempt - 1, retries=retries)
            pause = self._resume_at - self._clock()
            if pause > 0:
                await asyncio.sleep(pause)
            if self.limiter.is_active:
                await self.limiter.acquire(estimate)
            started = self._clock()
            try:
                completion = await self._complete(request)
            except CallError as error:
                if error.kind == "fatal":
                    self.stopped = error
                if not error.is_retryable or attempt > settings.max_retries:
                    return CallResult(key, None, error, attempts=attempt, retries=retries)
                retries[error.kind] += 1
                await asyncio.sleep(self._wait(attempt, error))
                continue
            latency = self._clock() - started
            if completion.input_tokens is not None or completion.output_tokens is not None:
                used = (completion.input_tokens or 0) + (completion.output_tokens or 0)
                self.limiter.settle(estimate, used)
            return CallResult(
                key,
                completion,
                None,
                attempts=attempt,
                latency_s=latency,
                retries=retries,
                cost=self.cost(completion),
            )

    async def _complete(self, request: Request) -> Completion:
        """One attempt. An unexpected exception from an SDK becomes a recorded error rather than
        the end of the run: thousands of stored responses matter more than one odd answer."""
        try:
            return await self.provider.complete(request)
        except (CallError, asyncio.CancelledError):
            raise
        except Exception as error:  # noqa: BLE001
            raise CallError("client", f"{type(error).__name__}: {short(error)}") from None

    def _wait(self, attempt: int, error: CallError) -> float:
        """Exponential backoff with jitter; a Retry-After is honoured and pauses the model."""
        settings = self.settings
        ceiling = min(settings.retry_max_wait, settings.retry_wait * 2 ** (attempt - 1))
        wait = ceiling / 2 + self._rng.uniform(0, ceiling / 2)
        if error.retry_after is not None:
            wait = min(error.retry_after, _MAX_RETRY_AFTER) + self._rng.uniform(0, 0.05)
            if error.kind == "rate_limit":
                self._resume_at = max(self._resume_at, self._clock() + wait)
        return wait

    async def call(self, request: Request) -> CallResult:
        """The cached answer, or a fresh one (stored in the cache when a workspace is given).

        Identical requests in flight at the same time are sent once: a judge scoring many
        identical responses (the same canned refusal, say) pays for one call.
        """
        key = self.key(request)
        hit = self.cached(request, key)
        if hit is not None:
            return hit
        in_flight = self._in_flight.get(key)
        if in_flight is not None:
            shared = await asyncio.shield(in_flight)
            return replace(shared, is_cached=shared.completion is not None, retries=Counter())
        future: asyncio.Future[CallResult] = asyncio.get_running_loop().create_future()
        self._in_flight[key] = future
        try:
            result = await self.send(request, key)
            if (
                result.completion is not None
                and self.workspace is not None
                and self.provider.is_cacheable
            ):
                self.workspace.store_call(
                    key,
                    provider=self.settings.provider,
                    model_id=self.model_id,
                    call=_as_cached(result),
                    run_id=self.run_id,
                )
            future.set_result(result)
            return result
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # mark it retrieved: the waiters re-raise it
            raise
        finally:
            del self._in_flight[key]

    async def aclose(self) -> None:
        await self.provider.aclose()


def _as_cached(result: CallResult) -> CachedCall:
    completion = result.completion
    assert completion is not None
    return CachedCall(
        completion.text,
        completion.finish_reason,
        completion.input_tokens,
        completion.output_tokens,
        result.latency_s,
    )


async def call_many(
    caller: Caller,
    requests: Sequence[Request],
    *,
    on_result: Callable[[int, CallResult], None] | None = None,
) -> list[CallResult]:
    """Run `requests` through `caller` with at most `concurrency` in flight; results in order.

    The entry point for LLM judges: cached answers cost nothing, fresh ones are cached.
    `on_result(index, result)` is called as each finishes (for progress or incremental writes).
    """
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
    workspace: Workspace | None,
    base: Path,
    run_id: int | None = None,
    on_result: Callable[[int, CallResult], None] | None = None,
) -> list[CallResult]:
    """`call_many` for one model of the study, from its settings: makes the provider and the
    caller, runs the requests (results in order) and closes the connections."""
    provider = make_provider(name, settings, base=base)
    caller = Caller(name, settings, provider, workspace=workspace, run_id=run_id)
    try:
        return await call_many(caller, requests, on_result=on_result)
    finally:
        await caller.aclose()


# -- generation ---------------------------------------------------------------------------------


@dataclass
class ModelSummary:
    """What generation did for one model."""

    model: str
    total: int = 0  # items considered
    done: int = 0  # fresh responses received
    cached: int = 0  # needed no provider call: stored already, or in the request cache
    failed: int = 0  # recorded as errors in this run
    earlier_failures: int = 0  # errors stored by an earlier run, left alone (--retry-failed)
    stale: int = 0  # stored responses generated with other settings (kept)
    requests: int = 0  # HTTP requests sent, retries included
    failed_by_kind: Counter[str] = field(default_factory=Counter)
    retries_by_kind: Counter[str] = field(default_factory=Counter)
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float | None = None
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    elapsed_s: float = 0.0
    stopped: str | None = None  # why the model was stopped early (a fatal error)

    @property
    def p50(self) -> float | None:
        return self.latency.quantile(0.5)

    @property
    def p95(self) -> float | None:
        return self.latency.quantile(0.95)

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "total": self.total,
            "done": self.done,
            "cached": self.cached,
            "failed": self.failed,
            "earlier_failures": self.earlier_failures,
            "stale": self.stale,
            "requests": self.requests,
            "failed_by_kind": dict(self.failed_by_kind),
            "retries_by_kind": dict(self.retries_by_kind),
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost": self.cost,
            "latency_p50_s": self.p50,
            "latency_p95_s": self.p95,
            "elapsed_s": round(self.elapsed_s, 3),
            "stopped": self.stopped,
        }


@dataclass
class GenerateSummary:
    """What generation did, per model, and the run it was recorded as."""

    run_id: int
    models: list[ModelSummary]

    @property
    def failed(self) -> int:
        return sum(m.failed for m in self.models)


T = TypeVar("T")


class BatchWriter(Generic[T]):
    """Stores records the moment they arrive: all those received in one turn of the event loop
    go in one transaction at the start of the next turn, before any wait for I/O. (One
    transaction per record costs more CPU than the SDK call at hundreds per second.) Generation
    and the judges both write through it.

    `store` writes a batch in one transaction; `what` and `stage` name the records and the
    command to re-run in the error a failed write raises."""

    def __init__(
        self, workspace: Workspace, store: Callable[[list[T]], None], *, what: str, stage: str
    ) -> None:
        self._workspace = workspace
        self._store = store
        self._what = what
        self._stage = stage
        self._pending: list[T] = []
        self._is_scheduled = False
        self._error: BaseException | None = None

    def add(self, entry: T) -> None:
        self._pending.append(entry)
        if not self._is_scheduled:
            self._is_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        self._is_scheduled = False
        if not self._pending or self._error is not None:
            return
        entries, self._pending = self._pending, []
        try:
            self._store(entries)
        except Exception as error:  # noqa: BLE001  (re-raised by check(), in the run's task)
            self._error = error

    def check(self) -> None:
        """Raise the error of a failed write (a full disk, a locked file) in the caller."""
        if self._error is not None:
            raise WorkspaceError(
                f"{self._workspace.path}: cannot store {self._what} ({self._error}); what was "
                f"stored is safe, fix the cause and re-run {self._stage} to resume"
            ) from self._error


class Reporter(Protocol):
    """Progress display: told when a model starts and after every item."""

    def start(self, model: str, total: int) -> None: ...

    def update(self, summary: ModelSummary) -> None: ...


class _NoReporter:
    def start(self, model: str, total: int) -> None:
        pass

    def update(self, summary: ModelSummary) -> None:
        pass


def _select_models(study: Study, models: Sequence[str] | None) -> list[str]:
    if study.models is None:
        raise StudyError(
            f"{study.path or 'study'}: no `models:` section; say how to reach each model "
            "(see docs/generate.md)"
        )
    names = list(models) if models else study.model_names
    for name in names:
        if name not in study.models:
            raise StudyError(
                f"--models: unknown model '{name}'; the study has {', '.join(study.models)}"
            )
    return names


async def _generate_model(
    caller: Caller,
    workspace: Workspace,
    writer: BatchWriter[GeneratedResponse],
    summary: ModelSummary,
    reporter: Reporter,
    *,
    limit: int | None,
    retry_failed: bool,
) -> None:
    name = caller.name
    settings = caller.settings
    counts = workspace.count_for(name, limit=limit)
    summary.total = counts["missing"] + counts["error"] + counts["ok"]
    reporter.start(name, summary.total)
    queue: asyncio.Queue[tuple[Request, str] | None] = asyncio.Queue(
        maxsize=2 * settings.concurrency
    )
    started = time.monotonic()

    def store(record: ResponseRecord, call: CachedCall | None) -> None:
        writer.add(GeneratedResponse(record, call, settings.provider, caller.model_id))

    def account(result: CallResult) -> None:
        completion = result.completion
        if completion is not None:
            summary.input_tokens += completion.input_tokens or 0
            summary.output_tokens += completion.output_tokens or 0
            if result.cost is not None:
                summary.cost = (summary.cost or 0.0) + result.cost
            if result.latency_s is not None:
                summary.latency.add(result.latency_s)
        summary.requests += result.attempts
        summary.retries_by_kind.update(result.retries)

    async def produce() -> None:
        for pending in workspace.iter_items_for(name, limit=limit):
            if caller.stopped is not None:
                break
            request = build_request(pending.item, settings)
            key = caller.key(request)
            if pending.response_state == "ok":
                summary.cached += 1
                if pending.source == "generate" and pending.cache_key != key:
                    summary.stale += 1
                reporter.update(summary)
                continue
            if pending.response_state == "error" and not retry_failed:
                summary.earlier_failures += 1
                reporter.update(summary)
                continue
            hit = caller.cached(request, key)
            if hit is not None:
                store(_record(name, pending.item, hit, caller), None)
                summary.cached += 1
                reporter.update(summary)
                continue
            await queue.put((request, key))
        for _ in range(settings.concurrency):
            await queue.put(None)

    async def work() -> None:
        while True:
            job = await queue.get()
            writer.check()
            if job is None:
                return
            request, key = job
            result = await caller.send(request, key)
            if result.error is not None and result.error is caller.stopped and result.attempts == 0:
                continue  # never sent: the model was stopped by a fatal error
            assert request.tag is not None
            item_id = request.tag
            record = _record_from(name, item_id, result, caller)
            fresh = _as_cached(result) if result.completion is not None else None
            store(record, fresh if caller.provider.is_cacheable else None)
            account(result)
            if result.error is None:
                summary.done += 1
            else:
                summary.failed += 1
                summary.failed_by_kind[result.error.kind] += 1
            summary.elapsed_s = time.monotonic() - started
            reporter.update(summary)

    try:
        await asyncio.gather(produce(), *(work() for _ in range(settings.concurrency)))
    finally:
        summary.elapsed_s = time.monotonic() - started
        if caller.stopped is not None:
            summary.stopped = str(caller.stopped)
        reporter.update(summary)


def _record(name: str, item: Item, result: CallResult, caller: Caller) -> ResponseRecord:
    return _record_from(name, item.item_id, result, caller)


def _record_from(name: str, item_id: str, result: CallResult, caller: Caller) -> ResponseRecord:
    completion = result.completion
    source: ResponseSource = "generate" if caller.provider.is_cacheable else "replay"
    if completion is None:
        assert result.error is not None
        return ResponseRecord(
            item_id=item_id,
            model=name,
            response=None,
            error=f"{result.error.kind}: {result.error}",
            source=source,
            attempts=result.attempts,
            cache_key=result.key,
        )
    return ResponseRecord(
        item_id=item_id,
        model=name,
        response=completion.text,
        source=source,
        finish_reason=completion.finish_reason,
        input_tokens=completion.input_tokens,
        output_tokens=completion.output_tokens,
        latency_s=result.latency_s,
        cost=result.cost,
        attempts=result.attempts,
        cache_key=result.key,
    )


async def generate_responses(
    study: Study,
    workspace: Workspace,
    *,
    models: Sequence[str] | None = None,
    limit: int | None = None,
    retry_failed: bool = False,
    reporter: Reporter | None = None,
    rng: random.Random | None = None,
) -> GenerateSummary:
    """Generate the missing responses of every model (or of `models`) over the first `limit`
    items, all models at once, each with its own concurrency and limits."""
    names = _select_models(study, models)
    if limit is not None and limit < 1:
        raise InputError(f"--limit must be at least 1 (got {limit})")
    if workspace.count_items() == 0:
        raise InputError(
            f"{workspace.path}: the workspace has no items; run `changeover import items FILE`"
        )
    assert study.models is not None
    base = study.path.parent if study.path is not None else Path.cwd()
    item_ids = (
        workspace.item_ids() if any(study.models[n].provider == "replay" for n in names) else set()
    )
    with workspace.exclusive("generate"):
        return await _generate_locked(
            study, workspace, names, base, item_ids, limit, retry_failed, reporter, rng
        )


async def _generate_locked(
    study: Study,
    workspace: Workspace,
    names: list[str],
    base: Path,
    item_ids: set[str],
    limit: int | None,
    retry_failed: bool,
    reporter: Reporter | None,
    rng: random.Random | None,
) -> GenerateSummary:
    assert study.models is not None
    providers = [
        make_provider(name, study.models[name], base=base, item_ids=item_ids) for name in names
    ]
    reporter = reporter or _NoReporter()
    run_id = workspace.start_run(
        "generate", {"models": names, "limit": limit, "retry_failed": retry_failed}
    )
    rng = rng or random.Random()
    callers = [
        Caller(name, study.models[name], provider, workspace=workspace, run_id=run_id, rng=rng)
        for name, provider in zip(names, providers, strict=True)
    ]
    summaries = [ModelSummary(model=name) for name in names]
    writer: BatchWriter[GeneratedResponse] = BatchWriter(
        workspace,
        lambda entries: workspace.store_generated(entries, run_id=run_id),
        what="responses",
        stage="generate",
    )
    status: Literal["finished", "failed", "interrupted"] = "interrupted"
    try:
        await asyncio.gather(
            *(
                _generate_model(
                    caller,
                    workspace,
                    writer,
                    summary,
                    reporter,
                    limit=limit,
                    retry_failed=retry_failed,
                )
                for caller, summary in zip(callers, summaries, strict=True)
            )
        )
        writer.flush()
        writer.check()
        status = "finished"
    except Exception:
        status = "failed"
        raise
    finally:
        writer.flush()
        for caller in callers:
            await caller.aclose()
        workspace.finish_run(
            run_id, status=status, detail={"summary": [s.as_dict() for s in summaries]}
        )
    return GenerateSummary(run_id=run_id, models=summaries)


def generate(
    study: Study,
    workspace: Workspace,
    *,
    models: Sequence[str] | None = None,
    limit: int | None = None,
    retry_failed: bool = False,
    reporter: Reporter | None = None,
) -> GenerateSummary:
    """Synchronous `generate_responses`, for the CLI and scripts."""
    return asyncio.run(
        generate_responses(
            study,
            workspace,
            models=models,
            limit=limit,
            retry_failed=retry_failed,
            reporter=reporter,
        )
    )
