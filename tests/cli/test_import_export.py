"""`changeover import`, `generate` and `export` end to end (exit status, one-line errors, nothing
half-written)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from changeover.workspace import open_workspace
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


PRODUCTION_STUDY = """\
incumbent: legacy
candidates: [cand]
# Traffic per region, to be replaced by the log's shares.
segments: {na: 1, emea: 1}   # placeholder weights
decision: {probability: 0.95}
"""


def _production_log(path: Path, n: int = 3000) -> Path:
    regions = ["na", "na", "na", "emea", "emea", "apac"]
    pl.DataFrame(
        {
            "request_id": [f"r{i:05d}" for i in range(n)],
            "region": [regions[i % 6] for i in range(n)],
            "user_query": [f"How do I do thing {i}?" for i in range(n)],
            "bot_answer": [f"Like this: step {i}." for i in range(n)],
            "latency_ms": [i % 700 for i in range(n)],
        }
    ).write_parquet(path)
    return path


def test_a_production_log_is_sampled_mapped_and_weighted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    study = tmp_path / "study.yaml"
    study.write_text(PRODUCTION_STUDY)
    log = _production_log(tmp_path / "log.parquet")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")
    mapping = ["--map", "item_id=request_id", "--map", "segment=region"]
    sample = ["--sample", "90", "--by", "segment", "--seed", "4"]
    items = ["import", "items", str(log), *mapping, "--map", "prompt=user_query", *sample]
    # apac is not a segment of the study yet.
    assert run(items, monkeypatch) == 2
    err = capsys.readouterr().err
    assert "row " in err and "column region (mapped to segment): unknown segment 'apac'" in err
    assert run([*items, "--write-weights"], monkeypatch) == 0
    out = capsys.readouterr().out
    assert "imported 90 items" in out and "sampled 90 of 3,000 rows by segment" in out
    assert (
        "traffic weights written into study.yaml: segments: {na: 1500, emea: 1000, apac: 500}"
        in out
    )
    text = study.read_text()
    assert "# Traffic per region" in text and "# placeholder weights" in text
    assert '{"na": 1500, "emea": 1000, "apac": 500}' in text
    with open_workspace(tmp_path / "changeover.db") as workspace:
        stored = workspace.frame("items")
    assert dict(stored["segment"].value_counts().iter_rows()) == {"na": 30, "emea": 30, "apac": 30}
    assert json.loads(stored["metadata"][0]).keys() == {"bot_answer", "latency_ms"}

    # The same sample of the same file gives the same rows: the incumbent's answers.
    answers = ["import", "responses", str(log), "--model", "legacy", *mapping, *sample]
    answers += ["--map", "response=bot_answer"]
    assert run(answers, monkeypatch) == 0
    assert "imported 90 responses" in capsys.readouterr().out
    with open_workspace(tmp_path / "changeover.db") as workspace:
        responses = workspace.frame("responses")
    assert set(responses["item_id"]) == set(stored["item_id"])
    assert set(responses["model"]) == {"legacy"}

    # Without --write-weights the weights are only suggested.
    assert run([*items[:-2], "--seed", "5"], monkeypatch) == 0
    assert "suggested traffic weights" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--map", "prompt=question"], "--map prompt=question: no column 'question'; the file has"),
        (["--map", "colour=region"], "--map colour=region: unknown field 'colour'"),
        (["--map", "prompt"], "--map prompt: expected FIELD=COLUMN"),
        (["--write-weights"], "--write-weights: the weights come from a sample; add --sample N"),
    ],
)
def test_bad_mapping_options(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    study = tmp_path / "study.yaml"
    study.write_text(PRODUCTION_STUDY)
    log = _production_log(tmp_path / "log.parquet", n=30)
    base = ["import", "items", str(log), "--study", str(study), "--map", "item_id=request_id"]
    assert run([*base, *args], monkeypatch) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
