"""Human labels: what each dimension asks, writing one transaction per screen, undo, skip, and
all-or-nothing imports.

Labels live in the workspace's `labels` table, one per (item, model, dimension, annotator), so
posting the same label twice (a retried request, a double click) stores it once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from changeover.annotate.queue import resolve_ref
from changeover.errors import InputError
from changeover.records import LabelRecord
from changeover.workspace import ImportResult, Workspace, now

__all__ = [
    "MAX_NOTE",
    "QUESTIONS",
    "RecordResult",
    "UndoResult",
    "add_labels",
    "question",
    "read_labels",
    "record_labels",
    "record_screen",
    "skip_response",
    "skip_screen",
    "undo_last",
]

#: The longest note an annotator may leave on a screen, in characters.
MAX_NOTE = 2000

#: The question an annotator answers for each dimension (1 = yes).
QUESTIONS: dict[str, str] = {
    "correctness": "Is the response correct?",
    "refusal": "Does the response refuse?",
    "style": "Does the response follow the style guide?",
}


def question(dimension: str) -> str:
    """The question asked for `dimension` (a generic one for a dimension of the study's own)."""
    return QUESTIONS.get(dimension, f"Does the response pass '{dimension}'?")


@dataclass(frozen=True)
class RecordResult:
    added: int
    changed: int
    unchanged: int


@dataclass(frozen=True)
class UndoResult:
    item_id: str
    model: str
    dimensions: tuple[str, ...]


def record_labels(
    workspace: Workspace,
    *,
    annotator: str,
    item_id: str,
    model: str,
    labels: Mapping[str, int],
    note: str | None = None,
) -> RecordResult:
    """Store one annotator's labels of one response in one transaction (a changed answer
    replaces the earlier one), and forget that they had skipped it."""
    for dimension, label in labels.items():
        if label not in (0, 1):
            raise InputError(f"label for '{dimension}' must be 0 or 1 (got {label!r})")
    added = changed = unchanged = 0
    stamp = now()
    with workspace.transaction() as db:
        for dimension, label in labels.items():
            row = db.execute(
                "SELECT label FROM labels WHERE item_id = ? AND model = ? AND dimension = ?"
                " AND annotator = ?",
                (item_id, model, dimension, annotator),
            ).fetchone()
            if row is None:
                db.execute(
                    "INSERT INTO labels (item_id, model, dimension, annotator, time, label, note)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (item_id, model, dimension, annotator, stamp, label, note),
                )
                added += 1
            elif row["label"] == label:
                unchanged += 1
            else:
                db.execute(
                    "UPDATE labels SET label = ?, time = ?, note = ? WHERE item_id = ?"
                    " AND model = ? AND dimension = ? AND annotator = ?",
                    (label, stamp, note, item_id, model, dimension, annotator),
                )
                changed += 1
        for table in ("label_skips", "label_claims"):
            db.execute(
                f"DELETE FROM {table} WHERE annotator = ? AND item_id = ? AND model = ?",
                (annotator, item_id, model),
            )
    return RecordResult(added=added, changed=changed, unchanged=unchanged)


def record_screen(
    workspace: Workspace,
    *,
    annotator: str,
    ref: str,
    answers: Mapping[str, str],
    note: str | None = None,
) -> RecordResult:
    """Store an annotator's answers ("0" or "1" per dimension) to the screen of the opaque `ref`,
    as the app receives them, with an optional note of at most MAX_NOTE characters; an
    InputError says what to fix."""
    if note is not None and len(note) > MAX_NOTE:
        raise InputError(
            f"note: {len(note):,} characters; a note holds at most {MAX_NOTE:,}, shorten it"
        )
    resolved = resolve_ref(workspace, ref)
    if resolved is None:
        raise InputError(f"unknown ref '{ref}'")
    item_id, model, queued = resolved
    if not answers:
        raise InputError("answer at least one question")
    unknown = sorted(set(answers) - set(queued))
    if unknown:
        raise InputError(f"dimension(s) {', '.join(unknown)} are not queued for this response")
    for dimension, value in answers.items():
        if value not in ("0", "1"):
            raise InputError(f"answer for {dimension} must be 0 or 1")
    return record_labels(
        workspace,
        annotator=annotator,
        item_id=item_id,
        model=model,
        labels={dimension: int(value) for dimension, value in answers.items()},
        note=note,
    )


def undo_last(workspace: Workspace, annotator: str) -> UndoResult | None:
    """Delete the labels of `annotator`'s last screen (all written together), or None."""
    with workspace.transaction() as db:
        last = db.execute(
            "SELECT item_id, model, time FROM labels WHERE annotator = ?"
            " ORDER BY time DESC, label_id DESC LIMIT 1",
            (annotator,),
        ).fetchone()
        if last is None:
            return None
        key = (last["item_id"], last["model"], annotator, last["time"])
        dimensions = [
            row[0]
            for row in db.execute(
                "SELECT dimension FROM labels WHERE item_id = ? AND model = ? AND annotator = ?"
                " AND time = ? ORDER BY label_id",
                key,
            )
        ]
        db.execute(
            "DELETE FROM labels WHERE item_id = ? AND model = ? AND annotator = ? AND time = ?",
            key,
        )
    return UndoResult(last["item_id"], last["model"], tuple(dimensions))


def skip_response(workspace: Workspace, annotator: str, item_id: str, model: str) -> None:
    """Put a response at the end of `annotator`'s queue."""
    with workspace.transaction() as db:
        db.execute(
            "INSERT OR REPLACE INTO label_skips (annotator, item_id, model, time)"
            " VALUES (?, ?, ?, ?)",
            (annotator, item_id, model, now()),
        )
        db.execute(
            "DELETE FROM label_claims WHERE annotator = ? AND item_id = ? AND model = ?",
            (annotator, item_id, model),
        )


def skip_screen(workspace: Workspace, annotator: str, ref: str) -> bool:
    """Skip the screen of the opaque `ref`; False if no such ref is queued."""
    resolved = resolve_ref(workspace, ref)
    if resolved is None:
        return False
    skip_response(workspace, annotator, resolved[0], resolved[1])
    return True


def read_labels(workspace: Workspace) -> list[LabelRecord]:
    with workspace.transaction() as db:
        rows = db.execute(
            "SELECT item_id, model, dimension, annotator, label, time, note FROM labels"
            " ORDER BY label_id"
        ).fetchall()
    return [LabelRecord(*row) for row in rows]


def add_labels(workspace: Workspace, records: Sequence[LabelRecord]) -> ImportResult:
    """Import labels, all or nothing: an identical label present is left alone; a different
    label by the same annotator is an error (relabel in the app, or remove it first)."""
    added = unchanged = 0
    with workspace.transaction() as db:
        for record in records:
            row = db.execute(
                "SELECT label FROM labels WHERE item_id = ? AND model = ? AND dimension = ?"
                " AND annotator = ?",
                (record.item_id, record.model, record.dimension, record.annotator),
            ).fetchone()
            if row is not None:
                if row["label"] == record.label:
                    unchanged += 1
                    continue
                raise InputError(
                    f"item '{record.item_id}', model '{record.model}', dimension "
                    f"'{record.dimension}': annotator '{record.annotator}' already gave label "
                    f"{row['label']} in the workspace; one label per annotator"
                )
            db.execute(
                "INSERT INTO labels (item_id, model, dimension, annotator, time, label, note)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    record.item_id, record.model, record.dimension, record.annotator,
                    record.time or now(), record.label, record.note,
                ),
            )  # fmt: skip
            added += 1
    return ImportResult(added=added, unchanged=unchanged)
