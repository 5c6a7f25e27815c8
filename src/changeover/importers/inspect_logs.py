"""Inspect AI eval logs (`.eval`, `.json`) as changeover's items, responses and signals.

Read with inspect_ai's own log API (`pip install 'changeover[inspect]'`), one log per model:

* each sample becomes an item (`id`, `input`, `target` as the reference; `metadata.*` fields give
  the segment and the expected behaviour), mapped with `--map FIELD=SOURCE`;
* the log's model becomes a model of the study (`--model mockllm/incumbent=legacy`);
* each sample's output becomes that model's response, with token usage, cost and latency where
  the log has them; a sample that failed in Inspect becomes an error response;
* each scorer's value becomes a signal whose levels are the scorer's values (model-graded QA's
  C / P / I, 0 / 1, true / false), in the dimension `--signal SCORER=DIMENSION` gives
  (correctness by default).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from changeover.errors import ChangeoverError, InputError
from changeover.importers.common import (
    ToolImport,
    ToolImportResult,
    build_item,
    check_levels,
    check_signals_found,
    check_sources,
    level_of,
    store_imports,
    study_model,
)
from changeover.records import Item, ResponseRecord, SignalRecord
from changeover.study import Study
from changeover.workspace import Workspace

if TYPE_CHECKING:
    from inspect_ai.log import EvalLog, EvalSample

__all__ = [
    "INSPECT_LOG_VERSIONS",
    "INSPECT_SOURCES",
    "import_inspect_logs",
    "read_inspect_log",
]

#: The versions of Inspect's log format this reader knows (`EvalLog.version`).
INSPECT_LOG_VERSIONS = (2,)
#: Where each item field comes from by default (`--map FIELD=SOURCE` changes it): `id`,
#: `input`, `target` or `metadata.KEY` of a sample.
INSPECT_SOURCES: dict[str, str] = {
    "item_id": "id",
    "prompt": "input",
    "reference": "target",
    "segment": "metadata.segment",
    "expected_behaviour": "metadata.expected_behaviour",
}


def _inspect_log_api() -> Any:
    try:
        import inspect_ai.log as api
    except ImportError:
        raise ChangeoverError(
            "reading Inspect AI logs needs the inspect-ai package: pip install "
            "'changeover[inspect]'"
        ) from None
    return api


def _reading_error(path: Path, error: Exception) -> InputError:
    """One line for what inspect_ai raised on a file it could not read."""
    errors = getattr(error, "errors", None)
    if callable(errors):  # pydantic's ValidationError: name the field
        first = errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return InputError(f"{path}: {where}: {first['msg']}; not a valid Inspect log")
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    cause: BaseException | None = error
    while cause is not None:  # a header read wraps the reason in "Unable to read log file"
        version = re.search(r"Unable to read version (\d+)", str(cause))
        if version is not None:
            return _version_error(path, int(version.group(1)))
        cause = cause.__cause__ or cause.__context__
    if isinstance(error, KeyError):
        text = f"missing {text}"
    return InputError(f"{path}: not a readable Inspect log ({text})")


def _version_error(path: Path, version: int) -> InputError:
    known = ", ".join(str(v) for v in INSPECT_LOG_VERSIONS)
    return InputError(
        f"{path}: version: Inspect log format version {version} is not supported (changeover "
        f"reads version {known}); convert it with the inspect-ai that wrote it, or upgrade "
        "changeover"
    )


def _input_text(sample: EvalSample) -> tuple[str, str | None]:
    """The prompt and the system message of a sample's input."""
    value = sample.input
    if isinstance(value, str):
        return value, None
    system = "\n\n".join(m.text for m in value if m.role == "system") or None
    turns = [m for m in value if m.role != "system"]
    if len(turns) == 1 and turns[0].role == "user":
        return turns[0].text, system
    return "\n\n".join(f"{m.role}: {m.text}" for m in turns), system


def _source(sample: EvalSample, source: str) -> Any:
    if source == "id":
        return sample.id
    if source == "input":
        return _input_text(sample)[0]
    if source == "target":
        target = sample.target
        return target if isinstance(target, str) else "|".join(target)
    if source.startswith("metadata."):
        return (sample.metadata or {}).get(source.removeprefix("metadata."))
    raise InputError(f"--map ...={source}: unknown source; use id, input, target or metadata.KEY")


def _item(sample: EvalSample, sources: Mapping[str, str], where: str, study: Study) -> Item:
    return build_item(
        lambda source: _source(sample, source),
        sources,
        where,
        study,
        metadata=sample.metadata or {},
        example="metadata.FIELD",
        system=_input_text(sample)[1],
    )


