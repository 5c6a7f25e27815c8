"""The tables users give and take: CSV, JSONL and Parquet in, written atomically out.

One reader for every input file (items, responses, labels, queues, rows, counts): `read_records`
yields each record with where it is ("items.csv: line 4"), for errors that name the line;
`read_frame` reads a whole table as text columns, for the checks of large tables; `scan_table`
opens one lazily, for files of millions of rows that are only sampled or aggregated. `replacing`
writes through a temporary file, so that no command leaves a half-written file behind.

CSV cells are written safe for spreadsheets: a text cell that a spreadsheet would evaluate as a
formula (one beginning with `=`, `+`, `-`, `@`, a tab or a carriage return, after any number of
`'`) is written with one more `'` in front, and the readers here take it off again, so a file
that changeover writes reads back exactly (OWASP, "CSV Injection").
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from changeover.errors import InputError
from changeover.records import lone_surrogate

__all__ = [
    "Record",
    "csv_cell",
    "from_csv_cell",
    "parse_json",
    "read_frame",
    "read_records",
    "replacing",
    "scan_table",
    "write_csv",
]

_FORMULA = r"^'*[=+\-@\t\r]"
_IS_FORMULA = re.compile(_FORMULA)


# A CSV cell may hold a long response: the csv module's default limit (128 KiB) would refuse what
# JSONL and Parquet take.
csv.field_size_limit(256 * 1024 * 1024)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number (JSON has no NaN or Infinity)")


def parse_json(text: str, where: str) -> Any:
    """JSON from a user's file, or an InputError naming `where` ("items.jsonl: line 4"): invalid
    JSON, NaN or Infinity, nesting too deep to read, or a lone surrogate (`"\\ud800"`)."""
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as error:
        # A file of one JSON value gets its line; a JSONL record names its own line already.
        line = "" if " line " in where else f" line {error.lineno}:"
        raise InputError(
            f"{where}:{line} column {error.colno}: invalid JSON ({error.msg})"
        ) from None
    except ValueError as error:
        raise InputError(f"{where}: {error}") from None
    except RecursionError:
        raise InputError(f"{where}: the JSON is nested too deeply to read; flatten it") from None
    if (key := lone_surrogate(value)) is not None:
        raise InputError(
            f"{where}: {key}: holds a lone surrogate (an escape such as \\ud800 with no pair), "
            "which is not text; fix the text"
        )
    return value


def _not_a_file(path: Path, kind: str) -> InputError:
    if path.is_dir():
        return InputError(f"{path}: is a folder; give the {kind} file")
    return InputError(f"{path}: {kind} file not found")


def csv_cell(text: str) -> str:
    """A text cell as changeover writes it to CSV: one more `'` in front of what a spreadsheet
    would take for a formula."""
    return "'" + text if _IS_FORMULA.match(text) else text


def from_csv_cell(text: str) -> str:
    """The cell `csv_cell` wrote: its inverse (a cell it did not change is returned as is)."""
    return text[1:] if text.startswith("'") and _IS_FORMULA.match(text[1:]) else text


def _safe_strings(frame: pl.DataFrame) -> pl.DataFrame:
    text = [name for name, kind in frame.schema.items() if kind == pl.String]
    return frame.with_columns(
        pl.when(pl.col(name).str.contains(_FORMULA))
        .then(pl.lit("'") + pl.col(name))
        .otherwise(pl.col(name))
        .alias(name)
        for name in text
    )


def write_csv(frame: pl.DataFrame, path: Path) -> None:
    """Write a table as CSV with its text cells safe for spreadsheets (`csv_cell`)."""
    _safe_strings(frame).write_csv(path)


@dataclass(frozen=True)
class Record:
    """One record of an input file, with where it is (for error messages)."""

    where: str  # "items.csv: line 4" or "items.parquet: row 3"
    values: dict[str, Any]
    aliases: Mapping[str, str] = field(default_factory=dict)
    """The file's own name of a renamed column (`--map prompt=user_query`: prompt -> user_query)."""

    def column(self, name: str) -> str:
        """A column as the user knows it: "prompt", or "user_query (mapped to prompt)"."""
        own = self.aliases.get(name)
        return name if own is None else f"{own} (mapped to {name})"

    def at(self, name: str) -> str:
        """Where a value is, for an error: "items.csv: line 4: column user_query (mapped to
        prompt)"."""
        return f"{self.where}: column {self.column(name)}"

    def renamed(self, columns: Mapping[str, str]) -> Record:
        """This record with the file's columns renamed to changeover's (`columns`: changeover's
        name -> the file's); a file column of a mapped name is replaced by the mapped one."""
        if not columns:
            return self
        values = {k: v for k, v in self.values.items() if k not in columns}
        for name, own in columns.items():
            if own in self.values:
                values[name] = self.values[own]
        for own in set(columns.values()) - set(columns):
            values.pop(own, None)
        return Record(self.where, values, dict(columns))


