"""What every importer of another tool's results shares: the records a file becomes, how a
tool's fields are mapped to an item's, how a tool's scores become signal levels, and the one
transaction that stores it all."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from changeover.errors import InputError
from changeover.records import ExpectedBehaviour, Item, ResponseRecord, SignalRecord
from changeover.signals.compute import LEVEL_SEPARATOR
from changeover.signals.settings import MAX_LEVELS
from changeover.study import Study
from changeover.workspace import Workspace

__all__ = [
    "ITEM_FIELDS",
    "MISSING_LEVEL",
    "ToolImport",
    "ToolImportResult",
    "build_item",
    "check_levels",
    "check_signals_found",
    "check_sources",
    "combined_signals",
    "expected_behaviour",
    "level_of",
    "parse_pairs",
    "store_imports",
    "study_model",
]

#: The item fields a mapping (`--map FIELD=SOURCE`) may set.
ITEM_FIELDS = ("item_id", "prompt", "segment", "reference", "expected_behaviour", "system")
#: The part of a combined level for a response that one of the signals did not score.
MISSING_LEVEL = "none"


@dataclass
class ToolImport:
    """One file of another tool, as changeover's records: the items it covers, each model's
    responses, and the signals its scorers or assertions gave them."""

    path: Path
    items: dict[str, Item] = field(default_factory=dict)
    responses: list[ResponseRecord] = field(default_factory=list)
    signals: list[SignalRecord] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add_item(self, item: Item, where: str) -> None:
        known = self.items.get(item.item_id)
        if known is not None and known != item:
            raise InputError(
                f"{where}: item '{item.item_id}' appears twice with different content; map "
                "item_id to a field that tells them apart"
            )
        self.items[item.item_id] = item


@dataclass(frozen=True)
class ToolImportResult:
    """What an import stored: items, responses (and how many are errors), signal rows."""

    items_added: int
    items_unchanged: int
    responses_added: int
    responses_unchanged: int
    errors: int
    signals: dict[str, dict[str, int]]  # signal -> level -> responses
    dimensions: dict[str, str]  # signal -> dimension
    notes: list[str]


def parse_pairs(values: Sequence[str] | None, *, option: str, example: str) -> dict[str, str]:
    """Repeated `--option KEY=VALUE` values as a dict (the value may contain `=`)."""
    out: dict[str, str] = {}
    for value in values or ():
        key, sep, target = value.partition("=")
        key, target = key.strip(), target.strip()
        if not sep or not key:
            raise InputError(f"{option} {value}: expected KEY=VALUE, e.g. {option} {example}")
        if key in out:
            raise InputError(f"{option} {value}: '{key}' is given twice")
        out[key] = target
    return out


def level_of(value: Any) -> str | None:
    """A score as a signal level: text as written (C, P, I), numbers without a needless `.0`,
    booleans as true/false; None for a missing or empty score."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return None if math.isnan(value) else f"{value:g}"
    if isinstance(value, str):
        return value.strip() or None
    return json.dumps(value, sort_keys=True)


def expected_behaviour(value: Any, where: str) -> ExpectedBehaviour:
    """An item's expected behaviour from a tool's field: answer (the default) or refuse."""
    text = "" if value is None else str(value).strip().lower()
    if text in ("", "answer"):
        return "answer"
    if text == "refuse":
        return "refuse"
    raise InputError(f"{where}: '{value}' is not an expected behaviour; use answer or refuse")


def check_sources(sources: Mapping[str, str] | None) -> None:
    """`--map FIELD=SOURCE`: every FIELD is an item field."""
    for name in sources or {}:
        if name not in ITEM_FIELDS:
            raise InputError(
                f"--map {name}=...: unknown field; map one of {', '.join(ITEM_FIELDS)}"
            )


def build_item(
    get: Callable[[str], Any],
    sources: Mapping[str, str],
    where: str,
    study: Study,
    *,
    metadata: Mapping[str, Any],
    example: str,
    system: str | None = None,
) -> Item:
    """An item from a tool's record: `get(SOURCE)` reads each field's source (None when the
    record lacks it); item_id, prompt and segment are required, the segment must be the
    study's."""
    values: dict[str, str | None] = {}
    for name, source in sources.items():
        value = get(source)
        text = None if value is None else value if isinstance(value, str) else json.dumps(value)
        if name in ("item_id", "prompt", "segment") and (text is None or not text.strip()):
            raise InputError(
                f"{where}: {source} is missing; every record needs a {name} (map it with "
                f"--map {name}={example})"
            )
        values[name] = text
    segment = str(values["segment"]).strip()
    if segment not in study.segment_names:
        raise InputError(
            f"{where}: {sources['segment']}: unknown segment '{segment}'; the study knows "
            f"{', '.join(study.segment_names)}"
        )
    return Item(
        item_id=str(values["item_id"]).strip(),
        prompt=str(values["prompt"]),
        segment=segment,
        reference=values.get("reference") or None,
        expected_behaviour=expected_behaviour(
            values.get("expected_behaviour"), f"{where}: {sources.get('expected_behaviour')}"
        ),
        system=values.get("system") or system,
        metadata=dict(metadata),
    )


