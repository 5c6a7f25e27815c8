"""One model call: the machinery shared by generation and the LLM judges.

For one model (and one purpose: generation or judging), a `Caller` owns:

* a **request cache** (`CallCache`, the workspace's `calls` table), keyed by `cache_key` (a hash
  of provider, model id, generation settings and messages): a request answered once is never
  sent again;
* **client-side rate limits**: token buckets for requests and tokens per minute (`RateLimiter`);
* **retries** with exponential backoff and jitter on 429, 5xx, timeouts and broken connections,
  honouring Retry-After (which also pauses the model's other workers, since the limit is shared);
* **stopping** a model every request would fail on: a 401, 403 or 404, nothing answering at its
  URL `UNREACHABLE_LIMIT` times in a row, or (with `fail_fast_after`, the judges) its first
  calls all failing;
* **accounting**: tokens, cost, latency, retries and failures by kind; each paid request is
  stored with its answer as a `SpendEntry` (the workspace's `spend` table);
* **the budget** (`SpendLimit`, shared by a run's callers): the worst case of a request is
  reserved before it is sent; a request that does not fit waits for those in flight to settle,
  and is not sent when it still cannot fit: the model is stopped with a `budget` error;
* **redaction**: every configured secret (the API keys the study's models name) is taken out of
  answers and error messages before anything sees them.

A model with `batch: true` sends its requests through the provider's batch endpoints instead
(`changeover.calls.batch`); its Caller then holds `batches`, where submitted batches are kept.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import random
import time
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from changeover.calls.spend import (
    Mode,
    Purpose,
    SpendEntry,
    SpendLimit,
    request_chars,
    request_cost,
    worst_case_cost,
)
from changeover.providers import (
    CallError,
    Completion,
    Message,
    ModelSettings,
    Provider,
    Request,
    configured_secrets,
    redact,
)
from changeover.providers.base import short

__all__ = [
    "BatchProgress",
    "BatchStore",
    "CachedCall",
    "CallCache",
    "CallResult",
    "Caller",
    "LatencyHistogram",
    "OpenBatch",
    "RateLimiter",
    "StoredCall",
    "as_cached",
    "cache_key",
    "estimate_tokens",
    "request_key",
]


@dataclass(frozen=True)
class CachedCall:
    """A provider answer from the request cache."""

    text: str
    finish_reason: str | None
    input_tokens: int | None
    output_tokens: int | None
    latency_s: float | None


class CallCache(Protocol):
    """Where answers are kept (the workspace's `calls` table), with what they cost (`spend`)."""

    def cached_call(self, key: str) -> CachedCall | None: ...

    def store_call(
        self,
        key: str,
        *,
        provider: str,
        model_id: str,
        call: CachedCall,
        run_id: int | None,
        spend: SpendEntry | None = None,
    ) -> None: ...


@dataclass(frozen=True)
class StoredCall:
    """A fresh answer to store in the cache, with what it cost."""

    key: str
    provider: str
    model_id: str
    call: CachedCall
    spend: SpendEntry | None


@dataclass(frozen=True)
class OpenBatch:
    """A batch submitted and not yet collected: its id and the cache keys of its requests."""

    batch_id: str
    keys: frozenset[str]
    run_id: int | None


@dataclass
class BatchProgress:
    """How one model's batches stand while they are polled, for a progress display."""

    batches: int = 0  # batches waited on (submitted in this run or resumed)
    submitted: int = 0  # requests in them
    resumed: int = 0  # of those, submitted by an earlier run
    completed: int = 0  # finished by the provider so far (succeeded or failed), by its counts
    collected: int = 0  # results read back and stored
    failed: int = 0  # entries that failed in a batch
    retried_online: int = 0  # failed entries sent again online
    resubmitted: int = 0  # failed entries sent again in a new batch
    expired: int = 0  # batches that ended before running every entry (expired, cancelled)
    lost: int = 0  # batches the provider no longer knows (404): their requests submitted again

    @property
    def in_progress(self) -> int:
        return max(0, self.submitted - self.completed)

    def describe(self) -> str:
        """One line: "batches: 2 submitted (120 requests) · 80 in progress · 40 completed"."""
        noun = "batch" if self.batches == 1 else "batches"
        return (
            f"{noun}: {self.batches} submitted ({self.submitted:,} requests) · "
            f"{self.in_progress:,} in progress · {self.completed:,} completed"
        )


class BatchStore(Protocol):
    """Where submitted batches are kept (the workspace's `batches` table), so that a run killed
    after submitting resumes polling them instead of submitting again."""

    def open_batches(self, model: str, purpose: str) -> list[OpenBatch]: ...

    def record_batch(
        self,
        batch_id: str,
        *,
        model: str,
        purpose: str,
        provider: str,
        keys: Sequence[str],
        run_id: int | None,
    ) -> None: ...

    def collect_batch(
        self, batch_id: str, calls: Sequence[StoredCall], *, run_id: int | None, detail: str
    ) -> None: ...

    def lose_batch(self, batch_id: str, *, detail: str) -> None: ...


_MAX_RETRY_AFTER = 600.0  # seconds; a longer Retry-After is taken as this
#: Attempts in a row that find nothing answering at a model's URL before the model is stopped:
#: a server restarting is back within a few seconds; a wrong `base_url` never is.
UNREACHABLE_LIMIT = 3


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


def request_key(name: str, settings: ModelSettings, request: Request) -> str:
    """The cache key of `request` to the study's model `name`, as its `Caller.key` makes it."""
    return cache_key(
        settings.provider, settings.model or name, settings.generation_settings(), request.messages
    )


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
    mode: Mode = "online"
    saving: float | None = None  # batch: the online price of the same tokens, less the cost


class Caller:
    """One model's provider with its cache, rate limits and retry policy."""

    def __init__(
        self,
        name: str,
        settings: ModelSettings,
        provider: Provider,
        *,
        cache: CallCache | None = None,
        run_id: int | None = None,
        secrets: Collection[str] | None = None,
        fail_fast_after: int | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        purpose: Purpose = "generation",
        limit: SpendLimit | None = None,
        batches: BatchStore | None = None,
    ) -> None:
        """`secrets` are redacted from every answer and error (default: this model's key; a
        stage passes `configured_secrets(study.models)`, every key the study names).
        `fail_fast_after=N` stops the model when its first N calls all fail (a judge whose
        endpoint answers an HTML page would otherwise fail thousands of times). `purpose` is
        what the spend is recorded under; `limit` the run's budget; `batches` where a batch
        model keeps its submitted batches."""
        self.name = name
        self.settings = settings
        self.provider = provider
        self.cache = cache
        self.run_id = run_id
        self.purpose: Purpose = purpose
        self.limit = limit
        self.batches = batches
        #: Told how the model's batches stand while they are polled (a progress display).
        self.on_batch_progress: Callable[[BatchProgress], None] | None = None
        self.secrets = configured_secrets({name: settings}) if secrets is None else secrets
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
        self._unreachable_in_a_row = 0
        self._fail_fast_after = fail_fast_after
        self._failed_first = 0  # calls that failed before any succeeded
        self._has_succeeded = False

    @property
    def model_id(self) -> str:
        return self.settings.model or self.name

    def key(self, request: Request) -> str:
        return cache_key(self.settings.provider, self.model_id, self._generation, request.messages)

    def cost(self, completion: Completion, *, is_batch: bool = False) -> float | None:
        return request_cost(
            self.settings, completion.input_tokens, completion.output_tokens, is_batch=is_batch
        )

    def spend_entry(self, request: Request, result: CallResult) -> SpendEntry | None:
        """What a fresh answer cost, as the `spend` table keeps it (None for a cached one)."""
        completion = result.completion
        if completion is None or result.is_cached:
            return None
        return SpendEntry(
            model=self.name,
            purpose=self.purpose,
            mode=result.mode,
            input_chars=request_chars(request),
            input_tokens=completion.input_tokens,
            output_tokens=completion.output_tokens,
            cost=result.cost,
            saving=result.saving,
            latency_s=result.latency_s,
        )

    async def reserve(self, request: Request) -> float | None:
        """Hold the worst case of `request` against the budget, waiting while requests in
        flight settle: the amount held (0 without a budget), or None when it cannot fit, and
        then the model is stopped."""
        if self.limit is None:
            return 0.0
        worst = worst_case_cost(request, self.settings)
        if await self.limit.reserve(worst):
            return worst
        self._stop_for_budget()
        return None

    def try_reserve(self, request: Request, *, is_batch: bool = False) -> float | None:
        """Hold the worst case of `request` if it fits now: the amount held, or None (and the
        model stopped when the budget is exceeded for good)."""
        if self.limit is None:
            return 0.0
        worst = worst_case_cost(request, self.settings, is_batch=is_batch)
        if self.limit.try_reserve(worst):
            return worst
        if self.limit.exceeded is not None:
            self._stop_for_budget()
        return None

    def _stop_for_budget(self) -> None:
        if self.stopped is None:
            assert self.limit is not None
            self.stopped = CallError("budget", self.limit.exceeded or "the budget is spent")

    def reserve_committed(self, request: Request, *, is_batch: bool = False) -> float:
        """Hold the worst case of a request already sent (a batch an earlier run submitted):
        it is paid for whatever the budget says, and counts against what is left."""
        if self.limit is None:
            return 0.0
        worst = worst_case_cost(request, self.settings, is_batch=is_batch)
        self.limit.commit(worst)
        return worst

    def settle(self, reserved: float, completion: Completion | None, cost: float | None) -> None:
        """Replace a reservation by the real cost: nothing for a failure (providers bill no
        error), the reservation itself when the answer's usage is unknown."""
        if self.limit is None:
            return
        if completion is None:
            self.limit.settle(reserved, 0.0)
        elif completion.input_tokens is None or completion.output_tokens is None:
            self.limit.settle(reserved, None)
        else:
            self.limit.settle(reserved, cost)

    def cached(self, request: Request, key: str | None = None) -> CallResult | None:
        """The cached answer to `request`, if any (no provider call)."""
        key = key or self.key(request)
        if self.cache is None or not self.provider.is_cacheable:
            return None
        hit = self.cache.cached_call(key)
        if hit is None:
            return None
        completion = Completion(hit.text, hit.finish_reason, hit.input_tokens, hit.output_tokens)
        return CallResult(key, completion, None, is_cached=True, latency_s=hit.latency_s)

    async def send(self, request: Request, key: str | None = None) -> CallResult:
        """Send `request`, retrying transient failures; never raises CallError."""
        result = await self._send(request, key or self.key(request))
        self._note_outcome(result)
        return result

    def _note_outcome(self, result: CallResult) -> None:
        """Stop the model when its first `fail_fast_after` calls have all failed."""
        if self._has_succeeded or result.attempts == 0:
            return
        if result.error is None:
            self._has_succeeded = True
            return
        self._failed_first += 1
        limit = self._fail_fast_after
        if limit is not None and self._failed_first >= limit and self.stopped is None:
            self.stopped = CallError(
                result.error.kind,
                f"its first {self._failed_first} calls all failed, the last with "
                f"{result.error.kind}: {result.error}; check the model's endpoint (base_url), "
                "key and model id",
            )

    async def _send(self, request: Request, key: str) -> CallResult:
        if self.stopped is not None:
            return CallResult(key, None, self.stopped)
        reserved = await self.reserve(request)
        if reserved is None:
            assert self.stopped is not None
            return CallResult(key, None, self.stopped)
        result = await self._attempts(request, key)
        self.settle(reserved, result.completion, result.cost)
        return result

    async def _attempts(self, request: Request, key: str) -> CallResult:
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
                error = self.note_failure(error)
                if self.stopped is error:
                    return CallResult(key, None, error, attempts=attempt, retries=retries)
                if not error.is_retryable or attempt > settings.max_retries:
                    return CallResult(key, None, error, attempts=attempt, retries=retries)
                retries[error.kind] += 1
                await asyncio.sleep(self.backoff(attempt, error))
                continue
            self._unreachable_in_a_row = 0
            latency = self._clock() - started if self.provider.is_timed else completion.latency_s
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

    def note_failure(self, error: CallError) -> CallError:
        """Stop the model on an error every request would meet: a fatal one (401, 403, 404), or
        nothing answering at its URL `UNREACHABLE_LIMIT` times in a row; the error to record."""
        if error.kind != "unreachable":
            self._unreachable_in_a_row = 0
        if error.kind == "fatal" and self.stopped is None:
            self.stopped = error
        elif error.kind == "unreachable":
            self._unreachable_in_a_row += 1
            if self._unreachable_in_a_row >= UNREACHABLE_LIMIT and self.stopped is None:
                self.stopped = CallError(
                    "unreachable",
                    f"{error}, {self._unreachable_in_a_row} attempts in a row; check the "
                    "model's base_url and that its server is running",
                )
                return self.stopped
        return error

    async def _complete(self, request: Request) -> Completion:
        """One attempt, its answer and error redacted. An unexpected exception from an SDK
        becomes a recorded error rather than the end of the run: thousands of stored responses
        matter more than one odd answer."""
        try:
            completion = await self.provider.complete(request)
        except asyncio.CancelledError:
            raise
        except CallError as error:
            raise error.redacted(self.secrets) from None
        except Exception as error:  # noqa: BLE001
            message = short(redact(f"{type(error).__name__}: {error}", self.secrets))
            raise CallError("client", message) from None
        return completion.redacted(self.secrets)

    def backoff(self, attempt: int, error: CallError) -> float:
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
        """The cached answer, or a fresh one (stored in the cache when there is one).

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
                and self.cache is not None
                and self.provider.is_cacheable
            ):
                self.cache.store_call(
                    key,
                    provider=self.settings.provider,
                    model_id=self.model_id,
                    call=as_cached(result),
                    run_id=self.run_id,
                    spend=self.spend_entry(request, result),
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


def as_cached(result: CallResult) -> CachedCall:
    """A successful result as the cache keeps it."""
    completion = result.completion
    assert completion is not None
    return CachedCall(
        completion.text,
        completion.finish_reason,
        completion.input_tokens,
        completion.output_tokens,
        result.latency_s,
    )
