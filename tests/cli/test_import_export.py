"""`changeover import`, `generate` and `export` end to end (exit status, one-line errors, nothing
half-written)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from tests.fakes.llm_server import FakeLLMServer
from tests.fakes.studies import run_cli as run
from tests.fakes.studies import write_items, write_study


@pytest.fixture
def server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as running:
        yield running


def _study(tmp_path: Path, server: FakeLLMServer) -> Path:
    settings = {
        "provider": "openai",
        "model": "gpt-test",
        "base_url": server.openai_url,
        "api_key_env": "CHANGEOVER_CLI_KEY",
        "max_tokens": 16,
        "retry_wait": 0.01,
        "max_retries": 0,
        "price_input_per_million": 10,
        "price_output_per_million": 20,
    }
    return write_study(tmp_path, {"legacy": settings, "cand": settings | {"model": "gpt-new"}})


def test_import_generate_export(
    tmp_path: Path,
    server: FakeLLMServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    study = _study(tmp_path, server)
    items = write_items(tmp_path / "items.jsonl", ["hello", "!script:500 down", "bye"])
    monkeypatch.chdir(tmp_path)  # --study defaults to ./study.yaml
    assert run(["import", "items", str(items)], monkeypatch) == 0
    assert "imported 3 items" in capsys.readouterr().out

    assert run(["generate"], monkeypatch) == 2  # the key's variable is not set
    err = capsys.readouterr().err
    assert "CHANGEOVER_CLI_KEY" in err and "is not set" in err
    assert len(server.log) == 0

    monkeypatch.setenv("CHANGEOVER_CLI_KEY", "sk-cli-secret")
    assert run(["generate", "--models", "legacy", "--limit", "2"], monkeypatch) == 0
    out = capsys.readouterr().out
    assert "legacy" in out and "server 1" in out and "--retry-failed" in out
    assert run(["generate", "--study", str(study)], monkeypatch) == 0
    out = capsys.readouterr().out
    assert len(server.log) == 2 + 4  # legacy: the third item; cand: all three
    assert run(["export", "responses", "--out", "r.csv"], monkeypatch) == 0
    responses = pl.read_csv(tmp_path / "r.csv")
    assert responses.columns[:4] == ["item_id", "model", "response", "error"]
    assert responses.height == 6
    assert responses.filter(pl.col("error").is_not_null()).height == 2
    for path in tmp_path.iterdir():
        assert b"sk-cli-secret" not in path.read_bytes(), path

    assert run(["generate", "--models", "gpt-5"], monkeypatch) == 2
    assert "unknown model 'gpt-5'" in capsys.readouterr().err


def test_bad_import_exits_2_with_one_line_and_imports_nothing(
    tmp_path: Path,
    server: FakeLLMServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    study = _study(tmp_path, server)
    bad = tmp_path / "items.csv"
    bad.write_text("item_id,prompt,segment\nq1,hello,na\nq2,hi,atlantis\n")
    assert run(["import", "items", str(bad), "--study", str(study)], monkeypatch) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert f"{bad}: line 3: column segment: unknown segment 'atlantis'" in err
    assert (
        run(
            ["export", "items", "--out", str(tmp_path / "i.csv"), "--study", str(study)],
            monkeypatch,
        )
        == 0
    )
    assert pl.read_csv(tmp_path / "i.csv").height == 0
    assert run(["import", "labels", str(bad), "--study", str(study)], monkeypatch) == 2
    assert "No such command 'labels'" in capsys.readouterr().err
