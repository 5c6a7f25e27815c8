"""Scoring: every configured signal for every response of the workspace, stored and resumable.

`score` computes the study's signals (deterministic detectors and LLM judges) for the successful
responses that do not have them yet and stores value, level and detail in the workspace's
`signals` table; re-running computes nothing already stored. Judge calls go through the
generation machinery (`Caller`, `call_many`): cache, rate limits, retries, cost, budget, and for
a judging model with `batch: true` the provider's batch API. A judge call that failed is stored
as the level `error` and kept on a plain re-run (`retry_failed=True` judges it again), as
`generate` does with failed responses. `estimate_scoring` says what the judges would send and
cost without sending anything (`score --dry-run`).

When several signals inform one dimension, their cross product ("refused|refused") is stored as
one more signal named after its parts ("refusal_phrases|refusal_judge"), which is what
`changeover.counts.workspace_rows` then counts for that dimension.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, Protocol, get_args, runtime_checkable

import jinja2
import polars as pl

from changeover.calls import (
    BatchProgress,
    Caller,
    CallResult,
    SpendPlan,
)
from changeover.errors import InputError, StudyError
from changeover.generate import estimate_requests, spend_limit, spend_plan
from changeover.providers import ModelSettings, Request, configured_secrets, make_provider
from changeover.records import ExpectedBehaviour, SignalRecord
from changeover.signals.compute import LEVEL_SEPARATOR, combine_levels, compute_signal
from changeover.signals.judge import JudgeInput, judge_requests, judge_responses
from changeover.signals.result import SignalResult
from changeover.signals.rubric import builtin_source, load_template
from changeover.signals.settings import AnySignal, JudgeSignal, ReferenceSignal
from changeover.study import Study, feeds_dimension
from changeover.workspace import BatchWriter, ScoringTarget, Workspace

__all__ = [
    "BatchReporter",
    "ScoreReporter",
    "ScoreSummary",
    "SignalScore",
    "estimate_scoring",
    "score",
    "score_responses",
    "signal_fingerprint",
]

_COMBINE_BATCH = 5000
#: A judge model whose first calls all fail is stopped after this many (as a 401 stops it at once).
JUDGE_FAIL_FAST = 10


@dataclass
class SignalScore:
    """What scoring did for one signal (or one combination of signals)."""

    signal: str
    kind: str
    dimension: str
    total: int = 0  # successful responses that feed its dimension (study.feeds_dimension)
    scored: int = 0  # computed in this run
    stored: int = 0  # stored before this run and left alone
    earlier_errors: int = 0  # judge errors stored before, kept (retry_failed re-judges them)
    recomputed: bool = False  # quantile bins: the new responses moved the edges, all re-binned
    levels: dict[str, int] = field(default_factory=dict)  # every stored row, after the run
    requests: int = 0  # judges: HTTP requests sent, retries included
    cached: int = 0  # judges: answers from the request cache
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float | None = None
    failed_by_kind: Counter[str] = field(default_factory=Counter)
    retries_by_kind: Counter[str] = field(default_factory=Counter)
    elapsed_s: float = 0.0
    settings_changed: bool = False  # stored rows were computed with other settings (kept)
    stopped: str | None = None  # judges: why the judging model was stopped early (a 401, ...)
    implausible_usage: int = 0  # judges: answers whose token counts could not be true
    implausible_example: str | None = None  # the first of them, e.g. "output_tokens=-5"
    batch_requests: int = 0  # judges: answered through the batch API
    batch_cost: float = 0.0  # what those answers cost
    saving: float = 0.0  # what those answers would have cost online, less what they cost
    batch: BatchProgress | None = None  # judges: how a batch model's batches stand

    def as_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if not isinstance(v, Counter)}
        data["failed_by_kind"] = dict(self.failed_by_kind)
        data["batch"] = None if self.batch is None else dict(self.batch.__dict__)
        data["retries_by_kind"] = dict(self.retries_by_kind)
        data["elapsed_s"] = round(self.elapsed_s, 3)
        return data


@dataclass
class ScoreSummary:
    """What scoring did, per signal, and the run it was recorded as; `budget_exceeded` says why
    the budget stopped it, if it did."""

    run_id: int
    signals: list[SignalScore]
    combined: list[SignalScore]
    budget_exceeded: str | None = None


class ScoreReporter(Protocol):
    """Progress display: told when a signal starts and as responses are scored."""

    def start(self, signal: str, total: int, done: int) -> None: ...

    def advance(self, signal: str, n: int) -> None: ...


@runtime_checkable
class BatchReporter(Protocol):
    """A progress display that also shows how a batch judge's batches stand (optional)."""

    def batch(self, signal: str, progress: BatchProgress) -> None: ...


