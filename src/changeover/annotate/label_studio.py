"""Label Studio's JSON task format, both ways, so that a team already on Label Studio keeps it.

One task per response; `data` holds what an annotator needs (`prompt`, `context`, `reference`,
`response`, `segment`) and the keys changeover maps labels back with (`item_id`, `model`; leave
`$model` out of the labelling config to keep labelling blind). Each annotator's labels of a
response are one annotation whose `result` holds one `choices` region per dimension:

    {"from_name": "correctness", "to_name": "response", "type": "choices",
     "value": {"choices": ["yes"]}}

`completed_by` is written as {"email": annotator}; on import a string, an object with `email`
or `username`, or Label Studio's numeric user id (read as "label-studio-user-<id>") names the
annotator. Cancelled annotations and other region types are ignored.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from changeover.errors import InputError
from changeover.records import LabelRecord

__all__ = ["LABELING_CONFIG", "labels_from_tasks", "tasks_from_labels"]

#: A Label Studio labelling config that matches the exported tasks.
LABELING_CONFIG = (
    """\
<View>
  <Header value="Prompt"/><Text name="prompt" value="$prompt"/>
  <Header value="Context"/><Text name="context" value="$context"/>
  <Header value="Reference answer"/><Text name="reference" value="$reference"/>
  <Header value="Response"/><Text name="response" value="$response"/>
"""
    + "".join(
        f'  <Header value="{dimension}"/><Choices name="{dimension}" toName="response" '
        'choice="single"><Choice value="yes"/><Choice value="no"/></Choices>\n'
        for dimension in ("correctness", "refusal", "style")
    )
    + "</View>\n"
)

_CHOICE = {"yes": 1, "no": 0, "1": 1, "0": 0, "true": 1, "false": 0}


def tasks_from_labels(
    responses: Sequence[Mapping[str, Any]], labels: Sequence[LabelRecord]
) -> list[dict[str, Any]]:
    """Tasks for `responses` (dicts with item_id, model, prompt, context, reference, response,
    segment), each with one annotation per annotator who labelled it."""
    by_response: dict[tuple[str, str], dict[str, list[LabelRecord]]] = {}
    for record in labels:
        by_annotator = by_response.setdefault((record.item_id, record.model), {})
        by_annotator.setdefault(record.annotator, []).append(record)
    tasks = []
    for number, data in enumerate(responses, start=1):
        key = (data["item_id"], data["model"])
        annotations = []
        for annotator, records in sorted(by_response.get(key, {}).items()):
            annotations.append(
                {
                    "completed_by": {"email": annotator},
                    "created_at": max(r.time or "" for r in records) or None,
                    "was_cancelled": False,
                    "result": [
                        {
                            "from_name": r.dimension,
                            "to_name": "response",
                            "type": "choices",
                            "value": {"choices": ["yes" if r.label else "no"]},
                        }
                        for r in records
                    ],
                }
            )
        tasks.append({"id": number, "data": dict(data), "annotations": annotations})
    return tasks


def _annotator(where: str, value: Any) -> str:
    if isinstance(value, bool):
        pass
    elif isinstance(value, int):
        return f"label-studio-user-{value}"
    elif isinstance(value, str) and value.strip():
        return value.strip()
    elif isinstance(value, dict):
        for key in ("email", "username"):
            if isinstance(value.get(key), str) and value[key].strip():
                return str(value[key]).strip()
        if isinstance(value.get("id"), int):
            return f"label-studio-user-{value['id']}"
    raise InputError(
        f"{where}.completed_by: expected the annotator (a name, an object with email, or a user "
        f"id), got {json.dumps(value)}"
    )


def labels_from_tasks(path: Path, tasks: Any) -> list[tuple[str, LabelRecord]]:
    """Labels in parsed Label Studio tasks, each with the key path it came from; errors name
    `path` and the key path (e.g. `[3].annotations[0].result[1].value.choices`)."""
    if not isinstance(tasks, list):
        raise InputError(f"{path}: expected a JSON list of Label Studio tasks at the top")
    out: list[tuple[str, LabelRecord]] = []
    for t, task in enumerate(tasks):
        where = f"{path}: [{t}]"
        if not isinstance(task, dict):
            raise InputError(f"{where}: expected a task object")
        data = task.get("data")
        if not isinstance(data, dict):
            raise InputError(f"{where}.data: missing; each task needs data with item_id and model")
        for key in ("item_id", "model"):
            if not isinstance(data.get(key), str) or not data[key]:
                raise InputError(
                    f"{where}.data.{key}: missing or not a string; changeover maps labels back "
                    "by item_id and model (export the tasks with `changeover labels export`)"
                )
        annotations = task.get("annotations", [])
        if not isinstance(annotations, list):
            raise InputError(f"{where}.annotations: expected a list")
        for a, annotation in enumerate(annotations):
            at = f"{where}.annotations[{a}]"
            if not isinstance(annotation, dict):
                raise InputError(f"{at}: expected an annotation object")
            if annotation.get("was_cancelled"):
                continue
            annotator = _annotator(at, annotation.get("completed_by"))
            created = annotation.get("created_at")
            time = created if isinstance(created, str) and created else None
            result = annotation.get("result", [])
            if not isinstance(result, list):
                raise InputError(f"{at}.result: expected a list of regions")
            for r, region in enumerate(result):
                rat = f"{at}.result[{r}]"
                if not isinstance(region, dict):
                    raise InputError(f"{rat}: expected a region object")
                if region.get("type") != "choices":
                    continue
                dimension = region.get("from_name")
                if not isinstance(dimension, str) or not dimension:
                    raise InputError(f"{rat}.from_name: missing; it names the dimension")
                value = region.get("value")
                choices = value.get("choices") if isinstance(value, dict) else None
                if (
                    not isinstance(choices, list)
                    or len(choices) != 1
                    or not isinstance(choices[0], str)
                    or choices[0].strip().lower() not in _CHOICE
                ):
                    raise InputError(
                        f'{rat}.value.choices: expected one of ["yes"] or ["no"], got '
                        f"{json.dumps(choices)}"
                    )
                record = LabelRecord(
                    item_id=data["item_id"],
                    model=data["model"],
                    dimension=dimension,
                    annotator=annotator,
                    label=_CHOICE[choices[0].strip().lower()],
                    time=time,
                )
                out.append((rat, record))
    return out
