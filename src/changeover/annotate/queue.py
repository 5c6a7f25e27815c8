"""The label queue: which (response, dimension) pairs humans should label, and in what order.

`changeover next` (and, before any labels exist, `random_start`) fills it; the annotation app
serves from it. Each annotator sees the queue in their own order: by priority, then shuffled by
a hash of (seed, annotator, item, model), so the order is random, stable across reloads, and
different for every annotator — and never grouped by model (the app is blind).

An entry stays open for an annotator while they have not labelled it and fewer than
`annotators` people have labelled it or have it on screen; `annotators = 2` on some entries
gives the second labels that `changeover agreement` needs. Serving a response claims it for
`claim_seconds` (until labelled or skipped), so two people labelling at once do not both get a
response that wants one label.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from changeover.calibrate.next import spread
from changeover.errors import InputError
from changeover.files import read_records
from changeover.study import Study, feeds_dimension
from changeover.workspace import Workspace, now

__all__ = [
    "QueueEntry",
    "QueueResult",
    "QueueStatus",
    "CLAIM_SECONDS",
    "Progress",
    "Screen",
    "add_to_queue",
    "clear_queue",
    "default_dimensions",
    "dimensions_for",
    "next_screen",
    "progress",
    "queue_status",
    "queued_keys",
    "queued_refs",
    "random_start",
    "read_queue_csv",
    "resolve_ref",
    "screen_for",
    "stratified_sample",
]


@dataclass(frozen=True)
class QueueEntry:
    """Ask for a human label of one response on one dimension."""

    item_id: str
    model: str
    dimension: str
    priority: float = 0.0
    annotators: int = 1
    where: str | None = field(default=None, compare=False)  # its line in a file, for errors


@dataclass(frozen=True)
class QueueResult:
    added: int
    updated: int
    unchanged: int


@dataclass(frozen=True)
class Screen:
    """One response as an annotator sees it: no model name, only the opaque `ref`."""

    ref: str
    prompt: str
    system: str | None
    context: str | None
    reference: str | None
    segment: str
    response: str
    dimensions: tuple[str, ...]


@dataclass(frozen=True)
class Progress:
    labelled: int  # responses of the queue this annotator has labelled
    remaining: int  # responses still open for them


@dataclass(frozen=True)
class QueueStatus:
    entries: int
    open_entries: int  # entries with fewer labels than wanted
    by_dimension: dict[str, tuple[int, int]]  # dimension -> (entries, open)


def default_dimensions(study: Study) -> list[str]:
    """The study's `dimensions`, else the quality dimensions its gates name, in order."""
    if study.dimensions:
        return list(study.dimensions)
    return list(dict.fromkeys(gate.dimension for gate in study.quality_gates))


def dimensions_for(dimensions: Sequence[str], expected_behaviour: str) -> list[str]:
    """The dimensions a response to an item of this expected behaviour informs."""
    return [d for d in dimensions if feeds_dimension(d, expected_behaviour)]


def add_to_queue(
    workspace: Workspace, entries: Iterable[QueueEntry], *, source: str
) -> QueueResult:
    """Queue entries, all or nothing. A queued pair keeps the higher priority and the larger
    number of annotators; every entry must name a stored response that is not an error."""
    added = updated = unchanged = 0
    stamp = now()
    with workspace.transaction() as db:
        refs: dict[tuple[str, str], str] = {}
        for entry in entries:
            key = (entry.item_id, entry.model)
            if entry.annotators < 1:
                raise InputError(f"{entry.where or key}: annotators must be at least 1")
            if key not in refs:
                row = db.execute(
                    "SELECT response IS NOT NULL FROM responses WHERE item_id = ? AND model = ?",
                    key,
                ).fetchone()
                if row is None or not row[0]:
                    what = "no response" if row is None else "only an error, no response,"
                    at = f"{entry.where}: " if entry.where else ""
                    raise InputError(
                        f"{at}item '{entry.item_id}', model '{entry.model}': the workspace holds "
                        f"{what} to label; generate or import it first"
                    )
                old = db.execute(
                    "SELECT ref FROM label_queue WHERE item_id = ? AND model = ? LIMIT 1", key
                ).fetchone()
                refs[key] = old["ref"] if old is not None else secrets.token_hex(8)
            row = db.execute(
                "SELECT priority, annotators FROM label_queue"
                " WHERE item_id = ? AND model = ? AND dimension = ?",
                (*key, entry.dimension),
            ).fetchone()
            if row is None:
                db.execute(
                    "INSERT INTO label_queue (ref, item_id, model, dimension, priority,"
                    " annotators, source, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        refs[key], *key, entry.dimension, entry.priority, entry.annotators,
                        source, stamp,
                    ),
                )  # fmt: skip
                added += 1
            elif row["priority"] >= entry.priority and row["annotators"] >= entry.annotators:
                unchanged += 1
            else:
                db.execute(
                    "UPDATE label_queue SET priority = max(priority, ?),"
                    " annotators = max(annotators, ?) WHERE item_id = ? AND model = ?"
                    " AND dimension = ?",
                    (entry.priority, entry.annotators, *key, entry.dimension),
                )
                updated += 1
    return QueueResult(added=added, updated=updated, unchanged=unchanged)


