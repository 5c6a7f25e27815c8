"""What every signal returns for one response: a value, a discrete level and a readable detail."""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["SignalResult"]


class SignalResult(NamedTuple):
    """One response, scored by one signal.

    `value` is the raw number behind the level (a token F1, a count of violated rules, 1.0 for a
    detected refusal) or None when there is none; `level` is what the calibration engine counts;
    `detail` says why, in one line (the pattern that matched, the rules that were broken).
    """

    value: float | None
    level: str
    detail: str
