"""Issue 13, item 6: user text (model, segment, gate, signal names, reasons, response text) is
shown literally by every renderer: Rich markup, Matplotlib mathtext, HTML and Markdown."""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from changeover.calibrate.blocks import Block
from changeover.calibrate.decide import decide
from changeover.calibrate.diagnostics import Diagnostics
from changeover.calibrate.posterior import Draws
from changeover.report.document import Example, RegionExamples, ReportDocument, build_document
from changeover.report.html import render_html
from changeover.report.markdown import render_markdown
from changeover.report.terminal import print_document
from changeover.study import parse_study
from tests.fakes.studies import CHANGEOVER

HOSTILE = "[/x]<script>alert(1)</script>$\\frac$|[link=http://evil.example]c*d_`e`"
SEGMENT = "[bold]na|<i>x</i>"
GATE = "g[/red]<b>$x$</b>"
SIGNAL = "overlap"  # signal names are words (the study checks them)

STUDY = {
    "incumbent": "legacy",
    "candidates": [HOSTILE],
    "segments": {SEGMENT: 3, "emea": 1},
    "signals": {SIGNAL: {"kind": "reference", "metric": "exact_match"}},
    "gates": [{"name": GATE, "dimension": "correctness", "better": "higher", "margin": 0.02,
               "scope": "both"}],
}  # fmt: skip


@pytest.fixture(scope="module")
def document() -> ReportDocument:
    """A decided study whose every name is hostile, with an example response as hostile."""
    study = parse_study(STUDY)
    models, segments, levels = ("legacy", HOSTILE), (SEGMENT, "emea"), ("match", "no_match")
    rng = np.random.default_rng(0)
    theta = np.array([[0.8, 0.8], [0.7, 0.8]])[None] + rng.normal(0, 0.01, (2000, 2, 2))
    n = np.ones((2, 2, 2))
    block = Block("correctness", "", models, segments, levels, n * 10, n, n)
    given = np.full((2000, 2, 2), 0.5)
    draws = Draws([block], {block.key: theta}, {block.key: given}, {block.key: given},
                  Diagnostics(1.0, 1000.0, 0, 2, 1000))  # fmt: skip
    result = decide(study, draws)
    assert result.candidates[HOSTILE].verdict == "not-ready"
    example = Example(item_id="<i>q1</i>", prompt=HOSTILE, response="<script>x</script>",
                      level="no_match", human=0, why="worst")  # fmt: skip
    region = RegionExamples(gate=GATE, candidate=HOSTILE, segment=SEGMENT, probability=0.0,
                            state="failed", examples=[example])  # fmt: skip
    return build_document(study, result, [block], examples=[region])


def test_html_escapes_every_name_and_survives_mathtext(document: ReportDocument) -> None:
    html = render_html(document)  # "$\frac$" in a tick label must not crash Matplotlib
    assert "<script>" not in html and "<b>" not in html and "<i>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "[link=http://evil.example]" in html


def test_markdown_passes_no_raw_html_and_keeps_cells_whole(document: ReportDocument) -> None:
    text = render_markdown(document)
    assert "<script>" not in text and "<b>" not in text and "<i>" not in text
    assert "&lt;script&gt;" in text
    verdicts = next(line for line in text.splitlines() if "not-ready" in line)
    assert verdicts.count(" | ") == 3  # the "|" in the name is escaped, the row has 4 cells
    assert "\\[link=http://evil.example\\]c\\*d\\_\\`e\\`" in verdicts


def test_terminal_prints_markup_literally_and_makes_no_hyperlink(
    document: ReportDocument,
) -> None:
    for terminal in (True, False):
        console = Console(file=io.StringIO(), force_terminal=terminal, width=80)
        print_document(document, console)
        out = console.file.getvalue()  # type: ignore[attr-defined]
        assert "\x1b]8;" not in out  # no OSC 8 hyperlink
        assert "[/x]" in out and "[link=http://evil.example]" in out and "[/red]" in out


def test_fit_with_hostile_names_prints_them_and_writes_its_result(tmp_path: Path) -> None:
    """A model named with Rich markup crashed `fit` after sampling; a warning naming it crashed
    the warning printer."""
    import yaml

    study = tmp_path / "study.yaml"
    study.write_text(yaml.safe_dump({k: v for k, v in STUDY.items() if k != "signals"}))
    rows = ["dimension,model,segment,group,level,human,n"]
    for model in ("legacy", HOSTILE):
        for segment in (SEGMENT, "emea"):
            rows += [
                f"correctness,{model},{segment},,pass,,60",
                f"correctness,{model},{segment},,fail,,20",
            ]
            if model == "legacy":  # the candidate has no labels: a warning names it
                rows += [
                    f"correctness,{model},{segment},,pass,1,8",
                    f"correctness,{model},{segment},,fail,0,2",
                ]
    counts = tmp_path / "counts.csv"
    counts.write_text("\n".join(rows) + "\n")
    out = tmp_path / "result.json"
    done = subprocess.run(
        [*CHANGEOVER, "fit", "--study", str(study), "--counts", str(counts), "--out", str(out),
         "--num-samples", "200", "--num-warmup", "200"],
        capture_output=True, text=True, timeout=600, env={"COLUMNS": "200", "PATH": ""},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert HOSTILE in done.stdout and GATE in done.stdout
    assert f"'{HOSTILE}' has no human labels" in done.stderr
    assert HOSTILE in json.loads(out.read_text())["candidates"]