def clear_queue(workspace: Workspace, *, source: str | None = None) -> int:
    """Remove queue entries (all, or those from `source`); labels are never touched."""
    with workspace.transaction() as db:
        if source is None:
            cursor = db.execute("DELETE FROM label_queue")
        else:
            cursor = db.execute("DELETE FROM label_queue WHERE source = ?", (source,))
    return cursor.rowcount


def stratified_sample(
    cells: dict[tuple[str, str], list[tuple[str, str]]], size: int, *, seed: int
) -> list[tuple[str, str]]:
    """Draw `size` members spread as evenly as the cells allow (`spread`: round-robin over the
    cells in a random order), uniformly at random within each cell, without replacement."""
    rng = np.random.default_rng(seed)
    keys = sorted(cells)
    taken = spread(size, [len(cells[key]) for key in keys], rng)
    chosen: list[tuple[str, str]] = []
    for key, n in zip(keys, taken, strict=True):
        members = cells[key]
        chosen += [members[i] for i in rng.choice(len(members), size=n, replace=False)]
    return chosen


def _doubled(responses: Sequence[tuple[str, str]], overlap: int, seed: int) -> set[tuple[str, str]]:
    """`overlap` of `responses`, at random, for a second annotator."""
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(responses), size=min(overlap, len(responses)), replace=False)
    return {responses[i] for i in picked}


def random_start(
    workspace: Workspace,
    study: Study,
    *,
    num_responses: int,
    dimensions: Sequence[str],
    seed: int = 0,
    overlap: int = 0,
) -> list[QueueEntry]:
    """Entries for a stratified random start: `num_responses` responses drawn across the
    model x segment cells (only the study's models, only responses, not errors), each queued for
    `dimensions`; `overlap` of them, at random, for two annotators."""
    models = set(study.model_names)
    cells: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    behaviour: dict[str, str] = {}
    with workspace.transaction() as db:
        rows = db.execute(
            "SELECT r.item_id, r.model, i.segment, i.expected_behaviour FROM responses r"
            " JOIN items i ON i.item_id = r.item_id WHERE r.response IS NOT NULL"
            " ORDER BY r.item_id, r.model"
        ).fetchall()
    for row in rows:
        if row["model"] in models:
            cells[(row["model"], row["segment"])].append((row["item_id"], row["model"]))
            behaviour[row["item_id"]] = row["expected_behaviour"]
    if not cells:
        raise InputError(
            "the workspace holds no responses of the study's models; run `changeover generate` "
            "or `changeover import responses` first"
        )
    chosen = stratified_sample(cells, num_responses, seed=seed)
    doubled = _doubled(chosen, overlap, seed + 1)
    return [
        QueueEntry(item_id, model, dimension, annotators=2 if (item_id, model) in doubled else 1)
        for item_id, model in chosen
        for dimension in dimensions_for(dimensions, behaviour[item_id])
    ]


