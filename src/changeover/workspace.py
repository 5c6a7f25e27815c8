"""The workspace: one SQLite file per study that every stage reads from and writes to.

Tables (DESIGN.md, "The pipeline"):

    items       the prompt set: item_id, prompt, segment, reference, expected_behaviour, ...
    responses   one per (item, model): the response text, or the error that stopped it
    calls       the request cache: provider answers keyed by a hash of (provider, model id,
                settings, messages), shared by generation and the LLM judges
    signals     one per (response, signal): value, discrete level, detail (issue 4)
    labels      human labels: several annotators per response and dimension (issue 5)
    runs        one per command that wrote (import, generate, score): arguments and summary
    spend       one per paid request: model, purpose (generation, judging), mode (online,
                batch), tokens, cost, the saving of a batch, latency (migration 3)
    batches     the batches submitted to a provider's batch API, with their state, and
    batch_requests  the cache keys of their requests: a killed run resumes them
    annotators  who may label: a name and the SHA-256 of their token (never the token)
    label_queue what to label: one row per (response, dimension) with a priority, how many
                annotators should label it, and `ref`, the opaque id annotators see instead of
                the item and model (the same for every dimension of a response)
    label_skips responses an annotator skipped: served again only after everything else
    label_claims responses on an annotator's screen now: not served to others (unless more
                annotators are wanted) until labelled, skipped or expired

The schema is versioned with `PRAGMA user_version` and upgraded by the ordered `MIGRATIONS` when a
workspace is opened. The database runs in WAL mode and every write is one transaction, so a
process killed at any moment leaves every committed row intact and nothing half-written.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

import polars as pl

from changeover.calls import (
    CachedCall,
    OpenBatch,
    Purpose,
    SpendEntry,
    SpendSummary,
    StoredCall,
    UsageHistory,
)
from changeover.errors import ChangeoverError, InputError, StudyError
from changeover.records import Item, ResponseRecord, SignalRecord

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "TABLES",
    "BatchWriter",
    "GeneratedResponse",
    "ImportResult",
    "PendingItem",
    "Run",
    "ScoringTarget",
    "Workspace",
    "WorkspaceError",
    "open_workspace",
]

MIGRATIONS: tuple[str, ...] = (
    # 1: the initial schema.
    """
    CREATE TABLE runs (
        run_id      INTEGER PRIMARY KEY,
        kind        TEXT NOT NULL,
        started_at  TEXT NOT NULL,
        finished_at TEXT,
        status      TEXT NOT NULL DEFAULT 'running'
                    CHECK (status IN ('running', 'finished', 'failed', 'interrupted')),
        detail      TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE items (
        item_id            TEXT PRIMARY KEY,
        prompt             TEXT NOT NULL CHECK (prompt <> ''),
        segment            TEXT NOT NULL,
        reference          TEXT,
        expected_behaviour TEXT NOT NULL DEFAULT 'answer'
                           CHECK (expected_behaviour IN ('answer', 'refuse')),
        system             TEXT,
        context            TEXT,
        metadata           TEXT NOT NULL DEFAULT '{}',
        run_id             INTEGER REFERENCES runs (run_id)
    );
    CREATE TABLE calls (
        key           TEXT PRIMARY KEY,
        provider      TEXT NOT NULL,
        model_id      TEXT NOT NULL,
        text          TEXT NOT NULL,
        finish_reason TEXT,
        input_tokens  INTEGER,
        output_tokens INTEGER,
        latency_s     REAL,
        created_at    TEXT NOT NULL,
        run_id        INTEGER REFERENCES runs (run_id)
    );
    CREATE TABLE responses (
        item_id       TEXT NOT NULL REFERENCES items (item_id),
        model         TEXT NOT NULL,
        response      TEXT,
        error         TEXT,
        finish_reason TEXT,
        input_tokens  INTEGER,
        output_tokens INTEGER,
        latency_s     REAL,
        cost          REAL,
        attempts      INTEGER,
        source        TEXT NOT NULL CHECK (source IN ('generate', 'import', 'replay')),
        cache_key     TEXT,
        created_at    TEXT NOT NULL,
        run_id        INTEGER REFERENCES runs (run_id),
        PRIMARY KEY (item_id, model),
        CHECK ((response IS NULL) <> (error IS NULL))
    );
    CREATE TABLE signals (
        item_id    TEXT NOT NULL,
        model      TEXT NOT NULL,
        signal     TEXT NOT NULL,
        dimension  TEXT NOT NULL,
        value,
        level      TEXT NOT NULL,
        detail     TEXT,
        created_at TEXT NOT NULL,
        run_id     INTEGER REFERENCES runs (run_id),
        PRIMARY KEY (item_id, model, signal),
        FOREIGN KEY (item_id, model) REFERENCES responses (item_id, model)
    );
    CREATE TABLE labels (
        label_id  INTEGER PRIMARY KEY,
        item_id   TEXT NOT NULL,
        model     TEXT NOT NULL,
        dimension TEXT NOT NULL,
        annotator TEXT NOT NULL,
        time      TEXT NOT NULL,
        label     INTEGER NOT NULL CHECK (label IN (0, 1)),
        note      TEXT,
        UNIQUE (item_id, model, dimension, annotator),
        FOREIGN KEY (item_id, model) REFERENCES responses (item_id, model)
    );
    CREATE INDEX responses_by_model ON responses (model, error);
    CREATE INDEX labels_by_response ON labels (item_id, model, dimension);
    """,
    # 2: the annotation app's tables ("IF NOT EXISTS": workspaces of changeover 0.1 may have
    # them already, created on first use).
    """
    CREATE TABLE IF NOT EXISTS annotators (
        name       TEXT PRIMARY KEY CHECK (name <> ''),
        token_hash TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL,
        revoked_at TEXT
    );
    CREATE TABLE IF NOT EXISTS label_queue (
        queue_id   INTEGER PRIMARY KEY,
        ref        TEXT NOT NULL,
        item_id    TEXT NOT NULL,
        model      TEXT NOT NULL,
        dimension  TEXT NOT NULL CHECK (dimension <> ''),
        priority   REAL NOT NULL DEFAULT 0,
        annotators INTEGER NOT NULL DEFAULT 1 CHECK (annotators >= 1),
        source     TEXT NOT NULL,
        created_at TEXT NOT NULL,
        UNIQUE (item_id, model, dimension),
        FOREIGN KEY (item_id, model) REFERENCES responses (item_id, model)
    );
    CREATE INDEX IF NOT EXISTS label_queue_by_ref ON label_queue (ref);
    CREATE TABLE IF NOT EXISTS label_skips (
        annotator TEXT NOT NULL,
        item_id   TEXT NOT NULL,
        model     TEXT NOT NULL,
        time      TEXT NOT NULL,
        PRIMARY KEY (annotator, item_id, model)
    );
    CREATE TABLE IF NOT EXISTS label_claims (
        annotator  TEXT NOT NULL,
        item_id    TEXT NOT NULL,
        model      TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        PRIMARY KEY (annotator, item_id, model)
    );
    """,
    # 3: what was spent, one row per paid request (per model and purpose), and the batches
    # submitted to providers' batch APIs with the cache keys of their requests, so that a run
    # killed after submitting resumes polling them. The responses generated before are the
    # spend of generation (those a request was sent for), latencies included.
    """
    CREATE TABLE spend (
        spend_id      INTEGER PRIMARY KEY,
        model         TEXT NOT NULL,
        purpose       TEXT NOT NULL CHECK (purpose IN ('generation', 'judging')),
        mode          TEXT NOT NULL CHECK (mode IN ('online', 'batch')),
        input_chars   INTEGER,
        input_tokens  INTEGER,
        output_tokens INTEGER,
        cost          REAL,
        saving        REAL,
        latency_s     REAL,
        created_at    TEXT NOT NULL,
        run_id        INTEGER REFERENCES runs (run_id)
    );
    CREATE INDEX spend_by_model ON spend (model, purpose, latency_s);
    CREATE INDEX spend_by_run ON spend (run_id);
    CREATE TABLE batches (
        batch_id     TEXT PRIMARY KEY,
        model        TEXT NOT NULL,
        purpose      TEXT NOT NULL CHECK (purpose IN ('generation', 'judging')),
        provider     TEXT NOT NULL,
        state        TEXT NOT NULL DEFAULT 'submitted'
                     CHECK (state IN ('submitted', 'collected', 'lost')),
        requests     INTEGER NOT NULL,
        submitted_at TEXT NOT NULL,
        ended_at     TEXT,
        detail       TEXT,
        run_id       INTEGER REFERENCES runs (run_id)
    );
    CREATE INDEX batches_by_state ON batches (state, model, purpose);
    CREATE TABLE batch_requests (
        batch_id TEXT NOT NULL REFERENCES batches (batch_id),
        key      TEXT NOT NULL,
        PRIMARY KEY (batch_id, key)
    );
    INSERT INTO spend (model, purpose, mode, input_tokens, output_tokens, cost, latency_s,
                       created_at, run_id)
        SELECT model, 'generation', 'online', input_tokens, output_tokens, cost, latency_s,
               created_at, run_id
        FROM responses
        WHERE source = 'generate' AND response IS NOT NULL AND attempts > 0;
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)

