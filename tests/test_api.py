from __future__ import annotations

import changeover


def test_public_api_is_pinned() -> None:
    assert sorted(changeover.__all__) == sorted(
        [
            "CalibrationError",
            "ChangeoverError",
            "Decision",
            "Gate",
            "InputError",
            "Result",
            "Study",
            "StudyError",
            "counts_from_rows",
            "fit",
            "load_study",
            "parse_study",
            "read_counts",
            "read_measurements",
            "read_rows",
            "validate_counts",
            "write_counts",
        ]
    )
    for name in changeover.__all__:
        assert getattr(changeover, name) is not None
