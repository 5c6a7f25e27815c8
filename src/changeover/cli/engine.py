"""Engine commands: `counts` (rows to counts) and `fit` (counts to verdicts)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from changeover.cli.app import app, console
from changeover.counts import counts_from_rows, read_rows, write_counts


@app.command()
def counts(
    rows: Annotated[Path, typer.Option(help="Per-response rows: item_id, model, segment, group, "
                                       "dimension, level, human (CSV, JSONL or Parquet).")],
    out: Annotated[Path, typer.Option(help="Where to write the counts (.csv or .parquet).")],
) -> None:
    """Aggregate per-response rows (one per item, model, dimension) into a counts table."""
    table, summary = counts_from_rows(read_rows(rows), source=str(rows))
    write_counts(table, out)
    console.print(
        f"{summary.responses:,} responses, {summary.labelled:,} labelled → {table.height:,} cells "
        f"written to {out}"
    )
    if summary.multiply_labelled:
        agreement = "n/a" if summary.agreement is None else f"{summary.agreement:.1%}"
        console.print(
            f"{summary.multiply_labelled:,} responses have several labels: majority taken, "
            f"{summary.ties:,} ties counted as unlabelled, agreement {agreement}"
        )
