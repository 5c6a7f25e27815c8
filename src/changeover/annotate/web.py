"""What the annotation app's parts (auth, pages, api) share: its settings, the workspace it
serves, the security headers of every answer, and rendering a page."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from fastapi import Request
from fastapi.responses import Response
from fastapi.templating import Jinja2Templates

from changeover.workspace import Workspace

__all__ = ["SECURITY_HEADERS", "Settings", "form_of", "render", "settings_of", "workspace_of"]

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class Settings:
    """The app's settings, fixed when it is created (kept on `app.state.settings`)."""

    templates: Jinja2Templates
    seed: int
    secure_cookie: bool
    rules: tuple[str, ...]
    guide_text: str | None


def workspace_of(request: Request) -> Workspace:
    return request.app.state.workspace


def settings_of(request: Request) -> Settings:
    return request.app.state.settings


def render(request: Request, name: str, status: int = 200, **context: Any) -> Response:
    """The template `name` as an HTML answer, with the security headers."""
    templates = settings_of(request).templates
    response = templates.TemplateResponse(request, name, context, status_code=status)
    response.headers.update(SECURITY_HEADERS)
    return response


async def form_of(request: Request) -> dict[str, str]:
    """A posted form's fields (the last value of each)."""
    body = (await request.body()).decode("utf-8", errors="replace")
    return {key: values[-1] for key, values in parse_qs(body).items()}
