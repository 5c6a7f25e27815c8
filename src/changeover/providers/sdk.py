"""The base of the providers that speak through an official SDK (`openai`, `anthropic`).

Both SDKs are built alike (an async client over httpx, the same three exception classes), so
what they share lives here once: the client's set-up (our retries, not the SDK's; the aiohttp
transport when it is installed), the POST that reads the answer as bytes, the mapping of the
SDK's exceptions to `CallError`, and the reading of token usage. A subclass names its package,
client class and path, builds its request body and parses its answer.
"""

from __future__ import annotations

import importlib
from abc import abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

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

__all__ = ["SDKProvider", "token_count"]


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
        sdk = self._sdk
        try:
            return bytes(await self._client.post(self.path, body=body, cast_to=bytes))
        except sdk.APIStatusError as error:
            status = error.status_code
            raise CallError(
                classify_status(status),
                f"HTTP {status}: {short(redact(error.message, self._secrets))}",
                status=status,
                retry_after=parse_retry_after(error.response.headers),
            ) from None
        except sdk.APITimeoutError:
            raise CallError("timeout", f"no answer within {self._settings.timeout:g}s") from None
        except sdk.APIConnectionError as error:
            message = short(redact(str(error), self._secrets))
            raise CallError("connection", f"connection failed: {message}") from None

    async def aclose(self) -> None:
        await self._client.close()


def token_count(usage: Mapping[str, Any], key: str) -> int | None:
    """A token count from the answer's usage, or None when it is not a whole number."""
    value = usage.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _http_client(sdk: Any, settings: ModelSettings) -> Any:
    """The SDK's aiohttp transport when aiohttp is installed: at high concurrency it needs less
    than half the CPU per request of the default httpx transport (docs/generate.md)."""
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        return None
    return sdk.DefaultAioHttpClient(timeout=settings.timeout)
