"""Import and export of workspace tables: items, responses (CSV, JSONL or Parquet).

Imports are validated completely before anything is written, and written in one transaction:
a bad file imports nothing. Every error names the file, the line (the record's first line in a
text file, the row in Parquet) and the column.

A file that was not written for changeover (a production log) is read through a column mapping
(`--map prompt=user_query`: changeover's column = the file's), and a large one through a
stratified sample (`changeover.sampling`), whose segment shares can become the study's traffic
weights (`import_items(..., weights_from_file=True)`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from changeover.counts import workspace_rows
from changeover.errors import InputError, StudyError
from changeover.files import Record, read_records, replacing, write_csv
from changeover.importers.exports import EXPORT_FORMATS, tool_records
from changeover.records import MAX_PLAUSIBLE_TOKENS, Item, ResponseRecord
from changeover.sampling import SampleSpec, SegmentShare, sample_table
from changeover.study import Study, parse_study
from changeover.workspace import TABLES, ImportResult, Workspace

__all__ = [
    "ITEM_COLUMNS",
    "RESPONSE_COLUMNS",
    "FileImport",
    "export_table",
    "import_items",
    "import_responses",
    "parse_columns",
    "read_items",
    "read_responses",
    "weights_from_shares",
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


@dataclass(frozen=True)
class FileImport(ImportResult):
    """What an import wrote, and with `--sample`, each segment's share of the whole file."""

    shares: tuple[SegmentShare, ...] = ()
    rows: int | None = None  # rows in the whole file, when sampled


def parse_columns(values: Sequence[str] | None, *, fields: Sequence[str]) -> dict[str, str]:
    """`--map FIELD=COLUMN` options as {changeover's field: the file's column}."""
    columns: dict[str, str] = {}
    for value in values or ():
        field_name, sep, column = (part.strip() for part in value.partition("="))
        if not sep or not field_name or not column:
            raise InputError(f"--map {value}: expected FIELD=COLUMN, e.g. --map prompt=user_query")
        if field_name not in fields:
            raise InputError(
                f"--map {value}: unknown field '{field_name}'; map one of {', '.join(fields)}"
            )
        if field_name in columns:
            raise InputError(f"--map {value}: field '{field_name}' is mapped twice")
        if column in columns.values():
            raise InputError(f"--map {value}: column '{column}' is mapped twice")
        columns[field_name] = column
    return columns


@dataclass(frozen=True)
class _Table:
    header: list[str] | None
    records: Iterator[Record]
    shares: tuple[SegmentShare, ...] = ()
    rows: int | None = None


def _read_table(
    path: Path, *, kind: str, columns: Mapping[str, str], sample: SampleSpec | None
) -> _Table:
    """The records of an input file (all, or the sample), renamed by the column mapping."""
    if sample is not None:
        drawn = sample_table(path, replace(sample, by=columns.get(sample.by, sample.by)), kind=kind)
        table = _Table(drawn.header, iter(drawn.records), drawn.shares, drawn.rows)
    else:
        header, records = read_records(path, kind=kind)
        table = _Table(header, records)
    if not columns:
        return table
    header = table.header
    if header is not None:
        for name, own in columns.items():
            if own not in header:
                raise InputError(
                    f"{path}: --map {name}={own}: no column '{own}'; the file has "
                    f"{', '.join(header)}"
                )
        inverse = {own: name for name, own in columns.items()}
        header = [inverse.get(h, h) for h in header if h in inverse or h not in columns]
    records = (record.renamed(columns) for record in table.records)
    return _Table(header, records, table.shares, table.rows)


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
        raise InputError(f"{record.at(column)}: expected text, got {type(value).__name__}")
    if not text:
        if required:
            raise InputError(f"{record.at(column)} is empty; every row needs a {column}")
        return None
    return text


