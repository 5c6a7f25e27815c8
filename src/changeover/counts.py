"""Counts: the engine's input, and the seam where changeover scales past one machine.

A counts table has one row per (dimension, model, segment, group, level, human) cell and the number
of responses `n` in it (DESIGN.md, "Counts"). The workspace produces it; a team whose evaluation
logs live in a warehouse produces it with the SQL in `COUNTS_SQL` (`COUNTS_SPARK_SQL` on Spark)
and passes the file to `changeover fit --counts`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import polars as pl

from changeover.annotate.labels import read_labels
from changeover.calibrate.blocks import COUNTS_COLUMNS
from changeover.calibrate.operations import MEASUREMENT_COLUMNS
from changeover.errors import InputError
from changeover.files import read_frame, replacing, write_csv
from changeover.signals.compute import LEVEL_SEPARATOR
from changeover.study import Study, dimension_group
from changeover.workspace import Workspace

__all__ = [
    "COUNTS_COLUMNS",
    "COUNTS_SPARK_SQL",
    "COUNTS_SQL",
    "ROWS_COLUMNS",
    "RowsSummary",
    "counts_from_rows",
    "counts_sql",
    "read_counts",
    "read_measurements",
    "read_rows",
    "validate_counts",
    "workspace_rows",
    "write_counts",
]

ROWS_COLUMNS = ("item_id", "model", "segment", "group", "dimension", "level", "human")
_KEYS = ("dimension", "model", "segment", "group", "level", "human")


def counts_sql(dialect: Literal["ansi", "spark"] = "ansi", *, table: str = "rows") -> str:
    """The aggregation of `counts_from_rows` as one SQL query over a rows table: `ansi` quotes
    the column `group` (a reserved word) with double quotes (DuckDB, PostgreSQL, Snowflake),
    `spark` with backticks (Spark SQL, Databricks, BigQuery). Plain GROUP BY and ORDER BY
    lists, so that it runs on every engine."""
    group = "`group`" if dialect == "spark" else '"group"'
    return f"""\