class _NoReporter:
    def start(self, signal: str, total: int, done: int) -> None:
        pass

    def advance(self, signal: str, n: int) -> None:
        pass


def _record(
    name: str, signal: AnySignal, target: ScoringTarget, result: SignalResult
) -> SignalRecord:
    return SignalRecord(
        item_id=target.item.item_id,
        model=target.model,
        signal=name,
        dimension=signal.dimension,
        value=result.value,
        level=result.level,
        detail=result.detail or None,
    )


def _select(study: Study, names: Sequence[str] | None) -> list[str]:
    if study.signals is None or not len(study.signals):
        raise StudyError(
            f"{study.path or 'study'}: no `signals:` section; configure the signals to compute "
            "(see docs/signals.md)"
        )
    configured = list(study.signals)
    if not names:
        return configured
    for name in names:
        if name not in configured:
            raise StudyError(
                f"--signals: unknown signal '{name}'; the study has {', '.join(configured)}"
            )
    return [name for name in configured if name in names]


def _compute(
    study: Study, signal: AnySignal, targets: Sequence[ScoringTarget]
) -> list[SignalResult]:
    assert not isinstance(signal, JudgeSignal)
    return compute_signal(
        signal,
        [t.response for t in targets],
        references=[t.item.reference for t in targets],
        segments=[t.item.segment for t in targets],
        style_guide=study.style_guide,
    )


def _score_deterministic(
    study: Study,
    workspace: Workspace,
    name: str,
    signal: AnySignal,
    summary: SignalScore,
    reporter: ScoreReporter,
    *,
    run_id: int,
    page_size: int,
) -> None:
    started = time.monotonic()
    behaviours = feeding_behaviours(signal.dimension)
    pending = workspace.count_unscored(name, behaviours=behaviours)
    # Quantile bins are cut at the quantiles of all responses: new responses move the edges,
    # so every response is binned again.
    if (
        isinstance(signal, ReferenceSignal)
        and signal.quantiles is not None
        and pending
        and pending < summary.total
    ):
        workspace.delete_signal(name)
        summary.recomputed = True
        pending = summary.total
    summary.stored = summary.total - pending
    reporter.start(name, summary.total, summary.stored)
    if isinstance(signal, ReferenceSignal) and signal.quantiles is not None:
        page_size = max(pending, 1)  # one batch: the quantiles need every value
    batch: list[ScoringTarget] = []
    for target in workspace.iter_unscored(name, behaviours=behaviours, page_size=page_size):
        batch.append(target)
        if len(batch) >= page_size:
            _store_batch(study, workspace, name, signal, batch, summary, reporter, run_id)
            batch = []
    if batch:
        _store_batch(study, workspace, name, signal, batch, summary, reporter, run_id)
    summary.elapsed_s = time.monotonic() - started


def _store_batch(
    study: Study,
    workspace: Workspace,
    name: str,
    signal: AnySignal,
    batch: list[ScoringTarget],
    summary: SignalScore,
    reporter: ScoreReporter,
    run_id: int,
) -> None:
    results = _compute(study, signal, batch)
    records = [_record(name, signal, t, r) for t, r in zip(batch, results, strict=True)]
    workspace.store_signals(records, run_id=run_id)
    summary.scored += len(records)
    reporter.advance(name, len(records))


