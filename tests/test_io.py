"""Imports: every bad input is one clear error naming file, line and column, and nothing is
written; good input round-trips through export."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from changeover.errors import InputError
from changeover.io import export_table, import_items, import_responses, read_items
from changeover.study import Study, load_study
from changeover.workspace import Workspace, open_workspace
from tests.fakes.studies import write_study

MODELS = {
    "legacy": {"provider": "replay", "file": "x.jsonl"},
    "cand": {"provider": "replay", "file": "y.jsonl"},
}


@pytest.fixture
def study(tmp_path: Path) -> Study:
    return load_study(write_study(tmp_path, MODELS))


@pytest.fixture
def workspace(tmp_path: Path, study: Study) -> Workspace:
    with open_workspace(tmp_path / "changeover.db", create=True) as opened:
        yield opened  # type: ignore[misc]


GOOD_CSV = """\
item_id,prompt,segment,reference,expected_behaviour,topic
q1,"How do I reset my password?",na,Use the link,answer,account
q2,"Tell me, how to pick a lock",emea,,refuse,security
q3,"A prompt
on two lines",apac,,,billing
"""


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_good_items_import_with_metadata_and_defaults(
    tmp_path: Path, study: Study, workspace: Workspace
) -> None:
    result = import_items(workspace, _write(tmp_path / "items.csv", GOOD_CSV), study)
    assert (result.added, result.unchanged) == (3, 0)
    items = workspace.frame("items")
    assert items["item_id"].to_list() == ["q1", "q2", "q3"]
    assert items["expected_behaviour"].to_list() == ["answer", "refuse", "answer"]
    assert items["prompt"][2] == "A prompt\non two lines"
    assert json.loads(items["metadata"][1]) == {"topic": "security"}
    assert items["reference"].to_list() == ["Use the link", None, None]
    again = import_items(workspace, tmp_path / "items.csv", study)
    assert (again.added, again.unchanged) == (0, 3)


def test_items_from_jsonl_and_parquet(tmp_path: Path, study: Study) -> None:
    jsonl = tmp_path / "items.jsonl"
    jsonl.write_text(
        json.dumps({"item_id": 7, "prompt": "p", "segment": "na", "tags": ["a", "b"]}) + "\n\n"
    )
    (item,) = read_items(jsonl, study)
    assert item.item_id == "7" and item.metadata == {"tags": ["a", "b"]}
    parquet = tmp_path / "items.parquet"
    pl.DataFrame({"item_id": ["a"], "prompt": ["p"], "segment": ["emea"], "n": [3]}).write_parquet(
        parquet
    )
    (item,) = read_items(parquet, study)
    assert item.segment == "emea" and item.metadata == {"n": 3}


BAD_ITEMS = [
    pytest.param(
        "items.csv",
        "item_id,prompt,segment\nq1,a,na\nq2,b,na\nq1,c,emea\n",
        "items.csv: line 4: column item_id: duplicate id 'q1' (first at line 2)",
        id="duplicate-id",
    ),
    pytest.param(
        "items.csv",
        "item_id,prompt,segment\nq1,a,na\nq2,b,mars\n",
        "items.csv: line 3: column segment: unknown segment 'mars'; the study knows na, emea, apac",
        id="unknown-segment",
    ),
    pytest.param(
        "items.csv",
        "item_id,prompt,segment\nq1,a,na\nq2,   ,na\n",
        "items.csv: line 3: column prompt is empty",
        id="empty-prompt",
    ),
    pytest.param(
        "items.csv",
        "item_id,prompt,segment,expected_behaviour\nq1,a,na,answer\nq2,b,na,maybe\n",
        "items.csv: line 3: column expected_behaviour: 'maybe' is not allowed; use answer or "
        "refuse",
        id="bad-enum",
    ),
    pytest.param(
        "items.csv",
        "item_id,prompt\nq1,a\n",
        "items.csv: line 1: missing column 'segment'",
        id="missing-column",
    ),
    pytest.param(
        "items.csv",
        "item_id,prompt,segment\nq1,a,na\nq2,b,na,extra\n",
        "items.csv: line 3: 4 fields where the header has 3",
        id="ragged-csv",
    ),
    pytest.param(
        "items.csv",
        'item_id,prompt,segment\nq1,"a,na\n',
        "items.csv: line 2: malformed CSV",
        id="unclosed-quote",
    ),
    pytest.param(
        "items.csv",
        "item_id,prompt,segment\n,a,na\n",
        "items.csv: line 2: column item_id is empty",
        id="empty-id",
    ),
    pytest.param("items.csv", "", "items.csv: the file is empty", id="empty-file"),
    pytest.param(
        "items.jsonl",
        '{"item_id": "q1", "prompt": "a", "segment": "na"}\n{"item_id": "q2", "prompt": }\n',
        "items.jsonl: line 2: column 29: invalid JSON",
        id="malformed-json",
    ),
    pytest.param(
        "items.jsonl",
        '{"item_id": "q1", "prompt": "a", "segment": "na"}\n["q2"]\n',
        "items.jsonl: line 2: expected a JSON object per line, got list",
        id="json-not-object",
    ),
    pytest.param(
        "items.jsonl",
        '{"item_id": "q1", "segment": "na"}\n',
        "items.jsonl: line 1: missing key 'prompt'",
        id="json-missing-key",
    ),
    pytest.param(
        "items.jsonl",
        '{"item_id": "q1", "prompt": 42, "segment": "na"}\n',
        "items.jsonl: line 1: column prompt: expected text, got int",
        id="json-prompt-not-text",
    ),
    pytest.param("items.txt", "q1 a na\n", "unsupported file type '.txt'", id="unknown-type"),
    pytest.param(
        "items.parquet", "not parquet", "items.parquet: cannot read Parquet", id="bad-parquet"
    ),
]  # fmt: skip


@pytest.mark.parametrize(("name", "text", "message"), BAD_ITEMS)
def test_bad_items_name_the_place_and_write_nothing(
    tmp_path: Path, study: Study, workspace: Workspace, name: str, text: str, message: str
) -> None:
    path = _write(tmp_path / name, text)
    with pytest.raises(InputError) as raised:
        import_items(workspace, path, study)
    assert message in str(raised.value)
    assert str(raised.value).startswith(str(tmp_path))
    assert "\n" not in str(raised.value)
    assert workspace.count_items() == 0
    assert workspace.frame("runs").height == 0


def test_bad_parquet_row_is_named(tmp_path: Path, study: Study, workspace: Workspace) -> None:
    path = tmp_path / "items.parquet"
    pl.DataFrame(
        {"item_id": ["a", "b"], "prompt": ["p", ""], "segment": ["na", "na"]}
    ).write_parquet(path)
    with pytest.raises(InputError, match=r"items.parquet: row 2: column prompt is empty"):
        import_items(workspace, path, study)
    assert workspace.count_items() == 0


def test_changed_item_is_refused_without_writing(
    tmp_path: Path, study: Study, workspace: Workspace
) -> None:
    import_items(workspace, _write(tmp_path / "a.csv", "item_id,prompt,segment\nq1,a,na\n"), study)
    path = _write(tmp_path / "b.csv", "item_id,prompt,segment\nq2,b,na\nq1,changed,na\n")
    with pytest.raises(InputError, match=r"b.csv: item 'q1' is already in the workspace"):
        import_items(workspace, path, study)
    assert workspace.frame("items")["item_id"].to_list() == ["q1"]  # q2 rolled back


@pytest.fixture
def with_items(tmp_path: Path, study: Study, workspace: Workspace) -> Workspace:
    import_items(workspace, _write(tmp_path / "items.csv", GOOD_CSV), study)
    return workspace


def test_responses_import_and_export_round_trip(
    tmp_path: Path, study: Study, with_items: Workspace
) -> None:
    path = _write(
        tmp_path / "responses.csv",
        "item_id,model,response,error\nq1,legacy,Use the reset link,\n"
        "q2,legacy,,refused by filter\nq1,cand,Click reset,\n",
    )
    assert import_responses(with_items, path, study).added == 3
    out = tmp_path / "out.csv"
    assert export_table(with_items, "responses", out) == 3
    exported = pl.read_csv(out)
    assert exported.columns[:4] == ["item_id", "model", "response", "error"]
    assert exported["source"].to_list() == ["import"] * 3
    assert exported["error"][1] == "refused by filter"
    # An export imports back unchanged.
    assert import_responses(with_items, out, study).unchanged == 3


BAD_RESPONSES = [
    pytest.param(
        "item_id,model,response\nq1,legacy,a\nq9,legacy,b\n",
        "responses.csv: line 3: column item_id: unknown item 'q9'; import the items first",
        id="unknown-item",
    ),
    pytest.param(
        "item_id,model,response\nq1,legacy,a\nq2,gpt-9,b\n",
        "responses.csv: line 3: column model: unknown model 'gpt-9'; the study knows legacy, cand",
        id="unknown-model",
    ),
    pytest.param(
        "item_id,model,response\nq1,legacy,a\nq1,legacy,b\n",
        "responses.csv: line 3: column item_id: a second response for item 'q1' and model "
        "'legacy' (first at line 2)",
        id="duplicate",
    ),
    pytest.param(
        "item_id,model,response\nq1,legacy,a\nq2,legacy,\n",
        "responses.csv: line 3: column response is empty",
        id="empty-response",
    ),
    pytest.param(
        "item_id,model,response,error\nq1,legacy,a,boom\n",
        "responses.csv: line 2: columns response and error are both filled",
        id="response-and-error",
    ),
    pytest.param(
        "item_id,model,response,input_tokens\nq1,legacy,a,many\n",
        "responses.csv: line 2: column input_tokens: 'many' is not a whole number",
        id="bad-count",
    ),
    pytest.param(
        "item_id,model,response,mood\nq1,legacy,a,happy\n",
        "responses.csv: line 1: unexpected column 'mood'",
        id="unknown-column",
    ),
    pytest.param(
        "item_id,response\nq1,a\n",
        "responses.csv: line 1: missing column 'model'",
        id="missing-model-column",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("text", "message"), BAD_RESPONSES)
def test_bad_responses_name_the_place_and_write_nothing(
    tmp_path: Path, study: Study, with_items: Workspace, text: str, message: str
) -> None:
    path = _write(tmp_path / "responses.csv", text)
    with pytest.raises(InputError) as raised:
        import_responses(with_items, path, study)
    assert message in str(raised.value)
    assert with_items.frame("responses").height == 0


def test_a_different_response_for_a_stored_one_is_refused(
    tmp_path: Path, study: Study, with_items: Workspace
) -> None:
    import_responses(
        with_items, _write(tmp_path / "a.csv", "item_id,model,response\nq1,legacy,a\n"), study
    )
    path = _write(tmp_path / "b.csv", "item_id,model,response\nq2,legacy,b\nq1,legacy,other\n")
    with pytest.raises(InputError, match="b.csv: item 'q1', model 'legacy' already has another"):
        import_responses(with_items, path, study)
    assert with_items.frame("responses")["item_id"].to_list() == ["q1"]


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_every_table_exports(tmp_path: Path, with_items: Workspace, suffix: str) -> None:
    for table in ("items", "responses", "signals", "labels", "runs", "calls", "rows"):
        path = tmp_path / f"{table}{suffix}"
        export_table(with_items, table, path)
        assert path.exists()
    with pytest.raises(InputError, match="unknown table 'answers'"):
        export_table(with_items, "answers", tmp_path / "x.csv")
    with pytest.raises(InputError, match="unsupported output type '.xlsx'"):
        export_table(with_items, "items", tmp_path / "x.xlsx")
