"""Must show 1: the annotation app end to end in a real headless Chromium.

The real `changeover annotate` server runs on a free 127.0.0.1 port over a temporary workspace;
Playwright drives Debian's /usr/bin/chromium (never a downloaded browser). It signs in with a
token, labels every queued response with the keyboard, undoes one, reloads, relabels it, and
checks that the workspace holds exactly the labels given; a wrong token is refused; a response
containing <script> is shown as text and never runs.

Where no Chromium is found it skips, saying why; CI requires it (tests/browser.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from changeover.annotate import QueueEntry, add_annotator, add_to_queue, read_labels
from changeover.workspace import open_workspace
from tests.annotate.helpers import MODELS, SCRIPT, RunningApp, make_study, response_text
from tests.browser import CHROMIUM, CHROMIUM_ARGS, playwright_or_fail

QUEUED = [("q0000", "cand-a"), ("q0001", "legacy"), ("q0002", "cand-b"), ("q0004", "legacy"),
          ("q0005", "cand-a")]  # fmt: skip
DIMENSIONS = ("refusal", "style")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[RunningApp, str, Path]]:
    playwright_or_fail()  # before building anything
    study, workspace = make_study(tmp_path / "study")
    token = add_annotator(workspace, "alice")
    add_to_queue(
        workspace,
        [QueueEntry(item, model, d) for item, model in QUEUED for d in DIMENSIONS],
        source="test",
    )
    workspace.close()
    running = RunningApp(tmp_path / "study" / "study.yaml", seed=7)
    try:
        yield running, token, study.resolve(study.workspace)
    finally:
        running.stop()


def _which(text: str) -> tuple[str, str]:
    """The (item, model) whose stored response is `text`."""
    for item, model in QUEUED:
        if response_text(int(item[1:]), model) == text:
            return item, model
    raise AssertionError(f"unexpected response on screen: {text!r}")


def test_label_with_the_keyboard_undo_reload_in_chromium(
    served: tuple[RunningApp, str, Path],
) -> None:
    app, token, workspace_path = served
    sync_playwright = playwright_or_fail()
    expected: dict[tuple[str, str, str], int] = {}
    noted = ("", "")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            first = page.goto(app.url + "/")
            assert first is not None and first.status == 401
            page.fill("#token", token)
            with page.expect_navigation():
                page.keyboard.press("Enter")
            assert page.url == app.url + "/"

            # Skip the first screen: the next one differs, and the skipped one comes last.
            skipped = _which(page.inner_text("#response"))
            with page.expect_navigation():
                page.keyboard.press("s")
            assert _which(page.inner_text("#response")) != skipped

            keys = ["y", "n", "n", "y", "1", "0", "0", "0", "y", "y"]
            order = []
            for screen in range(len(QUEUED)):
                shown = page.inner_text("#response")
                item, model = _which(shown)
                order.append((item, model))
                assert f"{screen} labelled · {len(QUEUED) - screen} to go" in page.inner_text(
                    "#progress"
                )
                content = page.content()
                assert not any(m in content for m in MODELS), "the model name is shown"
                if (item, model) == ("q0000", "cand-a"):
                    assert shown == SCRIPT  # markup shown as text
                    assert page.evaluate("window.__pwned") is None
                    assert page.title() != "pwned"
                    assert page.locator("#response b").count() == 0
                answers = keys[2 * screen : 2 * screen + 2]
                if screen == 1:  # a note, typed in the box: keys there are text, not answers
                    page.click("#note")
                    page.keyboard.type("=1+1 unsure: yes, no")
                    page.keyboard.press("Escape")
                    noted = (item, model)
                page.keyboard.press(answers[0])
                assert (
                    page.locator("fieldset.question.current").get_attribute("data-dimension")
                    == "style"
                )
                with page.expect_navigation():
                    page.keyboard.press(answers[1])  # the last answer saves the screen
                for dimension, key in zip(DIMENSIONS, answers, strict=True):
                    expected[(item, model, dimension)] = 1 if key in ("y", "1") else 0
            assert order[-1] == skipped
            assert "Nothing left to label" in page.inner_text("main")

            # Undo the last screen: it is served again, and survives a reload.
            with page.expect_navigation():
                page.keyboard.press("u")
            assert "Undone" in page.inner_text("main")
            for dimension in DIMENSIONS:
                del expected[(*order[-1], dimension)]
            page.reload()
            assert _which(page.inner_text("#response")) == order[-1]
            assert f"{len(QUEUED) - 1} labelled · 1 to go" in page.inner_text("#progress")

            # Backspace clears an answer before saving; then label it afresh.
            page.keyboard.press("y")
            page.keyboard.press("Backspace")
            page.keyboard.press("n")
            with page.expect_navigation():
                page.keyboard.press("y")
            expected[(*order[-1], "refusal")] = 0
            expected[(*order[-1], "style")] = 1
            assert "Nothing left to label" in page.inner_text("main")

            # A wrong token is refused, in the browser and over HTTP.
            other = browser.new_page()
            other.goto(app.url + "/")
            other.fill("#token", "not-a-token")
            with other.expect_navigation() as refused:
                other.keyboard.press("Enter")
            assert refused.value is not None and refused.value.status == 401
            assert "not valid" in other.inner_text("main")
        finally:
            browser.close()
    wrong = httpx.get(app.url + "/api/next", headers={"Authorization": "Bearer not-a-token"})
    assert wrong.status_code == 401

    with open_workspace(workspace_path) as workspace:
        stored = read_labels(workspace)
    assert {(r.item_id, r.model, r.dimension): r.label for r in stored} == expected
    assert len(stored) == len(expected) == 2 * len(QUEUED)
    assert {r.annotator for r in stored} == {"alice"}
    notes = {(r.item_id, r.model): r.note for r in stored if r.note}
    assert notes == {noted: "=1+1 unsure: yes, no"}
