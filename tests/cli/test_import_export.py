"""`changeover import`, `generate` and `export` end to end (exit status, one-line errors, nothing
half-written)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from changeover.workspace import open_workspace
from tests.fakes.judge import fake_judge
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
    # The title says what the table counts; it once said "generate (run 2)" on a first generate.
    assert "generate, this run: 2 items × 1 model" in out and "(run" not in out
    assert run(["generate", "--study", str(study)], monkeypatch) == 0
    out = capsys.readouterr().out
    assert len(server.log) == 2 + 4  # legacy: the third item; cand: all three
    assert run(["export", "responses", "--out", "r.csv"], monkeypatch) == 0
    responses = pl.read_csv(tmp_path / "r.csv")
    assert responses.columns[:4] == ["item_id", "model", "response", "error"]
    assert responses.height == 6
    assert responses.filter(pl.col("error").is_not_null()).height == 2
    capsys.readouterr()
    assert run(["export", "rows", "--out", "rows.csv"], monkeypatch) == 0
    said = capsys.readouterr().out
    assert "rows to rows.csv" in said and "rows rows" not in said
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


KEYS = {
    "LEGACY_KEY": "sk-live-7Hq2Zr9Wx4Tn6Lp8Vb3Kd5Mf1Gs0Yc",
    "CAND_KEY": "sk-ant-4Jw8Qe2Rt6Yu0Io3Pa7Sd9Fg1Hj5Kl",
    "JUDGE_KEY": "sk-judge-3Zx7Cv1Bn5Mq9Wr2Et6Ty0Ui4Op8As",
}


def _fragments(key: str, size: int = 10) -> list[bytes]:
    return [key[i : i + size].encode() for i in range(len(key) - size + 1)]


def _assert_no_key(folder: Path, printed: str) -> None:
    """No key, nor any 10-character piece of one, in any file of the folder (the workspace, its
    -wal and -shm files, every export) or in what was printed."""
    for key in KEYS.values():
        for fragment in _fragments(key):
            assert fragment not in printed.encode(), fragment
            for path in folder.iterdir():
                if path.is_file():
                    assert fragment not in path.read_bytes(), (path, fragment)


def test_a_provider_error_that_echoes_the_key_keeps_no_trace_of_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Gateways that quote the Authorization (or x-api-key) header in a 400 or 401 body; the
    # first attempt of each scripted prompt fails so, the next one succeeds.
    with (
        FakeLLMServer() as legacy_server,
        FakeLLMServer() as cand_server,
        FakeLLMServer(script="400echo,ok", reply=fake_judge) as judge_server,
    ):
        common = {"max_tokens": 16, "retry_wait": 0.01, "max_retries": 0}
        path = write_study(
            tmp_path,
            {
                "legacy": {"provider": "openai", "model": "gpt-test",
                           "base_url": legacy_server.openai_url, "api_key_env": "LEGACY_KEY",
                           **common},
                "cand": {"provider": "anthropic", "model": "claude-test",
                         "base_url": cand_server.anthropic_url, "api_key_env": "CAND_KEY",
                         **common},
                "grader": {"provider": "openai", "model": "judge-1",
                           "base_url": judge_server.openai_url, "api_key_env": "JUDGE_KEY",
                           **common},
            },
        )  # fmt: skip
        with path.open("a") as handle:
            handle.write("signals:\n  judge: {kind: judge, rubric: refusal, model: grader}\n")
        prompts = [
            "hello",
            "!script:400echo,ok bad request",
            "!script:401echo,ok bad key",
            "!script:okecho a debugging proxy",
        ]
        items = write_items(tmp_path / "items.jsonl", prompts)
        for variable, key in KEYS.items():
            monkeypatch.setenv(variable, key)
        monkeypatch.chdir(tmp_path)
        printed = ""

        def command(*args: str) -> None:
            nonlocal printed
            assert run(list(args), monkeypatch) == 0
            captured = capsys.readouterr()
            printed += captured.out + captured.err

        def export_all(tag: str) -> None:
            for table in ("responses", "signals", "runs", "calls"):
                command("export", table, "--out", f"{tag}-{table}.csv")

        command("import", "items", str(items))
        command("generate", "--models", "legacy,cand")
        command("score")
        export_all("failed")
        errors = pl.read_csv(tmp_path / "failed-responses.csv")["error"].drop_nulls().to_list()
        # Both models failed on both echoing items, the key taken out of every message.
        assert len(errors) == 4 and all("[redacted]" in error for error in errors), errors
        details = pl.read_csv(tmp_path / "failed-signals.csv")["detail"].drop_nulls().to_list()
        assert any("[redacted]" in detail for detail in details), details
        assert "stopped early" in printed and "[redacted]" in printed, printed
        answers = pl.read_csv(tmp_path / "failed-responses.csv")["response"].to_list()
        assert sum("(sent with Bearer [redacted])" in str(a) for a in answers) == 2, answers
        _assert_no_key(tmp_path, printed)

        command("generate", "--models", "legacy,cand", "--retry-failed")
        command("score", "--retry-failed")
        command("score", "--retry-failed")
        export_all("retried")
        retried = pl.read_csv(tmp_path / "retried-responses.csv")
        assert retried["error"].null_count() == retried.height == 8
        _assert_no_key(tmp_path, printed)


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
