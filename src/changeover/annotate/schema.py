"""The annotation tables, kept beside the workspace's own until its owner folds them into the
workspace migrations (`CREATE TABLE IF NOT EXISTS`, so creating them twice is harmless).

    annotators    who may label: a name and the SHA-256 of their token (never the token)
    label_queue   what to label: one row per (response, dimension) with a priority, how many
                  annotators should label it, and `ref`, the opaque id annotators see instead of
                  the item and model (the same for every dimension of a response)
    label_skips   responses an annotator skipped: served again only after everything else
    label_claims  responses on an annotator's screen right now: not served to others (unless
                  more annotators are wanted) until labelled, skipped or expired
"""

from __future__ import annotations

import weakref

from changeover.workspace import Workspace

__all__ = ["ANNOTATION_TABLES", "ensure_tables"]

ANNOTATION_TABLES = """
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
"""

_ready: weakref.WeakSet[Workspace] = weakref.WeakSet()


def ensure_tables(workspace: Workspace) -> None:
    """Create the annotation tables on first use of `workspace` (one transaction)."""
    if workspace in _ready:
        return
    with workspace.transaction() as db:
        for statement in ANNOTATION_TABLES.split(";"):
            if statement.strip():
                db.execute(statement)
    _ready.add(workspace)
