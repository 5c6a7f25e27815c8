"""The label queue: filling it (random start, CSV), per-annotator order, second annotators."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from changeover.annotate import (
    QueueEntry,
    add_to_queue,
    clear_queue,
    next_screen,
    queue_status,
    random_start,
    read_queue_csv,
    record_labels,
    skip_response,
)
from changeover.annotate.queue import _open_refs, progress, resolve_ref, stratified_sample
from changeover.errors import InputError
from changeover.study import Study
from changeover.workspace import Workspace

Labelling = tuple[Study, Workspace]


def test_stratified_sample_spreads_across_cells_and_is_seeded() -> None:
    cells = {(m, s): [(f"{m}{s}{i}", m) for i in range(10)] for m in "ab" for s in "xyz"}
    chosen = stratified_sample(cells, 12, seed=3)
    assert len(chosen) == len(set(chosen)) == 12
    per_cell = Counter((key[1], key[0][1]) for key in chosen)
    assert set(per_cell.values()) == {2}  # 12 draws over 6 cells: two each
    assert stratified_sample(cells, 12, seed=3) == chosen
    assert stratified_sample(cells, 12, seed=4) != chosen
    assert len(stratified_sample(cells, 1000, seed=0)) == 60  # no more than there are


def test_random_start_covers_every_model_and_segment(labelling: Labelling) -> None:
    study, workspace = labelling
    entries = random_start(
        workspace, study, num_responses=9, dimensions=["correctness", "refusal"], overlap=3
    )
    responses = {(e.item_id, e.model) for e in entries}
    assert len(responses) == 9
    assert {model for _, model in responses} == set(study.model_names)
    doubled = {(e.item_id, e.model) for e in entries if e.annotators == 2}
    assert len(doubled) == 3
    # correctness is never queued for a should-refuse item (q0011)
    assert not [e for e in entries if e.item_id == "q0011" and e.dimension == "correctness"]


def test_add_to_queue_is_idempotent_and_keeps_the_higher_priority(labelling: Labelling) -> None:
    _, workspace = labelling
    entry = QueueEntry("q0001", "legacy", "correctness", priority=1.0)
    assert add_to_queue(workspace, [entry], source="t").added == 1
    assert add_to_queue(workspace, [entry], source="t").unchanged == 1
    raised = QueueEntry("q0001", "legacy", "correctness", priority=5.0, annotators=2)
    assert add_to_queue(workspace, [raised], source="t").updated == 1
    style = QueueEntry("q0001", "legacy", "style")
    add_to_queue(workspace, [style], source="t")
    ref_a = resolve_ref(workspace, next_screen(workspace, "ann").ref)  # type: ignore[union-attr]
    assert ref_a == ("q0001", "legacy", ["correctness", "style"])  # one screen, one ref
    assert queue_status(workspace).by_dimension == {"correctness": (1, 1), "style": (1, 1)}
    assert clear_queue(workspace, source="t") == 2


def test_add_to_queue_rejects_unknown_responses_all_or_nothing(labelling: Labelling) -> None:
    _, workspace = labelling
    good = QueueEntry("q0001", "legacy", "correctness")
    bad = QueueEntry("q9999", "legacy", "correctness")
    with pytest.raises(InputError, match="q9999.*no response"):
        add_to_queue(workspace, [good, bad], source="t")
    assert queue_status(workspace).entries == 0


def test_order_is_random_per_annotator_stable_and_skips_go_last(labelling: Labelling) -> None:
    study, workspace = labelling
    entries = random_start(workspace, study, num_responses=12, dimensions=["refusal"])
    add_to_queue(workspace, entries, source="random")

    def order(annotator: str) -> list[str]:
        return [ref for ref, *_ in _open_refs(workspace, annotator, 0)]

    alice, bob = order("alice"), order("bob")
    assert sorted(alice) == sorted(bob) and alice != bob
    assert order("alice") == alice  # stable across requests
    first = resolve_ref(workspace, alice[0])
    assert first is not None
    skip_response(workspace, "alice", first[0], first[1])
    assert order("alice") == [*alice[1:], alice[0]]


def test_second_annotator_is_served_until_enough_labels(labelling: Labelling) -> None:
    _, workspace = labelling
    add_to_queue(
        workspace,
        [
            QueueEntry("q0001", "legacy", "refusal", annotators=2),
            QueueEntry("q0002", "legacy", "refusal"),
        ],
        source="t",
    )
    for annotator in ("alice", "bob"):
        while (screen := next_screen(workspace, annotator)) is not None:
            item_id, model, _ = resolve_ref(workspace, screen.ref)  # type: ignore[misc]
            record_labels(
                workspace, annotator=annotator, item_id=item_id, model=model,
                labels={"refusal": 0},
            )  # fmt: skip
    assert progress(workspace, "alice").labelled == 2
    assert progress(workspace, "bob").labelled == 1  # q0002 wanted one annotator only
    assert next_screen(workspace, "carol") is None
    assert queue_status(workspace).open_entries == 0


def test_read_queue_csv_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "queue.csv"
    path.write_text("item_id,model,priority\nq1,legacy,2\nq2,cand-a,\n")
    entries = read_queue_csv(path, dimensions=["correctness", "style"])
    assert [(e.item_id, e.dimension, e.priority) for e in entries] == [
        ("q1", "correctness", 2.0), ("q1", "style", 2.0),
        ("q2", "correctness", 0.0), ("q2", "style", 0.0),
    ]  # fmt: skip
    path.write_text("item_id,model,priority\nq1,legacy,2\nq2,cand-a,high\n")
    with pytest.raises(InputError, match=r"queue.csv: line 3: column priority: 'high'"):
        read_queue_csv(path, dimensions=["correctness"])
    path.write_text("item_id,dimension\nq1,style\n")
    with pytest.raises(InputError, match=r"line 1: missing column 'model'"):
        read_queue_csv(path, dimensions=["correctness"])
    path.write_text('item_id,model,dimension\nq1,legacy,style\n"q1",legacy,style\n')
    with pytest.raises(InputError, match=r"line 3: .* queued twice \(first at line 2\)"):
        read_queue_csv(path, dimensions=[])


def test_a_response_on_screen_is_not_served_to_a_second_annotator(labelling: Labelling) -> None:
    _, workspace = labelling
    add_to_queue(
        workspace,
        [QueueEntry("q0001", "legacy", "refusal"), QueueEntry("q0002", "legacy", "refusal")],
        source="t",
    )
    alice = next_screen(workspace, "alice")
    bob = next_screen(workspace, "bob")
    assert alice is not None and bob is not None and alice.ref != bob.ref
    assert next_screen(workspace, "carol") is None  # both wanted one label, both on screen
    assert next_screen(workspace, "alice") == alice  # a reload shows the same response
    skipped = resolve_ref(workspace, alice.ref)
    assert skipped is not None
    skip_response(workspace, "alice", skipped[0], skipped[1])  # a skip releases the claim
    carol = next_screen(workspace, "carol", claim_seconds=0.0)  # and a claim expires
    assert carol is not None and carol.ref == alice.ref
    assert next_screen(workspace, "dave") == carol
