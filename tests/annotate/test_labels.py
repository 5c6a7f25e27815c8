"""Labels: one per annotator, response and dimension; undo; tokens; agreement."""

from __future__ import annotations

import numpy as np
import pytest

from changeover.annotate import (
    add_annotator,
    agreement,
    authenticate,
    list_annotators,
    read_labels,
    record_labels,
    revoke_annotator,
    undo_last,
)
from changeover.annotate.agreement import cohen_kappa, krippendorff_alpha
from changeover.errors import InputError
from changeover.records import LabelRecord
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


def test_cohen_kappa_matches_a_worked_example() -> None:
    # 50 pairs: 20 yes/yes, 5 yes/no, 10 no/yes, 15 no/no: p_o = 0.7, p_e = 0.5, kappa = 0.4
    first = np.array([1] * 25 + [0] * 25)
    second = np.array([1] * 20 + [0] * 5 + [1] * 10 + [0] * 15)
    assert cohen_kappa(first, second) == pytest.approx(0.4)
    assert cohen_kappa(np.ones(5), np.ones(5)) is None  # every label the same


def test_krippendorff_alpha_matches_krippendorff_2011() -> None:
    # Krippendorff (2011), binary data, two observers, ten units: alpha = 0.095
    a = [0, 1, 0, 0, 0, 0, 0, 0, 1, 0]
    b = [1, 1, 1, 0, 0, 1, 0, 0, 0, 0]
    assert krippendorff_alpha(np.array([a, b], dtype=float)) == pytest.approx(0.095, abs=5e-4)


def test_agreement_per_dimension_by_simulation() -> None:
    """Two annotators who each flip a known truth with probability e agree with kappa close to
    (1 - 2e)^2 when the truth is balanced."""
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 2, size=4000)
    labels = []
    for annotator in ("a", "b"):
        noisy = np.where(rng.random(truth.size) < 0.1, 1 - truth, truth)
        labels += [
            LabelRecord(f"q{i}", "m", "refusal", annotator, int(v), time=f"t{annotator}")
            for i, v in enumerate(noisy)
        ]
    labels.append(LabelRecord("q0", "m", "style", "a", 1))  # style: nobody doubled
    (refusal, style) = agreement(labels)
    assert refusal.dimension == "refusal" and refusal.responses == 4000
    assert refusal.cohen_kappa == pytest.approx(0.64, abs=0.04)
    assert refusal.krippendorff_alpha == pytest.approx(0.64, abs=0.04)
    assert style.responses == 0 and style.cohen_kappa is None and style.krippendorff_alpha is None
