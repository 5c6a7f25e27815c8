"""The exceptions changeover raises.

    ChangeoverError            anything changeover reports to a user
    ├── StudyError             the study file is missing, malformed or inconsistent
    ├── InputError             a data file (counts, rows, items, ...) is malformed
    └── CalibrationError       the data cannot support the requested fit

Every message names the file, the row or key, and says how to fix it, so that the CLI can print
it as one line and exit with status 2.
"""

from __future__ import annotations


class ChangeoverError(Exception):
    """Base class: a problem the user can fix, reported in one line."""

    exit_code: int = 2


class StudyError(ChangeoverError):
    """The study file is missing, malformed or inconsistent."""


class InputError(ChangeoverError):
    """A data file is malformed: a missing column, a bad value, an unknown name."""


class CalibrationError(ChangeoverError):
    """The data cannot support the requested fit (e.g. no human labels at all)."""