async def _score_judge(
    study: Study,
    workspace: Workspace,
    caller: Caller,
    name: str,
    signal: JudgeSignal,
    summary: SignalScore,
    reporter: ScoreReporter,
    writer: BatchWriter[SignalRecord],
    *,
    templates: dict[str, jinja2.Template],
    retry_failed: bool,
    page_size: int,
) -> None:
    started = time.monotonic()
    redo = ("error",) if retry_failed else ()
    behaviours = feeding_behaviours(signal.dimension)
    pending = workspace.count_unscored(name, redo_levels=redo, behaviours=behaviours)
    summary.stored = summary.total - pending
    if not retry_failed:
        summary.earlier_errors = workspace.signal_levels(name).get("error", 0)
    reporter.start(name, summary.total, summary.stored)
    template = templates.get(name)

    if caller.batches is not None:
        page_size = max(pending, 1)  # one batch for all: pages would wait for each other

        def on_progress(progress: BatchProgress) -> None:
            summary.batch = progress
            if isinstance(reporter, BatchReporter):
                reporter.batch(name, progress)

        caller.on_batch_progress = on_progress

    def account(target: ScoringTarget, result: SignalResult, call: CallResult) -> None:
        if call.error is not None and call.error is caller.stopped and call.attempts == 0:
            return  # never sent: the budget, or a fatal error stopped the model (401, 403)
        writer.add(_record(name, signal, target, result))
        summary.scored += 1
        if call.is_cached:  # from the cache, or shared with an identical request in flight
            summary.cached += 1
        else:
            summary.requests += call.attempts
            summary.retries_by_kind.update(call.retries)
        if call.error is not None:
            if result.level == "error":  # an empty answer is `unparseable`, not a failure
                summary.failed_by_kind[call.error.kind] += 1
        elif call.completion is not None and not call.is_cached:
            summary.input_tokens += call.completion.input_tokens or 0
            summary.output_tokens += call.completion.output_tokens or 0
            if call.cost is not None:
                summary.cost = (summary.cost or 0.0) + call.cost
            if call.mode == "batch":
                summary.batch_requests += 1
                summary.batch_cost += call.cost or 0.0
                summary.saving += call.saving or 0.0
            if call.completion.implausible_usage is not None:
                summary.implausible_usage += 1
                summary.implausible_example = (
                    summary.implausible_example or call.completion.implausible_usage
                )
        reporter.advance(name, 1)

    targets = workspace.iter_unscored(
        name, redo_levels=redo, behaviours=behaviours, page_size=page_size
    )
    while caller.stopped is None:
        page = [target for _, target in zip(range(page_size), targets, strict=False)]
        if not page:
            break
        await judge_responses(
            signal,
            [_judge_input(t) for t in page],
            caller=caller,
            template=template,
            style_guide=study.style_guide,
            on_result=_on_page(page, account),
        )
        writer.flush()
        writer.check()
    if caller.stopped is not None and caller.stopped.kind != "budget":
        summary.stopped = str(caller.stopped)
    summary.elapsed_s = time.monotonic() - started


def _on_page(
    page: list[ScoringTarget],
    account: Callable[[ScoringTarget, SignalResult, CallResult], None],
) -> Callable[[int, SignalResult, CallResult], None]:
    def on_result(index: int, result: SignalResult, call: CallResult) -> None:
        account(page[index], result, call)

    return on_result


