"""Human labels: the label queue, annotator tokens, the annotation web app, and label
import/export (CSV, Label Studio). The app lives in `changeover.annotate.app` (it needs FastAPI);
everything here works without it."""

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
