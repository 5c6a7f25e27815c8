"""promptfoo eval results (`promptfoo eval -o results.json` or `.jsonl`) as changeover's items,
responses and signals.

* each test (its `vars`) becomes an item, mapped with `--map FIELD=SOURCE` where SOURCE is
  `vars.NAME`, `prompt` (the prompt as rendered for the model), `description` or `test` (the
  test's position, `test3`); a config of several prompts makes an item of each test and prompt
  (`test3-prompt1`);
* each provider (its label, or its id) becomes a model of the study (`--model LABEL=MODEL`);
* each output becomes that provider's response, with token usage, cost and latency; a result
  promptfoo marks as an error (`failureReason` 2) becomes an error response;
* each assertion's result becomes a signal with the levels `pass` / `fail`, named after the
  assertion's `metric` (or its type), in the dimension `--signal NAME=DIMENSION` gives (by
  default: refusal for `is-refusal` and `not-is-refusal`, correctness for the others).

The results file's `version` is checked (promptfoo 0.118 writes 3).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from changeover.errors import InputError
from changeover.importers.common import (
    ToolImport,
    ToolImportResult,
    build_item,
    check_levels,
    check_signals_found,
    check_sources,
    store_imports,
    study_model,
)
from changeover.records import Item, ResponseRecord, SignalRecord
from changeover.study import Study
from changeover.workspace import Workspace

__all__ = [
    "PROMPTFOO_RESULTS_VERSIONS",
    "PROMPTFOO_SOURCES",
    "import_promptfoo_results",
    "read_promptfoo_results",
]

#: The versions of promptfoo's results format this reader knows (`results.version`).
PROMPTFOO_RESULTS_VERSIONS = (3,)
#: Where each item field comes from by default (`--map FIELD=SOURCE` changes it).
PROMPTFOO_SOURCES: dict[str, str] = {
    "item_id": "test",
    "prompt": "prompt",
    "reference": "vars.reference",
    "segment": "vars.segment",
    "expected_behaviour": "vars.expected_behaviour",
}
_REFUSAL_ASSERTIONS = ("is-refusal", "not-is-refusal")
#: promptfoo's ResultFailureReason: 0 none, 1 an assertion failed, 2 an error.
_ERROR = 2


def _results(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each result of a results file, with where it is."""
    if path.suffix.lower() == ".jsonl":
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    value = json.loads(line)
                except json.JSONDecodeError as error:
                    raise InputError(f"{path}: line {number}: invalid JSON ({error.msg})") from None
                if not isinstance(value, dict):
                    raise InputError(f"{path}: line {number}: expected one result object per line")
                yield f"{path}: line {number}", value
        return
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise InputError(
            f"{path}: line {error.lineno}: invalid JSON ({error.msg}); not a promptfoo results file"
        ) from None
    results = document.get("results") if isinstance(document, dict) else None
    if not isinstance(results, dict) or not isinstance(results.get("results"), list):
        raise InputError(
            f"{path}: results.results: missing; not a promptfoo results file (write one with "
            "promptfoo eval -o results.json)"
        )
    version = results.get("version")
    if version not in PROMPTFOO_RESULTS_VERSIONS:
        known = ", ".join(str(v) for v in PROMPTFOO_RESULTS_VERSIONS)
        raise InputError(
            f"{path}: results.version: promptfoo results version {version} is not supported "
            f"(changeover reads version {known}); re-export it with promptfoo 0.118 or later"
        )
    for index, result in enumerate(results["results"]):
        if not isinstance(result, dict):
            raise InputError(f"{path}: results.results[{index}]: expected a result object")
        yield f"{path}: results.results[{index}]", result


def _get(result: dict[str, Any], key: str, where: str, kind: type | tuple[type, ...]) -> Any:
    value = result.get(key)
    if not isinstance(value, kind):
        raise InputError(f"{where}: {key}: missing or malformed; not a promptfoo result")
    return value


def _prompt_label(result: dict[str, Any]) -> str:
    """Which prompt of the config a result answers (promptfoo's `promptIdx` counts prompt ×
    provider columns, so the prompt's label tells prompts apart)."""
    prompt = result.get("prompt")
    return str(prompt.get("label") or prompt.get("raw")) if isinstance(prompt, dict) else ""


def _source(result: dict[str, Any], source: str, prompts: Sequence[str]) -> Any:
    if source == "test":
        name = f"test{result['testIdx']}"
        if len(prompts) > 1:
            name += f"-prompt{prompts.index(_prompt_label(result))}"
        return name
    if source == "prompt":
        prompt = result.get("prompt")
        return prompt.get("raw") if isinstance(prompt, dict) else prompt
    if source == "description":
        test = result.get("testCase")
        return test.get("description") if isinstance(test, dict) else None
    if source.startswith("vars."):
        found = result.get("vars") or {}
        return found.get(source.removeprefix("vars.")) if isinstance(found, dict) else None
    raise InputError(
        f"--map ...={source}: unknown source; use vars.NAME, prompt, description or test"
    )


def _item(
    result: dict[str, Any],
    sources: Mapping[str, str],
    where: str,
    study: Study,
    prompts: Sequence[str],
) -> Item:
    mapped = {s.removeprefix("vars.") for s in sources.values() if s.startswith("vars.")}
    test_vars = result.get("vars") if isinstance(result.get("vars"), dict) else None
    return build_item(
        lambda source: _source(result, source, prompts),
        sources,
        where,
        study,
        metadata={k: v for k, v in (test_vars or {}).items() if k not in mapped},
        example="vars.NAME",
    )


