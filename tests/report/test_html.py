"""Must show 2 (issue 6): the HTML report rendered in a real headless Chromium, offline.

The report of a small fitted study is opened from disk with every network request refused; the
verdicts, each plot (decoded by the browser) and the tables must be there. A full-page screenshot
is written to test-artifacts/report.png (or $CHANGEOVER_ARTIFACTS).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from changeover.calibrate.next import PlanRequest
from changeover.calibrate.settings import FitSettings
from changeover.report.document import ReportDocument
from changeover.report.html import render_html
from changeover.run import analyse
from changeover.study import load_study
from changeover.workspace import open_workspace
from tests.browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, playwright_or_fail
from tests.fakes.pipeline import DEARER, write_pipeline_study


def _document(folder: Path, **study: Any) -> ReportDocument:
    from changeover.annotate.exchange import import_labels
    from changeover.generate import generate
    from changeover.io import import_items
    from changeover.score import score

    study = load_study(write_pipeline_study(folder, **study))
    with open_workspace(study.workspace_path, create=True) as workspace:
        import_items(workspace, folder / "items.csv", study)
        generate(study, workspace)
        score(study, workspace)
        import_labels(workspace, folder / "labels.csv", study, add_annotators=True)
        settings = FitSettings(num_samples=300, num_warmup=300)
        return analyse(study, workspace, settings=settings, plan=PlanRequest(20)).document


@contextmanager
def _opened(document: ReportDocument, tmp_path: Path, *, width: int = 1200,
            height: int = 900) -> Iterator[Any]:  # fmt: skip
    """The document's HTML report, loaded from disk in a headless Chromium page."""
    sync_playwright = playwright_or_fail()
    path = tmp_path / "report.html"
    path.write_text(render_html(document), encoding="utf-8")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.goto(path.as_uri())
            page.wait_for_load_state("load")
            yield page
        finally:
            browser.close()


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> ReportDocument:
    return _document(tmp_path_factory.mktemp("report"))


@pytest.fixture(scope="module")
def dearer(tmp_path_factory: pytest.TempPathFactory) -> ReportDocument:
    """A candidate better on quality with 3× the incumbent's prices, under a price gate."""
    return _document(
        tmp_path_factory.mktemp("dearer"), rates={"legacy": 0.7, "cand": 0.92}, study=DEARER
    )


def test_report_renders_in_chromium_with_verdicts_plots_and_tables(
    document: ReportDocument, tmp_path: Path
) -> None:
    sync_playwright = playwright_or_fail()
    path = tmp_path / "report.html"
    path.write_text(render_html(document), encoding="utf-8")
    blocked: list[str] = []
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})

            def refuse(route: Any) -> None:
                blocked.append(route.request.url)
                route.abort()

            page.route("http*://**", refuse)
            page.goto(path.as_uri())
            page.wait_for_load_state("load")
            verdicts = page.locator("#verdicts tr")
            assert verdicts.count() == 2  # header + one candidate
            row = verdicts.nth(1).inner_text()
            verdict = document.result.candidates["cand"].verdict
            assert "cand" in row and verdict in row
            assert page.locator(f"#verdicts .verdict.{verdict}").count() == 1

            gates = len(document.result.gates)
            blocks = sum(len(g) for g in document.result.rates.values())
            operations = page.locator("#operations-table tr")
            assert operations.count() == 3  # header, legacy, cand
            for i, model in enumerate(("legacy", "cand"), start=1):
                assert operations.nth(i).inner_text().startswith(model)
                assert "$" in operations.nth(i).inner_text()
            images = page.locator("img.plot")
            assert images.count() == gates + 2 * blocks
            widths = images.evaluate_all("imgs => imgs.map(i => i.complete && i.naturalWidth)")
            assert all(w and w > 100 for w in widths), widths  # every SVG decoded

            for section in ("#gates", "#rates", "#judge", "#labels", "#next", "#diagnostics"):
                assert page.locator(section).count() == 1, section
            assert page.locator("table").count() >= 2 + gates + 2 * blocks
            assert "max R-hat" in page.inner_text("body")
            states = page.locator("#gates td.failed, #gates td.unsettled").count()
            examples = page.locator("#gates details.examples")
            assert examples.count() >= 1 if states else examples.count() == 0
            if states:
                first = examples.first.inner_text()
                assert "Asked:" in first and "people:" in first and "item i" in first
            page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
        finally:
            browser.close()
    assert blocked == []  # the report needs no network
    assert (ARTIFACTS / "report.png").stat().st_size > 10_000


def test_report_fits_a_phone_without_sideways_scrolling(
    document: ReportDocument, tmp_path: Path
) -> None:
    """Issue 14, item 12: at 390 px wide nothing sticks out of the page (tables fit, plots scale,
    verdicts become cards) and the plots are drawn no smaller than legible."""
    with _opened(document, tmp_path, width=390, height=844) as page:
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        sticking_out = page.evaluate(
            "Array.from(document.querySelectorAll('body *'))"
            ".filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5)"
            ".map(e => e.tagName + ': ' + e.textContent.slice(0, 40))"
        )
        assert sticking_out == []
        scales = page.locator("img.plot").evaluate_all(
            "imgs => imgs.map(i => i.getBoundingClientRect().width / i.naturalWidth)"
        )
        assert min(scales) > 0.7, scales  # 11-point tick labels stay above 10 px
        page.screenshot(path=str(ARTIFACTS / "report-phone.png"), full_page=True)
    assert (ARTIFACTS / "report-phone.png").stat().st_size > 10_000


