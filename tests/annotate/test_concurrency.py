"""Must show 2: 20 concurrent clients post 1,000 labels in total through the HTTP API of the
real server (`changeover annotate` in a subprocess); none is lost, none duplicated."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from changeover.annotate import QueueEntry, add_annotator, add_to_queue, read_labels
from changeover.annotate.queue import resolve_ref
from changeover.workspace import open_workspace
from tests.annotate.helpers import MODELS, RunningApp, make_study

CLIENTS = 20
RESPONSES = 50  # every client labels every response once: 20 x 50 = 1,000 labels


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[RunningApp, dict[str, str], Path]]:
    study, workspace = make_study(tmp_path / "study", num_items=20)
    tokens = {f"annotator{i:02d}": add_annotator(workspace, f"annotator{i:02d}")
              for i in range(CLIENTS)}  # fmt: skip
    responses = [(f"q{i:04d}", model) for i in range(20) for model in MODELS][:RESPONSES]
    add_to_queue(
        workspace,
        [QueueEntry(item, model, "refusal", annotators=CLIENTS) for item, model in responses],
        source="test",
    )
    workspace.close()
    running = RunningApp(tmp_path / "study" / "study.yaml")
    try:
        yield running, tokens, study.resolve(study.workspace)
    finally:
        running.stop()


def _label(annotator: str, ref: str) -> int:
    return hashlib.sha256(f"{annotator}/{ref}".encode()).digest()[0] % 2


def test_twenty_clients_post_a_thousand_labels(
    served: tuple[RunningApp, dict[str, str], Path],
) -> None:
    app, tokens, workspace_path = served
    start = threading.Barrier(CLIENTS)

    def client(annotator: str) -> dict[str, int]:
        posted: dict[str, int] = {}
        headers = {"Authorization": f"Bearer {tokens[annotator]}"}
        with httpx.Client(base_url=app.url, headers=headers, timeout=30.0) as http:
            start.wait()
            while True:
                answer = http.get("/api/next")
                answer.raise_for_status()
                screen = answer.json().get("screen")
                if screen is None:
                    return posted
                ref = screen["ref"]
                assert ref not in posted, "a labelled response was served again"
                body = {"ref": ref, "labels": {"refusal": _label(annotator, ref)}}
                stored = http.post("/api/labels", json=body)
                assert stored.status_code == 200, stored.text
                assert stored.json() == {"added": 1, "changed": 0, "unchanged": 0}
                if len(posted) % 7 == 0:  # a retried request stores nothing twice
                    again = http.post("/api/labels", json=body)
                    assert again.json() == {"added": 0, "changed": 0, "unchanged": 1}
                posted[ref] = body["labels"]["refusal"]

    with ThreadPoolExecutor(CLIENTS) as pool:
        results = dict(zip(tokens, pool.map(client, tokens), strict=True))

    expected = {}
    with open_workspace(workspace_path) as workspace:
        for annotator, posted in results.items():
            assert len(posted) == RESPONSES
            for ref, label in posted.items():
                resolved = resolve_ref(workspace, ref)
                assert resolved is not None
                expected[(resolved[0], resolved[1], annotator)] = label
        stored = read_labels(workspace)
    assert len(expected) == CLIENTS * RESPONSES == 1000
    assert len(stored) == 1000  # none duplicated
    assert {(r.item_id, r.model, r.annotator): r.label for r in stored} == expected  # none lost
    assert {r.dimension for r in stored} == {"refusal"}
