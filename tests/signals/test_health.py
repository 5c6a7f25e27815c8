"""`signal_health`: the share of a signal's levels that are `error` or `unparseable`."""

from __future__ import annotations

from changeover.signals import signal_health


def test_shares_and_warnings() -> None:
    health = signal_health({"correct": 80, "incorrect": 8, "error": 12})
    assert (health.total, health.errors, health.unparseable) == (100, 12, 0)
    assert health.error_share == 0.12 and not health.is_healthy
    (warning,) = health.warnings("judge")
    assert warning.startswith("judge: 12 of 100 responses (12%) have level 'error'")
    assert "--retry-failed" in warning


def test_at_the_threshold_a_signal_is_healthy() -> None:
    health = signal_health({"pass": 90, "unparseable": 10})
    assert health.unparseable_share == 0.10 and health.is_healthy
    assert health.warnings("judge") == []
    assert not signal_health({"pass": 90, "unparseable": 10}, max_share=0.05).is_healthy


def test_combined_levels_count_by_their_parts() -> None:
    levels = {"refused|error": 3, "unparseable|complied": 2, "error|unparseable": 1, "x|y": 4}
    health = signal_health(levels)
    assert (health.total, health.errors, health.unparseable) == (10, 4, 2)
    (errors, unparseable) = health.warnings("a|b")
    assert "'error'" in errors and "--rescore --signals a|b" in unparseable


def test_no_levels_is_healthy() -> None:
    assert signal_health({}).is_healthy


def test_a_signal_with_one_level_says_how_to_fix_it() -> None:
    health = signal_health({"0.6-1": 120})
    assert health.only_level == "0.6-1" and not health.is_healthy
    (line,) = health.warnings("answer_overlap")
    assert "every scored response is at level '0.6-1'" in line
    assert "--rescore --signals answer_overlap" in line and "docs/signals.md" in line
    assert signal_health({"0.6-1": 119, "0-0.3": 1}).only_level is None
    assert signal_health({"pass": 90, "error": 10}).only_level is None  # the error share says it
