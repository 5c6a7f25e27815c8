"""The whole pipeline on one study: generate → score → counts → fit → report document.

Every stage skips what is done: generation and scoring store what they make in the workspace, and
the fit is kept in a file beside the workspace with a fingerprint of its inputs (the counts, each
response's cost and latency, the study file and the fit settings), so a second `changeover run`
or `changeover report` with nothing new re-uses it instead of sampling again.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from importlib.metadata import version
from pathlib import Path
from typing import Any

import polars as pl
from pydantic import ValidationError

from changeover.agreement import agreement
from changeover.annotate.labels import read_labels
from changeover.annotate.queue import queued_keys
from changeover.calibrate.next import PlanRequest
from changeover.calibrate.settings import FitSettings, PriorScales
from changeover.counts import counts_from_rows, workspace_rows
from changeover.errors import ChangeoverError
from changeover.files import replacing
from changeover.generate import GenerateSummary, Reporter, generate
from changeover.report.document import (
    FitRecord,
    ReportDocument,
    Spend,
    build_document,
    gate_examples,
    point_rates,
)
from changeover.score import ScoreReporter, ScoreSummary, score
from changeover.signals.health import signal_health
from changeover.study import Study
from changeover.workspace import Workspace, open_workspace

__all__ = [
    "Analysis",
    "FitState",
    "analyse",
    "current_fit",
    "fit_cache_path",
    "measurements",
    "run",
    "scored_rows",
]


@dataclass
class Analysis:
    """The report document of a study, and whether it was re-used from an earlier fit."""

    document: ReportDocument
    reused: bool


@dataclass(frozen=True)
class FitState:
    """The last fit kept beside the workspace, and whether the workspace has changed since."""

    document: ReportDocument
    is_current: bool


def fit_cache_path(study: Study) -> Path:
    """Where the last fit of a study is kept: beside its workspace."""
    path = study.workspace_path
    return path.with_name(f"{path.stem}.fit.json")


def _study_text(study: Study) -> str | None:
    if study.path is None or not study.path.exists():
        return None
    return study.path.read_text(encoding="utf-8")


def _fingerprint(
    counts: pl.DataFrame,
    measured: pl.DataFrame,
    study_text: str | None,
    settings: FitSettings,
    plan: PlanRequest,
) -> str:
    digest = hashlib.sha256()
    digest.update(counts.sort(pl.all()).write_csv().encode())
    digest.update(measured.sort(pl.all()).write_csv().encode())
    digest.update((study_text or "").encode())
    digest.update(json.dumps([asdict(settings), asdict(plan)], sort_keys=True).encode())
    digest.update(version("changeover").encode())
    digest.update(repr(PriorScales()).encode())  # new default priors mean a new fit
    return digest.hexdigest()


def _cached(path: Path) -> ReportDocument | None:
    """The kept document, or None when there is none or it cannot be read as this version's
    (an older cache, a damaged file): then the study is simply fitted again."""
    try:
        return ReportDocument.model_validate_json(path.read_bytes())
    except (OSError, ValidationError):
        return None


def current_fit(study: Study, workspace: Workspace) -> FitState | None:
    """The last fit kept beside the workspace (None: none yet), and whether it is still the fit
    of the workspace as it is now (same counts, study file and settings): `changeover status`
    says so, without sampling."""
    document = _cached(fit_cache_path(study))
    if document is None or document.fit is None:
        return None
    record = document.fit.model_dump()
    settings = FitSettings(**{f.name: record[f.name] for f in fields(FitSettings)})
    plan = PlanRequest(**{f.name: record[f.name] for f in fields(PlanRequest)})
    rows = workspace_rows(workspace).filter(
        pl.col("model").is_in(study.model_names) & pl.col("segment").is_in(study.segment_names)
    )
    counts, _ = counts_from_rows(rows, source=str(workspace.path))
    key = _fingerprint(counts, measurements(workspace, study), _study_text(study), settings, plan)
    return FitState(document, is_current=key == document.fit.fingerprint)


def scored_rows(workspace: Workspace, study: Study) -> pl.DataFrame:
    """The workspace's per-response rows of the study's models and segments (what counts and
    label plans are made of); an error that says what to run when there are none."""
    rows = workspace_rows(workspace).filter(
        pl.col("model").is_in(study.model_names) & pl.col("segment").is_in(study.segment_names)
    )
    if rows.height == 0:
        raise ChangeoverError(
            f"{workspace.path}: no scored responses of the study's models and segments; run "
            "`changeover generate` and `changeover score` first (or `changeover run`)"
        )
    return rows


def measurements(workspace: Workspace, study: Study) -> pl.DataFrame:
    """Each successful response of the study's models and segments with its cost and latency
    (`MEASUREMENT_COLUMNS`): what the cost and latency of each model, and the gates on them, are
    measured from. The cost of a response is its tokens at its model's online prices in the
    study (what serving it would cost, whether it was generated, answered from the cache, sent
    in a batch or replayed); where the model has no prices or the response no token counts, the
    cost recorded with it, if any."""
    rows = workspace.response_usage().filter(
        pl.col("model").is_in(study.model_names) & pl.col("segment").is_in(study.segment_names)
    )
    models = study.models or {}
    priced = {name: s for name, s in models.items() if s.is_priced}
    price_in = pl.col("model").replace_strict(
        {m: s.price_input_per_million or 0.0 for m, s in priced.items()}, default=None,
        return_dtype=pl.Float64,
    )  # fmt: skip
    price_out = pl.col("model").replace_strict(
        {m: s.price_output_per_million or 0.0 for m, s in priced.items()}, default=None,
        return_dtype=pl.Float64,
    )  # fmt: skip
    at_prices = (pl.col("input_tokens") * price_in + pl.col("output_tokens") * price_out) / 1e6
    return rows.select(
        "item_id",
        "model",
        "segment",
        pl.coalesce(at_prices, pl.col("cost")).alias("cost"),
        "latency_s",
    )


def analyse(
    study: Study,
    workspace: Workspace,
    *,
    settings: FitSettings = FitSettings(),
    plan: PlanRequest = PlanRequest(),
    truth: Mapping[str, Any] | None = None,
    refit: bool = False,
) -> Analysis:
    """Counts from the workspace, then the fit (re-used when its inputs are unchanged), what to
    label next, agreement between annotators: the report document.

    While a dimension has no human label at all (and `settings.allow_uncalibrated` is off),
    nothing is fitted: the document is a preview (no result; the raw signal rates and the
    stratified random start of the labelling)."""
    from changeover.calibrate import fit
    from changeover.calibrate.blocks import blocks_from_counts
    from changeover.calibrate.next import available_per_stratum, plan_labels, unlabelled_responses

    rows = scored_rows(workspace, study)
    counts, _ = counts_from_rows(rows, source=str(workspace.path))
    measured = measurements(workspace, study)
    study_text = _study_text(study)
    key = _fingerprint(counts, measured, study_text, settings, plan)
    cache = fit_cache_path(study)
    stored = None if refit else _cached(cache)
    spend = [
        Spend(**{f: getattr(s, f) for f in Spend.model_fields}) for s in workspace.spend_summary()
    ]
    if stored is not None and stored.fit is not None and stored.fit.fingerprint == key:
        update: dict[str, Any] = {"spend": spend}  # what was spent since the fit counts too
        if truth is not None:
            update["truth"] = point_rates(truth)
        return Analysis(stored.model_copy(update=update), reused=True)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        blocks = blocks_from_counts(counts, study.model_names, study.segment_names)
        uncalibrated = any(b.n_labels == 0 for b in blocks)
        result = None
        if not uncalibrated or settings.allow_uncalibrated:
            result = fit(study, counts, measurements=measured, **asdict(settings))
            assert result.draws is not None
            blocks = result.draws.blocks
    health = [
        line
        for name, _ in (study.signals.items() if study.signals is not None else ())
        for line in signal_health(workspace.signal_levels(name)).warnings(name)
    ]
    notes = list(dict.fromkeys([*health, *(str(w.message) for w in caught)]))
    examples = (
        [] if result is None else gate_examples(study, result, rows, workspace.response_texts)
    )
    available = available_per_stratum(blocks, unlabelled_responses(rows, queued_keys(workspace)))
    document = build_document(
        study,
        result,
        blocks,
        agreement=agreement(read_labels(workspace)),
        plan=plan_labels(study, result, blocks, plan, available=available, seed=settings.seed),
        fit=FitRecord(
            **asdict(settings),
            **asdict(plan),
            fingerprint=key,
            seconds=0.0 if result is None else result.diagnostics.seconds,
        ),
        truth=truth,
        study_text=study_text,
        warnings=notes,
        examples=examples,
        spend=spend,
    )
    with replacing(cache) as tmp:
        tmp.write_text(document.to_json(indent=1), encoding="utf-8")
    return Analysis(document, reused=False)


def run(
    study: Study,
    *,
    items: Path | None = None,
    labels: Sequence[Path] = (),
    settings: FitSettings = FitSettings(),
    plan: PlanRequest = PlanRequest(),
    truth: Mapping[str, Any] | None = None,
    generate_reporter: Reporter | None = None,
    score_reporter: ScoreReporter | None = None,
    on_stage: Callable[[str], None] = lambda stage: None,
    refit: bool = False,
) -> tuple[GenerateSummary, ScoreSummary, Analysis]:
    """generate → score → counts → fit → report document, each stage skipping what is done.

    `items` are imported first and the `labels` files once the responses exist (each
    all-or-nothing and idempotent: what is already there is left alone)."""
    from changeover.annotate.exchange import import_labels
    from changeover.io import import_items

    with open_workspace(study.workspace_path, create=items is not None) as workspace:
        if items is not None:
            on_stage("import")
            import_items(workspace, items, study)
        if workspace.count_items() == 0:
            raise ChangeoverError(
                f"{workspace.path}: no items; import them first with `changeover import items FILE`"
            )
        on_stage("generate")
        generated = generate(study, workspace, reporter=generate_reporter)
        for path in labels:
            import_labels(workspace, path, study)
        on_stage("score")
        scored = score(study, workspace, reporter=score_reporter)
        on_stage("fit")
        analysis = analyse(study, workspace, settings=settings, plan=plan, truth=truth, refit=refit)
    on_stage("done")
    return generated, scored, analysis
