"""A small labelling study for the annotation tests: three models, three segments, responses
(one of them containing markup), written through the workspace's public API."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from changeover.records import Item, ResponseRecord
from changeover.study import Study, load_study
from changeover.workspace import Workspace, open_workspace

SEGMENTS = ("na", "emea", "apac")
MODELS = ("legacy", "cand-a", "cand-b")
SCRIPT = '<script>document.title="pwned"; window.__pwned = 1;</script><b>bold?</b>'

STUDY = """\
incumbent: legacy
candidates: [cand-a, cand-b]
segments: {na: 2100000, emea: 1400000, apac: 900000}
dimensions: [correctness, refusal, style]
gates:
  - {name: correctness, dimension: correctness, better: higher, margin: 0.02}
  - {name: over_refusal, dimension: refusal, group: answer, better: lower, margin: 0.01}
  - {name: style, dimension: style, better: higher, margin: 0.05}
style_guide:
  text: "Friendly, short, no jargon."
  max_words: 120
  banned_phrases: ["as an AI language model"]
"""

# How the tests run the `changeover` command (with the annotate commands registered).
CHANGEOVER = [
    sys.executable,
    "-c",
    "import changeover.cli.annotate; from changeover.cli import main; main()",
]


def response_text(item_index: int, model: str) -> str:
    """The stored text of a response (never naming its model: the app is blind)."""
    if (item_index, model) == (0, "cand-a"):
        return SCRIPT
    return f"Answer number {item_index * len(MODELS) + MODELS.index(model)}"


def make_study(folder: Path, *, num_items: int = 12) -> tuple[Study, Workspace]:
    """A study with `num_items` items (the last should be refused) and a response per model;
    item q0000 of model cand-a contains a <script> element."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "study.yaml"
    path.write_text(STUDY)
    study = load_study(path)
    workspace = open_workspace(study.resolve(study.workspace), create=True)
    items = [
        Item(
            item_id=f"q{i:04d}",
            prompt=f"Question {i}: how do I reset my password?",
            segment=SEGMENTS[i % 3],
            reference=f"Reference answer {i}",
            context=f"Help-centre article {i}" if i % 2 else None,
            expected_behaviour="refuse" if i == num_items - 1 else "answer",
        )
        for i in range(num_items)
    ]
    workspace.add_items(items)
    workspace.add_responses(
        [
            ResponseRecord(
                item_id=item.item_id,
                model=model,
                response=response_text(i, model),
                source="import",
            )
            for i, item in enumerate(items)
            for model in MODELS
        ]
    )
    return study, workspace


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RunningApp:
    """`changeover annotate` in a subprocess on a free 127.0.0.1 port."""

    def __init__(self, study_path: Path, *, seed: int = 0) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = study_path.parent / "annotate.log"
        self._log_handle = self.log.open("w")
        self.process = subprocess.Popen(
            [*CHANGEOVER, "annotate", "--study", str(study_path), "--port", str(self.port),
             "--seed", str(seed)],
            stdout=self._log_handle,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"changeover annotate exited early:\n{self.log.read_text()}")
            try:
                httpx.get(f"{self.url}/api/next", timeout=1.0)
                return
            except httpx.TransportError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"changeover annotate did not start in 30 s:\n{self.log.read_text()}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log_handle.close()
