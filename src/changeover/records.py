"""The typed records of the workspace's tables: what every stage reads and writes.

`changeover.workspace` stores them in SQLite; importers, providers, signals and the report pass
them around without touching the database.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "ExpectedBehaviour",
    "Item",
    "LabelRecord",
    "ResponseRecord",
    "ResponseSource",
    "SignalRecord",
]

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