def _response(sample: EvalSample, log: EvalLog, model: str, item_id: str, where: str) -> Any:
    if sample.error is not None:
        return ResponseRecord(
            item_id=item_id,
            model=model,
            response=None,
            error=sample.error.message,
            source="import",
        )
    output = sample.output
    completion = output.completion if output is not None else ""
    if not completion.strip():
        raise InputError(
            f"{where}: output.completion is empty and the sample has no error; a sample needs "
            "the model's output (re-run it in Inspect)"
        )
    usage = sample.model_usage.get(log.eval.model) or output.usage
    cost = getattr(usage, "total_cost", None) if usage is not None else None
    return ResponseRecord(
        item_id=item_id,
        model=model,
        response=completion,
        source="import",
        finish_reason=output.stop_reason,
        input_tokens=usage.input_tokens if usage is not None else None,
        output_tokens=usage.output_tokens if usage is not None else None,
        latency_s=output.time,
        cost=cost,
    )


def _signals(
    sample: EvalSample,
    *,
    item_id: str,
    model: str,
    dimensions: Mapping[str, str] | None,
    where: str,
) -> list[SignalRecord]:
    from inspect_ai.scorer import value_to_float

    to_float = value_to_float()
    out = []
    for scorer, score in (sample.scores or {}).items():
        values = score.value if isinstance(score.value, dict) else {None: score.value}
        for key, value in values.items():
            name = scorer if key is None else f"{scorer}.{key}"
            if dimensions is not None and name not in dimensions:
                continue
            if isinstance(value, list):
                raise InputError(
                    f"{where}: scores.{name}: a list of values; changeover takes one value per "
                    "scorer (or a dict of named values)"
                )
            level = level_of(value)
            if level is None:
                continue
            try:
                number: float | None = float(to_float(value))
            except (TypeError, ValueError):
                number = None
            out.append(
                SignalRecord(
                    item_id=item_id,
                    model=model,
                    signal=name,
                    dimension=(dimensions or {}).get(name, "correctness"),
                    value=number,
                    level=level,
                    detail=score.explanation,
                )
            )
    return out


def read_inspect_log(
    path: str | Path,
    study: Study,
    *,
    models: Mapping[str, str] | None = None,
    sources: Mapping[str, str] | None = None,
    signals: Mapping[str, str] | None = None,
    epoch: int = 1,
) -> ToolImport:
    """Read one Inspect log into changeover's records, checking everything; raise InputError
    naming the file and the field at the first problem.

    `models` maps the log's model to a study model; `sources` overrides `INSPECT_SOURCES`;
    `signals` (scorer -> dimension) imports only those scorers (every scorer to correctness
    when None); `epoch` picks the epoch of a log run with several.
    """
    path = Path(path)
    api = _inspect_log_api()
    if not path.is_file():
        raise InputError(f"{path}: Inspect log not found")
    if path.suffix.lower() not in (".eval", ".json"):
        raise InputError(f"{path}: not an Inspect log; give a .eval or .json file")
    check_sources(sources)
    mapping = {**INSPECT_SOURCES, **(sources or {})}
    try:
        header: EvalLog = api.read_eval_log(str(path), header_only=True)
    except Exception as error:  # noqa: BLE001  (inspect raises ValueError, KeyError, pydantic's)
        raise _reading_error(path, error) from None
    if header.version not in INSPECT_LOG_VERSIONS:
        raise _version_error(path, header.version)
    if header.status != "success":
        raise InputError(
            f"{path}: status: the eval ended '{header.status}', so its samples are incomplete; "
            "finish it in Inspect (inspect eval-retry) and import the finished log"
        )
    model = study_model(
        header.eval.model, models or {}, study, f"{path}: eval.model", header.eval.model
    )
    imported = ToolImport(path)
    skipped = 0
    try:
        samples = list(api.read_eval_log_samples(str(path)))
    except Exception as error:  # noqa: BLE001
        raise _reading_error(path, error) from None
    for sample in samples:
        if sample.epoch != epoch:
            skipped += 1
            continue
        where = f"{path}: sample {sample.id}"
        item = _item(sample, mapping, where, study)
        imported.add_item(item, where)
        imported.responses.append(_response(sample, header, model, item.item_id, where))
        if sample.error is None:
            imported.signals.extend(
                _signals(sample, item_id=item.item_id, model=model, dimensions=signals, where=where)
            )
    if not imported.responses:
        raise InputError(f"{path}: no samples of epoch {epoch} in the log")
    if skipped:
        imported.notes.append(
            f"{path.name}: {skipped} samples of other epochs left out (epoch {epoch} imported; "
            "--epoch chooses)"
        )
    scorers = ", ".join(s.name for s in header.eval.scorers or []) or "none"
    check_signals_found(signals, imported, f"such scorer in the log (scorers: {scorers})")
    check_levels(imported.signals, lambda name: f"{path}: scores.{name}")
    return imported


def import_inspect_logs(
    workspace: Workspace,
    paths: Sequence[str | Path],
    study: Study,
    *,
    models: Mapping[str, str] | None = None,
    sources: Mapping[str, str] | None = None,
    signals: Mapping[str, str] | None = None,
    epoch: int = 1,
) -> ToolImportResult:
    """Read every log completely, then store items, responses and signals in one transaction:
    a bad log imports nothing."""
    imports = [
        read_inspect_log(path, study, models=models, sources=sources, signals=signals, epoch=epoch)
        for path in paths
    ]
    return store_imports(workspace, imports, study, tool="inspect")
