"""Generation: run every model over the items, resumably.

`generate_responses` drives every model of the study over the workspace's items through the call
machinery of `changeover.calls` (cache, limits, retries, cost, budget), writing each response in
its own transaction the moment it arrives, so a process killed at any moment loses nothing
received, and a re-run calls no provider for what is stored (`--retry-failed` also re-sends the
stored failures). A model with `batch: true` is sent its requests in batches
(`changeover.calls.run_batch`), resumed by a re-run. `estimate_generation` says what a run would
send and cost without sending anything (`generate --dry-run`).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from changeover.calls import (
    BatchProgress,
    CachedCall,
    Caller,
    CallResult,
    LatencyHistogram,
    Purpose,
    SpendEntry,
    SpendEstimate,
    SpendLimit,
    SpendPlan,
    as_cached,
    estimate_spend,
    request_chars,
    request_key,
    run_batch,
)
from changeover.errors import InputError, StudyError
from changeover.io import read_responses
from changeover.providers import (
    Message,
    ModelSettings,
    Provider,
    Request,
    configured_secrets,
    make_provider,
)
from changeover.records import Item, ResponseRecord, ResponseSource
from changeover.study import Study
from changeover.workspace import BatchWriter, GeneratedResponse, Workspace

__all__ = [
    "GenerateSummary",
    "ModelSummary",
    "Reporter",
    "build_request",
    "estimate_generation",
    "estimate_requests",
    "generate",
    "generate_responses",
    "spend_limit",
    "spend_plan",
]


def build_request(item: Item, settings: ModelSettings) -> Request:
    """The messages for one item: the model's system prompt then the item's (joined by a blank
    line), and the item's context before its prompt."""
    system = "\n\n".join(part for part in (settings.system, item.system) if part)
    user = f"{item.context}\n\n{item.prompt}" if item.context else item.prompt
    messages = (
        (Message("system", system), Message("user", user)) if system else (Message("user", user),)
    )
    return Request(messages=messages, tag=item.item_id)


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
    stopped: str | None = None  # why the model was stopped early (401, nothing at its URL)
    implausible_usage: int = 0  # answers whose token counts could not be true (kept as unknown)
    implausible_example: str | None = None  # the first of them, e.g. "completion_tokens=1e+30"
    batch_requests: int = 0  # answered through the batch API
    batch_cost: float = 0.0  # what those answers cost
    saving: float = 0.0  # what those answers would have cost online, less what they cost
    batch: BatchProgress | None = None  # how its batches stand (batch models)

    @property
    def left(self) -> int:
        """Items still without a response (not sent: the budget, a stopped model)."""
        return self.total - self.done - self.cached - self.failed - self.earlier_failures

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
            "implausible_usage": self.implausible_usage,
            "implausible_example": self.implausible_example,
            "batch_requests": self.batch_requests,
            "batch_cost": self.batch_cost,
            "saving": self.saving,
            "batch": None if self.batch is None else dict(self.batch.__dict__),
        }


