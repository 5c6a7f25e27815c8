"""Input files and CSV written safe for spreadsheets, read back exactly."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from changeover.files import csv_cell, from_csv_cell, read_frame, read_records, write_csv

HOSTILE = [
    '=HYPERLINK("http://x")',
    "+1+1",
    "-2+3",
    "@SUM(A1)",
    "\tstarts with a tab",
    "\rstarts with a return",
    "'=already quoted",
    "''+twice",
    "'plain quote",
    "- a markdown bullet",
    "plain text",
    "",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_a_cell_is_made_safe_and_read_back(text: str) -> None:
    safe = csv_cell(text)
    assert safe[:1] not in ("=", "+", "-", "@", "\t", "\r")
    assert from_csv_cell(safe) == text


def test_written_csv_is_safe_and_both_readers_give_it_back(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    frame = pl.DataFrame({"text": HOSTILE, "n": list(range(len(HOSTILE)))})
    write_csv(frame, path)
    raw = path.read_text(encoding="utf-8")
    cells = [line.lstrip('"') for line in raw.splitlines()[1:]]
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t")]
    assert "'=HYPERLINK" in raw and "'@SUM" in raw
    _, records = read_records(path, kind="test")
    assert [r.values["text"] for r in records] == HOSTILE
    read = read_frame(path, kind="test")
    assert read["text"].fill_null("").to_list() == HOSTILE
