"""Annotator tokens: `add_annotator` returns a fresh token once; the workspace keeps only its
SHA-256. Tokens carry 256 random bits, so a plain (unsalted, fast) hash is as safe as a slow
password hash would be: there is nothing to guess."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from changeover.errors import InputError
from changeover.workspace import Workspace, now

__all__ = [
    "Annotator",
    "add_annotator",
    "authenticate",
    "hash_token",
    "list_annotators",
    "revoke_annotator",
]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,63}$")


@dataclass(frozen=True)
class Annotator:
    name: str
    created_at: str
    revoked_at: str | None

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def add_annotator(workspace: Workspace, name: str) -> str:
    """Register `name` and return their token (shown once; only its hash is stored)."""
    if not _NAME.match(name):
        raise InputError(
            f"annotator name '{name}': use 1-64 letters, digits or . _ @ + - (starting with a "
            "letter or digit)"
        )
    token = secrets.token_urlsafe(32)
    with workspace.transaction() as db:
        row = db.execute("SELECT revoked_at FROM annotators WHERE name = ?", (name,)).fetchone()
        if row is not None and row["revoked_at"] is None:
            raise InputError(
                f"annotator '{name}' already exists; `changeover annotators revoke {name}` "
                "first to issue a new token"
            )
        db.execute(
            "INSERT OR REPLACE INTO annotators (name, token_hash, created_at, revoked_at)"
            " VALUES (?, ?, ?, NULL)",
            (name, hash_token(token), now()),
        )
    return token


def revoke_annotator(workspace: Workspace, name: str) -> None:
    """Make `name`'s token invalid at once; their labels stay."""
    with workspace.transaction() as db:
        cursor = db.execute(
            "UPDATE annotators SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
            (now(), name),
        )
    if cursor.rowcount == 0:
        raise InputError(f"no active annotator '{name}'; see `changeover annotators list`")


def list_annotators(workspace: Workspace) -> list[Annotator]:
    with workspace.transaction() as db:
        rows = db.execute(
            "SELECT name, created_at, revoked_at FROM annotators ORDER BY created_at, name"
        ).fetchall()
    return [Annotator(row["name"], row["created_at"], row["revoked_at"]) for row in rows]


def authenticate(workspace: Workspace, token: str | None) -> str | None:
    """The name of the active annotator holding `token`, or None."""
    if not token:
        return None
    with workspace.transaction() as db:
        row = db.execute(
            "SELECT name FROM annotators WHERE token_hash = ? AND revoked_at IS NULL",
            (hash_token(token),),
        ).fetchone()
    return None if row is None else str(row["name"])
