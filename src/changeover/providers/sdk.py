"""The base of the providers that speak through an official SDK (`openai`, `anthropic`).

Both SDKs are built alike (an async client over httpx, the same three exception classes), so
what they share lives here once: the client's set-up (our retries, not the SDK's; the aiohttp
transport when it is installed), the POST that reads the answer as bytes, the mapping of the
SDK's exceptions to `CallError`, and the reading of token usage. A subclass names its package,
client class and path, builds its request body and parses its answer, and implements the
provider's batch endpoints (`BatchAPI`) with the SDK's typed batch methods.
"""

from __future__ import annotations

import asyncio
import importlib
import math
import socket
from abc import abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from changeover.providers.base import (
    CallError,
    Completion,
    Provider,
    Request,
    classify_status,
    parse_retry_after,
    redact,
    short,
)
from changeover.providers.settings import ModelSettings
from changeover.records import MAX_PLAUSIBLE_TOKENS

__all__ = ["BATCH_TIMEOUT", "MAX_PLAUSIBLE_TOKENS", "SDKProvider", "Usage", "read_usage"]

#: More tokens than any request has used: a count beyond it is a broken answer, not a bill.
#: Seconds at least for one call of the batch endpoints (a file upload, a results download).
BATCH_TIMEOUT = 300.0

_T = TypeVar("_T")


class SDKProvider(Provider):
    """One model behind an official SDK's async client."""

    #: The SDK's package, its async client class, and the path requests are posted to.
    package: ClassVar[str]
    client_class: ClassVar[str]
    path: ClassVar[str]

    def __init__(self, settings: ModelSettings, *, api_key: str | None) -> None:
        sdk = importlib.import_module(self.package)  # imported only when this provider is used
        self._sdk = sdk
        self._settings = settings
        self._secrets = (api_key,) if api_key else ()
        # Retries are ours (calls.py), so that they are counted, honour Retry-After across all
        # workers of a model, and show in the summary.
        self._client = getattr(sdk, self.client_class)(
            api_key=api_key or "unused",
            base_url=settings.base_url,
            timeout=settings.timeout,
            max_retries=0,
            http_client=_http_client(sdk, settings),
        )

    @abstractmethod
    def body(self, request: Request) -> dict[str, Any]:
        """The request body the provider's API expects."""

    @abstractmethod
    def parse(self, raw: bytes) -> Completion:
        """The provider's answer as a Completion, or a CallError (`malformed`, `empty`)."""

    async def complete(self, request: Request) -> Completion:
        return self.parse(await self._post(self.body(request)))

    async def _post(self, body: dict[str, Any]) -> bytes:
        """POST through the SDK client's low-level `post`, reading the body as bytes.

        The typed methods (`chat.completions.create`, `messages.create`) re-walk every parameter
        and build pydantic models, which doubles the CPU per request and caps throughput at high
        concurrency (docs/generate.md).
        """
        client = self._client
        answer = await self._sdk_call(
            lambda: client.post(self.path, body=body, cast_to=bytes), self._settings.timeout
        )
        return bytes(answer)

    async def _sdk_call(self, call: Callable[[], Awaitable[_T]], timeout: float) -> _T:
        """Await one SDK call, its exceptions mapped to `CallError` (keys redacted)."""
        sdk = self._sdk
        try:
            # The SDK's timeout bounds each read: an endpoint that drips a byte at a time would
            # never trip it. `timeout` bounds the whole request.
            async with asyncio.timeout(timeout):
                return await call()
        except TimeoutError:
            raise CallError("timeout", f"no answer within {timeout:g}s") from None
        except sdk.APIStatusError as error:
            status = error.status_code
            raise CallError(
                classify_status(status),
                f"HTTP {status}: {short(redact(error.message, self._secrets))}",
                status=status,
                retry_after=parse_retry_after(error.response.headers),
            ) from None
        except sdk.APIConnectionError as error:  # APITimeoutError included
            reason = _nothing_answers(error)
            if reason is not None:
                url = self._client.base_url
                raise CallError("unreachable", f"nothing answers at {url} ({reason})") from None
            if isinstance(error, sdk.APITimeoutError):
                raise CallError("timeout", f"no answer within {timeout:g}s") from None
            message = short(redact(str(error), self._secrets))
            raise CallError("connection", f"connection failed: {message}") from None

    @property
    def _batch_timeout(self) -> float:
        """Seconds for one call of the batch endpoints: uploading or reading a file of
        thousands of requests takes longer than one answer."""
        return max(self._settings.timeout, BATCH_TIMEOUT)

    async def aclose(self) -> None:
        await self._client.close()


@dataclass(frozen=True)
class Usage:
    """The token counts an answer reported, and those set aside as implausible."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    implausible: str | None = None  # e.g. "completion_tokens=1e+30"


def read_usage(usage: object, *, input_key: str, output_key: str) -> Usage:
    """The answer's `usage` object read leniently: a count that is missing is unknown, and so is
    one that cannot be true (negative, fractional, not a number, beyond `MAX_PLAUSIBLE_TOKENS`),
    which is also named in `implausible` so that the run can warn. One bad number from a proxy
    must not cost the response it came with (issue 13: 10**30 tokens once aborted a run)."""
    fields = usage if isinstance(usage, dict) else {}
    counts: list[int | None] = []
    implausible = []
    for key in (input_key, output_key):
        value = fields.get(key)
        count = _plausible(value)
        if value is not None and count is None:
            implausible.append(f"{key}={_shown(value)}")
        counts.append(count)
    return Usage(counts[0], counts[1], ", ".join(implausible) or None)


def _plausible(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        return None
    return int(value) if 0 <= value <= MAX_PLAUSIBLE_TOKENS else None


def _shown(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**12:
        return f"{float(value):.3g}"
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


def _nothing_answers(error: BaseException) -> str | None:
    """Why nothing answers at the URL, when the chain of causes says so: a refused connection or
    a host name that does not resolve (a wrong `base_url`, a server that is not running), which
    some transports report as a connect timeout."""
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, socket.gaierror):
            return "unknown host"
        cause = cause.__cause__ or cause.__context__
    return None


def _http_client(sdk: Any, settings: ModelSettings) -> Any:
    """The SDK's aiohttp transport when aiohttp is installed: at high concurrency it needs less
    than half the CPU per request of the default httpx transport (docs/generate.md)."""
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        return None
    return sdk.DefaultAioHttpClient(timeout=settings.timeout)