def _csv_records(path: Path) -> tuple[list[str], Iterator[Record]]:
    handle = path.open(newline="", encoding="utf-8-sig")
    reader = csv.reader(handle, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        handle.close()
        raise InputError(f"{path}: the file is empty; expected a header line") from None
    except UnicodeDecodeError:
        handle.close()
        raise InputError(f"{path}: line 1: not UTF-8 text; save the file as UTF-8") from None
    except csv.Error as error:
        handle.close()
        raise InputError(f"{path}: line 1: cannot read the header ({error})") from None
    header = [name.strip() for name in header]

    def records() -> Iterator[Record]:
        with handle:
            line = reader.line_num + 1
            while True:
                try:
                    row = next(reader)
                except StopIteration:
                    return
                except csv.Error as error:
                    raise InputError(f"{path}: line {line}: malformed CSV ({error})") from None
                except UnicodeDecodeError:
                    raise InputError(
                        f"{path}: near line {line}: not UTF-8 text; save the file as UTF-8"
                    ) from None
                if row:  # csv yields [] for a blank line
                    if len(row) != len(header):
                        raise InputError(
                            f"{path}: line {line}: {len(row)} fields where the header has "
                            f"{len(header)}; quote values that contain commas"
                        )
                    values = (from_csv_cell(value) for value in row)
                    yield Record(f"{path}: line {line}", dict(zip(header, values, strict=True)))
                line = reader.line_num + 1

    return header, records()


def _jsonl_records(path: Path) -> tuple[list[str] | None, Iterator[Record]]:
    def records() -> Iterator[Record]:
        with path.open(encoding="utf-8-sig") as handle:
            number = 0
            while True:
                number += 1
                try:
                    text = handle.readline()
                except UnicodeDecodeError:
                    raise InputError(
                        f"{path}: line {number}: not UTF-8 text; save the file as UTF-8"
                    ) from None
                if not text:
                    return
                if not text.strip():
                    continue
                value = parse_json(text, f"{path}: line {number}")
                if not isinstance(value, dict):
                    raise InputError(
                        f"{path}: line {number}: expected a JSON object per line, got "
                        f"{type(value).__name__}"
                    )
                yield Record(f"{path}: line {number}", value)

    return None, records()


def _parquet_records(path: Path) -> tuple[list[str], Iterator[Record]]:
    try:
        frame = pl.read_parquet(path)
    except (pl.exceptions.PolarsError, OSError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InputError(f"{path}: cannot read Parquet ({first})") from None

    def records() -> Iterator[Record]:
        for number, row in enumerate(frame.iter_rows(named=True), start=1):
            yield Record(f"{path}: row {number}", row)

    return frame.columns, records()


def read_records(path: str | Path, *, kind: str) -> tuple[list[str] | None, Iterator[Record]]:
    """Open a CSV, JSONL or Parquet file as (header, records). JSONL has no header (None)."""
    path = Path(path)
    if not path.is_file():
        raise _not_a_file(path, kind)
    suffix = path.suffix.lower()
    # Records are read completely (and the file closed) before any is checked: an import is
    # all or nothing anyway.
    if suffix == ".csv":
        header, records = _csv_records(path)
        return header, iter(list(records))
    if suffix in {".jsonl", ".ndjson"}:
        header_or_none, records = _jsonl_records(path)
        return header_or_none, iter(list(records))
    if suffix == ".parquet":
        return _parquet_records(path)
    raise InputError(f"{path}: unsupported file type '{suffix}'; use .csv, .jsonl or .parquet")


def read_frame(path: Path, *, kind: str) -> pl.DataFrame:
    """Read CSV, JSONL or Parquet with every column as text, so that values are checked by us."""
    if not path.is_file():
        raise _not_a_file(path, kind)
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            frame = pl.read_csv(path, infer_schema=False)
            return frame.with_columns(
                pl.when(pl.col(name).str.contains(r"^'" + _FORMULA[1:]))
                .then(pl.col(name).str.slice(1))
                .otherwise(pl.col(name))
                for name in frame.columns
            )
        if suffix == ".parquet":
            frame = pl.read_parquet(path)
            return frame.with_columns(pl.all().cast(pl.String))
        if suffix in {".jsonl", ".ndjson"}:
            frame = pl.read_ndjson(path, infer_schema_length=None)
            return frame.with_columns(pl.all().cast(pl.String))
    except (pl.exceptions.PolarsError, OSError, UnicodeDecodeError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InputError(f"{path}: cannot read {kind} file ({first}); check its format") from None
    raise InputError(f"{path}: unsupported file type '{suffix}'; use .csv, .parquet or .jsonl")


def _scan(path: Path, suffix: str) -> pl.LazyFrame:
    if suffix == ".csv":
        return pl.scan_csv(path, infer_schema=False)
    if suffix == ".parquet":
        return pl.scan_parquet(path)
    return pl.scan_ndjson(path, infer_schema_length=10_000)


def scan_table(path: Path, *, kind: str) -> tuple[list[str], pl.LazyFrame]:
    """A CSV, JSONL or Parquet file opened lazily, for queries that stream through it in bounded
    memory: its column names, and the scan. CSV columns are all text (as `read_records` reads
    them); JSONL and Parquet keep their types."""
    if not path.is_file():
        raise InputError(f"{path}: {kind} file not found")
    suffix = path.suffix.lower()
    if suffix not in {".csv", ".parquet", ".jsonl", ".ndjson"}:
        raise InputError(f"{path}: unsupported file type '{suffix}'; use .csv, .jsonl or .parquet")
    try:
        # The schema is read from a scan of its own: in polars 2.1 a scan whose schema was
        # collected is no longer streamed, and would be read into memory whole.
        header = _scan(path, suffix).collect_schema().names()
    except (pl.exceptions.PolarsError, OSError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InputError(f"{path}: cannot read {kind} file ({first}); check its format") from None
    return header, _scan(path, suffix)


@contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A temporary file beside `path` that replaces it only if the block succeeds: a failed or
    interrupted write never leaves a half-written file, nor touches one already there."""
    if not path.parent.is_dir():
        raise InputError(f"{path}: folder {path.parent} does not exist; create it first")
    if path.is_dir():
        raise InputError(f"{path}: is a folder; name a file to write")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
