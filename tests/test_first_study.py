"""A first study, end to end, as a new user runs it: init → import items → generate against local
servers → score → run (a preview) → next → annotators add → label through the app's HTTP API →
run (a verdict) → status. Every step ends by naming the command to run next, and the test
follows what it says."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from changeover.annotate.labels import read_labels
from changeover.workspace import open_workspace
from tests.annotate.helpers import RunningApp
from tests.fakes.llm_server import FakeLLMServer
from tests.fakes.studies import run_cli

SEGMENTS = ("na", "emea", "apac")
REFUSAL = "I'm sorry, but I can't help with that request."


def labelled_pairs(folder: Path) -> int:
    with open_workspace(folder / "changeover.db") as workspace:
        return len({(r.item_id, r.model, r.dimension) for r in read_labels(workspace)})


def _number(prompt: str) -> int:
    match = re.search(r"item (\d+)", prompt)
    assert match is not None, prompt
    return int(match.group(1))


def _is_refuse_item(number: int) -> bool:
    return number % 5 == 4


def _reply(wrong_every: int) -> Callable[[str, str], str]:
    """A model that refuses the items that should be refused and answers the others with the
    reference, except every `wrong_every`-th, which it gets wrong."""

    def reply(prompt: str, system: str) -> str:
        number = _number(prompt)
        if _is_refuse_item(number):
            return REFUSAL
        if number % wrong_every == 0:
            return "Opening hours differ by branch; please check your local store's page."
        return f"The shop opens at {number} o'clock on weekdays."

    return reply


def _human(screen: dict[str, Any]) -> dict[str, int]:
    """What a careful reviewer answers, read from the screen (the app is blind to models)."""
    response = str(screen["response"])
    reference = str(screen["reference"] or "")
    refused = response == REFUSAL
    truth = {
        "correctness": int(not refused and reference.split(" at ")[1] in response),
        "refusal": int(refused),
        "style": 1,
    }
    return {dimension: truth[dimension] for dimension in screen["dimensions"]}


@pytest.fixture
def servers() -> Iterator[tuple[FakeLLMServer, FakeLLMServer]]:
    with (
        FakeLLMServer(reply=_reply(wrong_every=7)) as legacy,
        FakeLLMServer(reply=_reply(wrong_every=9)) as candidate,
    ):
        yield legacy, candidate


def _step(
    args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[str, str]:
    """Run one command; it must succeed and its output end with the next step (a sentence that
    starts with "next:", wrapped or not): the output on one line, and that sentence."""
    status = run_cli(args, monkeypatch)
    out, err = capsys.readouterr()
    assert status == 0, f"changeover {' '.join(args)} exited {status}:\n{out}{err}"
    lines = out.rstrip().splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("next: ")]
    assert starts, f"changeover {' '.join(args)} did not name the next step:\n{out}"
    said = " ".join(" ".join(lines[starts[-1] :]).split())
    assert "`changeover " in said
    return " ".join(out.split()), said


def test_a_first_study_from_init_to_a_verdict_each_step_naming_the_next(
    tmp_path: Path,
    servers: tuple[FakeLLMServer, FakeLLMServer],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    legacy, candidate = servers
    folder = tmp_path / "migration"
    monkeypatch.setenv("WALKTHROUGH_KEY", "sk-walkthrough")

    _, said = _step(["init", str(folder)], monkeypatch, capsys)
    assert "`changeover import items FILE`" in said
    monkeypatch.chdir(folder)

    # The user points the study's two models at their endpoints.
    study = yaml.safe_load((folder / "study.yaml").read_text())
    for name, server in (("legacy", legacy), ("cand-a", candidate)):
        study["models"][name] = {
            "provider": "openai", "model": f"{name}-model", "base_url": server.openai_url,
            "api_key_env": "WALKTHROUGH_KEY", "max_tokens": 64,
            "price_input_per_million": 2.0, "price_output_per_million": 8.0,
        }  # fmt: skip
    (folder / "study.yaml").write_text(yaml.safe_dump(study, sort_keys=False))

    items = folder / "items.jsonl"
    with items.open("w") as handle:
        for i in range(60):
            refuse = _is_refuse_item(i)
            record = {
                "item_id": f"q{i:03d}",
                "prompt": f"When does the shop of item {i} open?"
                + (" Also, how do I pick its lock?" if refuse else ""),
                "segment": SEGMENTS[i % 3],
                "expected_behaviour": "refuse" if refuse else "answer",
                **({} if refuse else {"reference": f"The shop opens at {i} o'clock on weekdays."}),
            }
            handle.write(json.dumps(record) + "\n")
    _, said = _step(["import", "items", str(items)], monkeypatch, capsys)
    assert "`changeover generate` (120 responses still to get)" in said

    _, said = _step(["generate"], monkeypatch, capsys)
    assert "`changeover score`" in said
    assert len(legacy.log) == 60 and len(candidate.log) == 60
    assert {request.authorization for request in legacy.log} == {"Bearer sk-walkthrough"}

    _, said = _step(["score"], monkeypatch, capsys)
    assert "`changeover run` writes a preview report" in said

    _, said = _step(["run"], monkeypatch, capsys)
    assert (folder / "report.html").exists()
    assert "`changeover next --budget 100` queues a stratified random start" in said

    _, said = _step(["next", "--budget", "100"], monkeypatch, capsys)
    assert "`changeover annotators add NAME`" in said and "`changeover annotate`" in said

    run_cli(["annotators", "add", "dana"], monkeypatch)
    token = capsys.readouterr().out.strip().splitlines()[-1]  # the last line, for scripts
    assert re.fullmatch(r"[A-Za-z0-9_\-]{20,}", token), token

    app = RunningApp(folder / "study.yaml")
    try:
        headers = {"Authorization": f"Bearer {token}"}
        labelled = 0
        while True:
            body = httpx.get(f"{app.url}/api/next", headers=headers, timeout=10).json()
            if "screen" not in body:
                break
            screen = body["screen"]
            answer = {"ref": screen["ref"], "labels": _human(screen)}
            stored = httpx.post(f"{app.url}/api/labels", headers=headers, json=answer, timeout=10)
            assert stored.status_code == 200, stored.text
            labelled += 1
        assert body["remaining"] == 0 and labelled >= 30
    finally:
        app.stop()

    _, said = _step(["run", "--format", "json", "--out", "report.json"], monkeypatch, capsys)
    report = json.loads((folder / "report.json").read_text())
    verdict = report["result"]["candidates"]["cand-a"]["verdict"]
    spent = {(s["model"], s["purpose"]): s for s in report["spend"]}
    assert set(spent) == {("legacy", "generation"), ("cand-a", "generation")}
    assert all(s["requests"] == 60 and s["cost"] > 0 for s in spent.values())
    # Every response passes the style check: the report says that signal tells nothing apart.
    assert any(w.startswith("house_style: every scored response is at level 'pass'")
               for w in report["warnings"])  # fmt: skip
    assert verdict in {"ready", "not ready", "undecided"}
    if verdict == "undecided":
        assert "`changeover next --budget 100` queues the labels that would settle" in said
    else:
        assert "`changeover next --confirm --budget 100`" in said

    # The fit is current, so status names the same next step as run, without sampling.
    shown, status_said = _step(["status"], monkeypatch, capsys)
    assert status_said == said
    assert "items: 60 (na 20, emea 20, apac 20)" in shown
    assert f"labels: {labelled_pairs(folder)} labelled (response, dimension) pairs" in shown
    assert f"last fit: {report['created']}: cand-a {verdict}" in shown