# Column types for exports, so that an empty or all-null column keeps its type.
_COLUMNS: dict[str, dict[str, Any]] = {
    "items": {
        "item_id": pl.String, "prompt": pl.String, "segment": pl.String,
        "reference": pl.String, "expected_behaviour": pl.String, "system": pl.String,
        "context": pl.String, "metadata": pl.String, "run_id": pl.Int64,
    },
    "responses": {
        "item_id": pl.String, "model": pl.String, "response": pl.String, "error": pl.String,
        "finish_reason": pl.String, "input_tokens": pl.Int64, "output_tokens": pl.Int64,
        "latency_s": pl.Float64, "cost": pl.Float64, "attempts": pl.Int64,
        "source": pl.String, "cache_key": pl.String, "created_at": pl.String,
        "run_id": pl.Int64,
    },
    "calls": {
        "key": pl.String, "provider": pl.String, "model_id": pl.String, "text": pl.String,
        "finish_reason": pl.String, "input_tokens": pl.Int64, "output_tokens": pl.Int64,
        "latency_s": pl.Float64, "created_at": pl.String, "run_id": pl.Int64,
    },
    "signals": {
        "item_id": pl.String, "model": pl.String, "signal": pl.String, "dimension": pl.String,
        "value": pl.String, "level": pl.String, "detail": pl.String, "created_at": pl.String,
        "run_id": pl.Int64,
    },
    "labels": {
        "label_id": pl.Int64, "item_id": pl.String, "model": pl.String,
        "dimension": pl.String, "annotator": pl.String, "time": pl.String, "label": pl.Int8,
        "note": pl.String,
    },
    "runs": {
        "run_id": pl.Int64, "kind": pl.String, "started_at": pl.String,
        "finished_at": pl.String, "status": pl.String, "detail": pl.String,
    },
    "spend": {
        "spend_id": pl.Int64, "model": pl.String, "purpose": pl.String, "mode": pl.String,
        "input_chars": pl.Int64, "input_tokens": pl.Int64, "output_tokens": pl.Int64,
        "cost": pl.Float64, "saving": pl.Float64, "latency_s": pl.Float64,
        "created_at": pl.String, "run_id": pl.Int64,
    },
    "batches": {
        "batch_id": pl.String, "model": pl.String, "purpose": pl.String, "provider": pl.String,
        "state": pl.String, "requests": pl.Int64, "submitted_at": pl.String,
        "ended_at": pl.String, "detail": pl.String, "run_id": pl.Int64,
    },
}  # fmt: skip
TABLES: tuple[str, ...] = tuple(_COLUMNS)


