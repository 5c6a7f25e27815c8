"""Human labels: the label queue, annotator tokens, the annotation web app, and label
import/export (CSV, Label Studio). The app lives in `changeover.annotate.app` (it needs FastAPI);
everything here works without it."""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from changeover.annotate.exchange import Exported, LabelFormat, export_labels, import_labels
    from changeover.annotate.labels import (
        RecordResult,
        UndoResult,
        read_labels,
        record_labels,
        skip_response,
        undo_last,
    )
    from changeover.annotate.queue import (
        QueueEntry,
        QueueResult,
        QueueStatus,
        Screen,
        add_to_queue,
        clear_queue,
        default_dimensions,
        next_screen,
        queue_status,
        random_start,
        read_queue_csv,
    )
    from changeover.annotate.tokens import (
        Annotator,
        add_annotator,
        authenticate,
        list_annotators,
        revoke_annotator,
    )

# Loaded on first use: importing one submodule (a stage needs only `labels`, say) must not
# load every other one.
_EXPORTS = {
    "Annotator": "changeover.annotate.tokens",
    "Exported": "changeover.annotate.exchange",
    "LabelFormat": "changeover.annotate.exchange",
    "QueueEntry": "changeover.annotate.queue",
    "QueueResult": "changeover.annotate.queue",
    "QueueStatus": "changeover.annotate.queue",
    "RecordResult": "changeover.annotate.labels",
    "Screen": "changeover.annotate.queue",
    "UndoResult": "changeover.annotate.labels",
    "add_annotator": "changeover.annotate.tokens",
    "add_to_queue": "changeover.annotate.queue",
    "authenticate": "changeover.annotate.tokens",
    "clear_queue": "changeover.annotate.queue",
    "default_dimensions": "changeover.annotate.queue",
    "export_labels": "changeover.annotate.exchange",
    "import_labels": "changeover.annotate.exchange",
    "list_annotators": "changeover.annotate.tokens",
    "next_screen": "changeover.annotate.queue",
    "queue_status": "changeover.annotate.queue",
    "random_start": "changeover.annotate.queue",
    "read_labels": "changeover.annotate.labels",
    "read_queue_csv": "changeover.annotate.queue",
    "record_labels": "changeover.annotate.labels",
    "revoke_annotator": "changeover.annotate.tokens",
    "skip_response": "changeover.annotate.labels",
    "undo_last": "changeover.annotate.labels",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        from importlib import import_module

        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Annotator",
    "Exported",
    "LabelFormat",
    "QueueEntry",
    "QueueResult",
    "QueueStatus",
    "RecordResult",
    "Screen",
    "UndoResult",
    "add_annotator",
    "add_to_queue",
    "authenticate",
    "clear_queue",
    "default_dimensions",
    "export_labels",
    "import_labels",
    "list_annotators",
    "next_screen",
    "queue_status",
    "random_start",
    "read_labels",
    "read_queue_csv",
    "record_labels",
    "revoke_annotator",
    "skip_response",
    "undo_last",
]
