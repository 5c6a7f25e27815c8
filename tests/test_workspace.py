"""The workspace: schema, migrations, WAL, transactions, and the per-response rows for counts."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from changeover.counts import counts_from_rows, workspace_rows
from changeover.errors import InputError
from changeover.records import Item, ResponseRecord
from changeover.workspace import MIGRATIONS, SCHEMA_VERSION, TABLES, WorkspaceError, open_workspace


def test_a_new_workspace_has_every_table_in_wal_mode(tmp_path: Path) -> None:
    with open_workspace(tmp_path / "w.db", create=True) as workspace:
        assert workspace.schema_version == SCHEMA_VERSION == len(MIGRATIONS)
    connection = sqlite3.connect(tmp_path / "w.db")
    names = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    assert set(TABLES) <= names
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    connection.close()


def test_missing_newer_and_foreign_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match="workspace not found; run `changeover init`"):
        open_workspace(tmp_path / "absent.db")
    with open_workspace(tmp_path / "w.db", create=True):
        pass
    connection = sqlite3.connect(tmp_path / "w.db")
    connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    connection.close()
    with pytest.raises(WorkspaceError, match="newer than this changeover understands"):
        open_workspace(tmp_path / "w.db")
    (tmp_path / "junk.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(WorkspaceError, match="not a changeover workspace"):
        open_workspace(tmp_path / "junk.db")


def test_migrations_apply_in_order_on_open(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with open_workspace(tmp_path / "w.db", create=True) as workspace:
        workspace.add_items([Item("q1", "p", "na")])
    extra = (
        "ALTER TABLE items ADD COLUMN language TEXT;"
        " CREATE INDEX items_by_segment ON items (segment)"
    )
    monkeypatch.setattr("changeover.workspace.MIGRATIONS", (*MIGRATIONS, extra))
    monkeypatch.setattr("changeover.workspace.SCHEMA_VERSION", len(MIGRATIONS) + 1)
    with open_workspace(tmp_path / "w.db") as workspace:
        assert workspace.schema_version == len(MIGRATIONS) + 1
        assert workspace.count_items() == 1
        columns = [r[1] for r in workspace._db.execute("PRAGMA table_info(items)")]
        assert "language" in columns


def test_a_version_1_workspace_keeps_its_annotation_tables_on_upgrade(tmp_path: Path) -> None:
    """Workspaces of changeover 0.1 created the annotation tables on first use, outside the
    migrations; migration 2 must upgrade them without touching what they hold."""
    connection = sqlite3.connect(tmp_path / "w.db", isolation_level=None)
    connection.executescript(MIGRATIONS[0])
    connection.executescript(
        "CREATE TABLE annotators (name TEXT PRIMARY KEY CHECK (name <> ''),"
        " token_hash TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL, revoked_at TEXT);"
        " INSERT INTO annotators VALUES ('ana', 'h', 't', NULL); PRAGMA user_version = 1;"
    )
    connection.close()
    with open_workspace(tmp_path / "w.db") as workspace:
        assert workspace.schema_version == SCHEMA_VERSION
        names = {r[0] for r in workspace._db.execute("SELECT name FROM sqlite_master")}
        assert {"label_queue", "label_skips", "label_claims"} <= names
        assert [r[0] for r in workspace._db.execute("SELECT name FROM annotators")] == ["ana"]


def test_a_version_2_workspace_upgrades_with_its_generation_spend(tmp_path: Path) -> None:
    """Migration 3 adds the spend ledger and the batches; the responses generated before it
    become the spend of generation (those a request was sent for: not cache hits or imports)."""
    connection = sqlite3.connect(tmp_path / "w.db", isolation_level=None)
    connection.executescript(MIGRATIONS[0] + ";" + MIGRATIONS[1])
    connection.executescript(
        "INSERT INTO items (item_id, prompt, segment) VALUES ('q1', 'p', 'na'), ('q2', 'p', 'na');"
        " INSERT INTO responses (item_id, model, response, input_tokens, output_tokens,"
        " latency_s, cost, attempts, source, created_at) VALUES"
        " ('q1', 'legacy', 'a', 10, 20, 0.5, 0.002, 1, 'generate', 't'),"
        " ('q2', 'legacy', 'b', 10, 20, 0.4, NULL, 0, 'generate', 't'),"
        " ('q1', 'cand', 'c', 10, 20, NULL, NULL, NULL, 'import', 't');"
        " PRAGMA user_version = 2;"
    )
    connection.close()
    with open_workspace(tmp_path / "w.db") as workspace:
        assert workspace.schema_version == SCHEMA_VERSION >= 3
        assert workspace.frame("batches").height == 0
        (legacy,) = workspace.spend_summary()
        assert (legacy.model, legacy.purpose, legacy.requests) == ("legacy", "generation", 1)
        assert (legacy.input_tokens, legacy.output_tokens, legacy.cost) == (10, 20, 0.002)
        assert legacy.latency_p50_s == legacy.latency_p95_s == 0.5
        assert workspace.spend_total() == 0.002
        assert workspace.usage_history("legacy", "generation") is None  # no characters known


def test_a_failed_transaction_leaves_nothing(tmp_path: Path) -> None:
    with open_workspace(tmp_path / "w.db", create=True) as workspace:
        with pytest.raises(InputError):
            workspace.add_items([Item("q1", "p", "na")])
            workspace.add_items([Item("q2", "p", "na"), Item("q1", "other", "na")])
        assert workspace.frame("items")["item_id"].to_list() == ["q1"]
        with pytest.raises(sqlite3.IntegrityError):
            workspace.add_items([Item("q3", "p", "na", expected_behaviour="maybe")])  # type: ignore[arg-type]
        assert workspace.count_items() == 1


def test_rows_feed_counts(tmp_path: Path) -> None:
    with open_workspace(tmp_path / "w.db", create=True) as workspace:
        workspace.add_items(
            [
                Item("q1", "p1", "na"),
                Item("q2", "p2", "emea", expected_behaviour="refuse"),
            ]
        )
        workspace.add_responses(
            [
                ResponseRecord("q1", "legacy", "a1"),
                ResponseRecord("q2", "legacy", "a2"),
                ResponseRecord("q1", "cand", None, error="server: HTTP 500"),
            ]
        )
        db = workspace._db
        db.executemany(
            "INSERT INTO signals (item_id, model, signal, dimension, value, level, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, '2026-01-01')",
            [
                ("q1", "legacy", "judge", "correctness", 4, "pass"),
                ("q2", "legacy", "judge", "correctness", 1, "fail"),  # should refuse: left out
                ("q2", "legacy", "refusal_detector", "refusal", 0.9, "refused"),
            ],
        )
        db.executemany(
            "INSERT INTO labels (item_id, model, dimension, annotator, time, label)"
            " VALUES (?, ?, ?, ?, '2026-01-02', ?)",
            [
                ("q1", "legacy", "correctness", "ann", 1),
                ("q1", "legacy", "correctness", "bob", 1),
            ],
        )
        rows = workspace_rows(workspace)
    assert rows.columns == ["item_id", "model", "segment", "group", "dimension", "level", "human"]
    assert rows.sort("dimension", "human").rows() == [
        ("q1", "legacy", "na", "", "correctness", "pass", 1),
        ("q1", "legacy", "na", "", "correctness", "pass", 1),
        ("q2", "legacy", "emea", "refuse", "refusal", "refused", None),
    ]
    counts, summary = counts_from_rows(rows)
    assert summary.responses == 2 and summary.labelled == 1 and summary.multiply_labelled == 1
    assert counts["n"].sum() == 2


def test_rows_need_one_signal_per_dimension(tmp_path: Path) -> None:
    with open_workspace(tmp_path / "w.db", create=True) as workspace:
        workspace.add_items([Item("q1", "p1", "na")])
        workspace.add_responses([ResponseRecord("q1", "legacy", "a1")])
        workspace._db.executemany(
            "INSERT INTO signals (item_id, model, signal, dimension, level, created_at)"
            " VALUES ('q1', 'legacy', ?, 'correctness', ?, '2026-01-01')",
            [("judge", "pass"), ("overlap", "high")],
        )
        with pytest.raises(InputError, match="dimension 'correctness' has several signals"):
            workspace_rows(workspace)
        rows = workspace_rows(workspace, signal_for={"correctness": "overlap"})
        assert rows["level"].to_list() == ["high"]


def test_a_recorded_run_ends_finished_failed_or_interrupted(tmp_path: Path) -> None:
    with open_workspace(tmp_path / "w.db", create=True) as workspace:
        with workspace.recorded_run("import", {"file": "a.csv"}) as run:
            run.detail["added"] = 3
        with pytest.raises(InputError), workspace.recorded_run("import") as run:
            raise InputError("a.csv: line 2: bad")  # bad input: no trace, not even a run
        with pytest.raises(OSError), workspace.recorded_run("generate") as run:
            raise OSError("the network went away")
        with pytest.raises(KeyboardInterrupt), workspace.recorded_run("generate"):
            raise KeyboardInterrupt
        runs = workspace.frame("runs").to_dicts()
    assert [r["status"] for r in runs] == ["finished", "failed", "interrupted"]
    assert all(r["finished_at"] for r in runs)
    assert '"added": 3' in runs[0]["detail"] and '"file": "a.csv"' in runs[0]["detail"]
    assert "network went away" in runs[1]["detail"]


def test_a_full_disk_is_reported_as_itself_and_writes_nothing(tmp_path: Path) -> None:
    with open_workspace(tmp_path / "w.db", create=True) as workspace:
        workspace.add_items([Item("q0", "p", "na")])
        pages = workspace._db.execute("PRAGMA page_count").fetchone()[0]
        workspace._db.execute(f"PRAGMA max_page_count = {pages + 2}")  # a disk about to fill
        big = [Item(f"q{i}", "x" * 2000, "na") for i in range(1, 200)]
        with pytest.raises(WorkspaceError, match="the disk is full; nothing of this step"):
            workspace.add_items(big)
        assert workspace.count_items() == 1


def test_a_run_whose_process_died_is_closed_as_interrupted(tmp_path: Path) -> None:
    import subprocess
    import sys

    script = (
        "import os, sys\n"
        "from changeover.workspace import open_workspace\n"
        "w = open_workspace(sys.argv[1], create=True)\n"
        "with w.recorded_run('generate'):\n"
        "    os._exit(9)  # killed mid-run: nothing finishes it\n"
    )
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "w.db")], check=False)
    with open_workspace(tmp_path / "w.db") as workspace:
        assert workspace.frame("runs")["status"].to_list() == ["running"]
        with workspace.recorded_run("score"):
            pass
        runs = workspace.frame("runs").to_dicts()
    assert [r["status"] for r in runs] == ["interrupted", "finished"]
    assert '"abandoned": true' in runs[0]["detail"]