class WorkspaceError(ChangeoverError):
    """The workspace file is missing, from a newer changeover, or not a workspace."""


def now() -> str:
    """The current UTC time as ISO 8601, as stored in the workspace."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class GeneratedResponse:
    """A response from generation, with the fresh provider answer to cache (None when the
    answer came from the cache or the provider is not cached)."""

    record: ResponseRecord
    call: CachedCall | None
    provider: str
    model_id: str
    spend: SpendEntry | None = None


@dataclass(frozen=True)
class PendingItem:
    """An item as seen by generation for one model, with what the workspace holds for it."""

    item: Item
    response_state: Literal["missing", "error", "ok"]
    source: str | None
    cache_key: str | None


@dataclass
class Run:
    """A run being recorded (`Workspace.recorded_run`): its id, and the detail to store when it
    ends (a summary, say)."""

    run_id: int
    detail: dict[str, Any]


@dataclass(frozen=True)
class ImportResult:
    """What an import wrote: `added` new rows, `unchanged` rows already present identically."""

    added: int
    unchanged: int


@dataclass(frozen=True)
class ScoringTarget:
    """A successful response to score, with its item."""

    item: Item
    model: str
    response: str


def _item_from_row(row: sqlite3.Row) -> Item:
    return Item(
        item_id=row["item_id"],
        prompt=row["prompt"],
        segment=row["segment"],
        reference=row["reference"],
        expected_behaviour=row["expected_behaviour"],
        system=row["system"],
        context=row["context"],
        metadata=json.loads(row["metadata"]),
    )


_T = TypeVar("_T")


class BatchWriter(Generic[_T]):
    """Stores records the moment they arrive: all those received in one turn of the event loop
    go in one transaction at the start of the next turn, before any wait for I/O. (One
    transaction per record costs more CPU than the SDK call at hundreds per second.) Generation
    and the judges both write through it.

    `store` writes a batch in one transaction; `what` and `stage` name the records and the
    command to re-run in the error a failed write raises."""

    def __init__(
        self, workspace: Workspace, store: Callable[[list[_T]], None], *, what: str, stage: str
    ) -> None:
        self._workspace = workspace
        self._store = store
        self._what = what
        self._stage = stage
        self._pending: list[_T] = []
        self._is_scheduled = False
        self._error: BaseException | None = None

    def add(self, entry: _T) -> None:
        self._pending.append(entry)
        if not self._is_scheduled:
            self._is_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        self._is_scheduled = False
        if not self._pending or self._error is not None:
            return
        entries, self._pending = self._pending, []
        try:
            self._store(entries)
        except Exception as error:  # noqa: BLE001  (re-raised by check(), in the run's task)
            self._error = error

    def check(self) -> None:
        """Raise the error of a failed write (a full disk, a locked file) in the caller."""
        if self._error is not None:
            raise WorkspaceError(
                f"{self._workspace.path}: cannot store {self._what} ({self._error}); what was "
                f"stored is safe, fix the cause and re-run {self._stage} to resume"
            ) from self._error


class Workspace:
    """An open workspace. Use `open_workspace`; close it (or use `with`) when done.

    One connection, used from one thread: generation writes from its event loop.
    """

    def __init__(
        self, path: Path, connection: sqlite3.Connection, *, read_only: bool = False
    ) -> None:
        self.path = path
        self._db = connection
        self._read_only = read_only

    # -- lifecycle ------------------------------------------------------------------------------

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    @property
    def is_read_only(self) -> bool:
        return self._read_only

    def _write_error(self, error: sqlite3.OperationalError) -> WorkspaceError:
        """What a failed write means for the user, in one line (SQLite's own words last)."""
        text = str(error)
        if "readonly" in text or "read-only" in text:
            why = "the workspace is read-only; nothing was written (copy it somewhere writable)"
        elif "full" in text:
            why = "the disk is full; nothing of this step was written (free space and re-run)"
        elif "locked" in text or "busy" in text:
            why = "another process holds the workspace; nothing was written (re-run when it ends)"
        else:
            why = "cannot write; nothing of this step was written"
        return WorkspaceError(f"{self.path}: {why} ({text})")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: committed when the block ends, rolled back on any error (a
        failed write — a full disk, a read-only file — is reported as itself, not as the
        rollback that follows it)."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            raise self._write_error(error) from None
        try:
            yield self._db
            self._db.execute("COMMIT")
        except BaseException as error:
            if self._db.in_transaction:  # SQLite may have rolled back already (SQLITE_FULL)
                self._db.execute("ROLLBACK")
            if isinstance(error, sqlite3.OperationalError):
                raise self._write_error(error) from None
            raise

    @contextmanager
    def exclusive(self, stage: str) -> Iterator[None]:
        """Hold an OS lock so that two runs of `stage` never work on this workspace at once (they
        would send the same requests twice). The OS releases it when the process ends, however
        it ends, so a killed run never leaves a stale lock."""
        try:
            import fcntl
        except ImportError:  # not on POSIX: no lock
            yield
            return
        path = self.path.with_name(f"{self.path.name}.{stage}.lock")
        with path.open("a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise WorkspaceError(
                    f"{self.path}: another `changeover {stage}` is running on this workspace; "
                    "wait for it to finish or stop it"
                ) from None
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _migrate(self) -> None:
        version = self.schema_version
        if version > SCHEMA_VERSION:
            raise WorkspaceError(
                f"{self.path}: workspace schema version {version} is newer than this changeover "
                f"understands ({SCHEMA_VERSION}); upgrade changeover"
            )
        if self._read_only and version < SCHEMA_VERSION:
            raise WorkspaceError(
                f"{self.path}: the workspace is read-only and from an older changeover (schema "
                f"v{version}); open it once where it is writable, to upgrade it"
            )
        for number in range(version + 1, SCHEMA_VERSION + 1):
            with self.transaction() as db:
                for statement in MIGRATIONS[number - 1].split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {number}")

    # -- runs -----------------------------------------------------------------------------------

    def start_run(self, kind: str, detail: Mapping[str, Any] | None = None) -> int:
        with self.transaction() as db:
            cursor = db.execute(
                "INSERT INTO runs (kind, started_at, detail) VALUES (?, ?, ?)",
                (kind, now(), json.dumps(dict(detail or {}))),
            )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def finish_run(
        self,
        run_id: int,
        *,
        status: Literal["finished", "failed", "interrupted"],
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        with self.transaction() as db:
            (old,) = db.execute("SELECT detail FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            merged = {**json.loads(old), **dict(detail or {})}
            db.execute(
                "UPDATE runs SET finished_at = ?, status = ?, detail = ? WHERE run_id = ?",
                (now(), status, json.dumps(merged), run_id),
            )

    @contextmanager
    def recorded_run(self, kind: str, detail: Mapping[str, Any] | None = None) -> Iterator[Run]:
        """Record a command that writes as one row of `runs`: "running" while the block runs,
        then "finished", "failed" (an error, kept in the detail) or "interrupted" (Ctrl-C, a
        cancelled task), with whatever the block put in `run.detail`. A run that bad input
        stopped (an InputError or StudyError: the block wrote nothing) leaves no row: bad
        input changes nothing in the workspace."""
        self._close_abandoned_runs()
        run = Run(self.start_run(kind, {**dict(detail or {}), "pid": os.getpid()}), {})
        status: Literal["finished", "failed", "interrupted", "refused"] = "interrupted"
        try:
            yield run
            status = "finished"
        except (InputError, StudyError):
            status = "refused"
            raise
        except Exception as error:
            status = "failed"
            run.detail.setdefault("error", str(error))
            raise
        finally:
            try:
                if status == "refused":
                    with self.transaction() as db:
                        db.execute("DELETE FROM runs WHERE run_id = ?", (run.run_id,))
                else:
                    self.finish_run(run.run_id, status=status, detail=run.detail)
            except sqlite3.Error:
                if status == "finished":
                    raise
                # Already failing (a full disk, say): that error is the one to report.

    def _close_abandoned_runs(self) -> None:
        """Mark "interrupted" the runs still "running" whose process is gone (killed, or the
        machine stopped): nothing will finish them."""
        abandoned = []
        for run_id, detail in self._db.execute(
            "SELECT run_id, detail FROM runs WHERE status = 'running'"
        ):
            pid = json.loads(detail).get("pid")
            if isinstance(pid, int) and not _is_alive(pid):
                abandoned.append(run_id)
        for run_id in abandoned:
            self.finish_run(run_id, status="interrupted", detail={"abandoned": True})

    # -- items ----------------------------------------------------------------------------------

    def add_items(self, items: Sequence[Item], *, run_id: int | None = None) -> ImportResult:
        """Add items, all or nothing. An item already present identically is left alone; one
        present with different content is an error (change its id to add it as new)."""
        with self.transaction() as db:
            return self._insert_items(db, items, run_id)

    @staticmethod
    def _insert_items(
        db: sqlite3.Connection, items: Sequence[Item], run_id: int | None
    ) -> ImportResult:
        added = unchanged = 0
        for item in items:
            row = db.execute("SELECT * FROM items WHERE item_id = ?", (item.item_id,)).fetchone()
            if row is not None:
                if _item_from_row(row) == _normalised(item):
                    unchanged += 1
                    continue
                raise InputError(
                    f"item '{item.item_id}' is already in the workspace with other content; "
                    "give the changed item a new item_id"
                )
            db.execute(
                "INSERT INTO items (item_id, prompt, segment, reference, expected_behaviour,"
                " system, context, metadata, run_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    item.item_id, item.prompt, item.segment, item.reference,
                    item.expected_behaviour, item.system, item.context,
                    json.dumps(dict(item.metadata), sort_keys=True), run_id,
                ),
            )  # fmt: skip
            added += 1
        return ImportResult(added=added, unchanged=unchanged)

    def add_scored(
        self,
        items: Sequence[Item],
        responses: Sequence[ResponseRecord],
        signals: Sequence[SignalRecord],
        *,
        run_id: int | None = None,
    ) -> tuple[ImportResult, ImportResult]:
        """Add items, their responses and the responses' signals (another tool's scores) in one
        transaction: all or nothing. Items and responses as `add_items` and `add_responses`;
        signals replace any stored under the same name. Returns what became of the items and
        of the responses."""
        with self.transaction() as db:
            items_result = self._insert_items(db, items, run_id)
            responses_result = self._insert_responses(db, responses, run_id)
            self._insert_signals(db, signals, run_id)
        return items_result, responses_result

    def item_segments(self) -> dict[str, str]:
        """Each item's segment."""
        return dict(self._db.execute("SELECT item_id, segment FROM items").fetchall())

    def response_counts(self) -> dict[str, tuple[int, int]]:
        """Per model: how many responses it has, and how many errors."""
        rows = self._db.execute(
            "SELECT model, count(response), count(error) FROM responses GROUP BY model"
        ).fetchall()
        return {model: (ok, failed) for model, ok, failed in rows}

    def item_ids(self) -> set[str]:
        return {row[0] for row in self._db.execute("SELECT item_id FROM items")}

    def count_items(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM items").fetchone()[0])

    def iter_items_for(
        self, model: str, *, limit: int | None = None, page_size: int = 500
    ) -> Iterator[PendingItem]:
        """Items in import order (the first `limit` only), each with `model`'s stored response
        state. Read in pages, so memory stays flat however many items there are."""
        last = 0
        seen = 0
        while limit is None or seen < limit:
            size = page_size if limit is None else min(page_size, limit - seen)
            rows = self._db.execute(
                "SELECT i.rowid AS rowid_, i.*, r.error IS NOT NULL AS has_error,"
                " r.item_id IS NOT NULL AS has_response, r.source, r.cache_key"
                " FROM items i LEFT JOIN responses r ON r.item_id = i.item_id AND r.model = ?"
                " WHERE i.rowid > ? ORDER BY i.rowid LIMIT ?",
                (model, last, size),
            ).fetchall()
            if not rows:
                return
            for row in rows:
                state: Literal["missing", "error", "ok"] = (
                    "missing" if not row["has_response"] else "error" if row["has_error"] else "ok"
                )
                yield PendingItem(_item_from_row(row), state, row["source"], row["cache_key"])
            seen += len(rows)
            last = rows[-1]["rowid_"]

    def count_for(self, model: str, *, limit: int | None = None) -> dict[str, int]:
        """How many of the first `limit` items have no response, an error, or a response."""
        row = self._db.execute(
            "SELECT count(*) - count(r.item_id), count(r.error), count(r.response)"
            " FROM (SELECT item_id FROM items ORDER BY rowid LIMIT ?) i"
            " LEFT JOIN responses r ON r.item_id = i.item_id AND r.model = ?",
            (-1 if limit is None else limit, model),
        ).fetchone()
        return {"missing": row[0], "error": row[1], "ok": row[2]}

    # -- responses and the request cache --------------------------------------------------------

    def add_responses(
        self, records: Sequence[ResponseRecord], *, run_id: int | None = None
    ) -> ImportResult:
        """Add imported responses, all or nothing; an identical one present is left alone, a
        different one is an error."""
        with self.transaction() as db:
            return self._insert_responses(db, records, run_id)

    def _insert_responses(
        self, db: sqlite3.Connection, records: Sequence[ResponseRecord], run_id: int | None
    ) -> ImportResult:
        added = unchanged = 0
        for record in records:
            row = db.execute(
                "SELECT response, error FROM responses WHERE item_id = ? AND model = ?",
                (record.item_id, record.model),
            ).fetchone()
            if row is not None:
                if (row["response"], row["error"]) == (record.response, record.error):
                    unchanged += 1
                    continue
                raise InputError(
                    f"item '{record.item_id}', model '{record.model}' already has another "
                    "response in the workspace; one response per item and model"
                )
            self._write_response(db, record, run_id)
            added += 1
        return ImportResult(added=added, unchanged=unchanged)

    @staticmethod
    def _write_response(db: sqlite3.Connection, record: ResponseRecord, run_id: int | None) -> None:
        db.execute(
            "INSERT OR REPLACE INTO responses (item_id, model, response, error, finish_reason,"
            " input_tokens, output_tokens, latency_s, cost, attempts, source, cache_key,"
            " created_at, run_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record.item_id, record.model, record.response, record.error,
                record.finish_reason, record.input_tokens, record.output_tokens,
                record.latency_s, record.cost, record.attempts, record.source,
                record.cache_key, now(), run_id,
            ),
        )  # fmt: skip

    def cached_call(self, key: str) -> CachedCall | None:
        row = self._db.execute(
            "SELECT text, finish_reason, input_tokens, output_tokens, latency_s FROM calls"
            " WHERE key = ?",
            (key,),
        ).fetchone()
        return None if row is None else CachedCall(*row)

    @staticmethod
    def _write_call(
        db: sqlite3.Connection,
        key: str,
        *,
        provider: str,
        model_id: str,
        call: CachedCall,
        run_id: int | None,
    ) -> None:
        db.execute(
            "INSERT OR IGNORE INTO calls (key, provider, model_id, text, finish_reason,"
            " input_tokens, output_tokens, latency_s, created_at, run_id)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                key, provider, model_id, call.text, call.finish_reason, call.input_tokens,
                call.output_tokens, call.latency_s, now(), run_id,
            ),
        )  # fmt: skip

    def store_call(
        self,
        key: str,
        *,
        provider: str,
        model_id: str,
        call: CachedCall,
        run_id: int | None,
        spend: SpendEntry | None = None,
    ) -> None:
        """Cache one provider answer, with what it cost (one transaction)."""
        with self.transaction() as db:
            self._write_stored(db, StoredCall(key, provider, model_id, call, spend), run_id)

    @classmethod
    def _write_stored(cls, db: sqlite3.Connection, stored: StoredCall, run_id: int | None) -> None:
        """A fresh answer into the request cache, with its row of spend."""
        cls._write_call(
            db, stored.key, provider=stored.provider, model_id=stored.model_id, call=stored.call,
            run_id=run_id,
        )  # fmt: skip
        if stored.spend is not None:
            cls._write_spend(db, stored.spend, run_id)

    @staticmethod
    def _write_spend(db: sqlite3.Connection, entry: SpendEntry, run_id: int | None) -> None:
        db.execute(
            "INSERT INTO spend (model, purpose, mode, input_chars, input_tokens, output_tokens,"
            " cost, saving, latency_s, created_at, run_id)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                entry.model, entry.purpose, entry.mode, entry.input_chars, entry.input_tokens,
                entry.output_tokens, entry.cost, entry.saving, entry.latency_s, now(), run_id,
            ),
        )  # fmt: skip

    def store_generated(self, entries: Sequence[GeneratedResponse], *, run_id: int | None) -> None:
        """Store generated responses and, for fresh answers, their cache entries, in one
        transaction: a crash leaves all of them or none."""
        with self.transaction() as db:
            for entry in entries:
                record = entry.record
                if entry.call is not None and record.cache_key is not None:
                    stored = StoredCall(
                        record.cache_key, entry.provider, entry.model_id, entry.call, entry.spend
                    )
                    self._write_stored(db, stored, run_id)
                self._write_response(db, record, run_id)

    # -- spend ----------------------------------------------------------------------------------

    def spend_total(self) -> float:
        """Dollars spent on the study so far, every model and purpose (the budget's per_study)."""
        return float(self._db.execute("SELECT coalesce(sum(cost), 0) FROM spend").fetchone()[0])

    def spend_summary(self, *, run_id: int | None = None) -> list[SpendSummary]:
        """What each model cost for each purpose (generation, judging), in the whole study or in
        one run: requests, tokens, dollars, the batch saving, and p50 / p95 latency of the
        online requests (nearest rank). The data for a cost summary, `status` or a report."""
        where, args = ("WHERE run_id = ?", [run_id]) if run_id is not None else ("", [])
        groups = self._db.execute(
            "SELECT model, purpose, count(*), sum(mode = 'batch'), coalesce(sum(input_tokens), 0),"
            " coalesce(sum(output_tokens), 0), sum(cost), coalesce(sum(saving), 0),"
            f" count(latency_s) FROM spend {where} GROUP BY model, purpose ORDER BY model, purpose",
            args,
        ).fetchall()
        summaries = []
        for model, purpose, requests, batch, tokens_in, tokens_out, cost, saving, timed in groups:
            quantiles: list[float | None] = []
            for q in (0.5, 0.95):
                if not timed:
                    quantiles.append(None)
                    continue
                row = self._db.execute(
                    "SELECT latency_s FROM spend WHERE model = ? AND purpose = ?"
                    f" AND latency_s IS NOT NULL{' AND run_id = ?' if run_id is not None else ''}"
                    " ORDER BY latency_s LIMIT 1 OFFSET ?",
                    [model, purpose, *args, max(0, math.ceil(q * timed) - 1)],
                ).fetchone()
                quantiles.append(float(row[0]))
            summaries.append(
                SpendSummary(
                    model,
                    purpose,
                    requests,
                    batch,
                    tokens_in,
                    tokens_out,
                    cost,
                    saving,
                    quantiles[0],
                    quantiles[1],
                )  # fmt: skip
            )
        return summaries

    def usage_history(self, model: str, purpose: Purpose) -> UsageHistory | None:
        """The recorded usage of `model` for `purpose` (requests with known input characters
        and tokens): what `--dry-run` estimates from; None without any."""
        row = self._db.execute(
            "SELECT count(*), sum(input_chars), sum(input_tokens), sum(output_tokens) FROM spend"
            " WHERE model = ? AND purpose = ? AND input_chars IS NOT NULL"
            " AND input_tokens IS NOT NULL AND output_tokens IS NOT NULL",
            (model, purpose),
        ).fetchone()
        return UsageHistory(*row) if row[0] else None

    # -- batches --------------------------------------------------------------------------------

    def open_batches(self, model: str, purpose: str) -> list[OpenBatch]:
        """The batches of `model` for `purpose` submitted and not yet collected, oldest first."""
        rows = self._db.execute(
            "SELECT batch_id, run_id FROM batches WHERE state = 'submitted' AND model = ?"
            " AND purpose = ? ORDER BY submitted_at, rowid",
            (model, purpose),
        ).fetchall()
        return [
            OpenBatch(
                batch_id,
                frozenset(
                    key
                    for (key,) in self._db.execute(
                        "SELECT key FROM batch_requests WHERE batch_id = ?", (batch_id,)
                    )
                ),
                run_id,
            )
            for batch_id, run_id in rows
        ]

    def record_batch(
        self,
        batch_id: str,
        *,
        model: str,
        purpose: str,
        provider: str,
        keys: Sequence[str],
        run_id: int | None,
    ) -> None:
        """Keep a batch the moment the provider has taken it, with the keys of its requests."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO batches (batch_id, model, purpose, provider, requests, submitted_at,"
                " run_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (batch_id, model, purpose, provider, len(keys), now(), run_id),
            )
            db.executemany(
                "INSERT OR IGNORE INTO batch_requests (batch_id, key) VALUES (?, ?)",
                [(batch_id, key) for key in keys],
            )

    def collect_batch(
        self, batch_id: str, calls: Sequence[StoredCall], *, run_id: int | None, detail: str
    ) -> None:
        """Store an ended batch's answers in the request cache with their spend, and mark it
        collected, in one transaction: its answers are stored (and paid for) exactly once."""
        with self.transaction() as db:
            state = db.execute(
                "SELECT state FROM batches WHERE batch_id = ?", (batch_id,)
            ).fetchone()
            if state is not None and state[0] != "submitted":
                return
            for stored in calls:
                self._write_stored(db, stored, run_id)
            db.execute(
                "UPDATE batches SET state = 'collected', ended_at = ?, detail = ?"
                " WHERE batch_id = ?",
                (now(), detail, batch_id),
            )

    def lose_batch(self, batch_id: str, *, detail: str) -> None:
        """Mark a batch the provider no longer knows: its requests are submitted again."""
        with self.transaction() as db:
            db.execute(
                "UPDATE batches SET state = 'lost', ended_at = ?, detail = ? WHERE batch_id = ?",
                (now(), detail, batch_id),
            )

    # -- signals --------------------------------------------------------------------------------

    @staticmethod
    def _unscored_filter(
        signal: str | None, redo_levels: Sequence[str], behaviours: Sequence[str] | None
    ) -> tuple[str, list[Any]]:
        where, args = "", []
        if behaviours is not None:
            marks = ", ".join("?" for _ in behaviours)
            where += (
                " AND r.item_id IN (SELECT item_id FROM items"
                f" WHERE expected_behaviour IN ({marks}))"
            )
            args += list(behaviours)
        if signal is None:
            return where, args
        marks = ", ".join("?" for _ in redo_levels)
        redo = f" AND s.level NOT IN ({marks})" if redo_levels else ""
        return (
            where + " AND NOT EXISTS (SELECT 1 FROM signals s WHERE s.item_id = r.item_id"
            f" AND s.model = r.model AND s.signal = ?{redo})",
            [*args, signal, *redo_levels],
        )

    def count_unscored(
        self,
        signal: str | None,
        *,
        redo_levels: Sequence[str] = (),
        behaviours: Sequence[str] | None = None,
    ) -> int:
        """Successful responses without a stored `signal` (or whose stored level is one of
        `redo_levels`); with `signal=None`, every successful response. `behaviours` keeps only
        the responses to items with one of these expected behaviours."""
        where, args = self._unscored_filter(signal, redo_levels, behaviours)
        row = self._db.execute(
            f"SELECT count(*) FROM responses r WHERE r.error IS NULL{where}", args
        ).fetchone()
        return int(row[0])

    def iter_unscored(
        self,
        signal: str | None,
        *,
        redo_levels: Sequence[str] = (),
        behaviours: Sequence[str] | None = None,
        page_size: int = 500,
    ) -> Iterator[ScoringTarget]:
        """The responses `count_unscored` counts, with their items, read in pages (memory stays
        flat; signals written between pages do not disturb the iteration)."""
        where, args = self._unscored_filter(signal, redo_levels, behaviours)
        last = 0
        while True:
            rows = self._db.execute(
                "SELECT r.rowid AS rowid_, r.model AS model_, r.response AS response_, i.*"
                " FROM responses r JOIN items i ON i.item_id = r.item_id"
                f" WHERE r.error IS NULL AND r.rowid > ?{where} ORDER BY r.rowid LIMIT ?",
                [last, *args, page_size],
            ).fetchall()
            if not rows:
                return
            for row in rows:
                yield ScoringTarget(_item_from_row(row), row["model_"], row["response_"])
            last = rows[-1]["rowid_"]

    def store_signals(self, records: Sequence[SignalRecord], *, run_id: int | None) -> None:
        """Store (or replace) scored signals, in one transaction."""
        with self.transaction() as db:
            self._insert_signals(db, records, run_id)

    @staticmethod
    def _insert_signals(
        db: sqlite3.Connection, records: Sequence[SignalRecord], run_id: int | None
    ) -> None:
        db.executemany(
            "INSERT OR REPLACE INTO signals (item_id, model, signal, dimension, value, level,"
            " detail, created_at, run_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (r.item_id, r.model, r.signal, r.dimension, r.value, r.level, r.detail,
                 now(), run_id)
                for r in records
            ],
        )  # fmt: skip

    def delete_signal(self, signal: str) -> int:
        """Delete every stored row of one signal; returns how many there were."""
        with self.transaction() as db:
            cursor = db.execute("DELETE FROM signals WHERE signal = ?", (signal,))
        return cursor.rowcount

    def signal_levels(self, signal: str) -> dict[str, int]:
        """How many stored responses of `signal` are at each level."""
        return {
            level: n
            for level, n in self._db.execute(
                "SELECT level, count(*) FROM signals WHERE signal = ? GROUP BY level"
                " ORDER BY level",
                (signal,),
            )
        }

    def stale_combinations(
        self, combined: str, parts: Sequence[str], *, separator: str, limit: int = 5000
    ) -> list[tuple[str, str, tuple[str, ...]]]:
        """Responses with every signal of `parts` stored whose `combined` row is missing or was
        built from other levels (joined by `separator`): (item_id, model, the parts' levels), at
        most `limit`."""
        joins = " ".join(
            f"JOIN signals p{i} ON p{i}.item_id = r.item_id AND p{i}.model = r.model"
            f" AND p{i}.signal = ?"
            for i in range(len(parts))
        )
        levels = " || ? || ".join(f"p{i}.level" for i in range(len(parts)))
        separators = [separator] * (len(parts) - 1)
        rows = self._db.execute(
            f"SELECT r.item_id, r.model, {', '.join(f'p{i}.level' for i in range(len(parts)))}"
            f" FROM responses r {joins}"
            " LEFT JOIN signals c ON c.item_id = r.item_id AND c.model = r.model AND c.signal = ?"
            f" WHERE r.error IS NULL AND (c.level IS NULL OR c.level <> {levels})"
            " ORDER BY r.rowid LIMIT ?",
            [*parts, combined, *separators, limit],
        ).fetchall()
        return [(row[0], row[1], tuple(row[2:])) for row in rows]

    # -- reading tables -------------------------------------------------------------------------

    def frame(self, table: str) -> pl.DataFrame:
        """A whole table as a DataFrame (for export)."""
        if table not in _COLUMNS:
            raise InputError(f"unknown table '{table}'; the workspace has {', '.join(TABLES)}")
        schema = _COLUMNS[table]
        order = {"labels": "label_id", "runs": "run_id", "calls": "created_at"}.get(table, "rowid")
        cursor = self._db.execute(f"SELECT {', '.join(schema)} FROM {table} ORDER BY {order}")
        rows = cursor.fetchall()
        columns: dict[str, list[Any]] = {name: [] for name in schema}
        for row in rows:
            for name in schema:
                value = row[name]
                if schema[name] == pl.String and value is not None and not isinstance(value, str):
                    value = str(value)
                columns[name].append(value)
        return pl.DataFrame(columns, schema=schema)

    def response_texts(
        self, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[str, str]]:
        """The prompt and the response text of a few (item_id, model) pairs (the report's
        example responses); pairs without a stored response are left out."""
        out: dict[tuple[str, str], tuple[str, str]] = {}
        for item_id, model in dict.fromkeys(keys):
            row = self._db.execute(
                "SELECT i.prompt, r.response FROM responses r JOIN items i"
                " ON i.item_id = r.item_id WHERE r.item_id = ? AND r.model = ?",
                (item_id, model),
            ).fetchone()
            if row is not None:
                out[(item_id, model)] = (row[0], row[1] or "")
        return out

    def response_usage(self) -> pl.DataFrame:
        """Every successful response's tokens, latency and recorded cost, with its item's
        segment: `item_id, model, segment, input_tokens, output_tokens, latency_s, cost` (what
        cost and latency are measured from)."""
        schema = {
            "item_id": pl.String, "model": pl.String, "segment": pl.String,
            "input_tokens": pl.Int64, "output_tokens": pl.Int64, "latency_s": pl.Float64,
            "cost": pl.Float64,
        }  # fmt: skip
        cursor = self._db.execute(
            "SELECT r.item_id, r.model, i.segment, r.input_tokens, r.output_tokens, r.latency_s,"
            " r.cost FROM responses r JOIN items i ON i.item_id = r.item_id"
            " WHERE r.error IS NULL ORDER BY i.rowid, r.model"
        )
        return pl.DataFrame(cursor.fetchall(), schema=schema, orient="row")

    def signals_by_dimension(self) -> dict[str, list[str]]:
        """The stored signals of each dimension, by name."""
        out: dict[str, list[str]] = {}
        for dimension, signal in self._db.execute(
            "SELECT DISTINCT dimension, signal FROM signals ORDER BY dimension, signal"
        ):
            out.setdefault(dimension, []).append(signal)
        return out

    def signal_rows(self, dimension: str, signal: str) -> pl.DataFrame:
        """Every successful response's level of `signal` in `dimension`, with the item's segment
        and expected behaviour, in import order: `item_id, model, segment, expected_behaviour,
        dimension, level`."""
        columns = ("item_id", "model", "segment", "expected_behaviour", "dimension", "level")
        cursor = self._db.execute(
            "SELECT s.item_id, s.model, i.segment, i.expected_behaviour, s.dimension, s.level"
            " FROM signals s"
            " JOIN responses r ON r.item_id = s.item_id AND r.model = s.model"
            " JOIN items i ON i.item_id = s.item_id"
            " WHERE s.dimension = ? AND s.signal = ? AND r.error IS NULL"
            " ORDER BY i.rowid, s.model",
            (dimension, signal),
        )
        return pl.DataFrame(cursor.fetchall(), schema={c: pl.String for c in columns}, orient="row")


def _normalised(item: Item) -> Item:
    """The item as read back from the workspace (metadata through JSON)."""
    metadata = json.loads(json.dumps(dict(item.metadata), sort_keys=True))
    return Item(
        item_id=item.item_id,
        prompt=item.prompt,
        segment=item.segment,
        reference=item.reference,
        expected_behaviour=item.expected_behaviour,
        system=item.system,
        context=item.context,
        metadata=metadata,
    )


def _is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def _connect(path: Path, *, read_only: bool) -> sqlite3.Connection:
    if read_only:
        # `immutable`: SQLite reads without the -shm file it could not create beside it.
        uri = f"{path.resolve().as_uri()}?mode=ro&immutable=1"
        connection = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=30.0)
    else:
        connection = sqlite3.connect(path, isolation_level=None, timeout=30.0)
    connection.row_factory = sqlite3.Row
    if not read_only:
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = NORMAL")
    connection.execute("PRAGMA foreign_keys = ON")
    return connection


def open_workspace(path: str | Path, *, create: bool = False) -> Workspace:
    """Open (and upgrade) a workspace; with `create`, make it when it does not exist.

    A workspace that cannot be written (a read-only file or folder) is opened read-only: the
    commands that only read it work, and a write fails with a one-line error saying so.
    """
    path = Path(path)
    if path.is_dir():
        raise WorkspaceError(f"{path}: is a folder; `workspace:` names the SQLite file")
    if not path.exists() and not create:
        raise WorkspaceError(
            f"{path}: workspace not found; run `changeover init` or check `workspace:` in the study"
        )
    if create:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise WorkspaceError(f"{path}: cannot create its folder ({error.strerror})") from None
    read_only = False
    try:
        try:
            connection = _connect(path, read_only=False)
        except sqlite3.OperationalError as error:
            cannot_write = "readonly" in str(error) or "unable to open" in str(error)
            if not path.exists() or not cannot_write:
                raise
            connection, read_only = _connect(path, read_only=True), True
        workspace = Workspace(path, connection, read_only=read_only)
        workspace._migrate()
    except sqlite3.DatabaseError as error:
        if isinstance(error, sqlite3.OperationalError) and "unable to open" in str(error):
            raise WorkspaceError(f"{path}: cannot open the workspace ({error})") from None
        raise WorkspaceError(f"{path}: not a changeover workspace ({error})") from None
    return workspace
