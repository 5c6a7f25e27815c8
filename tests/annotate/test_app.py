"""The annotation app in process (FastAPI's TestClient): tokens, blindness, escaping, forms and
the JSON API. The real server and a real browser are in test_browser.py and test_concurrency.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from changeover.annotate import add_annotator, add_to_queue, random_start, read_labels
from changeover.annotate.app import COOKIE, create_app
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
    app = create_app(workspace.path, style_guide=study.style_guide)
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


def test_form_flow_label_skip_undo(client_and_token: tuple[TestClient, str, Workspace]) -> None:
    client, token, workspace = client_and_token
    client.post("/login", data={"token": token})
    first = client.get("/api/next").json()["screen"]
    form = {"ref": first["ref"], **{f"label.{d}": "0" for d in first["dimensions"]}}
    assert client.post("/label", data=form, follow_redirects=False).status_code == 303
    assert {r.label for r in read_labels(workspace)} == {0}
    second = client.get("/api/next").json()["screen"]
    assert second["ref"] != first["ref"]
    client.post("/skip", data={"ref": second["ref"]})
    assert client.get("/api/next").json()["screen"]["ref"] != second["ref"]
    page = client.post("/undo")
    assert "Undone" in page.text and read_labels(workspace) == []
    assert client.get("/api/next").json()["screen"]["ref"] == first["ref"]
    partial = client.post("/label", data={"ref": first["ref"], "label.nonsense": "1"})
    assert "Not stored" in partial.text and read_labels(workspace) == []


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


def test_cross_site_form_posts_are_refused(
    client_and_token: tuple[TestClient, str, Workspace],
) -> None:
    client, token, workspace = client_and_token
    client.post("/login", data={"token": token})
    ref = client.get("/api/next").json()["screen"]["ref"]
    response = client.post(
        "/label", data={"ref": ref, "label.style": "1"}, headers={"Origin": "http://evil.test"}
    )
    assert response.status_code == 403 and read_labels(workspace) == []
