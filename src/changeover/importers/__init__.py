"""Other tools' results as changeover's records: Inspect AI eval logs and promptfoo results.

Each importer reads a file with the tool's own field names, maps them to items, responses and
signals (`--map`, `--model`, `--signal`), checks everything, and stores it in one transaction.
"""

from changeover.importers.common import ToolImport, ToolImportResult, parse_pairs
from changeover.importers.inspect_logs import (
    INSPECT_SOURCES,
    import_inspect_logs,
    read_inspect_log,
)
from changeover.importers.promptfoo_results import (
    PROMPTFOO_SOURCES,
    import_promptfoo_results,
    read_promptfoo_results,
)

__all__ = [
    "INSPECT_SOURCES",
    "PROMPTFOO_SOURCES",
    "ToolImport",
    "ToolImportResult",
    "import_inspect_logs",
    "import_promptfoo_results",
    "parse_pairs",
    "read_inspect_log",
    "read_promptfoo_results",
]
