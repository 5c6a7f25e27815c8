"""changeover: can we safely replace the LLM behind our product, and how sure are we?"""

from changeover.counts import (
    counts_from_rows,
    read_counts,
    read_measurements,
    read_rows,
    validate_counts,
    write_counts,
)
from changeover.errors import CalibrationError, ChangeoverError, InputError, StudyError
from changeover.study import Decision, Gate, Study, load_study, parse_study

TYPE_CHECKING = False
if TYPE_CHECKING:
    from changeover.calibrate import Result, fit


def __getattr__(name: str) -> object:
    # The engine imports JAX, which takes seconds: load it only when it is asked for.
    if name in ("fit", "Result"):
        from changeover import calibrate

        return getattr(calibrate, name)
    raise AttributeError(f"module 'changeover' has no attribute '{name}'")


__all__ = [
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
