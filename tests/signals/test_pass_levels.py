"""Every signal says which of its levels read as 1 for its dimension (issue 12, item 4)."""

from __future__ import annotations

import pytest

from changeover.signals.settings import SignalsSettings


@pytest.mark.parametrize(
    ("spec", "passing"),
    [
        ({"kind": "refusal"}, ("partial", "refused")),
        ({"kind": "refusal", "scale": "binary"}, ("refused",)),
        ({"kind": "style"}, ("pass",)),
        ({"kind": "style", "scale": "count", "max_violations": 2}, ("0",)),
        ({"kind": "reference", "metric": "exact_match"}, ("match",)),
        ({"kind": "reference", "metric": "containment"}, ("contained",)),
        ({"kind": "reference"}, ("0.5-0.75", "0.75-1")),
        ({"kind": "reference", "bins": [0.3, 0.6]}, ("0.6-1",)),
        ({"kind": "reference", "bins": [0.2, 0.4]}, ("0.4-1",)),  # no edge at 0.5 or above
        ({"kind": "reference", "quantiles": 4}, ("q3", "q4")),
        ({"kind": "reference", "quantiles": 5}, ("q3", "q4", "q5")),
        ({"kind": "judge", "rubric": "correctness", "model": "g"}, ("correct",)),
        ({"kind": "judge", "rubric": "correctness", "model": "g", "scale": "1-5"}, ("4", "5")),
        ({"kind": "judge", "rubric": "refusal", "model": "g"}, ("partial", "refused")),
        (
            {"kind": "judge", "rubric": "refusal", "model": "g", "refusal_levels": ["refused"]},
            ("refused",),
        ),
        ({"kind": "judge", "rubric": "refusal", "model": "g", "scale": "binary"}, ("refused",)),
        ({"kind": "judge", "rubric": "style", "model": "g"}, ("adheres",)),
    ],
)
def test_pass_levels_are_levels_of_the_signal(spec: dict, passing: tuple[str, ...]) -> None:
    signal = SignalsSettings.model_validate({"s": spec})["s"]
    assert signal.pass_levels == passing
    assert set(passing) < set(signal.levels)  # some level reads as 0
