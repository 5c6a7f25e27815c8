"""Money: what a request costs, what a run may spend, and what a run will cost before it runs.

* `request_cost` prices tokens from the model's settings (`price_input_per_million`,
  `price_output_per_million`), at the batch price (`batch_discount` off) for batch requests.
* `SpendLimit` keeps a run within the study's `budget:`: before a request is sent the worst case
  it could cost is reserved (`worst_case_cost`: every input byte a token, plus `max_tokens`), and
  once its usage is known the reservation is settled at the real cost. A request whose worst case
  does not fit waits for the requests in flight to settle, and is not sent when it still does
  not fit: the budget is never exceeded, whatever the answers hold.
* `estimate_spend` says what sending some requests will cost, from the model's recorded usage
  (the characters per input token and the output tokens per request of its earlier requests) or,
  with none recorded, from `CHARS_PER_TOKEN` and `max_tokens`: `generate --dry-run` and
  `score --dry-run`.
* `SpendEntry` is one paid request as the workspace's `spend` table keeps it (per model and
  purpose: generation or judging), and `SpendSummary` what `Workspace.spend_summary` returns.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Literal

from changeover.providers import ModelSettings, Request

__all__ = [
    "CHARS_PER_TOKEN",
    "MESSAGE_OVERHEAD_TOKENS",
    "Mode",
    "Purpose",
    "SpendEntry",
    "SpendEstimate",
    "SpendLimit",
    "SpendPlan",
    "SpendSummary",
    "UsageHistory",
    "dollars",
    "estimate_spend",
    "request_chars",
    "request_cost",
    "worst_case_cost",
]

Purpose = Literal["generation", "judging"]
Mode = Literal["online", "batch"]

#: Characters per input token when a model has no recorded usage (English text, GPT and Claude
#: tokenizers: about four).
CHARS_PER_TOKEN = 4.0
#: Tokens a provider adds per message for its framing (role markers).
MESSAGE_OVERHEAD_TOKENS = 4


def request_chars(request: Request) -> int:
    """The characters of a request's messages: what input tokens are estimated from."""
    return sum(len(m.content) for m in request.messages)


def request_cost(
    settings: ModelSettings,
    input_tokens: int | None,
    output_tokens: int | None,
    *,
    is_batch: bool = False,
) -> float | None:
    """Dollars for these tokens at the model's prices (None when it has none); a batch request
    costs `batch_discount` less."""
    if not settings.is_priced:
        return None
    cost = (
        (input_tokens or 0) * (settings.price_input_per_million or 0.0)
        + (output_tokens or 0) * (settings.price_output_per_million or 0.0)
    ) / 1e6
    return cost * (1.0 - settings.batch_discount) if is_batch else cost


def worst_case_cost(request: Request, settings: ModelSettings, *, is_batch: bool = False) -> float:
    """The most a request can cost: a token per input byte (a token is at least one byte) plus
    the framing of each message, and `max_tokens` of output. 0 for a model without prices; a
    study with a budget gives every model prices and a `max_tokens` (study.py)."""
    input_bound = sum(len(m.content.encode()) + MESSAGE_OVERHEAD_TOKENS for m in request.messages)
    cost = request_cost(
        settings, input_bound, settings.effective_max_tokens or 0, is_batch=is_batch
    )
    return cost or 0.0


def dollars(value: float) -> str:
    """An amount as the summaries show it: cents above a dollar, four decimals below."""
    return f"${value:,.2f}" if value >= 1 else f"${value:,.4f}"


class SpendLimit:
    """The study's budget for one run, shared by every model the run calls.

    `spent_before` is what the study had spent before the run (the workspace's `spend` table).
    A request that does not fit waits while requests in flight may give back what they held
    (their worst case, settled at their real cost); one that does not fit with nothing in
    flight ends the run for every model: `exceeded` says why.
    """

    def __init__(
        self, *, per_run: float | None, per_study: float | None, spent_before: float = 0.0
    ) -> None:
        self.per_run = per_run
        self.per_study = per_study
        self.spent_before = spent_before
        self.spent = 0.0  # settled in this run
        self.reserved = 0.0  # held for requests in flight
        self.exceeded: str | None = None
        self._settled = asyncio.Event()

    def _breach(self, amount: float) -> str | None:
        """The limit `amount` more would break, said in one sentence; None when it fits."""
        run = self.spent + self.reserved
        limits = (
            ("budget.per_run", self.per_run, run, "this run"),
            ("budget.per_study", self.per_study, self.spent_before + run, "the study"),
        )
        for key, limit, held, scope in limits:
            if limit is not None and held + amount > limit + 1e-12:
                return (
                    f"{key} ({dollars(limit)}) would be exceeded: {scope} has spent or holds "
                    f"{dollars(held)} and the next request may cost up to {dollars(amount)}; "
                    f"raise {key} and re-run to go on (what was received is stored)"
                )
        return None

    def try_reserve(self, amount: float) -> bool:
        """Hold `amount` for a request about to be sent if it fits now. When it does not, and
        nothing is in flight that could give some back, the limit is `exceeded` for good."""
        if self.exceeded is not None:
            return False
        breach = self._breach(amount)
        if breach is None:
            self.reserved += amount
            return True
        if self.reserved <= 1e-12:
            self.exceeded = breach
        return False

    async def reserve(self, amount: float) -> bool:
        """Hold `amount`, waiting while requests in flight settle; False once `exceeded`."""
        while not self.try_reserve(amount):
            if self.exceeded is not None:
                return False
            await self.settled()
        return True

    async def settled(self) -> None:
        """Wait until a request in flight settles (at once when none is in flight)."""
        if self.reserved > 1e-12:
            self._settled.clear()
            await self._settled.wait()

    def commit(self, amount: float) -> None:
        """Hold `amount` that is spent whatever the limit says (a batch submitted earlier)."""
        self.reserved += amount

    def settle(self, reserved: float, cost: float | None) -> None:
        """Replace a reservation by what the request cost (None: unknown, the reservation)."""
        self.reserved = max(0.0, self.reserved - reserved)
        self.spent += reserved if cost is None else cost
        self._settled.set()


