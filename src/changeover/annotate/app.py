"""The annotation web app: server-rendered pages (Jinja2) and a small JSON API (FastAPI).

Every request must carry a valid annotator token, as a cookie set by the login form or as
`Authorization: Bearer <token>`; anything else gets 401 (the login form, for a browser). The app
is blind: pages and API answers carry an opaque `ref` per response, never the item or model.
Response text is autoescaped and the Content-Security-Policy allows only the app's own script,
so a response containing markup is shown as text and never runs.

Every endpoint is `async` and so runs on the event loop's single thread, the one that opened the
workspace connection: SQLite writes are serialised there, one transaction per request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jinja2
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from changeover.annotate.labels import record_labels, skip_response, undo_last
from changeover.annotate.queue import next_screen, progress, resolve_ref
from changeover.annotate.tokens import authenticate
from changeover.errors import InputError
from changeover.signals.settings import StyleGuide
from changeover.workspace import Workspace, open_workspace

__all__ = ["COOKIE", "QUESTIONS", "create_app"]

HERE = Path(__file__).parent
COOKIE = "changeover_token"
QUESTIONS: dict[str, str] = {
    "correctness": "Is the response correct?",
    "refusal": "Does the response refuse?",
    "style": "Does the response follow the style guide?",
}
# Messages shown after a redirect, by code (never free text from the URL).
MESSAGES = {
    "undone": "Undone: your last answers are back in the queue.",
    "nothing-to-undo": "Nothing to undo.",
    "not-stored": "Not stored: answer every question, then submit.",
    "skipped": "Skipped: it comes back after everything else.",
}
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def question(dimension: str) -> str:
    return QUESTIONS.get(dimension, f"Does the response pass '{dimension}'?")


def create_app(
    workspace_path: Path,
    *,
    style_guide: StyleGuide | None = None,
    rng_key: int = 0,
    secure_cookie: bool = False,
) -> FastAPI:
    """The app for the workspace at `workspace_path`; `rng_key` seeds every annotator's order."""
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True
    )
    templates = Jinja2Templates(env=environment)
    templates.env.globals.update(question=question)
    rules = style_guide.rules() if style_guide is not None else []
    guide_text = style_guide.text if style_guide is not None else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        workspace = open_workspace(workspace_path)
        app.state.workspace = workspace
        try:
            yield
        finally:
            workspace.close()

    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    def workspace_of(request: Request) -> Workspace:
        return request.app.state.workspace

    def token_of(request: Request) -> str | None:
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer "):
            return header[7:].strip()
        return request.cookies.get(COOKIE)

    def is_api(request: Request) -> bool:
        return request.url.path.startswith("/api/")

    def page(request: Request, name: str, status: int = 200, **context: Any) -> Response:
        response = templates.TemplateResponse(request, name, context, status_code=status)
        response.headers.update(_SECURITY_HEADERS)
        return response

    def login_page(request: Request, message: str | None = None) -> Response:
        response = page(request, "login.html", 401, message=message)
        response.headers["WWW-Authenticate"] = 'Bearer realm="changeover"'
        return response

    @app.middleware("http")
    async def require_token(request: Request, call_next: Any) -> Response:
        """401 for every request without a valid token, except posting the login form."""
        if request.url.path == "/login" and request.method == "POST":
            return await call_next(request)
        annotator = authenticate(workspace_of(request), token_of(request))
        if annotator is None:
            if is_api(request):
                return JSONResponse(
                    {"error": "missing or invalid token"},
                    status_code=401,
                    headers={"WWW-Authenticate": 'Bearer realm="changeover"', **_SECURITY_HEADERS},
                )
            return login_page(request)
        if request.method == "POST" and not is_api(request) and not _same_origin(request):
            return Response("cross-site form posts are refused", status_code=403)
        request.state.annotator = annotator
        response: Response = await call_next(request)
        response.headers.update(
            {k: v for k, v in _SECURITY_HEADERS.items() if k not in response.headers}
        )
        return response

    async def form_of(request: Request) -> dict[str, str]:
        body = (await request.body()).decode("utf-8", errors="replace")
        return {key: values[-1] for key, values in parse_qs(body).items()}

    # -- pages ------------------------------------------------------------------------------------

    @app.post("/login")
    async def login(request: Request) -> Response:
        token = (await form_of(request)).get("token", "").strip()
        if authenticate(workspace_of(request), token) is None:
            return login_page(request, "That token is not valid. Ask for a new one.")
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(
            COOKIE, token, httponly=True, samesite="strict", secure=secure_cookie, path="/"
        )
        return response

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        response = RedirectResponse("/", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    @app.get("/")
    async def home(request: Request) -> Response:
        annotator = request.state.annotator
        workspace = workspace_of(request)
        screen = next_screen(workspace, annotator, rng_key=rng_key)
        done = progress(workspace, annotator, rng_key=rng_key)
        message = MESSAGES.get(request.query_params.get("m", ""))
        if screen is None:
            return page(request, "done.html", annotator=annotator, progress=done, message=message)
        return page(
            request,
            "screen.html",
            annotator=annotator,
            screen=screen,
            progress=done,
            rules=rules if "style" in screen.dimensions else [],
            guide_text=guide_text if "style" in screen.dimensions else None,
            message=message,
        )

    @app.post("/label")
    async def label_form(request: Request) -> Response:
        form = await form_of(request)
        labels = {
            key.removeprefix("label."): value
            for key, value in form.items()
            if key.startswith("label.")
        }
        error = _store(request, form.get("ref", ""), labels, form.get("note") or None)
        return RedirectResponse("/?m=not-stored" if error else "/", status_code=303)

    @app.post("/skip")
    async def skip_form(request: Request) -> Response:
        _skip(request, (await form_of(request)).get("ref", ""))
        return RedirectResponse("/?m=skipped", status_code=303)

    @app.post("/undo")
    async def undo_form(request: Request) -> Response:
        undone = undo_last(workspace_of(request), request.state.annotator)
        code = "undone" if undone else "nothing-to-undo"
        return RedirectResponse(f"/?m={code}", status_code=303)

    @app.get("/static/{name}")
    async def static(name: str) -> Response:
        path = HERE / "static" / name
        if name not in {p.name for p in (HERE / "static").iterdir()}:
            return Response("not found", status_code=404)
        return FileResponse(path)

    # -- JSON API -----------------------------------------------------------------------------

    @app.get("/api/next")
    async def api_next(request: Request) -> Response:
        annotator = request.state.annotator
        workspace = workspace_of(request)
        screen = next_screen(workspace, annotator, rng_key=rng_key)
        done = progress(workspace, annotator, rng_key=rng_key)
        body: dict[str, Any] = {"labelled": done.labelled, "remaining": done.remaining}
        if screen is not None:
            body["screen"] = {
                "ref": screen.ref,
                "prompt": screen.prompt,
                "system": screen.system,
                "context": screen.context,
                "reference": screen.reference,
                "segment": screen.segment,
                "response": screen.response,
                "dimensions": list(screen.dimensions),
            }
        return JSONResponse(body)

    @app.post("/api/labels")
    async def api_labels(request: Request) -> Response:
        try:
            payload = await request.json()
        except ValueError:
            return JSONResponse({"error": "the body must be JSON"}, status_code=400)
        if not isinstance(payload, dict) or not isinstance(payload.get("labels"), dict):
            return JSONResponse(
                {"error": 'expected {"ref": ..., "labels": {"<dimension>": 0 or 1}}'},
                status_code=422,
            )
        labels = {str(k): str(v) for k, v in payload["labels"].items()}
        note = payload.get("note") if isinstance(payload.get("note"), str) else None
        result: dict[str, int] = {}
        error = _store(request, str(payload.get("ref", "")), labels, note, result)
        if error is not None:
            return JSONResponse({"error": error}, status_code=422)
        return JSONResponse(result)

    @app.post("/api/skip")
    async def api_skip(request: Request) -> Response:
        try:
            payload = await request.json()
        except ValueError:
            return JSONResponse({"error": "the body must be JSON"}, status_code=400)
        ref = str(payload.get("ref", "")) if isinstance(payload, dict) else ""
        if not _skip(request, ref):
            return JSONResponse({"error": f"unknown ref '{ref}'"}, status_code=422)
        return JSONResponse({"skipped": ref})

    @app.post("/api/undo")
    async def api_undo(request: Request) -> Response:
        workspace = workspace_of(request)
        undone = undo_last(workspace, request.state.annotator)
        if undone is None:
            return JSONResponse({"undone": None})
        with workspace.transaction() as db:
            row = db.execute(
                "SELECT ref FROM label_queue WHERE item_id = ? AND model = ? LIMIT 1",
                (undone.item_id, undone.model),
            ).fetchone()
        return JSONResponse(
            {"undone": {"ref": row and row["ref"], "dimensions": list(undone.dimensions)}}
        )

    # -- shared -------------------------------------------------------------------------------

    def _store(
        request: Request,
        ref: str,
        labels: dict[str, str],
        note: str | None,
        result: dict[str, int] | None = None,
    ) -> str | None:
        """Store the labels; an error message for the annotator, or None."""
        workspace = workspace_of(request)
        resolved = resolve_ref(workspace, ref)
        if resolved is None:
            return f"unknown ref '{ref}'"
        item_id, model, queued = resolved
        if not labels:
            return "answer at least one question"
        unknown = sorted(set(labels) - set(queued))
        if unknown:
            return f"dimension(s) {', '.join(unknown)} are not queued for this response"
        values = {}
        for dimension, value in labels.items():
            if value not in ("0", "1"):
                return f"answer for {dimension} must be 0 or 1"
            values[dimension] = int(value)
        try:
            stored = record_labels(
                workspace,
                annotator=request.state.annotator,
                item_id=item_id,
                model=model,
                labels=values,
                note=note,
            )
        except InputError as error:
            return str(error)
        if result is not None:
            result.update(added=stored.added, changed=stored.changed, unchanged=stored.unchanged)
        return None

    def _skip(request: Request, ref: str) -> bool:
        workspace = workspace_of(request)
        resolved = resolve_ref(workspace, ref)
        if resolved is None:
            return False
        skip_response(workspace, request.state.annotator, resolved[0], resolved[1])
        return True

    return app


def _same_origin(request: Request) -> bool:
    """A form post from this app's own pages (browsers send Origin on POST)."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.headers.get("host", "")