-- One row per (item, model, dimension) response; several rows when several people labelled it.
-- Majority of the human labels; a tie counts as unlabelled.
WITH responses AS (
    SELECT dimension, model, segment, COALESCE({group}, '') AS {group}, item_id,
           MIN(level) AS level,
           COUNT(human) AS n_labels,
           SUM(CAST(human AS INTEGER)) AS n_pass
    FROM {table}
    GROUP BY dimension, model, segment, COALESCE({group}, ''), item_id
),
decided AS (
    SELECT dimension, model, segment, {group}, level,
           CASE WHEN n_labels = 0 OR 2 * n_pass = n_labels THEN NULL
                WHEN 2 * n_pass > n_labels THEN 1 ELSE 0 END AS human
    FROM responses
)
SELECT dimension, model, segment, {group}, level, human, COUNT(*) AS n
FROM decided
GROUP BY dimension, model, segment, {group}, level, human
ORDER BY dimension, model, segment, {group}, level, human
"""


#: The counts query for DuckDB and other engines that quote with double quotes.
COUNTS_SQL = counts_sql("ansi")
#: The same query for Spark SQL (`changeover.spark.counts_on_spark` runs it).
COUNTS_SPARK_SQL = counts_sql("spark")


def _check_columns(frame: pl.DataFrame, expected: tuple[str, ...], source: str) -> None:
    for column in expected:
        if column not in frame.columns:
            raise InputError(
                f"{source}: missing column '{column}'; expected columns {', '.join(expected)}"
            )
    extra = [c for c in frame.columns if c not in expected]
    if extra:
        raise InputError(
            f"{source}: unexpected column '{extra[0]}'; expected exactly {', '.join(expected)}"
        )


def _first_bad(frame: pl.DataFrame, bad: pl.Expr) -> int | None:
    """Index (0-based) of the first row where `bad` holds."""
    hits = frame.select(pl.arg_where(bad.fill_null(False)).first()).item()
    return None if hits is None else int(hits)


def _row_label(source: str, index: int, *, header: bool) -> str:
    # For text files the header is line 1, so data row i is on line i + 2.
    return f"{source}: line {index + 2}" if header else f"{source}: row {index + 1}"


def _check_names(
    frame: pl.DataFrame, column: str, known: list[str], source: str, header: bool, what: str
) -> None:
    index = _first_bad(frame, ~pl.col(column).is_in(known))
    if index is not None:
        value = frame[column][index]
        raise InputError(
            f"{_row_label(source, index, header=header)}: column {column}: unknown {what} "
            f"'{value}'; the study knows {', '.join(known)}"
        )


def _check_human(frame: pl.DataFrame, source: str, header: bool) -> pl.Expr:
    human = pl.col("human").str.strip_chars()
    index = _first_bad(frame, ~(human.is_null() | human.is_in(["", "0", "1"])))
    if index is not None:
        raise InputError(
            f"{_row_label(source, index, header=header)}: column human: '{frame['human'][index]}' "
            "is not a label; use 1 (pass), 0 (fail) or leave it empty for unlabelled"
        )
    return pl.when(human.is_null() | (human == "")).then(None).otherwise(human).cast(pl.Int8)


def _check_not_empty(frame: pl.DataFrame, column: str, source: str, header: bool) -> None:
    value = pl.col(column).str.strip_chars()
    index = _first_bad(frame, value.is_null() | (value == ""))
    if index is not None:
        raise InputError(
            f"{_row_label(source, index, header=header)}: column {column} is empty; every row "
            f"needs a {column}"
        )


def validate_counts(frame: pl.DataFrame, study: Study, *, source: str = "counts") -> pl.DataFrame:
    """Check a counts table (all columns as text) against the study and return it typed.

    Duplicate cells are summed, with a warning, because a warehouse export split over several
    files legitimately repeats cells.
    """
    header = not source.endswith(".parquet")
    _check_columns(frame, COUNTS_COLUMNS, source)
    frame = frame.with_columns(pl.col(c).cast(pl.String) for c in COUNTS_COLUMNS)
    for column in ("dimension", "model", "segment", "level"):
        _check_not_empty(frame, column, source, header)
    _check_names(frame, "model", study.model_names, source, header, "model")
    _check_names(frame, "segment", study.segment_names, source, header, "segment")
    human = _check_human(frame, source, header)
    n_text = pl.col("n").str.strip_chars()
    # A count beyond int64 matches the pattern but does not cast: also not a count.
    counted = n_text.cast(pl.Int64, strict=False)
    not_count = n_text.is_null() | ~n_text.str.contains(r"^\+?[0-9]+$") | counted.is_null()
    index = _first_bad(frame, not_count)
    if index is not None:
        raise InputError(
            f"{_row_label(source, index, header=header)}: column n: '{frame['n'][index] or ''}' is "
            "not a non-negative integer count"
        )
    typed = frame.with_columns(
        pl.col("dimension", "model", "segment", "level").str.strip_chars(),
        pl.col("group").str.strip_chars().fill_null(""),
        human.alias("human"),
        counted.alias("n"),
    )
    if typed.height and typed.select(pl.struct(_KEYS).is_duplicated().any()).item():
        index = _first_bad(typed, pl.struct(_KEYS).is_duplicated())
        assert index is not None
        warnings.warn(
            f"{_row_label(source, index, header=header)}: the same cell appears more than once; "
            "duplicate cells are summed",
            stacklevel=2,
        )
        typed = typed.group_by(_KEYS, maintain_order=True).agg(pl.col("n").sum())
    if study.dimensions is not None:
        _check_names(typed, "dimension", study.dimensions, source, header, "dimension")
    if typed.height == 0:
        raise InputError(f"{source}: no counts in the file, only its header; nothing to fit")
    return typed.select(COUNTS_COLUMNS)


def read_counts(path: str | Path, study: Study) -> pl.DataFrame:
    """Read and validate a counts file (CSV or Parquet)."""
    path = Path(path)
    return validate_counts(read_frame(path, kind="counts"), study, source=str(path))


def read_measurements(path: str | Path, study: Study) -> pl.DataFrame:
    """Read and validate a file of per-response cost and latency (CSV, JSONL or Parquet):
    `item_id, model, segment` and `cost` (US dollars) and/or `latency_s` (seconds), one row per
    response, a value left empty where unknown. What `fit --counts` decides the gates on cost
    and latency from (docs/engine.md, *Cost and latency*)."""
    path = Path(path)
    source = str(path)
    frame = read_frame(path, kind="measurements")
    header = not source.endswith(".parquet")
    values = [c for c in ("cost", "latency_s") if c in frame.columns]
    if not values:
        raise InputError(
            f"{source}: no column cost or latency_s; give one or both (expected columns "
            f"{', '.join(MEASUREMENT_COLUMNS)})"
        )
    _check_columns(frame, ("item_id", "model", "segment", *values), source)
    for column in ("item_id", "model", "segment"):
        _check_not_empty(frame, column, source, header)
    _check_names(frame, "model", study.model_names, source, header, "model")
    _check_names(frame, "segment", study.segment_names, source, header, "segment")
    typed = frame.with_columns(pl.col("item_id", "model", "segment").str.strip_chars())
    for column in values:
        text = pl.col(column).str.strip_chars()
        number = text.cast(pl.Float64, strict=False)
        given = text.is_not_null() & (text != "")
        bad = given & (number.is_null() | number.is_nan() | number.is_infinite() | (number < 0))
        index = _first_bad(typed, bad)
        if index is not None:
            unit = "US dollars" if column == "cost" else "seconds"
            raise InputError(
                f"{_row_label(source, index, header=header)}: column {column}: "
                f"'{frame[column][index]}' is not a number of {unit} (>= 0); leave it empty "
                "where unknown"
            )
        typed = typed.with_columns(pl.when(given).then(number).otherwise(None).alias(column))
    for column in ("cost", "latency_s"):
        if column not in values:
            typed = typed.with_columns(pl.lit(None, dtype=pl.Float64).alias(column))
    index = _first_bad(typed, ~pl.struct("item_id", "model").is_first_distinct())
    if index is not None:
        raise InputError(
            f"{_row_label(source, index, header=header)}: item '{typed['item_id'][index]}' of "
            f"model '{typed['model'][index]}' appears twice; one row per response"
        )
    if typed.height == 0:
        raise InputError(f"{source}: no rows in the file, only its header; nothing to measure")
    return typed.select(MEASUREMENT_COLUMNS)


def write_counts(counts: pl.DataFrame, path: str | Path) -> None:
    """Write a counts table atomically (CSV or Parquet, by suffix)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in {".csv", ".parquet"}:
        raise InputError(f"{path}: unsupported output type '{suffix}'; use .csv or .parquet")
    with replacing(path) as tmp:
        if suffix == ".csv":
            write_csv(counts, tmp)
        else:
            counts.write_parquet(tmp)


