"""Issue 13, items 1 and 2, against the real server (`changeover annotate` on 127.0.0.1):

* cross-site request forgery, in Chromium: a page served from another origin of the same site
  (another port of 127.0.0.1) `fetch()`es POSTs to /api/undo and /api/labels with the victim's
  cookie, and a form on it posts an attacker's token to /login; none of it changes anything;
* limits, over HTTP: failed sign-ins are throttled per client address (429 with Retry-After, a
  right token too while throttled, another address unaffected), and a body over 64 KiB is 413.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from changeover.annotate import QueueEntry, add_annotator, add_to_queue, read_labels, record_labels
from changeover.annotate.queue import queued_refs
from changeover.records import LabelRecord
from changeover.workspace import open_workspace
from tests.annotate.helpers import RunningApp, make_study
from tests.browser import CHROMIUM, CHROMIUM_ARGS, playwright_or_fail

RESPONSES = [(f"q{i:04d}", "legacy") for i in range(8)]
LABELLED = RESPONSES[:6]  # alice labelled these before the attack


class Served:
    def __init__(self, app: RunningApp, tokens: dict[str, str], workspace_path: Path) -> None:
        self.app, self.tokens, self.workspace_path = app, tokens, workspace_path

    def labels(self) -> list[LabelRecord]:
        with open_workspace(self.workspace_path) as workspace:
            return read_labels(workspace)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    study, workspace = make_study(tmp_path / "study")
    tokens = {name: add_annotator(workspace, name) for name in ("alice", "mallory")}
    add_to_queue(
        workspace, [QueueEntry(item, model, "refusal") for item, model in RESPONSES], source="t"
    )
    for item, model in LABELLED:
        record_labels(
            workspace, annotator="alice", item_id=item, model=model, labels={"refusal": 0}
        )
    workspace.close()
    running = RunningApp(tmp_path / "study" / "study.yaml")
    try:
        yield Served(running, tokens, study.resolve(study.workspace))
    finally:
        running.stop()


class _Attacker(BaseHTTPRequestHandler):
    """Serves the attacker's pages (`server.pages`: path -> HTML)."""

    def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
        page = getattr(self.server, "pages", {}).get(self.path)
        body = (page or "not found").encode()
        self.send_response(200 if page else 404)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def attacker() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Attacker)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _fetch_page(app_url: str, ref: str) -> str:
    """What a hostile page runs: no-cors POSTs (the kind a browser sends without asking) with
    the victim's cookie, then a JSON POST that needs a CORS preflight."""
    label = json.dumps({"ref": ref, "labels": {"refusal": 1}})
    return f"""<!doctype html><title>cute cats</title><script>
(async () => {{
  const app = {json.dumps(app_url)}, results = [];
  const attempts = [["/api/undo", "{{}}"], ["/api/undo", "{{}}"],
                    ["/api/labels", {json.dumps(label)}]];
  for (const [path, body] of attempts) {{
    try {{
      await fetch(app + path, {{method: "POST", mode: "no-cors", credentials: "include",
                               headers: {{"Content-Type": "text/plain"}}, body}});
      results.push("sent");
    }} catch (error) {{ results.push("failed"); }}
  }}
  try {{
    await fetch(app + "/api/labels", {{method: "POST", credentials: "include",
      headers: {{"Content-Type": "application/json"}}, body: {json.dumps(label)}}});
    results.push("sent");
  }} catch (error) {{ results.push("failed"); }}
  window.results = results;
}})();
</script>"""


def _login_page(app_url: str, token: str) -> str:
    """A hostile page that signs the visitor in as the attacker."""
    return f"""<!doctype html><title>win a prize</title>
<form method="post" action="{app_url}/login"><input name="token" value="{token}"></form>
<script>document.forms[0].submit();</script>"""


