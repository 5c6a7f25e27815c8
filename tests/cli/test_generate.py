"""`changeover generate --dry-run`, and what a run says of its spend and its budget."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from changeover.workspace import open_workspace
from tests.fakes.llm_server import FakeLLMServer
from tests.fakes.studies import run_cli as run
from tests.fakes.studies import study_with_items


@pytest.fixture
def server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as running:
        yield running


def _model(server: FakeLLMServer, **extra: object) -> dict[str, object]:
    return {
        "provider": "openai", "model": "m", "base_url": server.openai_url, "max_tokens": 64,
        "price_input_per_million": 1000.0, "price_output_per_million": 4000.0, **extra,
    }  # fmt: skip


def _said(capsys: pytest.CaptureFixture[str]) -> str:
    return " ".join(capsys.readouterr().out.split())


def test_a_dry_run_says_what_would_be_sent_and_sends_nothing(
    tmp_path: Path,
    server: FakeLLMServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    batch = {"batch": True, "batch_poll_interval": 0.02}
    models = {"legacy": _model(server), "cand": _model(server, model="n", **batch)}
    prompts = [f"question {i}: " + "word " * 20 for i in range(12)]
    study, workspace = study_with_items(tmp_path, models, prompts)
    workspace.close()
    monkeypatch.chdir(tmp_path)
    with (tmp_path / "study.yaml").open("a") as study_file:
        study_file.write("budget: {per_run: 1.00, per_study: 50}\n")
    capsys.readouterr()
    assert run(["generate", "--dry-run"], monkeypatch) == 0
    out = _said(capsys)
    assert "generate --dry-run: what the run would send" in out
    assert "legacy" in out and "cand" in out and "total: $5.18 for 24 requests" in out
    assert "nothing was sent or written" in out
    assert "legacy: no recorded usage: 4 characters per input token, output at max_tokens" in out
    assert "cand: sent through the batch API, at the batch price" in out
    assert "budget: per run $1.00, per study $50.00 ($0.0000 spent so far): the estimate" in out
    assert "exceeds budget.per_run ($1.00): the run would stop part way" in out
    assert server.log == [] and server.events == []
    with open_workspace(tmp_path / "changeover.db") as workspace:
        assert workspace.frame("runs").filter(kind="generate").height == 0

    assert run(["generate"], monkeypatch) == 0
    out = _said(capsys)
    assert "cand: 12 answers through the batch API cost $0.8640, saving $0.8640 (50%)" in out
    assert "spent this run: $0.8640 (cand generation $0.8640); the study has spent $0.8640" in out
    assert "stopped by the budget — budget.per_run ($1.00) would be exceeded" in out
    assert out.split(" next: ")[0].endswith("requests left")
