"""Who may use the annotation app, and what a request may do.

* **Tokens.** Every request carries an annotator's token, as the cookie the sign-in form sets
  (HttpOnly, SameSite=Strict) or as `Authorization: Bearer <token>`; anything else gets 401 (the
  sign-in form, for a browser).
* **Cross-site requests.** A browser sends a page's cookie with requests from other origins of
  the same site (another port of 127.0.0.1, a sibling subdomain), so every request signed in by
  cookie that changes something, and every API request, must come from the app's own origin:
  `Sec-Fetch-Site: same-origin` where the browser sends it (scripts cannot forge it), else an
  `Origin` naming this host. A form post must also carry the session's CSRF token (an HMAC of
  the cookie's token), and a cookie-signed API post must be JSON, which no other origin can send
  without a CORS preflight the app never grants. The sign-in form refuses cross-site posts, so
  no page can sign a browser in under someone else's token. A bearer token is never sent by the
  browser on its own, so requests carrying one need none of this.
* **Limits.** Failed sign-ins (a wrong token by form, cookie or header) are rate-limited per
  client address (429 with Retry-After); request bodies are capped (413).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from changeover.annotate.tokens import authenticate
from changeover.annotate.web import (
    SECURITY_HEADERS,
    form_of,
    render,
    settings_of,
    workspace_of,
)

__all__ = [
    "COOKIE",
    "MAX_BODY_BYTES",
    "LimitBody",
    "LoginLimiter",
    "csrf_token",
    "is_cross_site",
    "require_token",
    "router",
]

COOKIE = "changeover_token"
#: Request bodies larger than this are refused with 413 (a screen's labels and note need ~3 KiB).
MAX_BODY_BYTES = 64 * 1024
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="changeover"'}
_SAFE_METHODS = ("GET", "HEAD", "OPTIONS")

router = APIRouter()


class LoginLimiter:
    """Failed sign-ins per client address, as a token bucket: `burst` failures at once, then
    `per_second`. While a client's bucket is empty every sign-in from it is refused, a right
    token too, so that guessing learns nothing faster than the bucket refills."""

    def __init__(
        self,
        *,
        burst: int = 10,
        per_second: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.burst, self.per_second, self.clock = burst, per_second, clock
        self._buckets: dict[str, tuple[float, float]] = {}  # client -> (attempts left, when)

    def _left(self, client: str) -> float:
        left, then = self._buckets.get(client, (self.burst, self.clock()))
        return min(float(self.burst), left + (self.clock() - then) * self.per_second)

    def retry_after(self, client: str) -> int:
        """Seconds until `client` may try again (0: now)."""
        left = self._left(client)
        return 0 if left >= 1 else math.ceil((1 - left) / self.per_second)

    def failed(self, client: str) -> None:
        """Count a failed sign-in of `client`."""
        if len(self._buckets) > 10_000:  # forget clients whose bucket has refilled
            self._buckets = {c: b for c, b in self._buckets.items() if self._left(c) < self.burst}
        self._buckets[client] = (self._left(client) - 1, self.clock())


class LimitBody:
    """ASGI middleware: a request whose body is over `max_bytes` (declared or sent) gets 413.
    The body is read here, so the app sees it whole."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = f"{self.max_bytes // 1024} KiB"
        response = JSONResponse(
            {"error": f"the request body is over {limit}; send less"},
            status_code=413,
            headers=SECURITY_HEADERS,
        )
        await response(scope, receive, send)


def csrf_token(token: str) -> str:
    """The CSRF token of a session: bound to its annotator token, useless without it."""
    return hmac.new(token.encode("utf-8"), b"changeover form", hashlib.sha256).hexdigest()


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else None


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _client(request: Request) -> str:
    return request.client.host if request.client is not None else ""


def _limiter(request: Request) -> LoginLimiter:
    return request.app.state.login_limiter


def is_cross_site(request: Request) -> bool:
    """Whether a browser says the request comes from another origin than the app's."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site != "same-origin"
    origin = request.headers.get("origin")
    if origin is None:
        return False  # not a browser (or a very old one: the CSRF token still guards forms)
    return origin == "null" or urlsplit(origin).netloc != request.headers.get("host", "")


def _refuse(request: Request, status: int, message: str) -> Response:
    if _is_api(request):
        return JSONResponse({"error": message}, status_code=status, headers=SECURITY_HEADERS)
    return Response(message, status_code=status, headers=SECURITY_HEADERS)


def _login_page(request: Request, message: str | None = None, status: int = 401) -> Response:
    response = render(request, "login.html", status, message=message)
    response.headers.update(_CHALLENGE)
    return response


def _throttled(request: Request) -> Response:
    """429: too many failed sign-ins from this client."""
    wait = _limiter(request).retry_after(_client(request))
    message = f"Too many failed sign-ins from your address; try again in {wait} s."
    if _is_api(request):
        response = _refuse(request, 429, message)
    else:
        response = _login_page(request, message, 429)
    response.headers["Retry-After"] = str(wait)
    return response


async def require_token(request: Request, call_next: Any) -> Response:
    """The app's middleware: who is asking (401 without a valid token, 429 after too many wrong
    ones), whether the request may come from where it comes from (403), and the security
    headers on every answer."""
    changes = request.method not in _SAFE_METHODS
    if request.url.path == "/login" and request.method == "POST":
        if is_cross_site(request):
            return _refuse(request, 403, "cross-site sign-in refused: sign in on the app's page")
        if _limiter(request).retry_after(_client(request)):
            return _throttled(request)
        return await call_next(request)
    bearer = _bearer(request)
    token = bearer if bearer is not None else request.cookies.get(COOKIE)
    annotator = None
    if token:
        if _limiter(request).retry_after(_client(request)):
            return _throttled(request)
        annotator = authenticate(workspace_of(request), token)
        if annotator is None:
            _limiter(request).failed(_client(request))
    if token is None or annotator is None:
        if _is_api(request):
            return JSONResponse(
                {"error": "missing or invalid token"},
                status_code=401,
                headers={**_CHALLENGE, **SECURITY_HEADERS},
            )
        return _login_page(request)
    if bearer is None:  # signed in by the browser's cookie: guard against other origins
        if (changes or _is_api(request)) and is_cross_site(request):
            return _refuse(request, 403, "cross-site request refused")
        if changes and _is_api(request):
            if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
                return _refuse(request, 403, "send JSON (Content-Type: application/json)")
        elif changes:
            sent = (await form_of(request)).get("csrf", "")
            if not hmac.compare_digest(sent, csrf_token(token)):
                return _refuse(
                    request, 403, "this form lacks the session's CSRF token; reload the page"
                )
    request.state.annotator = annotator
    request.state.csrf = csrf_token(token)
    response: Response = await call_next(request)
    response.headers.update(
        {k: v for k, v in SECURITY_HEADERS.items() if k not in response.headers}
    )
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    token = (await form_of(request)).get("token", "").strip()
    if authenticate(workspace_of(request), token) is None:
        _limiter(request).failed(_client(request))
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