def _int(record: Record, column: str) -> int | None:
    text = _text(record, column, required=False)
    if text is None:
        return None
    try:
        number = float(text)
    except ValueError:
        raise InputError(f"{record.at(column)}: '{text}' is not a whole number") from None
    if not (0 <= number <= MAX_PLAUSIBLE_TOKENS) or number != int(number):
        raise InputError(
            f"{record.at(column)}: '{text}' is not a token count (a whole number from 0 to "
            f"{MAX_PLAUSIBLE_TOKENS:,}); leave it empty when unknown"
        )
    return int(number)


def _float(record: Record, column: str) -> float | None:
    text = _text(record, column, required=False)
    if text is None:
        return None
    try:
        number = float(text)
    except ValueError:
        raise InputError(f"{record.at(column)}: '{text}' is not a number") from None
    if not (number >= 0 and math.isfinite(number)):
        raise InputError(f"{record.at(column)}: '{text}' must be a finite number >= 0")
    return number


def read_items(
    path: str | Path,
    study: Study,
    *,
    columns: Mapping[str, str] | None = None,
    sample: SampleSpec | None = None,
) -> list[Item]:
    """Read and validate an items file against the study; raise InputError at the first problem.

    Columns `item_id, prompt, segment` are required; `reference`, `expected_behaviour`
    (answer|refuse, default answer), `system`, `context` are optional; any other column is kept
    as free metadata. `columns` renames the file's columns (`{"prompt": "user_query"}`);
    `sample` reads only a stratified sample of the rows.
    """
    return _items(Path(path), study.segment_names, columns=columns or {}, sample=sample)[0]


def _items(
    path: Path,
    segments: Sequence[str] | None,
    *,
    columns: Mapping[str, str],
    sample: SampleSpec | None,
) -> tuple[list[Item], _Table]:
    """The items of a file, each in one of `segments` (None: any segment)."""
    table = _read_table(path, kind="items", columns=columns, sample=sample)
    header, records = table.header, table.records
    _check_header(path, header, _ITEM_REQUIRED)
    first_seen: dict[str, str] = {}
    items: list[Item] = []
    for record in records:
        for column in _ITEM_REQUIRED:
            if header is None and column not in record.values:
                raise InputError(
                    f"{record.where}: missing key '{record.column(column)}'; every line needs it"
                )
        item_id = _text(record, "item_id", required=True)
        assert item_id is not None
        if item_id in first_seen:
            raise InputError(
                f"{record.at('item_id')}: duplicate id '{item_id}' (first at "
                f"{first_seen[item_id].split(': ', 1)[1]}); item ids must be unique"
            )
        first_seen[item_id] = record.where
        prompt = record.values.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise InputError(
                f"{record.at('prompt')} is empty; every item needs a prompt"
                if prompt is None or isinstance(prompt, str)
                else f"{record.at('prompt')}: expected text, got {type(prompt).__name__}"
            )
        segment = _text(record, "segment", required=True)
        if segments is not None and segment not in segments:
            raise InputError(
                f"{record.at('segment')}: unknown segment '{segment}'; the study knows "
                f"{', '.join(segments)}"
            )
        expected = (_text(record, "expected_behaviour", required=False) or "answer").lower()
        if expected not in _EXPECTED:
            raise InputError(
                f"{record.at('expected_behaviour')}: '{expected}' is not allowed; use "
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
    return items, table


def _is_missing(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, float) and math.isnan(value))


def _raw_text(record: Record, column: str) -> str | None:
    """Free text kept as written (inner whitespace matters in prompts), None when empty."""
    value = record.values.get(column)
    if _is_missing(value):
        return None
    if not isinstance(value, str):
        raise InputError(f"{record.at(column)}: expected text, got {type(value).__name__}")
    return value if value.strip() else None


