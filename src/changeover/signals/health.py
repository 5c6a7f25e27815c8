"""Whether a signal's levels can be trusted as a whole: the share of responses a judge failed on
(`error`) or answered without a verdict (`unparseable`), and whether it tells responses apart at
all (a signal that puts every response at one level says nothing, and the fit refuses it).

Both are levels of their own and feed the fit like any other, so a judge that fails on most
responses does not stop anything downstream; it only makes the fit lean on fewer informative
levels. `signal_health` says when that share is high enough to warn, and what to do about it;
`score`, `run` and the report all word it through `SignalHealth.warnings`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from changeover.signals.compute import LEVEL_SEPARATOR

__all__ = ["MAX_FAILED_SHARE", "SignalHealth", "signal_health"]

#: A share of `error` or `unparseable` levels above this is worth a loud warning.
MAX_FAILED_SHARE = 0.10


@dataclass(frozen=True)
class SignalHealth:
    """How many of a signal's stored levels are `error` and `unparseable`, out of `total`."""

    total: int
    errors: int
    unparseable: int
    max_share: float = MAX_FAILED_SHARE
    only_level: str | None = None  # the one level of every other response, when there is one

    @property
    def error_share(self) -> float:
        return self.errors / self.total if self.total else 0.0

    @property
    def unparseable_share(self) -> float:
        return self.unparseable / self.total if self.total else 0.0

    @property
    def is_healthy(self) -> bool:
        return (
            self.error_share <= self.max_share
            and self.unparseable_share <= self.max_share
            and self.only_level is None
        )

    def warnings(self, signal: str) -> list[str]:
        """One line per share above `max_share`, saying what it means and how to fix it."""
        lines = []
        if self.only_level is not None:
            lines.append(
                f"{signal}: every scored response is at level '{self.only_level}', which tells "
                "them apart not at all (where it is its dimension's only signal, the rates rest "
                "on human labels alone); change its bins or metric (docs/signals.md), then "
                f"`changeover score --rescore --signals {signal}`, or add another signal"
            )
        if self.error_share > self.max_share:
            lines.append(
                f"{signal}: {self.errors:,} of {self.total:,} responses "
                f"({self.error_share:.0%}) have level 'error' (the judge call failed), and they "
                "feed the fit as a level of their own; check the judge model's endpoint "
                "(base_url) and key, then `changeover score --retry-failed`"
            )
        if self.unparseable_share > self.max_share:
            lines.append(
                f"{signal}: {self.unparseable:,} of {self.total:,} responses "
                f"({self.unparseable_share:.0%}) have level 'unparseable' (the judge answered "
                "without a verdict the rubric asks for); check the rubric or template and the "
                "judge model (`changeover export signals` shows the raw answers), then "
                f"`changeover score --rescore --signals {signal}`"
            )
        return lines


def signal_health(
    levels: Mapping[str, int], *, max_share: float = MAX_FAILED_SHARE
) -> SignalHealth:
    """The health of a signal from its level counts (`Workspace.signal_levels`).

    A combined level ("error|refused") counts as `error` when any part is, else as
    `unparseable` when any part is.
    """
    errors = unparseable = 0
    informative = set()
    for level, n in levels.items():
        parts = level.split(LEVEL_SEPARATOR)
        if "error" in parts:
            errors += n
        elif "unparseable" in parts:
            unparseable += n
        elif n:
            informative.add(level)
    only = next(iter(informative)) if len(informative) == 1 and errors + unparseable == 0 else None
    return SignalHealth(sum(levels.values()), errors, unparseable, max_share, only_level=only)
