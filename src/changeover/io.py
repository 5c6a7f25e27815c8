"""Import and export of workspace tables: items, responses (CSV, JSONL or Parquet).

Imports are validated completely before anything is written, and written in one transaction:
a bad file imports nothing. Every error names the file, the line (the record's first line in a
text file, the row in Parquet) and the column.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from changeover.counts import workspace_rows
from changeover.errors import InputError
from changeover.files import Record, read_records, replacing, write_csv
from changeover.records import Item, ResponseRecord
from changeover.study import Study
from changeover.workspace import TABLES, ImportResult, Workspace

__all__ = [
    "ITEM_COLUMNS",
    "RESPONSE_COLUMNS",
    "export_table",
    "import_items",
    "import_responses",
    "read_items",
    "read_responses",
]

ITEM_COLUMNS = (
    "item_id",
    "prompt",
    "segment",
    "reference",
    "expected_behaviour",
    "system",
    "context",
)
_ITEM_REQUIRED = ("item_id", "prompt", "segment")
RESPONSE_COLUMNS = (
    "item_id", "model", "response", "error", "finish_reason", "input_tokens", "output_tokens",
    "latency_s",
)  # fmt: skip
# Columns `export responses` writes that describe how a response was stored, not what it is.
_RESPONSE_BOOKKEEPING = ("source", "cache_key", "cost", "attempts", "created_at", "run_id")
_EXPECTED = ("answer", "refuse")


def _check_header(path: Path, header: list[str] | None, required: tuple[str, ...]) -> None:
    if header is None:
        return
    for name in required:
        if name not in header:
            raise InputError(
                f"{path}: line 1: missing column '{name}'; required columns are "
                f"{', '.join(required)}"
            )
    duplicated = [name for name in header if header.count(name) > 1]
    if duplicated:
        raise InputError(f"{path}: line 1: column '{duplicated[0]}' appears twice")


def _text(record: Record, column: str, *, required: bool) -> str | None:
    """A value as text: stripped of surrounding blanks, None when absent or empty."""
    value = record.values.get(column)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        text = ""
    elif isinstance(value, str):
        text = value.strip()
    elif isinstance(value, bool | int | float):
        text = str(value)
    else:
        raise InputError(
            f"{record.where}: column {column}: expected text, got {type(value).__name__}"
        )
    if not text:
        if required:
            raise InputError(
                f"{record.where}: column {column} is empty; every row needs a {column}"
            )
        return None
    return text


def _int(record: Record, column: str) -> int | None:
    text = _text(record, column, required=False)
    if text is None:
        return None
    try:
        number = int(float(text))
    except ValueError:
        raise InputError(
            f"{record.where}: column {column}: '{text}' is not a whole number"
        ) from None
    if number < 0 or number != float(text):
        raise InputError(f"{record.where}: column {column}: '{text}' is not a count")
    return number


def _float(record: Record, column: str) -> float | None:
    text = _text(record, column, required=False)
    if text is None:
        return None
    try:
        number = float(text)
    except ValueError:
        raise InputError(f"{record.where}: column {column}: '{text}' is not a number") from None
    if not number >= 0:
        raise InputError(f"{record.where}: column {column}: '{text}' must be >= 0")
    return number


def read_items(path: str | Path, study: Study) -> list[Item]:
    """Read and validate an items file against the study; raise InputError at the first problem.

    Columns `item_id, prompt, segment` are required; `reference`, `expected_behaviour`
    (answer|refuse, default answer), `system`, `context` are optional; any other column is kept
    as free metadata.
    """
    path = Path(path)
    header, records = read_records(path, kind="items")
    _check_header(path, header, _ITEM_REQUIRED)
    segments = study.segment_names
    first_seen: dict[str, str] = {}
    items: list[Item] = []
    for record in records:
        for column in _ITEM_REQUIRED:
            if header is None and column not in record.values:
                raise InputError(f"{record.where}: missing key '{column}'; every line needs it")
        item_id = _text(record, "item_id", required=True)
        assert item_id is not None
        if item_id in first_seen:
            raise InputError(
                f"{record.where}: column item_id: duplicate id '{item_id}' (first at "
                f"{first_seen[item_id].split(': ', 1)[1]}); item ids must be unique"
            )
        first_seen[item_id] = record.where
        prompt = record.values.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise InputError(
                f"{record.where}: column prompt is empty; every item needs a prompt"
                if prompt is None or isinstance(prompt, str)
                else f"{record.where}: column prompt: expected text, got {type(prompt).__name__}"
            )
        segment = _text(record, "segment", required=True)
        if segment not in segments:
            raise InputError(
                f"{record.where}: column segment: unknown segment '{segment}'; the study knows "
                f"{', '.join(segments)}"
            )
        expected = (_text(record, "expected_behaviour", required=False) or "answer").lower()
        if expected not in _EXPECTED:
            raise InputError(
                f"{record.where}: column expected_behaviour: '{expected}' is not allowed; use "
                "answer or refuse"
            )
        metadata = {
            key: value
            for key, value in record.values.items()
            if key not in ITEM_COLUMNS and not _is_missing(value)
        }
        try:
            json.dumps(metadata)
        except (TypeError, ValueError):
            raise InputError(
                f"{record.where}: a metadata column holds a value that is not JSON-serialisable"
            ) from None
        items.append(
            Item(
                item_id=item_id,
                prompt=prompt,
                segment=str(segment),
                reference=_raw_text(record, "reference"),
                expected_behaviour="refuse" if expected == "refuse" else "answer",
                system=_raw_text(record, "system"),
                context=_raw_text(record, "context"),
                metadata=metadata,
            )
        )
    if not items:
        raise InputError(f"{path}: no items in the file")
    return items


def _is_missing(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, float) and math.isnan(value))


def _raw_text(record: Record, column: str) -> str | None:
    """Free text kept as written (inner whitespace matters in prompts), None when empty."""
    value = record.values.get(column)
    if _is_missing(value):
        return None
    if not isinstance(value, str):
        raise InputError(
            f"{record.where}: column {column}: expected text, got {type(value).__name__}"
        )
    return value if value.strip() else None


def read_responses(
    path: str | Path,
    *,
    models: list[str] | None,
    item_ids: set[str],
    model: str | None = None,
    source: str = "import",
) -> list[ResponseRecord]:
    """Read and validate a responses file.

    Columns `item_id, model, response` (and optionally `error` and the usage columns of
    `export responses`). With `model` given (a replay file), the `model` column is optional and
    only that model's rows are read.
    """
    path = Path(path)
    header, records = read_records(path, kind="responses")
    required = ("item_id", "response") if model is not None else ("item_id", "model", "response")
    _check_header(path, header, required)
    if header is not None:
        known = set(RESPONSE_COLUMNS) | set(_RESPONSE_BOOKKEEPING)
        unknown = [name for name in header if name not in known]
        if unknown:
            raise InputError(
                f"{path}: line 1: unexpected column '{unknown[0]}'; responses have "
                f"{', '.join(RESPONSE_COLUMNS)}"
            )
    seen: dict[tuple[str, str], str] = {}
    out: list[ResponseRecord] = []
    for record in records:
        if header is None and "item_id" not in record.values:
            raise InputError(f"{record.where}: missing key 'item_id'; every line needs it")
        item_id = _text(record, "item_id", required=True)
        assert item_id is not None
        if model is not None:
            row_model = _text(record, "model", required=False)
            if row_model is not None and row_model != model:
                continue
            name = model
        else:
            if header is None and "model" not in record.values:
                raise InputError(f"{record.where}: missing key 'model'; every line needs it")
            name = str(_text(record, "model", required=True))
            if models is not None and name not in models:
                raise InputError(
                    f"{record.where}: column model: unknown model '{name}'; the study knows "
                    f"{', '.join(models)}"
                )
        if item_id not in item_ids:
            raise InputError(
                f"{record.where}: column item_id: unknown item '{item_id}'; import the items "
                "first (changeover import items FILE)"
            )
        key = (item_id, name)
        if key in seen:
            raise InputError(
                f"{record.where}: column item_id: a second response for item '{item_id}' and "
                f"model '{name}' (first at {seen[key].split(': ', 1)[1]}); one per item and model"
            )
        seen[key] = record.where
        response = record.values.get("response")
        if response is not None and not isinstance(response, str):
            raise InputError(
                f"{record.where}: column response: expected text, got {type(response).__name__}"
            )
        error = _text(record, "error", required=False)
        has_text = response is not None and response.strip() != ""
        if has_text and error is not None:
            raise InputError(
                f"{record.where}: columns response and error are both filled; a row is either "
                "a response or an error"
            )
        if not has_text and error is None:
            raise InputError(
                f"{record.where}: column response is empty; give the response text, or the "
                "reason in column error"
            )
        out.append(
            ResponseRecord(
                item_id=item_id,
                model=name,
                response=response if has_text else None,
                error=error,
                source="replay" if source == "replay" else "import",
                finish_reason=_text(record, "finish_reason", required=False),
                input_tokens=_int(record, "input_tokens"),
                output_tokens=_int(record, "output_tokens"),
                latency_s=_float(record, "latency_s"),
            )
        )
    return out


def import_items(workspace: Workspace, path: str | Path, study: Study) -> ImportResult:
    """Validate an items file completely, then add it in one transaction."""
    items = read_items(path, study)
    with workspace.recorded_run("import", {"table": "items", "file": str(path)}) as run:
        try:
            result = workspace.add_items(items, run_id=run.run_id)
        except InputError as error:
            raise InputError(f"{path}: {error}") from None
        run.detail.update(_as_detail(result))
    return result


def import_responses(workspace: Workspace, path: str | Path, study: Study) -> ImportResult:
    """Validate a responses file completely, then add it in one transaction."""
    records = read_responses(path, models=study.model_names, item_ids=workspace.item_ids())
    with workspace.recorded_run("import", {"table": "responses", "file": str(path)}) as run:
        try:
            result = workspace.add_responses(records, run_id=run.run_id)
        except InputError as error:
            raise InputError(f"{path}: {error}") from None
        run.detail.update(_as_detail(result))
    return result


def _as_detail(result: ImportResult) -> Mapping[str, int]:
    return {"added": result.added, "unchanged": result.unchanged}


def export_table(workspace: Workspace, table: str, path: str | Path) -> int:
    """Write a workspace table (or `rows`, the per-response rows for counts) to CSV, JSONL or
    Parquet, by the file's suffix, atomically. Returns the number of rows written."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in {".csv", ".parquet", ".jsonl", ".ndjson"}:
        raise InputError(
            f"{path}: unsupported output type '{suffix}'; use .csv, .jsonl or .parquet"
        )
    if table == "rows":
        frame = workspace_rows(workspace)
    elif table in TABLES:
        frame = workspace.frame(table)
    else:
        raise InputError(f"unknown table '{table}'; export one of {', '.join((*TABLES, 'rows'))}")
    try:
        with replacing(path) as tmp:
            if suffix == ".csv":
                write_csv(frame, tmp)
            elif suffix == ".parquet":
                frame.write_parquet(tmp)
            else:
                frame.write_ndjson(tmp)
    except OSError as error:
        raise InputError(f"{path}: cannot write ({error.strerror})") from None
    return frame.height