@dataclass
class GenerateSummary:
    """What generation did, per model, and the run it was recorded as; `budget_exceeded` says
    why the budget stopped it, if it did."""

    run_id: int
    models: list[ModelSummary]
    budget_exceeded: str | None = None

    @property
    def failed(self) -> int:
        return sum(m.failed for m in self.models)


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
    started = time.monotonic()
    is_batch = caller.batches is not None

    def store(record: ResponseRecord, call: CachedCall | None, spend: SpendEntry | None) -> None:
        writer.add(GeneratedResponse(record, call, settings.provider, caller.model_id, spend))

    def account(result: CallResult) -> None:
        completion = result.completion
        if completion is not None:
            summary.input_tokens += completion.input_tokens or 0
            summary.output_tokens += completion.output_tokens or 0
            if result.cost is not None:
                summary.cost = (summary.cost or 0.0) + result.cost
            if result.latency_s is not None:
                summary.latency.add(result.latency_s)
            if result.mode == "batch":
                summary.batch_requests += 1
                summary.batch_cost += result.cost or 0.0
                summary.saving += result.saving or 0.0
            if completion.implausible_usage is not None:
                summary.implausible_usage += 1
                summary.implausible_example = (
                    summary.implausible_example or completion.implausible_usage
                )
        summary.requests += result.attempts
        summary.retries_by_kind.update(result.retries)

    def deliver(request: Request, result: CallResult) -> None:
        """Store and count one result (a batch model's answers are cached by `run_batch`)."""
        if result.error is not None and result.error is caller.stopped and result.attempts == 0:
            return  # never sent: the budget, or the model was stopped by a fatal error
        assert request.tag is not None
        record = _record_from(name, request.tag, result, caller)
        if result.is_cached:  # an identical request of the same batch answered it
            store(record, None, None)
            summary.cached += 1
        else:
            # A batch model's answers are cached (and their spend kept) by `run_batch`; a replay
            # costs nothing and is not cached.
            if is_batch or not caller.provider.is_cacheable or result.completion is None:
                store(record, None, None)
            else:
                store(record, as_cached(result), caller.spend_entry(request, result))
            account(result)
            if result.error is None:
                summary.done += 1
            else:
                summary.failed += 1
                summary.failed_by_kind[result.error.kind] += 1
        summary.elapsed_s = time.monotonic() - started
        reporter.update(summary)

    def wanted() -> Iterator[tuple[Request, str]]:
        """The requests to send: items without a stored response (or with a failure, when
        retrying) whose answer the request cache does not hold."""
        for pending in workspace.iter_items_for(name, limit=limit):
            if caller.stopped is not None and not is_batch:
                return
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
                store(_record(name, pending.item, hit, caller), None, None)
                summary.cached += 1
                reporter.update(summary)
                continue
            yield request, key

    try:
        if is_batch:
            requests = [request for request, _ in wanted()]

            def on_progress(progress: BatchProgress) -> None:
                summary.batch = progress
                summary.elapsed_s = time.monotonic() - started
                reporter.update(summary)

            caller.on_batch_progress = on_progress
            await run_batch(
                caller, requests, on_result=lambda index, result: deliver(requests[index], result)
            )
        else:
            await _send_online(caller, wanted(), deliver, writer)
    finally:
        summary.elapsed_s = time.monotonic() - started
        if caller.stopped is not None and caller.stopped.kind != "budget":
            summary.stopped = str(caller.stopped)
        reporter.update(summary)


async def _send_online(
    caller: Caller,
    wanted: Iterator[tuple[Request, str]],
    deliver: Callable[[Request, CallResult], None],
    writer: BatchWriter[GeneratedResponse],
) -> None:
    """Send the wanted requests with the model's concurrency, delivering each result."""
    concurrency = caller.settings.concurrency
    queue: asyncio.Queue[tuple[Request, str] | None] = asyncio.Queue(maxsize=2 * concurrency)

    async def produce() -> None:
        for job in wanted:
            await queue.put(job)
        for _ in range(concurrency):
            await queue.put(None)

    async def work() -> None:
        while True:
            job = await queue.get()
            writer.check()
            if job is None:
                return
            request, key = job
            deliver(request, await caller.send(request, key))

    await asyncio.gather(produce(), *(work() for _ in range(concurrency)))


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


