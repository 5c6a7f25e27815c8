"""The annotation web app: server-rendered pages (Jinja2) and a small JSON API (FastAPI),
assembled here from its parts: `auth` (tokens, sign-in, the check on every request), `pages`
(HTML) and `api` (JSON).

The app is blind: pages and API answers carry an opaque `ref` per response, never the item or
model. Response text is autoescaped and the Content-Security-Policy allows only the app's own
script, so a response containing markup is shown as text and never runs.

Every endpoint is `async` and so runs on the event loop's single thread, the one that opened the
workspace connection: SQLite writes are serialised there, one transaction per request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import jinja2
from fastapi import FastAPI
from fastapi.templating import Jinja2Templates

from changeover.annotate import api, auth, pages
from changeover.annotate.auth import COOKIE, MAX_BODY_BYTES, LimitBody, LoginLimiter
from changeover.annotate.labels import QUESTIONS, question
from changeover.annotate.web import Settings
from changeover.signals.settings import StyleGuide
from changeover.workspace import open_workspace

__all__ = ["COOKIE", "QUESTIONS", "LoginLimiter", "create_app"]


def create_app(
    workspace_path: Path,
    *,
    style_guide: StyleGuide | None = None,
    seed: int = 0,
    secure_cookie: bool = False,
    login_limiter: LoginLimiter | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> FastAPI:
    """The app for the workspace at `workspace_path`; `seed` seeds every annotator's order.
    Failed sign-ins are limited per client by `login_limiter` (default: `LoginLimiter()`) and
    request bodies to `max_body_bytes`."""
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"), autoescape=True
    )
    environment.globals.update(question=question)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        workspace = open_workspace(workspace_path)
        app.state.workspace = workspace
        try:
            yield
        finally:
            workspace.close()

    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings = Settings(
        templates=Jinja2Templates(env=environment),
        seed=seed,
        secure_cookie=secure_cookie,
        rules=tuple(style_guide.rules()) if style_guide is not None else (),
        guide_text=style_guide.text if style_guide is not None else None,
    )
    app.state.login_limiter = login_limiter if login_limiter is not None else LoginLimiter()
    app.middleware("http")(auth.require_token)
    app.add_middleware(LimitBody, max_bytes=max_body_bytes)  # the outermost: before anything
    for part in (auth, pages, api):
        app.include_router(part.router)
    return app
