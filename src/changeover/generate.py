"""Generation: run every model over the items, resumably.

`generate_responses` drives every model of the study over the workspace's items through the call
machinery of `changeover.calls` (cache, limits, retries, cost), writing each response in its own
transaction the moment it arrives, so a process killed at any moment loses nothing received, and
a re-run calls no provider for what is stored (`--retry-failed` also re-sends the stored
failures).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from changeover.calls import CachedCall, Caller, CallResult, LatencyHistogram, as_cached
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
    "generate",
    "generate_responses",
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
        }


@dataclass
class GenerateSummary:
    """What generation did, per model, and the run it was recorded as."""

    run_id: int
    models: list[ModelSummary]

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
            if completion.implausible_usage is not None:
                summary.implausible_usage += 1
                summary.implausible_example = (
                    summary.implausible_example or completion.implausible_usage
                )
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
            fresh = as_cached(result) if result.completion is not None else None
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
    return GenerateSummary(run_id=run.run_id, models=summaries)


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
