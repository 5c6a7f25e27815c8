"""A reproducible stratified sample of a large file: `--sample N --by segment --seed S`.

A production log of millions of rows is scanned lazily (polars' streaming engine) twice: once to
count the rows of each segment, whose share of the file is the suggested traffic weight of the
segment, and once to keep the sampled rows. Which rows are sampled is decided by a key per row,
SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number generators", OOPSLA
2014) of the row's position and the seed: in each segment the rows with the smallest keys are
the sample, a uniform sample without replacement that depends only on the file, the seed and the
sample size (not on the polars version, the machine or how the file is read in chunks). The
second pass keeps only rows whose key is under a threshold set to let through a few more rows
than wanted, so memory holds the sample and never the file.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import polars as pl

from changeover.errors import InputError
from changeover.files import Record, from_csv_cell, scan_table

__all__ = [
    "Allocation",
    "SampleSpec",
    "SegmentShare",
    "TableSample",
    "allocate",
    "row_keys",
    "sample_table",
]

Allocation = Literal["equal", "proportional"]

_U64 = pl.UInt64
_GOLDEN = 0x9E3779B97F4A7C15
_ROW = "__changeover_row"
_KEY = "__changeover_key"


@dataclass(frozen=True)
class SampleSpec:
    """`--sample N --by COLUMN --seed S`: N rows, stratified by COLUMN.

    `allocation: equal` gives every segment the same number of rows (as many as it has, when
    fewer), which suits per-segment gates; `proportional` gives each its share of the file. The
    traffic weights of the study, not the sample, say how much each segment counts.
    """

    size: int
    by: str = "segment"
    seed: int = 0
    allocation: Allocation = "equal"


@dataclass(frozen=True)
class SegmentShare:
    """One segment of a sampled file: its rows, its share of the file (the suggested traffic
    weight) and how many of its rows were sampled."""

    segment: str
    rows: int
    share: float
    sampled: int


@dataclass(frozen=True)
class TableSample:
    """The sampled records of a file (in file order) and what the whole file held."""

    header: list[str]
    records: list[Record]
    shares: tuple[SegmentShare, ...]
    rows: int


def row_keys(rows: pl.Expr, seed: int) -> pl.Expr:
    """SplitMix64 of `rows + (seed + 1) * golden gamma` (wrapping 64-bit arithmetic): the sort
    key that decides which rows a seed samples."""
    offset = (_GOLDEN * (seed + 1)) % 2**64
    z = rows.cast(_U64) + pl.lit(offset, dtype=_U64)
    z = z.xor(z // (1 << 30)) * pl.lit(0xBF58476D1CE4E5B9, dtype=_U64)
    z = z.xor(z // (1 << 27)) * pl.lit(0x94D049BB133111EB, dtype=_U64)
    return z.xor(z // (1 << 31))


def allocate(sizes: Mapping[str, int], total: int, allocation: Allocation) -> dict[str, int]:
    """How many rows each segment gives to a sample of `total` rows (never more than it has)."""
    out: dict[str, int] = {}
    if allocation == "equal":
        left = total
        order = sorted(sizes, key=lambda s: (sizes[s], s))
        for i, segment in enumerate(order):
            out[segment] = min(sizes[segment], left // (len(order) - i))
            left -= out[segment]
        return {segment: out[segment] for segment in sizes}
    rows = sum(sizes.values())
    if total >= rows:
        return dict(sizes)
    quotas = {segment: total * n / rows for segment, n in sizes.items()}
    out = {segment: math.floor(q) for segment, q in quotas.items()}
    by_remainder = sorted(sizes, key=lambda s: (-(quotas[s] - out[s]), s))
    for segment in by_remainder[: total - sum(out.values())]:
        out[segment] += 1
    return out


def _threshold(wanted: int, rows: int, slack: float) -> int:
    """A key threshold that lets through about `wanted` rows of `rows` plus a margin of several
    standard deviations (`slack` widens it on the rare retry)."""
    if wanted >= rows:
        return 2**64 - 1
    expected = slack * (wanted + 6 * math.sqrt(wanted) + 20)
    return min(2**64 - 1, math.ceil(expected / rows * 2**64))


def sample_table(path: str | Path, spec: SampleSpec, *, kind: str) -> TableSample:
    """Draw the sample `spec` describes from a CSV, JSONL or Parquet file, streaming through it.

    `spec.by` names a column of the file. Raises InputError when the column is missing or empty
    in some row, or the sample size is not positive.
    """
    path = Path(path)
    if spec.size < 1:
        raise InputError(f"--sample: {spec.size} is not a sample size; give a number of rows >= 1")
    header, frame = scan_table(path, kind=kind)
    if spec.by not in header:
        raise InputError(
            f"{path}: --by {spec.by}: no such column; the file has {', '.join(header)}"
        )
    by = pl.col(spec.by).cast(pl.String)
    try:
        counted = (
            frame.group_by(by.alias("segment"))
            .agg(pl.len().alias("rows"))
            .collect(engine="streaming")
        )
    except pl.exceptions.PolarsError as error:
        raise InputError(f"{path}: cannot read {kind} file ({_first_line(error)})") from None
    found_sizes: dict[str | None, int] = dict(counted.sort("segment").iter_rows())
    missing = found_sizes.pop(None, 0) + found_sizes.pop("", 0)
    if missing:
        raise InputError(
            f"{path}: column {spec.by} is empty in {missing:,} rows; every sampled row needs a "
            f"{spec.by} (fill it, or filter those rows out first)"
        )
    sizes = {str(segment): int(n) for segment, n in found_sizes.items()}
    if not sizes:
        raise InputError(f"{path}: no rows in the file")
    wanted = allocate(sizes, spec.size, spec.allocation)
    numbered = frame.with_row_index(_ROW)
    slack = 1.0
    while True:
        limits = {s: _threshold(wanted[s], sizes[s], slack) for s in sizes}
        # The key is computed inside the filter: as a column of its own, polars 2.1 would not
        # stream the query and would hold the whole file in memory.
        below = row_keys(pl.col(_ROW), spec.seed) <= by.replace_strict(limits, return_dtype=_U64)
        try:
            # Copying the text (`+ ""`) lets the file's chunks go: a kept row would otherwise hold
            # its whole chunk of the file in memory through polars' string views.
            found = (
                numbered.filter(below)
                .with_columns(pl.col(pl.String) + pl.lit(""))
                .collect(engine="streaming")
            )
        except pl.exceptions.PolarsError as error:
            raise InputError(f"{path}: cannot read {kind} file ({_first_line(error)})") from None
        got = dict(found.group_by(by.alias("s")).len().iter_rows())
        if all(got.get(s, 0) >= wanted[s] for s in sizes):
            break
        slack *= 2  # a shortfall has a probability far below one in a million; widen and rescan
    chosen = (
        found.with_columns(by.alias("__segment"), row_keys(pl.col(_ROW), spec.seed).alias(_KEY))
        .sort(_KEY)
        .filter(
            pl.int_range(pl.len()).over("__segment") < pl.col("__segment").replace_strict(wanted)
        )
        .sort(_ROW)
    )
    is_csv = path.suffix.lower() == ".csv"
    records = []
    for row in chosen.drop("__segment", _KEY).iter_rows(named=True):
        number = row.pop(_ROW) + 1
        if is_csv:
            row = {k: from_csv_cell(v) if isinstance(v, str) else v for k, v in row.items()}
        records.append(Record(f"{path}: row {number}", row))
    rows = sum(sizes.values())
    shares = tuple(
        SegmentShare(segment, n, n / rows, wanted[segment])
        for segment, n in sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0]))
    )
    return TableSample(header, records, shares, rows)


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
