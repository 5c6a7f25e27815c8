"""Back out: the workspace's responses, signals and labels as JSONL with Inspect AI's or
promptfoo's field names, so that changeover sits inside their loop instead of replacing it.

* `inspect`: one sample per line with `EvalSample`'s fields (`id`, `epoch`, `input`, `target`,
  `metadata`, `output.completion`, `scores` of `{value, explanation}`, `model_usage`, `error`);
  Inspect's `json_dataset` reads it as a dataset, and the scores hold every signal's level and
  the human labels (`human_<dimension>`: the share of annotators who said pass).
* `promptfoo`: one result per line with the fields of `promptfoo eval -o results.jsonl`
  (`testIdx`, `provider`, `prompt`, `vars`, `response`, `success`, `namedScores`,
  `gradingResult.componentResults`, `latencyMs`, `cost`, `failureReason`); signals whose levels
  are pass / fail are assertion results, and every level is under `metadata.changeover`.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from typing import Any, Literal

from changeover.annotate.labels import read_labels
from changeover.workspace import Workspace

__all__ = ["EXPORT_FORMATS", "tool_records"]

ExportFormat = Literal["inspect", "promptfoo"]
EXPORT_FORMATS: tuple[ExportFormat, ...] = ("inspect", "promptfoo")


def _joined(workspace: Workspace) -> Iterator[dict[str, Any]]:
    """Every response with its item, signals and labels."""
    items = {row["item_id"]: row for row in workspace.frame("items").iter_rows(named=True)}
    signals: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in workspace.frame("signals").iter_rows(named=True):
        signals[(row["item_id"], row["model"])].append(row)
    labels: dict[tuple[str, str], dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for label in read_labels(workspace):
        labels[(label.item_id, label.model)][label.dimension].append(label.label)
    order = {item_id: index for index, item_id in enumerate(items)}
    for row in workspace.frame("responses").iter_rows(named=True):
        key = (row["item_id"], row["model"])
        yield {
            "item": items[row["item_id"]],
            "index": order[row["item_id"]],
            "response": row,
            "signals": signals.get(key, []),
            "labels": labels.get(key, {}),
        }


def _number(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _inspect_sample(entry: dict[str, Any]) -> dict[str, Any]:
    item, response = entry["item"], entry["response"]
    model = response["model"]
    scores = {
        s["signal"]: {"value": s["level"], "explanation": s["detail"], "metadata": {
            "dimension": s["dimension"], "value": _number(s["value"])}}
        for s in entry["signals"]
    }  # fmt: skip
    for dimension, given in entry["labels"].items():
        scores[f"human_{dimension}"] = {
            "value": sum(given) / len(given),
            "explanation": f"{sum(given)} of {len(given)} annotators said pass",
            "metadata": {"dimension": dimension, "labels": given},
        }
    sample: dict[str, Any] = {
        "id": item["item_id"],
        "epoch": 1,
        "input": item["prompt"],
        "target": item["reference"] or "",
        "metadata": {
            **json.loads(item["metadata"]),
            "segment": item["segment"],
            "expected_behaviour": item["expected_behaviour"],
            "model": model,
        },
        "output": {"model": model, "completion": response["response"] or ""},
        "scores": scores,
        "model_usage": {
            model: {
                "input_tokens": response["input_tokens"],
                "output_tokens": response["output_tokens"],
            }
        },
    }
    if item["system"]:
        sample["metadata"]["system"] = item["system"]
    if response["error"] is not None:
        sample["error"] = {"message": response["error"]}
    return sample


def _promptfoo_result(entry: dict[str, Any]) -> dict[str, Any]:
    item, response = entry["item"], entry["response"]
    model = response["model"]
    test_vars = {
        **json.loads(item["metadata"]),
        "item_id": item["item_id"],
        "segment": item["segment"],
        "expected_behaviour": item["expected_behaviour"],
        "reference": item["reference"],
    }
    signals = entry["signals"]
    components = [
        {
            "assertion": {"type": "changeover", "metric": s["signal"]},
            "pass": s["level"] == "pass",
            "score": _number(s["value"]) if s["value"] is not None else float(s["level"] == "pass"),
            "reason": s["detail"] or s["level"],
        }
        for s in signals
        if s["level"] in ("pass", "fail")
    ]
    failed = response["error"] is not None
    result: dict[str, Any] = {
        "testIdx": entry["index"],
        "promptIdx": 0,
        "provider": {"id": f"changeover:{model}", "label": model},
        "prompt": {"raw": item["prompt"], "label": "changeover"},
        "vars": test_vars,
        "response": (
            {"error": response["error"]}
            if failed
            else {
                "output": response["response"],
                "tokenUsage": {
                    "prompt": response["input_tokens"],
                    "completion": response["output_tokens"],
                },
            }
        ),
        "success": not failed and all(c["pass"] for c in components),
        "failureReason": 2 if failed else (0 if all(c["pass"] for c in components) else 1),
        "namedScores": {s["signal"]: _number(s["value"]) for s in signals},
        "gradingResult": None
        if failed
        else {
            "pass": all(c["pass"] for c in components),
            "score": sum(c["score"] for c in components) / len(components) if components else 1.0,
            "componentResults": components,
        },
        "latencyMs": None if response["latency_s"] is None else response["latency_s"] * 1000,
        "cost": response["cost"],
        "metadata": {
            "changeover": {
                "levels": {s["signal"]: s["level"] for s in signals},
                "dimensions": {s["signal"]: s["dimension"] for s in signals},
                "labels": entry["labels"],
            }
        },
    }
    if failed:
        result["error"] = response["error"]
    return result


def tool_records(workspace: Workspace, form: ExportFormat) -> list[dict[str, Any]]:
    """Every response of the workspace as one Inspect sample or one promptfoo result."""
    make = _inspect_sample if form == "inspect" else _promptfoo_result
    return [make(entry) for entry in _joined(workspace)]
