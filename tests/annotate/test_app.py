"""The annotation app in process (FastAPI's TestClient): tokens, blindness, escaping, forms and
the JSON API. The real server and a real browser are in test_browser.py and test_concurrency.py."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from changeover.annotate import add_annotator, add_to_queue, random_start, read_labels
from changeover.annotate.app import COOKIE, LoginLimiter, create_app
from changeover.annotate.auth import csrf_token
from changeover.study import Study
from changeover.workspace import Workspace
from tests.annotate.helpers import MODELS, SCRIPT

Labelling = tuple[Study, Workspace]


@pytest.fixture
def client_and_token(labelling: Labelling) -> Iterator[tuple[TestClient, str, Workspace]]:
    study, workspace = labelling
    token = add_annotator(workspace, "alice")
    entries = random_start(workspace, study, num_responses=36, dimensions=["correctness", "style"])
    add_to_queue(workspace, entries, source="random")
    # Failed sign-ins are limited (tests/annotate/test_security.py); not what these tests check.
    app = create_app(
        workspace.path, style_guide=study.style_guide, login_limiter=LoginLimiter(burst=1000)
    )
    with TestClient(app) as client:
        yield client, token, workspace


def test_every_route_needs_a_valid_token(
    client_and_token: tuple[TestClient, str, Workspace],
) -> None:
    client, token, _ = client_and_token
    routes = [("GET", "/"), ("GET", "/api/next"), ("POST", "/api/labels"), ("POST", "/api/undo"),
              ("POST", "/api/skip"), ("POST", "/label"), ("POST", "/skip"), ("POST", "/undo"),
              ("GET", "/static/app.js"), ("GET", "/nowhere"), ("POST", "/logout")]  # fmt: skip
    for method, path in routes:
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            response = client.request(method, path, headers=headers)
            assert response.status_code == 401, (method, path, headers)
        client.cookies.set(COOKIE, "wrong")
        assert client.request(method, path).status_code == 401
        client.cookies.clear()
    assert "Sign in" in client.get("/").text
    wrong = client.post("/login", data={"token": "wrong"})
    assert wrong.status_code == 401 and "not valid" in wrong.text
    login = client.post("/login", data={"token": token}, follow_redirects=False)
    assert login.status_code == 303
    cookie = login.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    assert client.get("/").status_code == 200
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/static/../app.py").status_code == 404


def test_pages_and_api_are_blind_and_escaped(
    client_and_token: tuple[TestClient, str, Workspace],
) -> None:
    client, token, workspace = client_and_token
    headers = {"Authorization": f"Bearer {token}"}
    seen_script = False
    for _ in range(40):
        page = client.get("/", headers=headers)
        api = client.get("/api/next", headers=headers).json()
        if "screen" not in api:
            break
        for model in MODELS:
            assert model not in page.text and model not in str(api)
        assert "<script>" not in page.text.replace('<script src="/static/app.js"></script>', "")
        if api["screen"]["response"] == SCRIPT:
            seen_script = True
            assert "&lt;script&gt;document.title" in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]
        ref = api["screen"]["ref"]
        labels = dict.fromkeys(api["screen"]["dimensions"], 1)
        stored = client.post("/api/labels", headers=headers, json={"ref": ref, "labels": labels})
        assert stored.status_code == 200 and stored.json()["added"] == len(labels)
    assert seen_script
    assert client.get("/api/next", headers=headers).json() == {"labelled": 36, "remaining": 0}
    assert "Nothing left to label" in client.get("/", headers=headers).text
    assert len(read_labels(workspace)) == 69  # 36 x 2, minus correctness of q0011 (refuse) x 3


def csrf_of(page: str) -> str:
    """The session's CSRF token, as a page's forms carry it."""
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
    assert match is not None, "no CSRF token in the page"
    return match.group(1)


def test_form_flow_label_skip_undo(client_and_token: tuple[TestClient, str, Workspace]) -> None:
    client, token, workspace = client_and_token
    client.post("/login", data={"token": token})
    screen = client.get("/").text
    assert '<textarea id="note" name="note" rows="2" maxlength="2000">' in screen
    csrf = csrf_of(screen)
    first = client.get("/api/next").json()["screen"]
    form = {"ref": first["ref"], **{f"label.{d}": "0" for d in first["dimensions"]}}
    assert client.post("/label", data=form).status_code == 403  # no CSRF token
    assert read_labels(workspace) == []
    form |= {"csrf": csrf, "note": "=cmd|' /C calc'!A0\nsecond line"}
    assert client.post("/label", data=form, follow_redirects=False).status_code == 303
    assert {(r.label, r.note) for r in read_labels(workspace)} == {
        (0, "=cmd|' /C calc'!A0\nsecond line")
    }
    second = client.get("/api/next").json()["screen"]
    assert second["ref"] != first["ref"]
    client.post("/skip", data={"ref": second["ref"], "csrf": csrf})
    assert client.get("/api/next").json()["screen"]["ref"] != second["ref"]
    assert client.post("/undo").status_code == 403 and read_labels(workspace) != []
    page = client.post("/undo", data={"csrf": csrf})
    assert "Undone" in page.text and read_labels(workspace) == []
    assert client.get("/api/next").json()["screen"]["ref"] == first["ref"]
    partial = client.post("/label", data={"ref": first["ref"], "label.nonsense": "1", "csrf": csrf})
    assert "Not stored" in partial.text and read_labels(workspace) == []
    long_note = {**form, "note": "x" * 2001}
    assert "Not stored" in client.post("/label", data=long_note).text
    assert read_labels(workspace) == []


def test_api_rejects_bad_labels(client_and_token: tuple[TestClient, str, Workspace]) -> None:
    client, token, workspace = client_and_token
    headers = {"Authorization": f"Bearer {token}"}
    ref = client.get("/api/next", headers=headers).json()["screen"]["ref"]
    cases = [
        ({"ref": "nope", "labels": {"style": 1}}, "unknown ref"),
        ({"ref": ref, "labels": {"refusal": 1}}, "not queued"),
        ({"ref": ref, "labels": {"style": 3}}, "0 or 1"),
        ({"ref": ref}, "expected"),
    ]
    for body, message in cases:
        response = client.post("/api/labels", headers=headers, json=body)
        assert response.status_code == 422 and message in response.json()["error"]
    assert client.post("/api/labels", headers=headers, content=b"{").status_code == 400
    assert client.post("/api/skip", headers=headers, content=b"{").status_code == 400
    assert client.post("/api/skip", headers=headers, json={"ref": "nope"}).status_code == 422
    assert read_labels(workspace) == []


def test_requests_from_other_origins_are_refused(
    client_and_token: tuple[TestClient, str, Workspace],
) -> None:
    """Every rule of auth.py's cross-site guard, in process; over real HTTP and in Chromium in
    test_security.py."""
    client, token, workspace = client_and_token
    client.post("/login", data={"token": token})
    csrf = csrf_of(client.get("/").text)
    ref = client.get("/api/next").json()["screen"]["ref"]
    form = {"ref": ref, "label.style": "1", "csrf": csrf}
    other_origin = {"Origin": "http://127.0.0.1:1"}
    refused = [
        client.post("/label", data=form, headers=other_origin),
        client.post("/label", data=form, headers={"Origin": "null"}),
        client.post("/label", data=form, headers={"Sec-Fetch-Site": "same-site"}),
        client.post("/label", data={**form, "csrf": csrf_token("another token")}),
        client.post("/api/labels", json={"ref": ref, "labels": {"style": 1}}, headers=other_origin),
        client.post("/api/labels", content=f'{{"ref": "{ref}", "labels": {{"style": 1}}}}',
                    headers={"Content-Type": "text/plain"}),  # what a no-cors fetch can send
        client.post("/api/undo", headers={"Sec-Fetch-Site": "cross-site"}),
        client.get("/api/next", headers={"Sec-Fetch-Site": "same-site"}),
        client.post("/login", data={"token": token}, headers=other_origin),
        client.post("/login", data={"token": token}, headers={"Sec-Fetch-Site": "cross-site"}),
    ]  # fmt: skip
    assert [r.status_code for r in refused] == [403] * len(refused)
    assert read_labels(workspace) == []
    # The app's own pages, and scripts with a bearer token (no browser sends it by itself).
    same = {"Origin": str(client.base_url), "Sec-Fetch-Site": "same-origin"}
    assert client.post("/label", data=form, headers=same, follow_redirects=False).status_code == 303
    bearer = {"Authorization": f"Bearer {token}", **other_origin}
    assert client.post("/api/undo", headers=bearer).json()["undone"]["ref"] == ref
    assert read_labels(workspace) == []


def test_limits_on_notes_and_bodies(client_and_token: tuple[TestClient, str, Workspace]) -> None:
    client, token, workspace = client_and_token
    headers = {"Authorization": f"Bearer {token}"}
    screen = client.get("/api/next", headers=headers).json()["screen"]
    body = {"ref": screen["ref"], "labels": {"style": 1}, "note": "n" * 2001}
    long_note = client.post("/api/labels", headers=headers, json=body)
    assert long_note.status_code == 422
    assert long_note.json()["error"] == (
        "note: 2,001 characters; a note holds at most 2,000, shorten it"
    )
    too_big = client.post("/api/labels", headers=headers, json={**body, "note": "n" * 70_000})
    assert too_big.status_code == 413 and "64 KiB" in too_big.json()["error"]
    assert read_labels(workspace) == []
    stored = client.post("/api/labels", headers=headers, json={**body, "note": "n" * 2000})
    assert stored.status_code == 200
    assert [len(r.note or "") for r in read_labels(workspace)] == [2000]


def test_skipping_moves_on_even_once_everything_was_skipped(
    client_and_token: tuple[TestClient, str, Workspace],
) -> None:
    client, token, _ = client_and_token
    headers = {"Authorization": f"Bearer {token}"}
    served = []
    for _ in range(36 * 2 + 1):  # every response skipped twice, and one more
        ref = client.get("/api/next", headers=headers).json()["screen"]["ref"]
        served.append(ref)
        assert client.post("/api/skip", headers=headers, json={"ref": ref}).status_code == 200
    assert len(set(served)) == 36
    assert served[36:72] == served[:36] and served[72] == served[0]  # round and round


def test_login_limiter_refills_and_forgets_nobody() -> None:
    now = [0.0]
    limiter = LoginLimiter(burst=3, per_second=0.5, clock=lambda: now[0])
    for _ in range(3):
        assert limiter.retry_after("a") == 0
        limiter.failed("a")
    assert limiter.retry_after("a") == 2 and limiter.retry_after("b") == 0
    now[0] = 1.0
    assert limiter.retry_after("a") == 1
    now[0] = 2.0
    assert limiter.retry_after("a") == 0
