"""Labels: one per annotator, response and dimension; undo; tokens."""

from __future__ import annotations

import pytest

from changeover.annotate import (
    add_annotator,
    authenticate,
    list_annotators,
    read_labels,
    record_labels,
    revoke_annotator,
    undo_last,
)
from changeover.errors import InputError
from changeover.study import Study
from changeover.workspace import Workspace

Labelling = tuple[Study, Workspace]


def test_record_labels_stores_once_and_replaces_a_changed_answer(labelling: Labelling) -> None:
    _, workspace = labelling
    args = {"annotator": "alice", "item_id": "q0001", "model": "legacy"}
    assert record_labels(workspace, **args, labels={"correctness": 1, "style": 0}).added == 2
    assert record_labels(workspace, **args, labels={"correctness": 1}).unchanged == 1
    assert record_labels(workspace, **args, labels={"correctness": 0}).changed == 1
    stored = {(r.dimension, r.label) for r in read_labels(workspace)}
    assert stored == {("correctness", 0), ("style", 0)}
    with pytest.raises(InputError, match="must be 0 or 1"):
        record_labels(workspace, **args, labels={"refusal": 2})


def test_undo_removes_the_last_screen_then_the_one_before(labelling: Labelling) -> None:
    _, workspace = labelling
    record_labels(workspace, annotator="a", item_id="q0001", model="legacy",
                  labels={"correctness": 1})  # fmt: skip
    record_labels(workspace, annotator="a", item_id="q0002", model="legacy",
                  labels={"correctness": 0, "style": 1})  # fmt: skip
    record_labels(workspace, annotator="b", item_id="q0003", model="legacy",
                  labels={"style": 1})  # fmt: skip
    undone = undo_last(workspace, "a")
    assert undone is not None and undone.item_id == "q0002"
    assert set(undone.dimensions) == {"correctness", "style"}
    assert {(r.annotator, r.item_id) for r in read_labels(workspace)} == {
        ("a", "q0001"),
        ("b", "q0003"),
    }
    assert undo_last(workspace, "a") is not None
    assert undo_last(workspace, "a") is None
    assert [r.annotator for r in read_labels(workspace)] == ["b"]


def test_tokens_are_hashed_checked_and_revocable(labelling: Labelling) -> None:
    _, workspace = labelling
    token = add_annotator(workspace, "alice")
    assert len(token) >= 40
    assert authenticate(workspace, token) == "alice"
    assert authenticate(workspace, token + "x") is None
    assert authenticate(workspace, "") is None
    with workspace.transaction() as db:
        stored = [tuple(row) for row in db.execute("SELECT * FROM annotators")]
    assert token not in repr(stored)  # only the hash
    with pytest.raises(InputError, match="already exists"):
        add_annotator(workspace, "alice")
    with pytest.raises(InputError, match="annotator name"):
        add_annotator(workspace, "bad name")
    revoke_annotator(workspace, "alice")
    assert authenticate(workspace, token) is None
    new = add_annotator(workspace, "alice")  # a revoked annotator can get a new token
    assert authenticate(workspace, new) == "alice"
    assert [a.name for a in list_annotators(workspace)] == ["alice"]
