"""`changeover agreement`: agreement between annotators, per dimension."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from changeover.agreement import agreement
from changeover.annotate import read_labels
from changeover.cli.app import LABEL, StudyOption, app, console
from changeover.study import load_study
from changeover.workspace import open_workspace


def _format(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


@app.command(name="agreement", rich_help_panel=LABEL)
def agreement_command(study_path: StudyOption = Path("study.yaml")) -> None:
    """Agreement between annotators per dimension: Cohen's kappa, Krippendorff's alpha."""
    study = load_study(study_path)
    with open_workspace(study.workspace_path) as workspace:
        results = agreement(read_labels(workspace))
    table = Table(title="agreement between annotators", title_justify="left")
    for column in ("dimension", "responses", "agree", "Cohen's kappa", "Krippendorff's alpha"):
        table.add_column(column, justify="left" if column == "dimension" else "right")
    for row in results:
        agree = "n/a" if row.pairs_agreeing is None else f"{row.pairs_agreeing:.1%}"
        table.add_row(
            row.dimension, f"{row.responses:,}", agree,
            _format(row.cohen_kappa), _format(row.krippendorff_alpha),
        )  # fmt: skip
    console.print(table)
    if all(row.responses < 2 for row in results):
        console.print(
            "too few responses with two labels to measure agreement; queue some for a second "
            "annotator (`changeover queue --random N --overlap K`)"
        )