def read_queue_csv(
    path: Path, *, dimensions: Sequence[str], overlap: int = 0, seed: int = 0
) -> list[QueueEntry]:
    """Entries from a CSV with columns `item_id, model` and optionally `dimension` (one of
    `dimensions`; else every one of them), `priority` and `annotators`. Errors name the file,
    line and column."""
    header, records = read_records(path, kind="queue")
    assert header is not None
    for column in ("item_id", "model"):
        if column not in header:
            raise InputError(f"{path}: line 1: missing column '{column}'; add it to the header")
    entries: list[QueueEntry] = []
    seen: dict[tuple[str, str, str], str] = {}
    for record in records:
        where = record.where
        values = {k: str(v).strip() for k, v in record.values.items()}
        for column in ("item_id", "model"):
            if not values[column]:
                raise InputError(f"{where}: column {column}: empty; fill it in")
        if values.get("dimension") and dimensions and values["dimension"] not in dimensions:
            raise InputError(
                f"{where}: column dimension: '{values['dimension']}' is not a dimension of the "
                f"study ({', '.join(dimensions)})"
            )
        priority = _number(where, "priority", values.get("priority") or "0", float)
        annotators = int(_number(where, "annotators", values.get("annotators") or "1", int))
        if annotators < 1:
            raise InputError(f"{where}: column annotators: must be at least 1")
        for dimension in [values["dimension"]] if values.get("dimension") else dimensions:
            key = (values["item_id"], values["model"], dimension)
            if key in seen:
                raise InputError(
                    f"{where}: item '{key[0]}', model '{key[1]}', dimension '{dimension}' is "
                    f"queued twice (first at {seen[key].removeprefix(f'{path}: ')})"
                )
            seen[key] = where
            entries.append(QueueEntry(*key, priority, annotators, where=where))
    if overlap:
        responses = sorted({(e.item_id, e.model) for e in entries})
        doubled = _doubled(responses, overlap, seed)
        entries = [
            replace(e, annotators=max(e.annotators, 2)) if (e.item_id, e.model) in doubled else e
            for e in entries
        ]
    return entries


def _number(where: str, column: str, text: str, kind: type) -> float:
    try:
        number = float(kind(text))
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise InputError(f"{where}: column {column}: '{text}' is not {what}") from None
    if not math.isfinite(number):
        raise InputError(f"{where}: column {column}: '{text}' is not a finite number")
    return number


def _order_key(seed: int, annotator: str, item_id: str, model: str) -> str:
    text = f"{seed}\0{annotator}\0{item_id}\0{model}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


_OPEN_ENTRIES = """
SELECT q.ref, q.item_id, q.model, q.dimension, q.priority,
       s.annotator IS NOT NULL AS skipped, s.time AS skipped_at, s.rowid AS skip_id
FROM label_queue q
LEFT JOIN label_skips s ON s.annotator = :annotator AND s.item_id = q.item_id
     AND s.model = q.model
WHERE NOT EXISTS (SELECT 1 FROM labels l WHERE l.item_id = q.item_id AND l.model = q.model
                  AND l.dimension = q.dimension AND l.annotator = :annotator)
  AND (SELECT count(*) FROM labels l WHERE l.item_id = q.item_id AND l.model = q.model
       AND l.dimension = q.dimension)
    + (SELECT count(*) FROM label_claims c WHERE c.item_id = q.item_id AND c.model = q.model
       AND c.annotator <> :annotator AND c.expires_at > :now)
    < q.annotators
"""

#: How long a served response stays reserved for its annotator (an abandoned tab expires).
CLAIM_SECONDS = 900.0


def _open_refs(
    workspace: Workspace, annotator: str, seed: int
) -> list[tuple[str, str, str, list[str]]]:
    """The responses open for `annotator`, in their order: (ref, item_id, model, dimensions)."""
    with workspace.transaction() as db:
        cursor = db.execute(
            _OPEN_ENTRIES + " ORDER BY q.queue_id", {"annotator": annotator, "now": now()}
        )
        rows = cursor.fetchall()
    grouped: dict[str, tuple[str, str, list[str]]] = {}
    skipped: dict[str, tuple[int, str, int]] = {}
    priority: dict[str, float] = {}
    for row in rows:
        ref = row["ref"]
        if ref not in grouped:
            grouped[ref] = (row["item_id"], row["model"], [])
            skip = (1, row["skipped_at"], row["skip_id"]) if row["skipped"] else (0, "", 0)
            skipped[ref], priority[ref] = skip, row["priority"]
        grouped[ref][2].append(row["dimension"])
        priority[ref] = max(priority[ref], row["priority"])

    def sort_key(ref: str) -> tuple[tuple[int, str, int], float, str]:
        """Not skipped first (by priority, then the annotator's random order), then the skipped
        ones, least recently skipped first: skipping moves on, even once all are skipped."""
        item_id, model, _ = grouped[ref]
        return skipped[ref], -priority[ref], _order_key(seed, annotator, item_id, model)

    return [(ref, *grouped[ref]) for ref in sorted(grouped, key=sort_key)]


