"""`changeover next` as one library function: the fit `run` and `report` make (the same
settings, re-used from the fit cache when nothing changed), the label plan it carries, and the
responses the plan asks for, drawn at random within its strata and queued for the annotators.
"""

from __future__ import annotations

from dataclasses import dataclass

from changeover.annotate.queue import QueueEntry, QueueResult, add_to_queue, queued_keys
from changeover.calibrate.next import Pick, PlanRequest, choose_responses, unlabelled_responses
from changeover.calibrate.settings import FitSettings
from changeover.errors import ChangeoverError
from changeover.report.document import ReportDocument
from changeover.run import Analysis, analyse, scored_rows
from changeover.study import Study
from changeover.workspace import Workspace

__all__ = ["NextOutcome", "next_responses", "queue_next"]


@dataclass(frozen=True)
class NextOutcome:
    """What `queue_next` did: the analysis it planned from (verdicts, plan, whether the fit was
    re-used), the responses it picked, and how the queue took them (None when none)."""

    analysis: Analysis
    picks: list[Pick]
    queued: QueueResult | None


def next_responses(
    study: Study, workspace: Workspace, document: ReportDocument, *, seed: int = 0
) -> list[Pick]:
    """The responses the document's label plan asks for, drawn at random within its strata from
    those neither labelled nor queued."""
    plan = document.next
    if plan is None or not plan.picks:
        return []
    unlabelled = unlabelled_responses(scored_rows(workspace, study), queued_keys(workspace))
    return choose_responses(plan, unlabelled, seed=seed)


def queue_next(
    study: Study,
    workspace: Workspace,
    *,
    plan: PlanRequest = PlanRequest(),
    settings: FitSettings = FitSettings(),
    refit: bool = False,
) -> NextOutcome:
    """Fit (or re-use the fit), plan `plan.budget` labels and queue them (source "next").

    Before a dimension has any label the plan is a stratified random start; from a fit that did
    not converge, nothing is planned for candidates it merely looks to have decided."""
    if plan.dimension is not None:
        known = sorted(set(scored_rows(workspace, study)["dimension"].to_list()))
        if plan.dimension not in known:
            raise ChangeoverError(
                f"--dimension: the workspace has no scored responses for '{plan.dimension}' "
                f"(it has: {', '.join(known) or 'none'}); run `changeover score` first"
            )
    analysis = analyse(study, workspace, settings=settings, plan=plan, refit=refit)
    picks = next_responses(study, workspace, analysis.document, seed=settings.seed)
    queued = None
    if picks:
        entries = [QueueEntry(p.item_id, p.model, p.dimension, priority=p.priority) for p in picks]
        queued = add_to_queue(workspace, entries, source="next")
    return NextOutcome(analysis, picks, queued)