def _combine(
    workspace: Workspace,
    combined: str,
    parts: Sequence[str],
    summary: SignalScore,
    *,
    run_id: int,
) -> None:
    started = time.monotonic()
    for _ in range(summary.total // _COMBINE_BATCH + 2):
        stale = workspace.stale_combinations(
            combined, parts, separator=LEVEL_SEPARATOR, limit=_COMBINE_BATCH
        )
        if not stale:
            break
        levels = combine_levels(*zip(*(row[2] for row in stale), strict=True))
        workspace.store_signals(
            [
                SignalRecord(item_id, model, combined, summary.dimension, None, level, None)
                for (item_id, model, _), level in zip(stale, levels, strict=True)
            ],
            run_id=run_id,
        )
        summary.scored += len(stale)
    summary.stored = sum(workspace.signal_levels(combined).values()) - summary.scored
    summary.elapsed_s = time.monotonic() - started


def feeding_behaviours(dimension: str) -> tuple[ExpectedBehaviour, ...] | None:
    """The expected behaviours whose items feed `dimension`, or None when all do: correctness
    is scored on should-answer items only (its verdict on a should-refuse item is never used,
    and a judge would be paid for it)."""
    every: tuple[ExpectedBehaviour, ...] = get_args(ExpectedBehaviour)
    feeding = tuple(b for b in every if feeds_dimension(dimension, b))
    return None if feeding == every else feeding


def signal_fingerprint(study: Study, name: str) -> str:
    """A hash of everything that decides a signal's levels: its settings, the style guide, and
    for a judge its rubric template and the judging model's id and generation settings."""
    assert study.signals is not None
    signal = study.signals[name]
    parts: list[Any] = [signal.model_dump(mode="json")]
    if study.style_guide is not None and signal.kind in ("style", "judge"):
        parts.append(study.style_guide.model_dump(mode="json"))
    if isinstance(signal, JudgeSignal):
        if signal.template is not None:
            path = study.resolve(signal.template)
            parts.append(path.read_text(encoding="utf-8") if path.exists() else None)
        else:
            parts.append(builtin_source(signal.rubric))
        if study.models is not None and signal.model in study.models:
            settings = study.models[signal.model]
            parts.append([settings.provider, settings.model, settings.generation_settings()])
    payload = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _stored_fingerprints(workspace: Workspace) -> dict[str, str]:
    """The settings each signal's stored rows were computed with, from the latest score run
    that recorded them."""
    found: dict[str, str] = {}
    runs = workspace.frame("runs").filter(pl.col("kind") == "score")
    for detail in runs["detail"].to_list():
        found.update(json.loads(detail).get("fingerprints", {}))
    return found


async def score_responses(
    study: Study,
    workspace: Workspace,
    *,
    signals: Sequence[str] | None = None,
    retry_failed: bool = False,
    rescore: bool = False,
    reporter: ScoreReporter | None = None,
    page_size: int = 500,
) -> ScoreSummary:
    """Compute the study's signals (or `signals`) for every successful response that lacks them,
    then the cross product of every dimension informed by several signals.

    `rescore` first deletes what is stored for the selected signals (judge answers still come
    from the request cache when nothing that shapes the request changed).
    """
    names = _select(study, signals)
    assert study.signals is not None
    total = workspace.count_unscored(None)
    if total == 0:
        raise InputError(
            f"{workspace.path}: the workspace has no successful responses to score; run "
            "`changeover generate` or `changeover import responses FILE`"
        )
    reporter = reporter or _NoReporter()
    base = study.path.parent if study.path is not None else Path.cwd()
    judges = _judges(study, names)
    models = study.models or {}
    # Templates and providers first: a bad template or a missing API key stops the run before
    # anything is computed.
    templates = _templates(study, judges)
    lanes = _judge_lanes(models, judges)
    providers = [make_provider(model, models[model], base=base) for model, _ in lanes]
    callers: list[Caller] = []
    with workspace.exclusive("score"):
        previous = _stored_fingerprints(workspace)
        fingerprints: dict[str, str] = {}
        changed: set[str] = set()
        for name in names:
            current = signal_fingerprint(study, name)
            if rescore:
                workspace.delete_signal(name)
            elif name in previous and previous[name] != current and workspace.signal_levels(name):
                # The stored rows keep their settings until they are rescored.
                changed.add(name)
                current = previous[name]
            fingerprints[name] = current
        detail = {
            "signals": names,
            "retry_failed": retry_failed,
            "rescore": rescore,
            "fingerprints": fingerprints,
        }
        with workspace.recorded_run("score", detail) as run:
            run_id = run.run_id
            totals = {
                dimension: workspace.count_unscored(None, behaviours=feeding_behaviours(dimension))
                for dimension in study.signals.dimensions
            }
            summaries = {
                n: SignalScore(
                    n,
                    study.signals[n].kind,
                    study.signals[n].dimension,
                    total=totals[study.signals[n].dimension],
                    settings_changed=n in changed,
                )
                for n in names
            }
            combined: list[SignalScore] = []
            writer: BatchWriter[SignalRecord] = BatchWriter(
                workspace,
                lambda records: workspace.store_signals(records, run_id=run_id),
                what="signals",
                stage="score",
            )
            limit = spend_limit(study, workspace)
            try:
                secrets = configured_secrets(models)
                for (model, _), provider in zip(lanes, providers, strict=True):
                    settings = models[model]
                    callers.append(
                        Caller(
                            model,
                            settings,
                            provider,
                            cache=workspace,
                            run_id=run_id,
                            secrets=secrets,
                            fail_fast_after=JUDGE_FAIL_FAST,
                            purpose="judging",
                            limit=limit,
                            batches=workspace if settings.batch else None,
                        )
                    )
                for name in names:
                    signal = study.signals[name]
                    if not isinstance(signal, JudgeSignal):
                        _score_deterministic(
                            study, workspace, name, signal, summaries[name], reporter,
                            run_id=run_id, page_size=page_size,
                        )  # fmt: skip

                async def run_lane(caller: Caller, lane: list[str]) -> None:
                    for name in lane:
                        await _score_judge(
                            study, workspace, caller, name, judges[name], summaries[name],
                            reporter, writer, templates=templates, retry_failed=retry_failed,
                            page_size=page_size,
                        )  # fmt: skip

                await asyncio.gather(
                    *(run_lane(c, lane) for c, (_, lane) in zip(callers, lanes, strict=True))
                )
                for dimension in study.signals.dimensions:
                    parts = list(study.signals.for_dimension(dimension))
                    if len(parts) < 2:
                        continue
                    name = LEVEL_SEPARATOR.join(parts)
                    summary = SignalScore(name, "combined", dimension, total=totals[dimension])
                    _combine(workspace, name, parts, summary, run_id=run_id)
                    combined.append(summary)
            finally:
                writer.flush()
                for caller in callers:
                    await caller.aclose()
                for summary in [*summaries.values(), *combined]:
                    summary.levels = workspace.signal_levels(summary.signal)
                run.detail["summary"] = [s.as_dict() for s in [*summaries.values(), *combined]]
                exceeded = None if limit is None else limit.exceeded
                if exceeded is not None:
                    run.detail["budget_exceeded"] = exceeded
    return ScoreSummary(run_id, list(summaries.values()), combined, budget_exceeded=exceeded)


def _judges(study: Study, names: Sequence[str]) -> dict[str, JudgeSignal]:
    assert study.signals is not None
    return {n: s for n in names if isinstance(s := study.signals[n], JudgeSignal)}


def _templates(study: Study, judges: dict[str, JudgeSignal]) -> dict[str, jinja2.Template]:
    """The judges' own rubric templates, read and checked."""
    templates = {}
    for name, judge in judges.items():
        if judge.template is not None:
            try:
                templates[name] = load_template(study.resolve(judge.template))
            except ValueError as error:
                raise StudyError(
                    f"{study.path or 'study'}: signals.{name}.template: {error}"
                ) from None
    return templates


def _judge_lanes(
    models: Mapping[str, ModelSettings], judges: dict[str, JudgeSignal]
) -> list[tuple[str, list[str]]]:
    """The judging models and the judges each caller runs, one after another: all of a model's
    judges share one caller online (its limits and concurrency), while a batch model's judges
    each have their own, so that their batches are submitted and polled together."""
    lanes: list[tuple[str, list[str]]] = []
    for model in dict.fromkeys(judge.model for judge in judges.values()):
        names = [name for name, judge in judges.items() if judge.model == model]
        if models[model].batch:
            lanes += [(model, [name]) for name in names]
        else:
            lanes.append((model, names))
    return lanes


def estimate_scoring(
    study: Study,
    workspace: Workspace,
    *,
    signals: Sequence[str] | None = None,
    retry_failed: bool = False,
    rescore: bool = False,
    page_size: int = 500,
) -> SpendPlan:
    """What `score` with these options would send to the judges and cost, per judge, from the
    judging models' recorded usage and prices (`estimate_spend`): the requests are built as
    the run would build them, and those the request cache holds cost nothing. Nothing is sent
    and nothing written."""
    names = _select(study, signals)
    judges = _judges(study, names)
    templates = _templates(study, judges)
    models = study.models or {}
    estimates = []
    for name, judge in judges.items():
        targets = workspace.iter_unscored(
            None if rescore else name,
            redo_levels=("error",) if retry_failed else (),
            behaviours=feeding_behaviours(judge.dimension),
            page_size=page_size,
        )
        requests = _judge_requests(study, judge, templates.get(name), targets, page_size)
        settings = models[judge.model]
        estimates.append(
            estimate_requests(workspace, judge.model, settings, "judging", requests, signal=name)
        )
    return spend_plan(study, workspace, estimates)


def _judge_requests(
    study: Study,
    judge: JudgeSignal,
    template: jinja2.Template | None,
    targets: Iterator[ScoringTarget],
    page_size: int,
) -> Iterator[Request]:
    """The requests a judge would be sent for `targets`, built a page at a time."""
    while page := list(islice(targets, page_size)):
        yield from judge_requests(
            judge, [_judge_input(t) for t in page], template=template,
            style_guide=study.style_guide,
        )  # fmt: skip


def _judge_input(target: ScoringTarget) -> JudgeInput:
    item = target.item
    return JudgeInput(
        response=target.response,
        question=item.prompt,
        context=item.context,
        reference=item.reference,
        segment=item.segment,
    )


def score(
    study: Study,
    workspace: Workspace,
    *,
    signals: Sequence[str] | None = None,
    retry_failed: bool = False,
    rescore: bool = False,
    reporter: ScoreReporter | None = None,
) -> ScoreSummary:
    """Synchronous `score_responses`, for the CLI and scripts."""
    return asyncio.run(
        score_responses(
            study,
            workspace,
            signals=signals,
            retry_failed=retry_failed,
            rescore=rescore,
            reporter=reporter,
        )
    )
