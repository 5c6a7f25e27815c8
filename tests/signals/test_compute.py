from __future__ import annotations

import pytest

import changeover.signals as signals
from changeover.signals import (
    ReferenceSignal,
    RefusalSignal,
    StyleGuide,
    StyleSignal,
    combine_levels,
    compute_signal,
)

RESPONSES = ["I'm sorry, but I can't help with that.", "The capital of France is Paris."]


def test_compute_every_kind() -> None:
    refusal = compute_signal(RefusalSignal(), RESPONSES)
    assert [r.level for r in refusal] == ["refused", "complied"]
    guide = StyleGuide(max_words=6)
    style = compute_signal(StyleSignal(), RESPONSES, style_guide=guide)
    assert [r.level for r in style] == ["fail", "pass"]
    reference = compute_signal(
        ReferenceSignal(metric="containment"), RESPONSES, references=[None, "Paris/Lutetia"]
    )
    assert [r.level for r in reference] == ["no_reference", "not_contained"]
    split = ReferenceSignal(metric="containment", separator="/")
    assert compute_signal(split, RESPONSES, references=[None, "Paris/Lutetia"])[1].level == (
        "contained"
    )


def test_compute_needs_its_inputs() -> None:
    with pytest.raises(ValueError, match="style_guide="):
        compute_signal(StyleSignal(), RESPONSES)
    with pytest.raises(ValueError, match="references="):
        compute_signal(ReferenceSignal(), RESPONSES)


def test_combine_levels() -> None:
    assert combine_levels(["refused", "complied"], ["fail", "pass"]) == [
        "refused|fail",
        "complied|pass",
    ]
    with pytest.raises(ValueError, match="one level per response"):
        combine_levels(["a"], ["b", "c"])
    with pytest.raises(ValueError, match="3 distinct levels, more than 2"):
        combine_levels(["a", "b", "c"], max_levels=2)
    with pytest.raises(ValueError, match="at least one signal"):
        combine_levels()


def test_public_api_is_pinned() -> None:
    assert sorted(signals.__all__) == signals.__all__
    for name in signals.__all__:
        assert hasattr(signals, name)
