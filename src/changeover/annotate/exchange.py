"""Labels to and from files: CSV and Label Studio's JSON tasks.

An import is checked completely before anything is written, then written in one transaction;
every error names the file and the line (CSV) or key path (JSON). An export is written to a
temporary file and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from changeover.annotate.label_studio import labels_from_tasks, tasks_from_labels
from changeover.annotate.labels import MAX_NOTE, add_labels, read_labels
from changeover.annotate.queue import default_dimensions, queued_refs
from changeover.annotate.tokens import add_annotator, list_annotators
from changeover.errors import InputError
from changeover.files import csv_cell, parse_json, read_records, replacing
from changeover.records import LabelRecord
from changeover.study import Study
from changeover.workspace import ImportResult, Workspace

__all__ = [
    "CSV_COLUMNS",
    "Exported",
    "LabelFormat",
    "export_labels",
    "import_labels",
    "read_labels_csv",
]

LabelFormat = Literal["csv", "label-studio"]
CSV_COLUMNS = ("item_id", "model", "dimension", "annotator", "label", "time", "note")
_REQUIRED = ("item_id", "model", "dimension", "annotator", "label")


@dataclass(frozen=True)
class Exported:
    written: int  # rows (CSV) or tasks (Label Studio)
    left_out: int  # labelled responses a blind export cannot carry: they are not queued


def _time(where: str, text: str) -> str | None:
    """An ISO 8601 time (as the app stores it), or None when the cell is empty."""
    if not text:
        return None
    try:
        datetime.fromisoformat(text)
    except ValueError:
        raise InputError(
            f"{where}: column time: '{text}' is not an ISO 8601 time (e.g. "
            "2026-12-04T10:30:00+00:00); fix it or leave it empty"
        ) from None
    return text


def read_labels_csv(path: Path) -> list[tuple[str, LabelRecord]]:
    """Labels in a CSV (columns CSV_COLUMNS; time and note optional), each with
    "file: line N" for its errors."""
    header, records = read_records(path, kind="labels")
    assert header is not None
    for column in _REQUIRED:
        if column not in header:
            raise InputError(
                f"{path}: line 1: missing column '{column}'; the columns are "
                f"{', '.join(CSV_COLUMNS)} (time and note optional)"
            )
    out: list[tuple[str, LabelRecord]] = []
    for record in records:
        where = record.where
        values = {k: str(v).strip() for k, v in record.values.items()}
        for column in _REQUIRED:
            if not values[column]:
                raise InputError(f"{where}: column {column}: empty; fill it in")
        if values["label"] not in ("0", "1"):
            raise InputError(
                f"{where}: column label: '{values['label']}' is not 0 or 1 (1 = correct / "
                "refused / adheres to the style guide)"
            )
        note = values.get("note") or None
        if note is not None and len(note) > MAX_NOTE:
            raise InputError(
                f"{where}: column note: {len(note):,} characters, more than {MAX_NOTE:,}; "
                "shorten it"
            )
        label = LabelRecord(
            item_id=values["item_id"],
            model=values["model"],
            dimension=values["dimension"],
            annotator=values["annotator"],
            label=int(values["label"]),
            time=_time(where, values.get("time") or ""),
            note=note,
        )
        out.append((where, label))
    return out


def _parse(path: Path, refs: dict[str, tuple[str, str]]) -> list[tuple[str, LabelRecord]]:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return read_labels_csv(path)
    if suffix != ".json":
        raise InputError(
            f"{path}: unsupported label file type '{path.suffix}'; use .csv or Label Studio's .json"
        )
    if not path.is_file():
        what = "is a folder; give the labels file" if path.is_dir() else "file not found"
        raise InputError(f"{path}: {what}")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise InputError(f"{path}: not UTF-8 text ({error.reason}); save it as UTF-8") from None
    return labels_from_tasks(path, parse_json(text, str(path)), refs)


def import_labels(
    workspace: Workspace, path: Path, study: Study, *, add_annotators: bool = False
) -> ImportResult:
    """Check every label of `path` (a .csv or a Label Studio .json), then store them all in one
    transaction, or none.

    Every annotator must be known to the workspace (registered, or with labels in it already):
    a misspelt name would otherwise count as another person. `add_annotators` registers the
    file's new names instead (their tokens are not shown: add them again to sign in)."""
    parsed = _parse(path, {ref: key for key, ref in queued_refs(workspace).items()})
    dimensions = default_dimensions(study)
    with workspace.transaction() as db:
        answered = {
            (row[0], row[1])
            for row in db.execute("SELECT item_id, model FROM responses WHERE response IS NOT NULL")
        }
    # Who may label: the registered annotators, and anyone the workspace already has labels of.
    known = {person.name for person in list_annotators(workspace)}
    known |= {label.annotator for label in read_labels(workspace)}
    seen: dict[tuple[str, str, str, str], str] = {}
    for where, record in parsed:
        if record.annotator not in known and not add_annotators:
            raise InputError(
                f"{where}: annotator '{record.annotator}' is not known; add them first "
                f"(`changeover annotators add {record.annotator}`), fix the name, or pass "
                "--add-annotators"
            )
        if (record.item_id, record.model) not in answered:
            raise InputError(
                f"{where}: item '{record.item_id}', model '{record.model}': no such response in "
                "the workspace; import the responses first or fix the ids"
            )
        if dimensions and record.dimension not in dimensions:
            raise InputError(
                f"{where}: dimension '{record.dimension}' is not among the study's dimensions "
                f"({', '.join(dimensions)})"
            )
        key = (record.item_id, record.model, record.dimension, record.annotator)
        if key in seen:
            raise InputError(
                f"{where}: annotator '{record.annotator}' labels item '{record.item_id}', model "
                f"'{record.model}', dimension '{record.dimension}' twice (first at "
                f"{seen[key].removeprefix(f'{path}: ')})"
            )
        seen[key] = where
    with workspace.recorded_run("import", {"table": "labels", "file": str(path)}) as run:
        try:
            result = add_labels(workspace, [record for _, record in parsed])
        except InputError as error:
            raise InputError(f"{path}: {error}") from None
        new = sorted({record.annotator for _, record in parsed} - known)
        for name in new:
            add_annotator(workspace, name)
        run.detail.update(added=result.added, unchanged=result.unchanged, annotators_added=new)
    return result


