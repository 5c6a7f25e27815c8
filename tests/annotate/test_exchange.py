"""Label import/export: CSV and Label Studio round trips, errors naming file and line or key,
nothing half-written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from changeover.annotate import (
    Exported,
    QueueEntry,
    add_annotator,
    add_to_queue,
    export_labels,
    import_labels,
    read_labels,
    record_labels,
)
from changeover.annotate.label_studio import labeling_config
from changeover.annotate.queue import queued_refs
from changeover.errors import InputError
from changeover.study import Study
from changeover.workspace import Workspace
from tests.annotate.helpers import MODELS

Labelling = tuple[Study, Workspace]
#: The people these tests' files name: registered, as an import requires.
PEOPLE = ("alice", "bob", "carol", "a", "b", "label-studio-user-12")


@pytest.fixture(autouse=True)
def _people(labelling: Labelling) -> None:
    for name in PEOPLE:
        add_annotator(labelling[1], name)


NOTE = '=HYPERLINK("http://evil.test") tone, "quotes"\nand a newline'


def _some_labels(workspace: Workspace) -> None:
    record_labels(
        workspace,
        annotator="alice",
        item_id="q0001",
        model="legacy",
        labels={"correctness": 1, "style": 0},
        note=NOTE,
    )
    record_labels(
        workspace, annotator="bob", item_id="q0001", model="legacy", labels={"correctness": 0}
    )
    record_labels(workspace, annotator="bob", item_id="q0002", model="cand-b",
                  labels={"refusal": 1})  # fmt: skip


def _queue_labelled(workspace: Workspace) -> None:
    """Queue what _some_labels labelled (labels given in the app are queued), and one more."""
    entries = [("q0001", "legacy", "correctness"), ("q0001", "legacy", "style"),
               ("q0002", "cand-b", "refusal"), ("q0005", "cand-a", "style")]  # fmt: skip
    add_to_queue(workspace, [QueueEntry(*entry) for entry in entries], source="t")


def _keys(workspace: Workspace) -> set[tuple[object, ...]]:
    return {
        (r.item_id, r.model, r.dimension, r.annotator, r.label, r.note)
        for r in read_labels(workspace)
    }


@pytest.mark.parametrize(
    ("format", "name", "with_model"),
    [("csv", "labels.csv", False), ("label-studio", "ls.json", False),
     ("label-studio", "ls.json", True)],
)  # fmt: skip
def test_export_import_round_trip(
    labelling: Labelling, tmp_path: Path, format: str, name: str, with_model: bool
) -> None:
    study, workspace = labelling
    _some_labels(workspace)
    _queue_labelled(workspace)
    before = _keys(workspace)
    assert NOTE in {key[-1] for key in before}
    out = tmp_path / name
    exported = export_labels(workspace, out, format=format, with_model=with_model)  # type: ignore[arg-type]
    assert exported.left_out == 0
    with workspace.transaction() as db:
        db.execute("DELETE FROM labels")
    result = import_labels(workspace, out, study)
    assert result.added == 4 and _keys(workspace) == before  # notes too
    assert import_labels(workspace, out, study).unchanged == 4  # re-import is harmless
    text = out.read_text()
    if format == "csv":
        assert "'=HYPERLINK" in text  # a spreadsheet shows the note, never runs it
        return
    tasks = json.loads(text)
    refs = queued_refs(workspace)
    if not with_model:  # in the order of the refs, not grouped by model
        assert [t["data"]["ref"] for t in tasks] == sorted(refs.values())
    first = next(t for t in tasks if t["data"]["ref"] == refs[("q0001", "legacy")])
    assert first["data"]["prompt"].startswith("Question 1")
    assert {a["completed_by"]["email"] for a in first["annotations"]} == {"alice", "bob"}
    if with_model:
        assert {t["data"]["model"] for t in tasks} == {"legacy", "cand-a", "cand-b"}
    else:
        assert not any(model in text for model in MODELS)  # blind
        assert {"item_id", "model"}.isdisjoint(first["data"])


def test_a_blind_export_leaves_out_what_it_cannot_map_back(
    labelling: Labelling, tmp_path: Path
) -> None:
    study, workspace = labelling
    _some_labels(workspace)  # labelled, not queued (as labels imported from a CSV are)
    add_to_queue(workspace, [QueueEntry("q0005", "cand-a", "style")], source="t")
    out = tmp_path / "ls.json"
    assert export_labels(workspace, out, format="label-studio") == Exported(1, 2)
    wide = export_labels(workspace, out, format="label-studio", with_model=True)
    assert wide == Exported(3, 0)
    tasks = json.loads(out.read_text())
    assert [("ref" in t["data"], t["data"]["item_id"]) for t in tasks] == [
        (False, "q0001"), (False, "q0002"), (True, "q0005")
    ]  # fmt: skip
    tasks[2]["data"] = {"ref": "0123456789abcdef", "response": "..."}  # another workspace's
    out.write_text(json.dumps(tasks))
    with pytest.raises(InputError, match=r'ls.json: \[2\]\.data\.ref: "0123456789abcdef" is no'):
        import_labels(workspace, out, study)


def test_label_studio_import_accepts_its_own_export_shape(
    labelling: Labelling, tmp_path: Path
) -> None:
    study, workspace = labelling
    tasks = [
        {
            "id": 7,
            "data": {"item_id": "q0003", "model": "cand-a", "response": "..."},
            "annotations": [
                {"completed_by": 12, "created_at": "2026-01-01T00:00:00Z", "result": [
                    {"from_name": "refusal", "to_name": "response", "type": "choices",
                     "value": {"choices": ["No"]}, "id": "x1", "origin": "manual"},
                    {"from_name": "note", "to_name": "response", "type": "textarea",
                     "value": {"text": ["fine"]}},
                ]},
                {"completed_by": 13, "was_cancelled": True, "result": []},
            ],
        }
    ]  # fmt: skip
    path = tmp_path / "export.json"
    path.write_text(json.dumps(tasks))
    assert import_labels(workspace, path, study).added == 1
    (label,) = read_labels(workspace)
    assert (label.annotator, label.dimension, label.label) == ("label-studio-user-12", "refusal", 0)
    assert label.time == "2026-01-01T00:00:00Z"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("item_id,model,dimension,annotator,label\nq0001,legacy,correctness,a,1\n"
         "q0001,legacy,correctness,b,yes\n",
         r"labels.csv: line 3: column label: 'yes' is not 0 or 1"),
        ("item_id,model,dimension,label\nq0001,legacy,correctness,1\n",
         r"labels.csv: line 1: missing column 'annotator'"),
        ("item_id,model,dimension,annotator,label\nq0001,legacy,correctness,a,1\n"
         "q0001,nobody,correctness,a,1\n",
         r"labels.csv: line 3: item 'q0001', model 'nobody': no such response"),
        ("item_id,model,dimension,annotator,label\nq0001,legacy,tone,a,1\n",
         r"labels.csv: line 2: dimension 'tone' is not among the study's dimensions"),
        ("item_id,model,dimension,annotator,label,note\nq0001,legacy,style,a,1,\"two\nlines\"\n"
         "q0001,legacy,style,a,0,\n",
         r"labels.csv: line 4: annotator 'a' labels .* twice \(first at line 2\)"),
    ],
)  # fmt: skip
def test_csv_errors_name_the_line_and_write_nothing(
    labelling: Labelling, tmp_path: Path, text: str, message: str
) -> None:
    study, workspace = labelling
    path = tmp_path / "labels.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        import_labels(workspace, path, study)
    assert read_labels(workspace) == []


@pytest.mark.parametrize(
    ("tasks", "message"),
    [
        ({"data": {}}, r"expected a JSON list"),
        ([{"data": {"model": "legacy"}}], r"\[0\]\.data\.item_id: missing"),
        ([{"data": {"item_id": "q0001", "model": "legacy"}, "annotations": [
            {"completed_by": "a", "result": [
                {"from_name": "refusal", "type": "choices", "value": {"choices": ["maybe"]}}]}]}],
         r"\[0\]\.annotations\[0\]\.result\[0\]\.value\.choices: expected one of"),
        ([{"data": {"item_id": "q0001", "model": "legacy"}, "annotations": [
            {"completed_by": None, "result": []}]}],
         r"\[0\]\.annotations\[0\]\.completed_by: expected the annotator"),
    ],
)  # fmt: skip
def test_label_studio_errors_name_the_key_path(
    labelling: Labelling, tmp_path: Path, tasks: object, message: str
) -> None:
    study, workspace = labelling
    path = tmp_path / "tasks.json"
    path.write_text(json.dumps(tasks))
    with pytest.raises(InputError, match=message):
        import_labels(workspace, path, study)
    assert read_labels(workspace) == []


def test_invalid_json_names_line_and_column(labelling: Labelling, tmp_path: Path) -> None:
    study, workspace = labelling
    path = tmp_path / "tasks.json"
    path.write_text('[\n  {"data": }\n]')
    with pytest.raises(InputError, match=r"tasks.json: line 2: column 12: invalid JSON"):
        import_labels(workspace, path, study)


def test_export_never_leaves_half_a_file(labelling: Labelling, tmp_path: Path) -> None:
    _, workspace = labelling
    _some_labels(workspace)
    out = tmp_path / "labels.csv"
    out.write_text("old content")
    with pytest.raises(InputError, match="unknown format"):
        export_labels(workspace, out, format="xml")  # type: ignore[arg-type]
    assert out.read_text() == "old content"
    with pytest.raises(InputError, match="does not exist"):
        export_labels(workspace, tmp_path / "missing" / "x.csv", format="csv")
    assert export_labels(workspace, out, format="csv").written == 4
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_a_conflicting_label_stops_the_import_and_changes_nothing(
    labelling: Labelling, tmp_path: Path
) -> None:
    study, workspace = labelling
    _some_labels(workspace)
    path = tmp_path / "labels.csv"
    path.write_text(
        "item_id,model,dimension,annotator,label\n"
        "q0004,legacy,style,carol,1\n"
        "q0001,legacy,correctness,alice,0\n"  # alice said 1
    )
    with pytest.raises(InputError, match=r"labels.csv: .*annotator 'alice' already gave label 1"):
        import_labels(workspace, path, study)
    assert len(read_labels(workspace)) == 4  # carol's label was not written either
    assert workspace.frame("runs").height == 0  # bad input leaves no trace, not even a run


def test_the_label_studio_config_matches_the_tasks_and_is_blind() -> None:
    import xml.etree.ElementTree as ElementTree

    config = labeling_config(
        ["correctness", "style", 'tone"<&'], style_guide=["Friendly.", 'Never say "as an AI".']
    )
    root = ElementTree.fromstring(config)  # well-formed, hostile names escaped
    assert {c.get("name") for c in root.iter("Choices")} == {"correctness", "style", 'tone"<&'}
    assert {t.get("value") for t in root.iter("Text")} == {
        "$prompt", "$context", "$reference", "$response"
    }  # fmt: skip
    (note,) = root.iter("TextArea")
    assert note.get("name") == "note" and note.get("toName") == "response"
    headers = [h.get("value") for h in root.iter("Header")]
    assert "Is the response correct?" in headers and 'Never say "as an AI".' in headers
    assert "$model" not in config and "$item_id" not in config
    assert "Style guide" not in labeling_config(["refusal"], style_guide=["Friendly."])


def test_an_unknown_annotator_is_refused_and_nothing_is_written(
    labelling: Labelling, tmp_path: Path
) -> None:
    study, workspace = labelling
    path = tmp_path / "labels.csv"
    path.write_text(
        "item_id,model,dimension,annotator,label\n"
        "q0001,legacy,correctness,alice,1\nq0001,legacy,correctness,mallory,0\n"
    )
    with pytest.raises(InputError, match="line 3: annotator 'mallory' is not known"):
        import_labels(workspace, path, study)
    assert read_labels(workspace) == []
