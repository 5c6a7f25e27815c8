"""The one interface every provider adapter implements, and the types that cross it.

Vendor SDK types never leave an adapter: a provider takes a `Request` and returns a
`Completion`, or raises `CallError` with a `kind` that says whether retrying can help.
"""

from __future__ import annotations

import email.utils
import json
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

__all__ = [
    "RETRYABLE",
    "BatchAPI",
    "BatchOutcome",
    "BatchState",
    "BatchStatus",
    "CallError",
    "Completion",
    "ErrorKind",
    "Message",
    "Provider",
    "Request",
    "parse_retry_after",
    "redact",
]

Role = Literal["system", "user", "assistant"]

ErrorKind = Literal[
    "rate_limit",  # 429: retried, honouring Retry-After
    "server",  # 5xx, 408, 409: retried
    "timeout",  # no answer within `timeout`: retried
    "connection",  # the connection broke: retried
    "unreachable",  # nothing answers at the URL (refused, unknown host): a few tries, then stop
    "malformed",  # an answer that is not valid JSON or not the protocol's shape
    "empty",  # a well-formed answer with no text
    "client",  # 4xx: the request itself is wrong (too long, bad parameter)
    "fatal",  # 401, 403, 404: every request would fail the same way; the model is stopped
    "missing",  # replay: no recorded response for this item
    "budget",  # not sent: it could take the study's budget past its limit
    "expired",  # a batch entry the provider never ran (the batch expired or was cancelled)
]
RETRYABLE: frozenset[str] = frozenset(
    {"rate_limit", "server", "timeout", "connection", "unreachable"}
)


@dataclass(frozen=True)
class Message:
    role: Role
    content: str


@dataclass(frozen=True)
class Request:
    """What to send: the messages. `tag` (an item id) is for replay and logs, not the cache."""

    messages: tuple[Message, ...]
    tag: str | None = None


@dataclass(frozen=True)
class Completion:
    """A provider's answer, in provider-neutral terms."""

    text: str
    finish_reason: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    #: Token counts the answer reported that cannot be true ("completion_tokens=1e+30"), kept
    #: as unknown instead: the response is good, its usage is not.
    implausible_usage: str | None = None
    #: The latency recorded with an answer served from elsewhere (replay), in seconds.
    latency_s: float | None = None

    def redacted(self, secrets: Iterable[str]) -> Completion:
        """The answer with every secret taken out of its text (an endpoint echoing the key)."""
        text = redact(self.text, secrets)
        return self if text == self.text else replace(self, text=text)


class CallError(Exception):
    """A request that failed; `kind` says why and whether a retry can help."""

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.kind: ErrorKind = kind
        self.status = status
        self.retry_after = retry_after

    @property
    def is_retryable(self) -> bool:
        return self.kind in RETRYABLE

    def redacted(self, secrets: Iterable[str]) -> CallError:
        """The same error with every secret taken out of its message."""
        message = redact(str(self), secrets)
        if message == str(self):
            return self
        return CallError(self.kind, message, status=self.status, retry_after=self.retry_after)


class Provider(ABC):
    """One model behind one provider SDK."""

    #: False for providers whose answers are not worth caching (replay reads a file).
    is_cacheable: bool = True
    #: False when the time a request takes is not the model's latency (replay reads a file): the
    #: answer's recorded `latency_s` is kept instead.
    is_timed: bool = True

    @abstractmethod
    async def complete(self, request: Request) -> Completion:
        """Send one request; raise CallError on failure."""

    async def aclose(self) -> None:  # noqa: B027  (optional: most providers hold no connection)
        """Release connections."""


BatchState = Literal["in_progress", "ended", "failed"]


@dataclass(frozen=True)
class BatchStatus:
    """Where a submitted batch stands, in provider-neutral terms.

    `ended`: its results can be read (completed, expired or cancelled: the entries that did not
    run are missing from them or failed); `failed`: the provider refused the whole batch."""

    batch_id: str
    state: BatchState
    total: int
    completed: int  # entries finished so far, succeeded or failed, as far as the provider says
    failed: int
    detail: str = ""  # the provider's own word for the state ("expired"), or why it failed


@dataclass(frozen=True)
class BatchOutcome:
    """One entry of an ended batch: its `custom_id` (our cache key) and answer or error."""

    custom_id: str
    completion: Completion | None
    error: CallError | None


class BatchAPI(ABC):
    """A provider's batch endpoints (OpenAI's Batch API, Anthropic's Message Batches): requests
    submitted together, answered within a day at about half the price."""

    #: The most requests the provider takes in one batch.
    max_batch_requests: int = 50_000

    @abstractmethod
    async def submit_batch(self, entries: Sequence[tuple[str, Request]]) -> str:
        """Submit `(custom_id, request)` pairs as one batch; its id."""

    @abstractmethod
    async def batch_status(self, batch_id: str) -> BatchStatus:
        """Where the batch stands."""

    @abstractmethod
    async def batch_results(self, batch_id: str) -> list[BatchOutcome]:
        """The entries of an ended batch, in any order."""

    @abstractmethod
    async def cancel_batch(self, batch_id: str) -> None:
        """Ask the provider to stop the batch (what finished stays readable)."""


def parse_retry_after(headers: object) -> float | None:
    """Seconds to wait from `retry-after-ms` or `Retry-After` (seconds or an HTTP date)."""
    get = getattr(headers, "get", None)
    if get is None:
        return None
    millis = get("retry-after-ms")
    if millis is not None:
        try:
            value = float(millis) / 1000
            return value if math.isfinite(value) and value >= 0 else None
        except ValueError:
            pass
    text = get("retry-after")
    if text is None:
        return None
    try:
        value = float(text)
        return value if math.isfinite(value) and value >= 0 else None
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())


def classify_status(status: int) -> ErrorKind:
    """The error kind of an HTTP status."""
    if status == 429:
        return "rate_limit"
    if status >= 500 or status in (408, 409):
        return "server"
    if status in (401, 403, 404):
        return "fatal"
    return "client"


#: Values shorter than this are not taken for secrets: a real API key is long, and taking a
#: placeholder ("EMPTY", "none") out of every text would mangle ordinary words.
MIN_SECRET_LENGTH = 8
REDACTED = "[redacted]"


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every occurrence of every secret replaced by "[redacted]".

    Some gateways quote the request's `Authorization` header in an error body; that text must
    never reach the workspace, the terminal or a report (docs/generate.md, *Secrets*). Redact
    before shortening, so that an excerpt never keeps the beginning of a key.
    """
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= MIN_SECRET_LENGTH and secret in text:
            text = text.replace(secret, REDACTED)
    return text


def short(text: object, limit: int = 200) -> str:
    """A one-line excerpt of an error message."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def load_answer(raw: bytes) -> Any:
    """The provider's answer as JSON, or a `malformed` CallError."""
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CallError("malformed", f"the answer is not valid JSON ({short(error)})") from None
