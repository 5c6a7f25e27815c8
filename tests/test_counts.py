from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest

from changeover import InputError, load_study, read_counts
from changeover.counts import COUNTS_SQL, counts_from_rows, read_rows, write_counts

HEADER = "dimension,model,segment,group,level,human,n\n"
GOOD = (
    "correctness,legacy,na,,pass,,100\n"
    "correctness,legacy,na,,pass,1,10\n"
    "refusal,cand-a,emea,answer,refused,0,3\n"
)


def _write(tmp_path: Path, body: str, name: str = "counts.csv") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + body)
    return path


def test_good_counts_are_typed(tmp_path: Path, study_file: Path) -> None:
    counts = read_counts(_write(tmp_path, GOOD), load_study(study_file))
    assert counts.columns == ["dimension", "model", "segment", "group", "level", "human", "n"]
    assert counts["human"].to_list() == [None, 1, 0]
    assert counts["n"].to_list() == [100, 10, 3]
    assert counts["group"].to_list() == ["", "", "answer"]


def test_parquet_counts_read_the_same(tmp_path: Path, study_file: Path) -> None:
    study = load_study(study_file)
    from_csv = read_counts(_write(tmp_path, GOOD), study)
    write_counts(from_csv, tmp_path / "c.parquet")
    assert read_counts(tmp_path / "c.parquet", study).equals(from_csv)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("correctness,gpt-9,na,,pass,,1\n", "line 2: column model: unknown model 'gpt-9'"),
        ("correctness,legacy,mars,,pass,,1\n", "line 2: column segment: unknown segment 'mars'"),
        (
            GOOD + "correctness,legacy,na,,pass,,-4\n",
            "line 5: column n: '-4' is not a non-negative",
        ),
        ("correctness,legacy,na,,pass,,2.5\n", "line 2: column n: '2.5' is not a non-negative"),
        ("correctness,legacy,na,,pass,,\n", "line 2: column n: '' is not"),
        ("correctness,legacy,na,,pass,yes,3\n", "line 2: column human: 'yes' is not a label"),
        ("correctness,legacy,na,,pass,2,3\n", "line 2: column human: '2' is not a label"),
        ("correctness,legacy,na,,,,3\n", "line 2: column level is empty"),
        (",legacy,na,,pass,,3\n", "line 2: column dimension is empty"),
    ],
)
def test_bad_counts_name_line_and_column(
    tmp_path: Path, study_file: Path, body: str, expected: str
) -> None:
    path = _write(tmp_path, body)
    with pytest.raises(InputError) as info:
        read_counts(path, load_study(study_file))
    assert str(info.value).startswith(str(path))
    assert expected in str(info.value)


def test_missing_and_unexpected_columns(tmp_path: Path, study_file: Path) -> None:
    study = load_study(study_file)
    path = tmp_path / "c.csv"
    path.write_text(
        "dimension,model,segment,group,level,human,count\ncorrectness,legacy,na,,p,,1\n"
    )
    with pytest.raises(InputError, match="missing column 'n'"):
        read_counts(path, study)
    path.write_text(HEADER.strip() + ",note\ncorrectness,legacy,na,,p,,1,x\n")
    with pytest.raises(InputError, match="unexpected column 'note'"):
        read_counts(path, study)


def test_malformed_and_missing_files(tmp_path: Path, study_file: Path) -> None:
    study = load_study(study_file)
    with pytest.raises(InputError, match="not found"):
        read_counts(tmp_path / "nope.csv", study)
    bad = tmp_path / "bad.parquet"
    bad.write_text("not parquet")
    with pytest.raises(InputError, match="cannot read counts file"):
        read_counts(bad, study)
    with pytest.raises(InputError, match="unsupported file type '.xlsx'"):
        read_counts(_write(tmp_path, GOOD, "c.xlsx"), study)


def test_duplicate_cells_are_summed_with_a_warning(tmp_path: Path, study_file: Path) -> None:
    body = GOOD + "correctness,legacy,na,,pass,,5\n"
    with pytest.warns(UserWarning, match="line 2: the same cell appears more than once"):
        counts = read_counts(_write(tmp_path, body), load_study(study_file))
    unlabelled = counts.filter(pl.col("human").is_null())
    assert unlabelled["n"].to_list() == [105]
    assert counts["n"].sum() == 118