@dataclass(frozen=True)
class SpendEntry:
    """One paid request, as the workspace's `spend` table keeps it."""

    model: str
    purpose: Purpose
    mode: Mode
    input_chars: int | None
    input_tokens: int | None
    output_tokens: int | None
    cost: float | None
    saving: float | None  # batch: what the same tokens cost online, less what they cost
    latency_s: float | None  # online only: a batch answer's wait says nothing of the model


@dataclass(frozen=True)
class SpendSummary:
    """What one model cost for one purpose: requests, tokens, dollars and latency.

    `latency_p50_s` and `latency_p95_s` are over the online requests (batch answers have no
    latency of their own); None without any."""

    model: str
    purpose: Purpose
    requests: int
    batch_requests: int
    input_tokens: int
    output_tokens: int
    cost: float | None
    saving: float
    latency_p50_s: float | None
    latency_p95_s: float | None


@dataclass(frozen=True)
class UsageHistory:
    """A model's recorded usage for one purpose: its requests with known input characters and
    tokens, and their sums."""

    requests: int
    input_chars: int
    input_tokens: int
    output_tokens: int


@dataclass(frozen=True)
class SpendEstimate:
    """What sending `requests` requests to `model` will cost, before any is sent.

    `cost` is the estimate, `cost_at_max_tokens` the same input with every answer as long as
    `max_tokens` allows; `basis` says where the token counts come from."""

    model: str
    purpose: Purpose
    signal: str | None
    requests: int
    cached: int  # needed no request: in the request cache already
    in_open_batches: int  # submitted by an earlier run, waiting to be collected (paid already)
    input_tokens: int
    output_tokens: int | None
    cost: float | None
    cost_at_max_tokens: float | None
    basis: str
    is_batch: bool


@dataclass(frozen=True)
class SpendPlan:
    """What a run would send and cost (`--dry-run`), beside the study's budget and what it has
    spent so far. Nothing is sent to make it, and nothing written."""

    estimates: list[SpendEstimate]
    per_run: float | None
    per_study: float | None
    spent: float

    @property
    def cost(self) -> float | None:
        """The estimated dollars of the whole run; None when a model's cannot be estimated (no
        prices, or no recorded usage and no `max_tokens`) and requests would be sent to it."""
        costs = [e.cost for e in self.estimates if e.requests]
        return None if any(c is None for c in costs) else sum(c or 0.0 for c in costs)

    def fits(self) -> str | None:
        """Which budget the estimate exceeds, said in one line; None when it fits (or there is
        no budget, or no estimate)."""
        cost = self.cost
        if cost is None:
            return None
        if self.per_run is not None and cost > self.per_run:
            return (
                f"the estimate ({dollars(cost)}) exceeds budget.per_run "
                f"({dollars(self.per_run)}): the run would stop part way"
            )
        if self.per_study is not None and self.spent + cost > self.per_study:
            return (
                f"the estimate ({dollars(cost)}) and the {dollars(self.spent)} spent so far "
                f"exceed budget.per_study ({dollars(self.per_study)}): the run would stop part way"
            )
        return None


def estimate_spend(
    model: str,
    settings: ModelSettings,
    purpose: Purpose,
    *,
    requests: int,
    input_chars: int,
    messages: int,
    history: UsageHistory | None,
    signal: str | None = None,
    cached: int = 0,
    in_open_batches: int = 0,
) -> SpendEstimate:
    """The tokens and dollars of `requests` requests holding `input_chars` characters in
    `messages` messages.

    With recorded usage, input tokens follow the model's own characters per token and output
    tokens its mean per request; without, input is `CHARS_PER_TOKEN` characters per token plus
    the framing of each message, and output is `max_tokens` (an upper bound: a pilot run,
    `generate --limit 20`, gives a closer estimate)."""
    max_output = (
        None if settings.effective_max_tokens is None else requests * settings.effective_max_tokens
    )
    if history is not None and history.requests and history.input_tokens:
        chars_per_token = history.input_chars / history.input_tokens
        input_tokens = round(input_chars / chars_per_token) if chars_per_token else 0
        output_tokens: int | None = round(requests * history.output_tokens / history.requests)
        basis = (
            f"recorded usage of {history.requests:,} requests ({chars_per_token:.1f} characters "
            f"per input token, {history.output_tokens / history.requests:,.0f} output tokens "
            "per request)"
        )
    else:
        input_tokens = round(input_chars / CHARS_PER_TOKEN) + MESSAGE_OVERHEAD_TOKENS * messages
        output_tokens = max_output
        basis = (
            f"no recorded usage: {CHARS_PER_TOKEN:g} characters per input token, output at "
            "max_tokens (an upper bound)"
        )
    is_batch = settings.batch
    cost = None if output_tokens is None else request_cost(
        settings, input_tokens, output_tokens, is_batch=is_batch
    )  # fmt: skip
    at_max_tokens = None if max_output is None else request_cost(
        settings, input_tokens, max_output, is_batch=is_batch
    )  # fmt: skip
    return SpendEstimate(
        model=model,
        purpose=purpose,
        signal=signal,
        requests=requests,
        cached=cached,
        in_open_batches=in_open_batches,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost=cost,
        cost_at_max_tokens=at_max_tokens,
        basis=basis,
        is_batch=is_batch,
    )