@dataclass(frozen=True)
class RowsSummary:
    """What aggregating per-response rows found about the human labels."""

    responses: int
    labelled: int
    multiply_labelled: int
    ties: int
    agreement: float | None  # share of multiply-labelled responses whose labels all agree


def read_rows(path: str | Path) -> pl.LazyFrame:
    """Open a per-response rows file lazily (Parquet is scanned, not loaded)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if not path.is_file():
        raise InputError(
            f"{path}: is a folder; give the rows file"
            if path.is_dir()
            else f"{path}: rows file not found"
        )
    if suffix == ".parquet":
        try:
            pl.read_parquet_schema(path)  # the footer: a corrupt file fails here, not mid-count
        except (pl.exceptions.PolarsError, OSError) as error:
            first = (
                str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            )
            raise InputError(f"{path}: cannot read Parquet ({first})") from None
        frame = pl.scan_parquet(path)
    else:
        frame = read_frame(path, kind="rows").lazy()
    columns = frame.collect_schema().names()
    for column in ROWS_COLUMNS:
        if column not in columns:
            raise InputError(
                f"{path}: missing column '{column}'; expected columns {', '.join(ROWS_COLUMNS)}"
            )
    return frame.select(ROWS_COLUMNS)


def feeding_signal(
    dimension: str, names: Sequence[str], signal_for: Mapping[str, str] | None = None
) -> str:
    """The signal whose levels feed `dimension`: the one chosen in `signal_for`, the only one, or
    the one that combines all the others (`changeover score` stores the cross product of a
    dimension's signals as "a|b")."""
    if signal_for is not None and dimension in signal_for:
        return signal_for[dimension]
    if len(names) == 1:
        return names[0]
    single = {name for name in names if LEVEL_SEPARATOR not in name}
    combined = [
        name
        for name in names
        if LEVEL_SEPARATOR in name and set(name.split(LEVEL_SEPARATOR)) == single
    ]
    if len(combined) == 1:
        return combined[0]
    raise InputError(
        f"dimension '{dimension}' has several signals ({', '.join(names)}); say which one feeds it"
    )


def workspace_rows(
    workspace: Workspace, *, signal_for: Mapping[str, str] | None = None
) -> pl.DataFrame:
    """The workspace's per-response rows for `counts_from_rows`.

    Columns `item_id, model, segment, group, dimension, level, human`: one row per response,
    dimension and human label (one row with `human` null when unlabelled). Which responses
    inform which dimension, and in which group, is `changeover.study.dimension_group`; error
    rows are left out. `signal_for` picks the signal that feeds a dimension where it has several
    and none of them combines all the others (`feeding_signal`).
    """
    parts = []
    for dimension, names in workspace.signals_by_dimension().items():
        rows = workspace.signal_rows(dimension, feeding_signal(dimension, names, signal_for))
        groups = [dimension_group(dimension, e) for e in rows["expected_behaviour"]]
        parts.append(rows.with_columns(pl.Series("group", groups, dtype=pl.String)))
    schema = {name: pl.String for name in ROWS_COLUMNS} | {"human": pl.Int8}
    if not parts:
        return pl.DataFrame(schema=schema)
    signals = pl.concat(parts).filter(pl.col("group").is_not_null()).with_row_index("order")
    keys = ["item_id", "model", "dimension"]
    labels = pl.DataFrame(
        [(r.item_id, r.model, r.dimension, r.label) for r in read_labels(workspace)],
        schema={"item_id": pl.String, "model": pl.String, "dimension": pl.String, "human": pl.Int8},
        orient="row",
    )
    joined = signals.join(labels, on=keys, how="left", maintain_order="left")
    return joined.sort("order").select(ROWS_COLUMNS).cast(pl.Schema(schema))


def counts_from_rows(
    rows: pl.LazyFrame | pl.DataFrame, *, source: str = "rows"
) -> tuple[pl.DataFrame, RowsSummary]:
    """Aggregate per-response rows into counts, taking the majority of several human labels.

    A response is (item_id, model, dimension); several rows for one response are several human
    labels of it. A tie between labels counts as unlabelled. The logic equals `COUNTS_SQL`.
    """
    lazy = rows.lazy()
    schema = lazy.collect_schema()
    human = pl.col("human")
    if schema["human"] == pl.String:
        human = pl.when(human.str.strip_chars() == "").then(None).otherwise(human.str.strip_chars())
    lazy = lazy.with_columns(
        pl.col("group").fill_null(""),
        human.cast(pl.Int8, strict=False).alias("human_int"),
        human.is_not_null().alias("has_label"),
    )
    bad_label = lazy.filter(
        pl.col("has_label") & ~pl.col("human_int").is_in([0, 1]).fill_null(False)
    )
    first_bad = bad_label.select(pl.col("human").cast(pl.String)).head(1).collect()
    if first_bad.height:
        raise InputError(
            f"{source}: column human: '{first_bad.item()}' is not a label; use 1, 0 or empty"
        )
    # Keys keep their own type (categorical columns stay categorical) until the small result.
    responses = lazy.group_by("dimension", "model", "segment", "group", "item_id").agg(
        pl.col("level").min().alias("level"),
        pl.col("level").max().alias("level_max"),
        pl.col("human_int").count().alias("n_labels"),
        pl.col("human_int").cast(pl.Int32).sum().alias("n_pass"),
    )
    majority = (
        pl.when((pl.col("n_labels") == 0) | (2 * pl.col("n_pass") == pl.col("n_labels")))
        .then(None)
        .when(2 * pl.col("n_pass") > pl.col("n_labels"))
        .then(1)
        .otherwise(0)
        .cast(pl.Int8)
    )
    labels, passes = pl.col("n_labels"), pl.col("n_pass")
    counts, conflict, totals = pl.collect_all(
        [
            responses.with_columns(majority.alias("human"))
            .group_by(_KEYS)
            .agg(pl.len().cast(pl.Int64).alias("n")),
            responses.filter(pl.col("level") != pl.col("level_max")).head(1),
            responses.select(
                pl.len().alias("responses"),
                (labels > 0).sum().alias("labelled"),
                (labels > 1).sum().alias("multi"),
                ((labels > 1) & (2 * passes == labels)).sum().alias("ties"),
                ((labels > 1) & ((passes == 0) | (passes == labels))).sum().alias("agree"),
            ),
        ]
    )
    if conflict.height:
        row = conflict.row(0, named=True)
        raise InputError(
            f"{source}: item '{row['item_id']}', model '{row['model']}', dimension "
            f"'{row['dimension']}' has two different levels ('{row['level']}' and "
            f"'{row['level_max']}'); one response has one signal level"
        )
    counts = (
        counts.with_columns(pl.col(c).cast(pl.String) for c in _KEYS if c != "human")
        .sort(_KEYS, nulls_last=False)
        .select(COUNTS_COLUMNS)
    )
    t = totals.row(0, named=True)
    summary = RowsSummary(
        responses=int(t["responses"]),
        labelled=int(t["labelled"]),
        multiply_labelled=int(t["multi"]),
        ties=int(t["ties"]),
        agreement=t["agree"] / t["multi"] if t["multi"] else None,
    )
    return counts, summary
