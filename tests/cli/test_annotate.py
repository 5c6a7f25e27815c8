"""The labelling commands end to end: annotators, queue, labels export/import, agreement,
annotate (exit status 2 and one line for mistakes, nothing half-written)."""

from __future__ import annotations

from pathlib import Path

import pytest

import changeover.cli.annotate  # noqa: F401  (registers the commands until cli/__init__ does)
from changeover.annotate import authenticate, queue_status, read_labels, record_labels
from changeover.workspace import Workspace, open_workspace
from tests.annotate.helpers import make_study
from tests.fakes.studies import run_cli as run


@pytest.fixture
def study_path(tmp_path: Path) -> Path:
    _, workspace = make_study(tmp_path / "study")
    workspace.close()
    return tmp_path / "study" / "study.yaml"


def _workspace(study_path: Path) -> Workspace:
    return open_workspace(study_path.parent / "changeover.db")


def test_annotators_add_prints_a_token_list_and_revoke(
    study_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    study = ["--study", str(study_path)]
    assert run(["annotators", "add", "alice", *study], monkeypatch) == 0
    token = capsys.readouterr().out.strip().splitlines()[-1]
    with _workspace(study_path) as workspace:
        assert authenticate(workspace, token) == "alice"
    assert token.encode() not in (study_path.parent / "changeover.db").read_bytes()
    assert run(["annotators", "add", "alice", *study], monkeypatch) == 2
    err = capsys.readouterr().err
    assert "already exists" in err and len(err.strip().splitlines()) == 1
    assert run(["annotators", "list", *study], monkeypatch) == 0
    assert "alice" in capsys.readouterr().out
    assert run(["annotators", "revoke", "alice", *study], monkeypatch) == 0
    with _workspace(study_path) as workspace:
        assert authenticate(workspace, token) is None


def test_queue_random_and_from_csv(
    study_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    study = ["--study", str(study_path)]
    assert run(["queue", "--random", "9", "--overlap", "2", "--dimension", "refusal", *study],
               monkeypatch) == 0  # fmt: skip
    assert "queued 9 new" in capsys.readouterr().out
    queued = tmp_path / "queue.csv"
    queued.write_text("item_id,model,dimension,priority\nq0003,cand-b,style,2\n")
    assert run(["queue", "--from", str(queued), *study], monkeypatch) == 0
    with _workspace(study_path) as workspace:
        assert queue_status(workspace).by_dimension == {"refusal": (9, 9), "style": (1, 1)}
    queued.write_text("item_id,model\nq0003,cand-b\nq9999,cand-b\n")
    assert run(["queue", "--from", str(queued), *study], monkeypatch) == 2
    err = capsys.readouterr().err
    assert "q9999" in err and len(err.strip().splitlines()) == 1
    with _workspace(study_path) as workspace:
        assert queue_status(workspace).entries == 10  # nothing half-written
    assert run(["queue", *study], monkeypatch) == 0
    assert "label queue" in capsys.readouterr().out


def test_labels_export_import_and_agreement(
    study_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    study = ["--study", str(study_path)]
    with _workspace(study_path) as workspace:
        for i in range(10):
            for annotator, flip in (("a", False), ("b", i == 0)):
                label = (i % 2) ^ flip
                record_labels(workspace, annotator=annotator, item_id=f"q{i:04d}",
                              model="legacy", labels={"refusal": label})  # fmt: skip
    assert run(["agreement", *study], monkeypatch) == 0
    out = capsys.readouterr().out
    assert "refusal" in out and "0.800" in out  # kappa: 9 of 10 agree, balanced: 0.8
    csv_out, ls_out = tmp_path / "labels.csv", tmp_path / "tasks.json"
    assert run(["labels", "export", "--out", str(csv_out), *study], monkeypatch) == 0
    label_studio = ["labels", "export", "--format", "label-studio", "--out", str(ls_out)]
    assert run([*label_studio, *study], monkeypatch) == 0  # blind: only queued responses
    out = " ".join(capsys.readouterr().out.split())
    assert "wrote 0 Label Studio tasks" in out and "10 labelled responses are not in" in out
    assert run([*label_studio, "--with-model", *study], monkeypatch) == 0
    assert "wrote 10 Label Studio tasks" in " ".join(capsys.readouterr().out.split())
    assert run(["labels", "import", str(ls_out), *study], monkeypatch) == 0
    assert "20 already present" in " ".join(capsys.readouterr().out.split())
    assert run(["labels", "export", "--with-model", "--out", str(csv_out), *study],
               monkeypatch) == 2  # fmt: skip
    assert "--with-model: only for --format label-studio" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    bad.write_text(
        csv_out.read_text().replace("q0003,legacy,refusal,a,1", "q0003,legacy,refusal,c,7")
    )
    assert run(["labels", "import", str(bad), *study], monkeypatch) == 2
    err = capsys.readouterr().err
    assert "bad.csv: line " in err and "column label" in err and len(err.strip().splitlines()) == 1
    with _workspace(study_path) as workspace:
        assert len(read_labels(workspace)) == 20
    assert run(["labels", "export", "--format", "xml", "--out", str(csv_out), *study],
               monkeypatch) == 2  # fmt: skip


def test_annotate_refuses_to_start_without_annotators(
    study_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["annotate", "--study", str(study_path)], monkeypatch) == 2
    assert "changeover annotators add" in capsys.readouterr().err


def test_labels_config_prints_the_label_studio_config(
    study_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import xml.etree.ElementTree as ElementTree

    assert run(["labels", "config", "--study", str(study_path)], monkeypatch) == 0
    root = ElementTree.fromstring(capsys.readouterr().out)
    choices = [c.get("name") for c in root.iter("Choices")]
    assert choices == ["correctness", "refusal", "style"]  # the study's dimensions
    assert "Friendly, short, no jargon." in [h.get("value") for h in root.iter("Header")]
    assert run(["labels", "config", "--dimension", "refusal", "--study", str(study_path)],
               monkeypatch) == 0  # fmt: skip
    assert [c.get("name") for c in ElementTree.fromstring(capsys.readouterr().out).iter(
        "Choices")] == ["refusal"]  # fmt: skip