def check_signals_found(signals: Mapping[str, str] | None, imported: ToolImport, what: str) -> None:
    """Every signal named with `--signal` was found in the file."""
    for name in signals or {}:
        if not any(s.signal == name for s in imported.signals):
            raise InputError(f"{imported.path}: --signal {name}: no {what}")


def combined_signals(signals: Sequence[SignalRecord]) -> list[SignalRecord]:
    """For every model and dimension informed by several imported signals, one more signal named
    after its parts ("accuracy|rubric") whose level joins the parts' levels, as `changeover
    score` stores them; a part that did not score a response shows as `none` (tools assert
    different things on different tests)."""
    names: dict[str, list[str]] = defaultdict(list)
    for record in signals:
        if record.signal not in names[record.dimension]:
            names[record.dimension].append(record.signal)
    levels: dict[tuple[str, str, str], dict[str, str]] = defaultdict(dict)
    for record in signals:
        levels[(record.dimension, record.item_id, record.model)][record.signal] = record.level
    out: list[SignalRecord] = []
    for dimension, parts in names.items():
        if len(parts) < 2:
            continue
        name = LEVEL_SEPARATOR.join(parts)
        seen: set[str] = set()
        for (dim, item_id, model), found in levels.items():
            if dim != dimension:
                continue
            level = LEVEL_SEPARATOR.join(found.get(part, MISSING_LEVEL) for part in parts)
            seen.add(level)
            out.append(SignalRecord(item_id, model, name, dimension, None, level))
        if len(seen) > MAX_LEVELS:
            raise InputError(
                f"dimension '{dimension}' gets the signals {', '.join(parts)}, whose levels "
                f"combine into {len(seen)}, more than {MAX_LEVELS}; import fewer of them into "
                "it (--signal NAME=DIMENSION names the ones to import)"
            )
    return out


def check_levels(signals: Sequence[SignalRecord], where: Callable[[str], str]) -> None:
    """Refuse a signal with more distinct levels than the engine takes (a continuous score)."""
    seen: dict[str, set[str]] = defaultdict(set)
    for record in signals:
        seen[record.signal].add(record.level)
    for name, levels in seen.items():
        if len(levels) > MAX_LEVELS:
            raise InputError(
                f"{where(name)}: takes {len(levels)} distinct values, more than the {MAX_LEVELS} "
                "levels the engine accepts; import a scorer with discrete values (C/I, 0/1, "
                "pass/fail) or bin it in the tool"
            )


def store_imports(
    workspace: Workspace, imports: Sequence[ToolImport], study: Study, *, tool: str
) -> ToolImportResult:
    """Check the files together (an item seen in two files must be the same; a signal must not
    shadow one of the study's), then store everything in one transaction."""
    items: dict[str, tuple[Item, Path]] = {}
    for imported in imports:
        for item in imported.items.values():
            known = items.get(item.item_id)
            if known is not None and known[0] != item:
                raise InputError(
                    f"{imported.path}: item '{item.item_id}' differs from the one in {known[1]} "
                    "(prompt, reference, segment or metadata); one item has one content"
                )
            items[item.item_id] = (item, imported.path)
    responses = [r for imported in imports for r in imported.responses]
    seen: dict[tuple[str, str], Path] = {}
    for imported in imports:
        for r in imported.responses:
            first = seen.setdefault((r.item_id, r.model), imported.path)
            if first != imported.path:
                raise InputError(
                    f"{imported.path}: model '{r.model}' already answered item '{r.item_id}' in "
                    f"{first}; import one log per model"
                )
    signals = [s for imported in imports for s in imported.signals]
    ours = set(study.signals) if study.signals is not None else set()
    clash = sorted({s.signal for s in signals} & ours)
    if clash:
        raise InputError(
            f"{tool}: the imported signal '{clash[0]}' has the name of a signal of the study; "
            "rename the study's signal"
        )
    signals += combined_signals(signals)
    detail = {"table": tool, "files": [str(i.path) for i in imports]}
    with workspace.recorded_run("import", detail) as run:
        item_result, response_result = workspace.add_scored(
            [item for item, _ in items.values()], responses, signals, run_id=run.run_id
        )
        run.detail.update(
            {
                "items": item_result.added,
                "responses": response_result.added,
                "signals": len(signals),
            }
        )
    levels: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    dimensions: dict[str, str] = {}
    for s in signals:
        levels[s.signal][s.level] += 1
        dimensions[s.signal] = s.dimension
    return ToolImportResult(
        items_added=item_result.added,
        items_unchanged=item_result.unchanged,
        responses_added=response_result.added,
        responses_unchanged=response_result.unchanged,
        errors=sum(r.error is not None for r in responses),
        signals={name: dict(sorted(by_level.items())) for name, by_level in levels.items()},
        dimensions=dimensions,
        notes=[note for imported in imports for note in imported.notes],
    )


def study_model(name: str, models: Mapping[str, str], study: Study, where: str, hint: str) -> str:
    """The study model a tool's model name stands for (mapped with `--model`, or the same)."""
    target = models.get(name, name)
    if target not in study.model_names:
        mapped = f" (mapped to '{target}')" if name in models else ""
        raise InputError(
            f"{where}: model '{name}'{mapped} is not in the study "
            f"({', '.join(study.model_names)}); map it with --model {hint}={study.incumbent}"
        )
    return target