def read_responses(
    path: str | Path,
    *,
    models: list[str] | None,
    item_ids: set[str],
    model: str | None = None,
    source: str = "import",
    columns: Mapping[str, str] | None = None,
    sample: SampleSpec | None = None,
) -> list[ResponseRecord]:
    """Read and validate a responses file.

    Columns `item_id, model, response` (and optionally `error` and the usage columns of
    `export responses`). With `model` given (a replay file, or a production log of one model),
    the `model` column is optional and only that model's rows are read. `columns` renames the
    file's columns, and then the file's other columns are left alone (a production log has
    many); `sample` reads only a stratified sample of the rows (the same rows as `read_items`
    with the same sample, from the same file).
    """
    path = Path(path)
    table = _read_table(path, kind="responses", columns=columns or {}, sample=sample)
    header, records = table.header, table.records
    required = ("item_id", "response") if model is not None else ("item_id", "model", "response")
    _check_header(path, header, required)
    if header is not None and not columns:
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
            raise InputError(
                f"{record.where}: missing key '{record.column('item_id')}'; every line needs it"
            )
        item_id = _text(record, "item_id", required=True)
        assert item_id is not None
        if model is not None:
            row_model = _text(record, "model", required=False)
            if row_model is not None and row_model != model:
                continue
            name = model
        else:
            if header is None and "model" not in record.values:
                raise InputError(
                    f"{record.where}: missing key '{record.column('model')}'; every line needs it"
                )
            name = str(_text(record, "model", required=True))
            if models is not None and name not in models:
                raise InputError(
                    f"{record.at('model')}: unknown model '{name}'; the study knows "
                    f"{', '.join(models)}"
                )
        if item_id not in item_ids:
            raise InputError(
                f"{record.at('item_id')}: unknown item '{item_id}'; import the items "
                "first (changeover import items FILE)"
            )
        key = (item_id, name)
        if key in seen:
            raise InputError(
                f"{record.at('item_id')}: a second response for item '{item_id}' and "
                f"model '{name}' (first at {seen[key].split(': ', 1)[1]}); one per item and model"
            )
        seen[key] = record.where
        response = record.values.get("response")
        if response is not None and not isinstance(response, str):
            raise InputError(
                f"{record.at('response')}: expected text, got {type(response).__name__}"
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
                f"{record.at('response')} is empty; give the response text, or the "
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


def _run_detail(
    table: str, path: str | Path, columns: Mapping[str, str] | None, sample: SampleSpec | None
) -> dict[str, Any]:
    detail: dict[str, Any] = {"table": table, "file": str(path)}
    if columns:
        detail["columns"] = dict(columns)
    if sample is not None:
        detail["sample"] = {
            "size": sample.size, "by": sample.by, "seed": sample.seed,
            "allocation": sample.allocation,
        }  # fmt: skip
    return detail


def import_items(
    workspace: Workspace,
    path: str | Path,
    study: Study,
    *,
    columns: Mapping[str, str] | None = None,
    sample: SampleSpec | None = None,
    weights_from_file: bool = False,
) -> FileImport:
    """Validate an items file completely, then add it in one transaction.

    With `weights_from_file` (and `sample`), the study's segments become the file's, weighted by
    their share of it, and the study file is rewritten with them after the import.
    """
    path = Path(path)
    if weights_from_file and sample is None:
        raise InputError("--write-weights: the weights come from a sample; add --sample N")
    segments = None if weights_from_file else study.segment_names
    items, table = _items(path, segments, columns=columns or {}, sample=sample)
    if weights_from_file:
        # The new study is checked before anything is written (a style guide may name a
        # segment the file does not have).
        new_text = _study_with_weights(study, table.shares)
        parse_study(yaml.safe_load(new_text), source=str(study.path), path=study.path)
    detail = _run_detail("items", path, columns, sample)
    with workspace.recorded_run("import", detail) as run:
        try:
            result = workspace.add_items(items, run_id=run.run_id)
        except InputError as error:
            raise InputError(f"{path}: {error}") from None
        run.detail.update(_as_detail(result))
    if weights_from_file:
        assert study.path is not None
        with replacing(study.path) as tmp:
            tmp.write_text(new_text, encoding="utf-8")
    return FileImport(result.added, result.unchanged, table.shares, table.rows)


def import_responses(
    workspace: Workspace,
    path: str | Path,
    study: Study,
    *,
    columns: Mapping[str, str] | None = None,
    sample: SampleSpec | None = None,
    model: str | None = None,
) -> FileImport:
    """Validate a responses file completely, then add it in one transaction. `model` names the
    model of every row (a production log of one model)."""
    if model is not None and model not in study.model_names:
        raise InputError(
            f"--model: unknown model '{model}'; the study knows {', '.join(study.model_names)}"
        )
    records = read_responses(
        path,
        models=study.model_names,
        item_ids=workspace.item_ids(),
        model=model,
        columns=columns,
        sample=sample,
    )
    if not records:
        raise InputError(f"{path}: no responses of model '{model}' in the file")
    detail = _run_detail("responses", path, columns, sample)
    with workspace.recorded_run("import", detail) as run:
        try:
            result = workspace.add_responses(records, run_id=run.run_id)
        except InputError as error:
            raise InputError(f"{path}: {error}") from None
        run.detail.update(_as_detail(result))
    return FileImport(result.added, result.unchanged)


def weights_from_shares(shares: Sequence[SegmentShare]) -> dict[str, int]:
    """The traffic weights a sample suggests: each segment's number of rows in the whole file."""
    return {share.segment: share.rows for share in shares}


def _study_with_weights(study: Study, shares: Sequence[SegmentShare]) -> str:
    """The study file's text with `segments:` replaced by the file's weights (the rest of the
    text, comments included, as it was)."""
    if study.path is None:
        raise StudyError("the study was not read from a file; cannot write weights into it")
    text = study.path.read_text(encoding="utf-8")
    root = yaml.compose(text)
    node = None
    if isinstance(root, yaml.MappingNode):
        node = next((v for k, v in root.value if getattr(k, "value", None) == "segments"), None)
    if node is None:
        raise StudyError(f"{study.path}: no top-level segments: to write the weights into")
    weights = ", ".join(f"{json.dumps(s)}: {n}" for s, n in weights_from_shares(shares).items())
    start, end = node.start_mark.index, node.end_mark.index
    tail = "\n" if text[start:end].endswith("\n") else ""
    return text[:start] + "{" + weights + "}" + tail + text[end:]


def _as_detail(result: ImportResult) -> Mapping[str, int]:
    return {"added": result.added, "unchanged": result.unchanged}


def _export_for_tool(workspace: Workspace, form: str, path: Path) -> int:
    if path.suffix.lower() not in {".jsonl", ".ndjson"}:
        raise InputError(f"{path}: the {form} form is JSONL; name the file .jsonl")
    records = tool_records(workspace, "inspect" if form == "inspect" else "promptfoo")
    try:
        with replacing(path) as tmp, tmp.open("w", encoding="utf-8") as handle:
            for record in records:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    except OSError as error:
        raise InputError(f"{path}: cannot write ({error.strerror})") from None
    return len(records)


def export_table(workspace: Workspace, table: str, path: str | Path) -> int:
    """Write a workspace table (or `rows`, the per-response rows for counts) to CSV, JSONL or
    Parquet, by the file's suffix, atomically. Returns the number of rows written."""
    path = Path(path)
    suffix = path.suffix.lower()
    if table in EXPORT_FORMATS:
        return _export_for_tool(workspace, table, path)
    if suffix not in {".csv", ".parquet", ".jsonl", ".ndjson"}:
        raise InputError(
            f"{path}: unsupported output type '{suffix}'; use .csv, .jsonl or .parquet"
        )
    if table == "rows":
        frame = workspace_rows(workspace)
    elif table in TABLES:
        frame = workspace.frame(table)
    else:
        raise InputError(
            f"unknown table '{table}'; export one of {', '.join((*TABLES, 'rows'))}, or "
            f"{' or '.join(EXPORT_FORMATS)} (responses, signals and labels in their fields)"
        )
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
