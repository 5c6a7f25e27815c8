"""Stratified samples of large files: reproducible, stratified as asked, the same rows whatever
the file's format, and each segment's share of the whole file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from changeover.errors import InputError
from changeover.sampling import SampleSpec, allocate, row_keys, sample_table


def _log(n: int = 5000, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            "request_id": [f"r{i:05d}" for i in range(n)],
            "region": rng.choice(["na", "emea", "apac", "jp"], n, p=[0.5, 0.3, 0.15, 0.05]),
            "user_query": [f"question {i}" for i in range(n)],
        }
    )


def _splitmix64(x: int) -> int:
    """SplitMix64's output function, in Python's exact integers."""
    mask = 2**64 - 1
    z = x & mask
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
    return z ^ (z >> 31)


def test_the_key_is_splitmix64() -> None:
    # SplitMix64 seeded with 0 gives 0xE220A8397B1DCDAF first (Steele, Lea and Flood 2014).
    keys = pl.DataFrame({"row": [0, 1, 2**40]}).select(row_keys(pl.col("row"), 0))
    assert keys.item(0, 0) == 0xE220A8397B1DCDAF
    gamma = 0x9E3779B97F4A7C15
    for seed in (0, 3):
        got = pl.DataFrame({"row": [0, 1, 2**40]}).select(row_keys(pl.col("row"), seed))
        want = [_splitmix64(row + gamma * (seed + 1)) for row in (0, 1, 2**40)]
        assert got.to_series().to_list() == want


def test_allocation() -> None:
    sizes = {"na": 1000, "emea": 500, "jp": 3}
    assert allocate(sizes, 99, "equal") == {"na": 48, "emea": 48, "jp": 3}
    assert allocate(sizes, 100, "proportional") == {"na": 67, "emea": 33, "jp": 0}
    assert allocate(sizes, 5000, "equal") == sizes


def test_a_sample_is_stratified_reproducible_and_the_same_in_every_format(tmp_path: Path) -> None:
    log = _log()
    paths = [tmp_path / f"log.{suffix}" for suffix in ("csv", "parquet", "jsonl")]
    log.write_csv(paths[0])
    log.write_parquet(paths[1])
    log.write_ndjson(paths[2])
    spec = SampleSpec(200, by="region", seed=7)
    samples = [sample_table(path, spec, kind="items") for path in paths]
    ids = [[r.values["request_id"] for r in s.records] for s in samples]
    assert ids[0] == ids[1] == ids[2] and len(ids[0]) == 200
    assert ids[0] == sorted(ids[0])  # in file order
    by_region = pl.Series([r.values["region"] for r in samples[0].records]).value_counts()
    counts = dict(by_region.iter_rows())
    sizes = dict(log["region"].value_counts().iter_rows())
    assert counts == allocate(sizes, 200, "equal")
    shares = {s.segment: (s.rows, s.share, s.sampled) for s in samples[0].shares}
    assert shares["na"] == (sizes["na"], sizes["na"] / 5000, counts["na"])
    assert samples[0].rows == 5000
    assert samples[0].records[0].where.startswith(f"{paths[0]}: row ")
    again = sample_table(paths[1], spec, kind="items")
    assert [r.values["request_id"] for r in again.records] == ids[0]
    other = sample_table(paths[1], SampleSpec(200, by="region", seed=8), kind="items")
    assert [r.values["request_id"] for r in other.records] != ids[0]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (SampleSpec(10, by="country"), "--by country: no such column; the file has request_id"),
        (SampleSpec(0, by="region"), "--sample: 0 is not a sample size"),
        (SampleSpec(10, by="user_query_blank"), "column user_query_blank is empty in 2 rows"),
    ],
)
def test_bad_samples_are_named(tmp_path: Path, spec: SampleSpec, message: str) -> None:
    path = tmp_path / "log.csv"
    _log(50).with_columns(
        pl.when(pl.int_range(pl.len()) < 2)
        .then(None)
        .otherwise(pl.lit("x"))
        .alias("user_query_blank")
    ).write_csv(path)
    with pytest.raises(InputError, match=message.replace("(", r"\(")):
        sample_table(path, spec, kind="items")