def _rows(rng: np.random.Generator, n: int = 3000) -> pl.DataFrame:
    items = rng.integers(0, n // 3, n)
    return pl.DataFrame(
        {
            "item_id": [f"i{i}" for i in items],
            "model": rng.choice(["legacy", "cand-a"], n),
            "segment": [["na", "emea", "apac"][i % 3] for i in items],
            "group": ["" if i % 2 else "answer" for i in items],
            "dimension": rng.choice(["correctness", "refusal"], n),
            "level": [str(i % 5 + 1) for i in items],  # one level per item, model and dimension
            "human": [[None, None, None, 0, 1][i] for i in rng.integers(0, 5, n)],
        },
        schema_overrides={"human": pl.Int8},
    )


def test_rows_to_counts_takes_the_majority_and_reports_ties() -> None:
    rows = pl.DataFrame(
        {
            "item_id": ["a", "a", "a", "b", "b", "c", "d"],
            "model": ["legacy"] * 7,
            "segment": ["na"] * 7,
            "group": [""] * 7,
            "dimension": ["correctness"] * 7,
            "level": ["pass", "pass", "pass", "fail", "fail", "pass", "pass"],
            "human": [1, 1, 0, 1, 0, None, 1],
        },
        schema_overrides={"human": pl.Int8},
    )
    counts, summary = counts_from_rows(rows)
    cells = {(r["level"], r["human"]): r["n"] for r in counts.iter_rows(named=True)}
    assert cells == {("pass", 1): 2, ("fail", None): 1, ("pass", None): 1}
    assert summary.responses == 4 and summary.labelled == 3
    assert summary.multiply_labelled == 2 and summary.ties == 1
    assert summary.agreement == 0.0


def test_rows_with_two_levels_for_one_response_are_rejected() -> None:
    rows = pl.DataFrame(
        {
            "item_id": ["a", "a"],
            "model": ["m", "m"],
            "segment": ["na", "na"],
            "group": ["", ""],
            "dimension": ["d", "d"],
            "level": ["pass", "fail"],
            "human": [1, 0],
        },
        schema_overrides={"human": pl.Int8},
    )
    with pytest.raises(
        InputError, match="item 'a', model 'm', dimension 'd' has two different levels"
    ):
        counts_from_rows(rows)


def test_duckdb_sql_gives_exactly_the_same_counts(tmp_path: Path) -> None:
    rows = _rows(np.random.default_rng(3))
    path = tmp_path / "rows.parquet"
    rows.write_parquet(path)
    ours, _ = counts_from_rows(read_rows(path))
    con = duckdb.connect()
    con.execute(f"CREATE VIEW rows AS SELECT * FROM read_parquet('{path}')")
    theirs = con.sql(COUNTS_SQL).pl()
    assert isinstance(theirs, pl.DataFrame)
    theirs = theirs.with_columns(pl.col("human").cast(pl.Int8), pl.col("n").cast(pl.Int64))
    key = ["dimension", "model", "segment", "group", "level", "human"]
    assert ours.sort(key, nulls_last=True).equals(theirs.sort(key, nulls_last=True))
    assert ours["n"].sum() == rows.select("item_id", "model", "dimension").unique().height


def test_rows_file_missing_a_column(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_text("item_id,model,segment,dimension,level,human\n1,m,na,d,pass,1\n")
    with pytest.raises(InputError, match="missing column 'group'"):
        read_rows(path)


def test_categorical_rows_give_the_same_counts() -> None:
    rows = _rows(np.random.default_rng(4))
    as_text, _ = counts_from_rows(rows)
    categorical = rows.with_columns(
        pl.col("model", "segment", "group", "dimension", "level").cast(pl.Categorical)
    )
    as_categories, _ = counts_from_rows(categorical)
    assert as_categories.equals(as_text)
    assert as_categories.schema == as_text.schema