def test_pages_of_another_origin_change_nothing_in_chromium(
    served: Served, attacker: ThreadingHTTPServer
) -> None:
    sync_playwright = playwright_or_fail()
    app_url, tokens = served.app.url, served.tokens
    with open_workspace(served.workspace_path) as workspace:
        target = queued_refs(workspace)[RESPONSES[-1]]  # mallory sees refs on her screens
    evil = f"http://127.0.0.1:{attacker.server_address[1]}"
    attacker.pages = {  # type: ignore[attr-defined]
        "/fetch": _fetch_page(app_url, target),
        "/login": _login_page(app_url, tokens["mallory"]),
    }
    before = served.labels()
    assert len(before) == len(LABELLED)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context()
            page = context.new_page()

            # Login CSRF: a page of another origin posts mallory's token to /login.
            with page.expect_response(app_url + "/login") as posted:
                page.goto(evil + "/login")
            assert posted.value.status == 403
            assert context.cookies(app_url) == []
            assert page.goto(app_url + "/").status == 401  # type: ignore[union-attr]

            # Alice signs in; the same page tries again: she stays alice.
            page.fill("#token", tokens["alice"])
            with page.expect_navigation():
                page.keyboard.press("Enter")
            assert "signed in as alice" in page.inner_text("header")
            with page.expect_response(app_url + "/login") as posted:
                page.goto(evil + "/login")
            assert posted.value.status == 403
            (cookie,) = context.cookies(app_url)
            assert cookie["value"] == tokens["alice"] and cookie["sameSite"] == "Strict"
            page.goto(app_url + "/")
            assert "signed in as alice" in page.inner_text("header")

            # CSRF on the JSON API: fetch() with alice's cookie from the other origin.
            page.goto(evil + "/fetch")
            page.wait_for_function("window.results !== undefined")
            results = page.evaluate("window.results")
            assert results[-1] == "failed"  # the preflight is never granted
            page.goto(app_url + "/")
            assert "signed in as alice" in page.inner_text("header")  # the app still works
        finally:
            browser.close()
    assert served.labels() == before  # nothing undone, nothing added


def test_failed_sign_ins_are_throttled_per_client(served: Served) -> None:
    app_url, right = served.app.url, served.tokens["alice"]

    def client(address: str) -> httpx.Client:
        transport = httpx.HTTPTransport(local_address=address)
        return httpx.Client(base_url=app_url, transport=transport, timeout=10.0)

    with client("127.0.0.2") as guesser:
        statuses = []
        while 429 not in statuses and len(statuses) < 1000:
            guess = {"Authorization": f"Bearer guess-{len(statuses)}"}
            statuses.append(guesser.get("/api/next", headers=guess).status_code)
        assert statuses[-1] == 429, "guessing was never throttled"
        assert set(statuses[:-1]) == {401} and len(statuses) > 10  # the burst: 10 at once
        throttled = guesser.get("/api/next", headers={"Authorization": f"Bearer {right}"})
        assert throttled.status_code == 429  # a right guess is not confirmed either
        assert int(throttled.headers["Retry-After"]) >= 1
        form = guesser.post("/login", data={"token": right}, follow_redirects=False)
        assert form.status_code == 429 and "Too many failed sign-ins" in form.text
    with client("127.0.0.3") as someone_else:
        answer = someone_else.get("/api/next", headers={"Authorization": f"Bearer {right}"})
        assert answer.status_code == 200
        statuses = []
        while 429 not in statuses and len(statuses) < 1000:
            form = someone_else.post("/login", data={"token": f"guess-{len(statuses)}"})
            statuses.append(form.status_code)
        assert statuses[-1] == 429 and set(statuses[:-1]) == {401}  # by form too


def test_bodies_over_64_kib_are_refused(served: Served) -> None:
    headers = {"Authorization": f"Bearer {served.tokens['alice']}"}
    with httpx.Client(base_url=served.app.url, headers=headers, timeout=10.0) as http:
        ref = http.get("/api/next").json()["screen"]["ref"]
        body = {"ref": ref, "labels": {"refusal": 1}, "note": "x" * 100_000}
        declared = http.post("/api/labels", json=body)
        assert declared.status_code == 413 and "64 KiB" in declared.json()["error"]

        def chunks() -> Iterator[bytes]:  # no Content-Length: sent chunked
            yield json.dumps(body).encode()

        streamed = http.post(
            "/api/labels", content=chunks(), headers={"Content-Type": "application/json"}
        )
        assert streamed.status_code == 413
        note = http.post("/api/labels", json={**body, "note": "x" * 2001})
        assert note.status_code == 422 and "at most 2,000" in note.json()["error"]
    assert len(served.labels()) == len(LABELLED)