def _responses_for_tasks(
    workspace: Workspace, labels: Sequence[LabelRecord], *, with_model: bool
) -> tuple[list[dict], int]:
    """What a task shows of every queued response (and, with the model, of every labelled
    one), in the order of their refs (blind) or of the items; and how many labelled responses
    were left out for want of a ref."""
    refs = queued_refs(workspace)
    labelled = {(r.item_id, r.model) for r in labels}
    wanted = set(refs) | labelled if with_model else set(refs)
    with workspace.transaction() as db:
        rows = db.execute(
            "SELECT r.item_id, r.model, i.prompt, i.context, i.reference, i.segment, r.response"
            " FROM responses r JOIN items i ON i.item_id = r.item_id"
            " WHERE r.response IS NOT NULL ORDER BY i.rowid, r.model"
        ).fetchall()
    responses = [
        dict(row) | {"ref": refs.get((row["item_id"], row["model"]))}
        for row in rows
        if (row["item_id"], row["model"]) in wanted
    ]
    if not with_model:
        responses.sort(key=lambda response: response["ref"])
    return responses, len(labelled - wanted)


def export_labels(
    workspace: Workspace, path: Path, *, format: LabelFormat, with_model: bool = False
) -> Exported:
    """Write the labels (CSV), or the queued responses as Label Studio tasks with their labels
    as annotations: blind (a task names its response by its queue ref only) unless
    `with_model`, which adds the item and model and the labelled responses not queued."""
    if not path.parent.exists():
        raise InputError(f"{path}: folder {path.parent} does not exist; create it first")
    labels = read_labels(workspace)
    left_out = 0
    if format == "csv":
        buffer = io.StringIO(newline="")
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for r in labels:
            cells = [r.item_id, r.model, r.dimension, r.annotator, r.time or "", r.note or ""]
            safe = [csv_cell(cell) for cell in cells]
            writer.writerow([*safe[:4], r.label, *safe[4:]])
        text, count = buffer.getvalue(), len(labels)
    elif format == "label-studio":
        responses, left_out = _responses_for_tasks(workspace, labels, with_model=with_model)
        tasks = tasks_from_labels(responses, labels, with_model=with_model)
        text, count = json.dumps(tasks, ensure_ascii=False, indent=1) + "\n", len(tasks)
    else:
        raise InputError(f"--format: unknown format '{format}'; use csv or label-studio")
    with replacing(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Exported(written=count, left_out=left_out)
