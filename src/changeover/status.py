"""Where a study stands, in one screen, and the one command to run next.

`study_status` reads the workspace (items, responses per model, each signal's levels and health,
labels per model and segment, the label queue, money spent) and the last fit kept beside it;
`next_command` turns that into the next step of a study — the same sentence `changeover status`
ends with and every stage of the pipeline prints when it is done.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from changeover.annotate.labels import read_labels
from changeover.annotate.queue import queue_status
from changeover.annotate.tokens import list_annotators
from changeover.calls import SpendSummary
from changeover.run import FitState, current_fit
from changeover.signals.health import SignalHealth, signal_health
from changeover.study import Study, feeds_dimension
from changeover.workspace import Workspace

__all__ = ["ModelResponses", "SignalState", "Status", "next_command", "study_status"]

BEHAVIOURS = ("answer", "refuse")


@dataclass(frozen=True)
class ModelResponses:
    """One model's responses over the items: received, failed, and not asked yet."""

    model: str
    ok: int
    failed: int
    missing: int


@dataclass(frozen=True)
class SignalState:
    """One configured signal: the responses it has scored, those still to score, its health."""

    name: str
    kind: str
    dimension: str
    scored: int
    unscored: int
    health: SignalHealth


@dataclass
class Status:
    """A study's state: what `changeover status` shows."""

    items: int
    items_per_segment: dict[str, int]
    responses: list[ModelResponses]
    signals: list[SignalState]
    labels: dict[str, dict[str, int]]  # model -> segment -> labelled responses (any dimension)
    label_total: int
    annotators: int
    queued_open: int
    spend: list[SpendSummary] = field(default_factory=list)
    spent: float = 0.0
    fit: FitState | None = None

    @property
    def unscored(self) -> int:
        return sum(s.unscored for s in self.signals)

    @property
    def missing(self) -> int:
        return sum(m.missing for m in self.responses)

    @property
    def failed(self) -> int:
        return sum(m.failed for m in self.responses)


def _responses(study: Study, workspace: Workspace, items: int) -> list[ModelResponses]:
    counts = workspace.response_counts()
    out = []
    for model in study.model_names:
        ok, failed = counts.get(model, (0, 0))
        out.append(ModelResponses(model, ok, failed, max(0, items - ok - failed)))
    return out


def _signals(study: Study, workspace: Workspace) -> list[SignalState]:
    out = []
    for name, signal in study.signals.items() if study.signals is not None else []:
        behaviours = [b for b in BEHAVIOURS if feeds_dimension(signal.dimension, b)]
        levels = workspace.signal_levels(name)
        unscored = workspace.count_unscored(name, behaviours=behaviours)
        health = signal_health(levels)
        out.append(
            SignalState(name, signal.kind, signal.dimension, sum(levels.values()), unscored, health)
        )
    return out


def _labels(
    study: Study, workspace: Workspace, segments: dict[str, str]
) -> dict[str, dict[str, int]]:
    """Labelled (response, dimension) pairs per model and segment, any annotator."""
    out = {model: dict.fromkeys(study.segment_names, 0) for model in study.model_names}
    seen = set()
    for label in read_labels(workspace):
        key = (label.item_id, label.model, label.dimension)
        segment = segments.get(label.item_id)
        if key in seen or label.model not in out or segment not in out[label.model]:
            continue
        seen.add(key)
        out[label.model][segment] += 1
    return out


def study_status(study: Study, workspace: Workspace) -> Status:
    """Everything `changeover status` shows, read from the workspace and the last fit."""
    segments = workspace.item_segments()
    per_segment = {s: sum(1 for v in segments.values() if v == s) for s in study.segment_names}
    items = len(segments)
    labels = _labels(study, workspace, segments)
    return Status(
        items=items,
        items_per_segment=per_segment,
        responses=_responses(study, workspace, items),
        signals=_signals(study, workspace),
        labels=labels,
        label_total=sum(n for segments in labels.values() for n in segments.values()),
        annotators=sum(1 for a in list_annotators(workspace) if a.is_active),
        queued_open=queue_status(workspace).open_entries,
        spend=workspace.spend_summary(),
        spent=workspace.spend_total(),
        fit=current_fit(study, workspace),
    )


def next_command(status: Status, *, budget: int = 100) -> str:
    """The next step of the study, as one sentence that names the command to run: the way
    through a study (import → generate → score → run, a preview → next → annotate → run ...)."""
    if status.items == 0:
        return "next: `changeover import items FILE` (prompts with item_id, prompt, segment)"
    if status.missing:
        return f"next: `changeover generate` ({status.missing:,} responses still to get)"
    if status.unscored:
        return f"next: `changeover score` ({status.unscored:,} signal values still to compute)"
    if status.queued_open:
        who = (
            ""
            if status.annotators
            else "`changeover annotators add NAME` (it prints the token to sign in with), then "
        )
        return (
            f"next: label the {status.queued_open:,} queued responses: {who}`changeover "
            "annotate`, then `changeover run`"
        )
    fit = status.fit
    if fit is None or not fit.is_current:
        if status.label_total == 0:
            return (
                "next: `changeover run` writes a preview report (the signals' raw rates and how "
                "to start labelling; no verdict before human labels)"
            )
        return "next: `changeover run` (labels or responses changed since the last fit)"
    result = fit.document.result
    if result is None:
        missing = ", ".join(fit.document.unlabelled_dimensions) or "some dimension"
        return (
            f"next: `changeover next --budget {budget}` queues a stratified random start "
            f"(no verdict before {missing} has human labels); label it in `changeover "
            "annotate`, then `changeover run`"
        )
    if not result.diagnostics.converged:
        return (
            "next: the fit did not converge; sample longer with `changeover run --num-samples "
            f"{2 * result.diagnostics.num_samples}` before acting on any verdict"
        )
    if any(c.verdict == "undecided" for c in result.candidates.values()):
        return (
            f"next: `changeover next --budget {budget}` queues the labels that would settle the "
            "undecided candidates; label them in `changeover annotate`, then `changeover run`"
        )
    return (
        "next: every candidate is decided; a first decided look is provisional, so confirm it "
        f"with one more batch: `changeover next --confirm --budget {budget}`"
    )