def _response(result: dict[str, Any], model: str, item_id: str, where: str) -> ResponseRecord:
    response = result.get("response") if isinstance(result.get("response"), dict) else {}
    assert response is not None
    if result.get("failureReason") == _ERROR:
        message = result.get("error") or response.get("error") or "error"
        return ResponseRecord(item_id, model, None, error=str(message).splitlines()[0])
    output = response.get("output")
    text = output if isinstance(output, str) or output is None else json.dumps(output)
    if text is None or not text.strip():
        raise InputError(
            f"{where}: response.output is empty and the result is not an error; every result "
            "needs the provider's output"
        )
    usage = response.get("tokenUsage") if isinstance(response.get("tokenUsage"), dict) else {}
    assert usage is not None
    latency = result.get("latencyMs")
    cost = result.get("cost")
    return ResponseRecord(
        item_id=item_id,
        model=model,
        response=text,
        source="import",
        input_tokens=usage.get("prompt"),
        output_tokens=usage.get("completion"),
        latency_s=latency / 1000 if isinstance(latency, int | float) else None,
        cost=float(cost) if isinstance(cost, int | float) else None,
    )


def _signals(
    result: dict[str, Any],
    *,
    item_id: str,
    model: str,
    dimensions: Mapping[str, str] | None,
    where: str,
) -> list[SignalRecord]:
    grading = result.get("gradingResult")
    if not isinstance(grading, dict):
        return []
    out: list[SignalRecord] = []
    for index, component in enumerate(grading.get("componentResults") or []):
        assertion = component.get("assertion") if isinstance(component, dict) else None
        if not isinstance(assertion, dict) or not isinstance(component.get("pass"), bool):
            raise InputError(
                f"{where}: gradingResult.componentResults[{index}]: an assertion result needs "
                "assertion and pass"
            )
        kind = str(assertion.get("type"))
        name = str(assertion.get("metric") or kind)
        if any(s.signal == name for s in out):
            raise InputError(
                f"{where}: two assertions give the signal '{name}'; give them different "
                "metric names in the promptfoo config"
            )
        if dimensions is not None and name not in dimensions:
            continue
        default = "refusal" if kind in _REFUSAL_ASSERTIONS else "correctness"
        score = component.get("score")
        out.append(
            SignalRecord(
                item_id=item_id,
                model=model,
                signal=name,
                dimension=(dimensions or {}).get(name, default),
                value=float(score) if isinstance(score, int | float) else None,
                level="pass" if component["pass"] else "fail",
                detail=component.get("reason") or None,
            )
        )
    return out


def read_promptfoo_results(
    path: str | Path,
    study: Study,
    *,
    models: Mapping[str, str] | None = None,
    sources: Mapping[str, str] | None = None,
    signals: Mapping[str, str] | None = None,
) -> ToolImport:
    """Read one promptfoo results file (`.json`, or `.jsonl` as `promptfoo eval -o` writes it)
    into changeover's records, checking everything; raise InputError naming the file and the
    field at the first problem.

    `models` maps provider labels (or ids) to study models; `sources` overrides
    `PROMPTFOO_SOURCES`; `signals` (name -> dimension) imports only those assertions.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: promptfoo results file not found")
    if path.suffix.lower() not in (".json", ".jsonl"):
        raise InputError(f"{path}: not a promptfoo results file; give a .json or .jsonl file")
    check_sources(sources)
    mapping = {**PROMPTFOO_SOURCES, **(sources or {})}
    results = list(_results(path))
    for where, result in results:
        _get(result, "testIdx", where, int)
        _get(result, "provider", where, (dict, str))
    # promptfoo writes results in the order they finished; sort for a stable import.
    results.sort(key=lambda pair: (pair[1]["testIdx"], pair[1].get("promptIdx", 0)))
    prompts = list(dict.fromkeys(_prompt_label(r) for _, r in results))
    imported = ToolImport(path)
    for where, result in results:
        provider = result["provider"]
        name = (
            provider if isinstance(provider, str) else provider.get("label") or provider.get("id")
        )
        model = study_model(str(name), models or {}, study, f"{where}: provider", str(name))
        item = _item(result, mapping, where, study, prompts)
        imported.add_item(item, where)
        response = _response(result, model, item.item_id, where)
        imported.responses.append(response)
        if response.error is None:
            imported.signals.extend(
                _signals(result, item_id=item.item_id, model=model, dimensions=signals, where=where)
            )
    if not results:
        raise InputError(f"{path}: no results in the file")
    check_signals_found(signals, imported, "assertion gives that signal")
    check_levels(imported.signals, lambda name: f"{path}: assertion {name}")
    return imported


def import_promptfoo_results(
    workspace: Workspace,
    paths: Sequence[str | Path],
    study: Study,
    *,
    models: Mapping[str, str] | None = None,
    sources: Mapping[str, str] | None = None,
    signals: Mapping[str, str] | None = None,
) -> ToolImportResult:
    """Read every results file completely, then store items, responses and signals in one
    transaction: a bad file imports nothing."""
    imports = [
        read_promptfoo_results(path, study, models=models, sources=sources, signals=signals)
        for path in paths
    ]
    return store_imports(workspace, imports, study, tool="promptfoo")
