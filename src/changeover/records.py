"""The typed records of the workspace's tables: what every stage reads and writes.

`changeover.workspace` stores them in SQLite; importers, providers, signals and the report pass
them around without touching the database.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "MAX_PLAUSIBLE_TOKENS",
    "ExpectedBehaviour",
    "Item",
    "LabelRecord",
    "ResponseRecord",
    "ResponseSource",
    "SignalRecord",
    "lone_surrogate",
]

#: More tokens than one call can hold: a usage count beyond it is a broken count, not a count.
MAX_PLAUSIBLE_TOKENS = 10**9

ExpectedBehaviour = Literal["answer", "refuse"]
ResponseSource = Literal["generate", "import", "replay"]


@dataclass(frozen=True)
class Item:
    """One prompt of the study's prompt set."""

    item_id: str
    prompt: str
    segment: str
    reference: str | None = None
    expected_behaviour: ExpectedBehaviour = "answer"
    system: str | None = None
    context: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ResponseRecord:
    """One model's answer to one item, or the error that stopped it."""

    item_id: str
    model: str
    response: str | None
    error: str | None = None
    source: ResponseSource = "generate"
    finish_reason: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    latency_s: float | None = None
    cost: float | None = None
    attempts: int | None = None
    cache_key: str | None = None


@dataclass(frozen=True)
class SignalRecord:
    """One response scored by one signal (a row of the `signals` table)."""

    item_id: str
    model: str
    signal: str
    dimension: str
    value: float | None
    level: str
    detail: str | None = None


@dataclass(frozen=True)
class LabelRecord:
    """One human verdict: `label` is 1 when the response passes the dimension's question
    (correct; refused; adheres to the style guide), 0 when not."""

    item_id: str
    model: str
    dimension: str
    annotator: str
    label: int
    time: str | None = None
    note: str | None = None


def lone_surrogate(value: Any, where: str = "") -> str | None:
    """The key path of the first text in `value` (nested dicts and lists) that holds a lone
    surrogate, or None. JSON and YAML escapes (`\\ud800`) can make one; it is not text that
    can be stored or written (SQLite and UTF-8 refuse it), so readers refuse it first."""
    if isinstance(value, str):
        return (where or "(top)") if any("\ud800" <= c <= "\udfff" for c in value) else None
    if isinstance(value, dict):
        children = [(f"{where}.{k}" if where else str(k), v) for k, v in value.items()]
    elif isinstance(value, list):
        children = [(f"{where}[{i}]", v) for i, v in enumerate(value)]
    else:
        return None
    for path, child in children:
        if (found := lone_surrogate(child, path)) is not None:
            return found
    return None