def _provider(name: str, settings: ModelSettings, base: Path, item_ids: set[str]) -> Provider:
    """The model's provider; a replay model's file is read and checked against the items."""
    recorded = None
    if settings.provider == "replay":
        assert settings.file is not None
        recorded = read_responses(
            base / settings.file, models=None, item_ids=item_ids, model=name, source="replay"
        )
    return make_provider(name, settings, base=base, recorded=recorded)


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
    providers = [_provider(name, study.models[name], base, item_ids) for name in names]
    reporter = reporter or _NoReporter()
    detail = {"models": names, "limit": limit, "retry_failed": retry_failed}
    rng = rng or random.Random()
    summaries = [ModelSummary(model=name) for name in names]
    secrets = configured_secrets(study.models)
    limit_ = spend_limit(study, workspace)
    with workspace.recorded_run("generate", detail) as run:
        callers = [
            Caller(
                name,
                study.models[name],
                provider,
                cache=workspace,
                run_id=run.run_id,
                secrets=secrets,
                rng=rng,
                purpose="generation",
                limit=limit_,
                batches=workspace if study.models[name].batch else None,
            )
            for name, provider in zip(names, providers, strict=True)
        ]
        writer: BatchWriter[GeneratedResponse] = BatchWriter(
            workspace,
            lambda entries: workspace.store_generated(entries, run_id=run.run_id),
            what="responses",
            stage="generate",
        )
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
        finally:
            writer.flush()
            for caller in callers:
                await caller.aclose()
            run.detail["summary"] = [s.as_dict() for s in summaries]
            if limit_ is not None and limit_.exceeded is not None:
                run.detail["budget_exceeded"] = limit_.exceeded
    exceeded = None if limit_ is None else limit_.exceeded
    return GenerateSummary(run_id=run.run_id, models=summaries, budget_exceeded=exceeded)


def spend_limit(study: Study, workspace: Workspace) -> SpendLimit | None:
    """The run's budget from the study's `budget:` section and what the workspace says the
    study has spent so far; None without a budget."""
    if study.budget is None:
        return None
    return SpendLimit(
        per_run=study.budget.per_run,
        per_study=study.budget.per_study,
        spent_before=workspace.spend_total(),
    )


def estimate_generation(
    study: Study,
    workspace: Workspace,
    *,
    models: Sequence[str] | None = None,
    limit: int | None = None,
    retry_failed: bool = False,
) -> SpendPlan:
    """What `generate` with these options would send and cost, per model, from the models'
    recorded usage and prices (`estimate_spend`): nothing is sent and nothing written."""
    names = _select_models(study, models)
    if limit is not None and limit < 1:
        raise InputError(f"--limit must be at least 1 (got {limit})")
    assert study.models is not None
    estimates = []
    for name in names:
        settings = study.models[name]
        if settings.provider == "replay":
            continue  # recorded responses cost nothing
        wanted = (
            build_request(pending.item, settings)
            for pending in workspace.iter_items_for(name, limit=limit)
            if pending.response_state == "missing"
            or (pending.response_state == "error" and retry_failed)
        )
        estimates.append(estimate_requests(workspace, name, settings, "generation", wanted))
    return spend_plan(study, workspace, estimates)


def estimate_requests(
    workspace: Workspace,
    model: str,
    settings: ModelSettings,
    purpose: Purpose,
    requests: Iterable[Request],
    *,
    signal: str | None = None,
) -> SpendEstimate:
    """What sending `requests` to `model` would cost: those the request cache answers (or that
    repeat one before them) and those in batches already submitted are counted apart, the rest
    estimated from the model's recorded usage for `purpose`."""
    in_batches: set[str] = (
        set().union(*(b.keys for b in workspace.open_batches(model, purpose)))
        if settings.batch
        else set()
    )
    seen: set[str] = set()
    count = chars = messages = cached = submitted = 0
    for request in requests:
        key = request_key(model, settings, request)
        if key in seen or workspace.cached_call(key) is not None:
            cached += 1
        elif key in in_batches:
            submitted += 1
        else:
            count += 1
            chars += request_chars(request)
            messages += len(request.messages)
        seen.add(key)
    return estimate_spend(
        model, settings, purpose, signal=signal, requests=count, input_chars=chars,
        messages=messages, cached=cached, in_open_batches=submitted,
        history=workspace.usage_history(model, purpose),
    )  # fmt: skip


def spend_plan(study: Study, workspace: Workspace, estimates: list[SpendEstimate]) -> SpendPlan:
    """The estimates beside the study's budget and what it has spent so far."""
    budget = study.budget
    return SpendPlan(
        estimates,
        per_run=None if budget is None else budget.per_run,
        per_study=None if budget is None else budget.per_study,
        spent=workspace.spend_total(),
    )


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
