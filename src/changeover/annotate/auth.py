"""Who may use the annotation app: every request carries an annotator's token, as the cookie the
sign-in form sets or as `Authorization: Bearer <token>`; anything else gets 401 (the sign-in form,
for a browser). Form posts from another site are refused."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from changeover.annotate.tokens import authenticate
from changeover.annotate.web import (
    SECURITY_HEADERS,
    form_of,
    render,
    settings_of,
    workspace_of,
)

__all__ = ["COOKIE", "require_token", "router"]

COOKIE = "changeover_token"
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="changeover"'}

router = APIRouter()


def token_of(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.cookies.get(COOKIE)


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _login_page(request: Request, message: str | None = None) -> Response:
    response = render(request, "login.html", 401, message=message)
    response.headers.update(_CHALLENGE)
    return response


def _same_origin(request: Request) -> bool:
    """A form post from this app's own pages (browsers send Origin on POST)."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.headers.get("host", "")


async def require_token(request: Request, call_next: Any) -> Response:
    """The app's middleware: 401 for every request without a valid token, except posting the
    sign-in form; the security headers on every answer."""
    if request.url.path == "/login" and request.method == "POST":
        return await call_next(request)
    annotator = authenticate(workspace_of(request), token_of(request))
    if annotator is None:
        if _is_api(request):
            return JSONResponse(
                {"error": "missing or invalid token"},
                status_code=401,
                headers={**_CHALLENGE, **SECURITY_HEADERS},
            )
        return _login_page(request)
    if request.method == "POST" and not _is_api(request) and not _same_origin(request):
        return Response("cross-site form posts are refused", status_code=403)
    request.state.annotator = annotator
    response: Response = await call_next(request)
    response.headers.update(
        {k: v for k, v in SECURITY_HEADERS.items() if k not in response.headers}
    )
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    token = (await form_of(request)).get("token", "").strip()
    if authenticate(workspace_of(request), token) is None:
        return _login_page(request, "That token is not valid. Ask for a new one.")
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(
        COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=settings_of(request).secure_cookie,
        path="/",
    )
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response