def screen_for(workspace: Workspace, ref: str, dimensions: Sequence[str]) -> Screen | None:
    with workspace.transaction() as db:
        row = db.execute(
            "SELECT i.prompt, i.system, i.context, i.reference, i.segment, r.response"
            " FROM label_queue q JOIN responses r ON r.item_id = q.item_id AND r.model = q.model"
            " JOIN items i ON i.item_id = q.item_id WHERE q.ref = ? LIMIT 1",
            (ref,),
        ).fetchone()
    if row is None:
        return None
    return Screen(
        ref=ref,
        prompt=row["prompt"],
        system=row["system"],
        context=row["context"],
        reference=row["reference"],
        segment=row["segment"],
        response=row["response"] or "",
        dimensions=tuple(dimensions),
    )


def next_screen(
    workspace: Workspace,
    annotator: str,
    *,
    seed: int = 0,
    claim_seconds: float = CLAIM_SECONDS,
) -> Screen | None:
    """The next response for `annotator` with the dimensions still open for them, or None; it
    is claimed for them for `claim_seconds`."""
    refs = _open_refs(workspace, annotator, seed)
    if not refs:
        return None
    ref, item_id, model, dimensions = refs[0]
    expires = datetime.now(UTC) + timedelta(seconds=claim_seconds)
    with workspace.transaction() as db:
        db.execute("DELETE FROM label_claims WHERE annotator = ?", (annotator,))
        db.execute(
            "INSERT INTO label_claims (annotator, item_id, model, expires_at) VALUES (?, ?, ?, ?)",
            (annotator, item_id, model, expires.isoformat(timespec="milliseconds")),
        )
    return screen_for(workspace, ref, dimensions)


def resolve_ref(workspace: Workspace, ref: str) -> tuple[str, str, list[str]] | None:
    """(item_id, model, queued dimensions) of an opaque ref, or None."""
    with workspace.transaction() as db:
        rows = db.execute(
            "SELECT item_id, model, dimension FROM label_queue WHERE ref = ? ORDER BY queue_id",
            (ref,),
        ).fetchall()
    if not rows:
        return None
    return rows[0]["item_id"], rows[0]["model"], [row["dimension"] for row in rows]


def progress(workspace: Workspace, annotator: str, *, seed: int = 0) -> Progress:
    remaining = len(_open_refs(workspace, annotator, seed))
    with workspace.transaction() as db:
        (labelled,) = db.execute(
            "SELECT count(DISTINCT q.ref) FROM label_queue q JOIN labels l"
            " ON l.item_id = q.item_id AND l.model = q.model AND l.dimension = q.dimension"
            " WHERE l.annotator = ?",
            (annotator,),
        ).fetchone()
    return Progress(labelled=int(labelled), remaining=remaining)


def queue_status(workspace: Workspace) -> QueueStatus:
    with workspace.transaction() as db:
        rows = db.execute(
            "SELECT q.dimension, count(*) AS entries, sum((SELECT count(*) FROM labels l"
            " WHERE l.item_id = q.item_id AND l.model = q.model AND l.dimension = q.dimension)"
            " < q.annotators) AS open FROM label_queue q GROUP BY q.dimension ORDER BY 1"
        ).fetchall()
    by_dimension = {row["dimension"]: (int(row["entries"]), int(row["open"])) for row in rows}
    return QueueStatus(
        entries=sum(e for e, _ in by_dimension.values()),
        open_entries=sum(o for _, o in by_dimension.values()),
        by_dimension=by_dimension,
    )


def queued_keys(workspace: Workspace) -> set[tuple[str, str, str]]:
    """(item_id, model, dimension) of every queued label."""
    with workspace.transaction() as db:
        return {
            (r[0], r[1], r[2])
            for r in db.execute("SELECT item_id, model, dimension FROM label_queue")
        }


def queued_refs(workspace: Workspace) -> dict[tuple[str, str], str]:
    """The opaque ref of every queued response, by (item_id, model)."""
    with workspace.transaction() as db:
        rows = db.execute("SELECT DISTINCT item_id, model, ref FROM label_queue").fetchall()
    return {(row["item_id"], row["model"]): row["ref"] for row in rows}