def test_refusal_rows_say_refused_not_human_pass(document: ReportDocument) -> None:
    """Issue 14, item 12: the error model names the human verdicts of a dimension."""
    import matplotlib

    from changeover.report.plots import error_model_plot

    with matplotlib.rc_context({"svg.fonttype": "none"}):  # text as text, to read it back
        svg = error_model_plot(document, "refusal", "answer")
    assert "legacy | refused" in svg and "cand | complied" in svg
    assert "human pass" not in svg and "human fail" not in svg


def test_cost_and_latency_and_the_price_gate_in_chromium_and_markdown(
    dearer: ReportDocument, tmp_path: Path
) -> None:
    """Issue 16, must show 4 (the report): the candidate better on quality but 3× dearer is
    not-ready and the why names the price gate; each model's cost per 1,000 interactions and
    p50 / p95 latency are in the page with the document's numbers; the gate on cost shows its
    relative contrast and what was measured (no forest plot: one row, in its table)."""
    from changeover.calibrate.operations import format_measure
    from changeover.report.markdown import render_markdown
    from changeover.study import MEASURES

    result = dearer.result
    assert result is not None
    cand = result.candidates["cand"]
    assert cand.verdict == "not-ready" and cand.reason.startswith("fails price overall")
    operations = result.operations
    with _opened(dearer, tmp_path) as page:
        verdict = page.locator("#verdicts tr").nth(1).inner_text()
        assert "not-ready" in verdict
        assert "fails price overall (P = 0.000; cost per 1,000 interactions $" in verdict
        rows = page.locator("#operations-table tr")
        assert rows.nth(0).inner_text().split("\t") == [
            "model", "cost per 1,000 interactions", "p50 latency", "p95 latency"
        ]  # fmt: skip
        for i, model in enumerate(("legacy", "cand"), start=1):
            cells = rows.nth(i).inner_text().split("\t")
            assert cells[0] == model
            for cell, measure in zip(cells[1:], MEASURES, strict=True):
                value = operations[measure][model].value
                assert cell.startswith(format_measure(measure, value) + " ["), cell
        price = page.locator("section.gate", has=page.locator("h3", has_text="price"))
        assert price.locator("img.plot").count() == 0
        row = price.locator("tr").nth(1).inner_text()
        assert "overall" in row and "%" in row and "failed" in row
        assert "cost per 1,000 interactions $" in row and "margin +10%" in row
        assert "margin ≤ +10% of the incumbent's" in price.inner_text()
        quality = sum(1 for g in result.gates.values() if g.measure is None)
        blocks = sum(len(g) for g in result.rates.values())
        assert page.locator("img.plot").count() == quality + 2 * blocks
        page.screenshot(path=str(ARTIFACTS / "report-cost.png"), full_page=True)
    markdown = render_markdown(dearer)
    assert "## Cost and latency" in markdown
    for model in ("legacy", "cand"):
        cost = format_measure("cost", operations["cost"][model].value)
        assert f"| {model} | {cost} \\[" in markdown
    assert "### price (cost per 1,000 interactions, lower is better)" in markdown


def test_the_studys_spend_in_html_markdown_and_terminal(document: ReportDocument) -> None:
    """What the study has spent with providers, per model and purpose, with a batch's saving
    and a total, in every rendering; a document without spend says nothing was called."""
    from rich.console import Console

    from changeover.report.document import Spend
    from changeover.report.markdown import render_markdown
    from changeover.report.terminal import print_document

    spend = [
        Spend(model="cand", purpose="generation", requests=90, batch_requests=90,
              input_tokens=9000, output_tokens=4500, cost=0.0225, saving=0.0225),
        Spend(model="grader", purpose="judging", requests=180, batch_requests=0,
              input_tokens=36000, output_tokens=900, cost=0.1, saving=0.0),
    ]  # fmt: skip
    spent = document.model_copy(update={"spend": spend})
    html = render_html(spent)
    table = html.split('<table id="spend-table">')[1].split("</table>")[0]
    assert '<td>cand</td><td>generation</td><td class="num">90 (90 batched)</td>' in table
    assert '<td class="num">9,000 / 4,500</td><td class="num">$0.0225</td>' in table
    assert '<td>all</td><td></td><td class="num">270</td>' in table
    assert "$0.1225" in table
    assert "Nothing yet: no call to a provider" in render_html(
        document.model_copy(update={"spend": []})
    )
    markdown = render_markdown(spent)
    assert "## What the study has spent" in markdown
    assert "| grader | judging | 180 | 36,000 / 900 | $0.1000 | - |" in markdown
    console = Console(record=True, width=200)
    print_document(spent, console)
    said = " ".join(console.export_text().split())
    assert (
        "the study has spent $0.1225 with providers (cand generation $0.0225, grader judging "
        "$0.1000)" in said
    )
