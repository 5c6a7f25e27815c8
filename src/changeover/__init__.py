"""changeover: can we safely replace the LLM behind our product, and how sure are we?"""

from changeover.counts import (
    counts_from_rows,
    read_counts,
    read_rows,
    validate_counts,
    write_counts,
)
from changeover.errors import CalibrationError, ChangeoverError, InputError, StudyError
from changeover.study import Decision, Gate, Study, load_study, parse_study

__all__ = [
    "CalibrationError",
    "ChangeoverError",
    "Decision",
    "Gate",
    "InputError",
    "Study",
    "StudyError",
    "counts_from_rows",
    "load_study",
    "parse_study",
    "read_counts",
    "read_rows",
    "validate_counts",
    "write_counts",
]
