"""Label Studio's JSON task format, both ways, so that a team already on Label Studio keeps it.

One task per response; `data` holds what an annotator needs (`prompt`, `context`, `reference`,
`response`, `segment`) and `ref`, the opaque id of the response in the label queue, which maps
labels back to the item and model. The export is blind: the model is not in the task (and tasks
are in the order of their refs, not grouped by model), unless asked for (`with_model`: then
`item_id` and `model` are in `data` too, and an import maps by them). `labeling_config` is the
matching labelling config. Each annotator's labels of a response are one annotation whose
`result` holds one `choices` region per dimension, and their note as a `textarea` region:

    {"from_name": "correctness", "to_name": "response", "type": "choices",
     "value": {"choices": ["yes"]}}
    {"from_name": "note", "to_name": "response", "type": "textarea", "value": {"text": ["..."]}}

`completed_by` is written as {"email": annotator}; on import a string, an object with `email`
or `username`, or Label Studio's numeric user id (read as "label-studio-user-<id>") names the
annotator. Cancelled annotations and other region types are ignored.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

from changeover.annotate.labels import question
from changeover.errors import InputError
from changeover.records import LabelRecord

__all__ = ["NOTE", "labeling_config", "labels_from_tasks", "tasks_from_labels"]

#: The name of the note box in the labelling config and of its regions in the tasks.
NOTE = "note"


def labeling_config(dimensions: Sequence[str], *, style_guide: Sequence[str] = ()) -> str:
    """A Label Studio labelling config for the exported tasks: the item and the response, one
    yes/no question per dimension (as the app asks it), the style guide (its text and rules, a
    line each) when style is asked, and a note box. It never shows the model."""
    lines = [
        "<View>",
        '  <Header value="Prompt"/><Text name="prompt" value="$prompt"/>',
        '  <Header value="Context"/><Text name="context" value="$context"/>',
        '  <Header value="Reference answer"/><Text name="reference" value="$reference"/>',
        '  <Header value="Response"/><Text name="response" value="$response"/>',
    ]
    if "style" in dimensions and style_guide:
        lines.append('  <Header value="Style guide"/>')
        lines += [f"  <Header value={quoteattr(line)}/>" for line in style_guide]
    for dimension in dimensions:
        lines.append(
            f"  <Header value={quoteattr(question(dimension))}/>"
            f'<Choices name={quoteattr(dimension)} toName="response" choice="single">'
            '<Choice value="yes"/><Choice value="no"/></Choices>'
        )
    lines.append(
        f'  <Header value="Note (optional)"/><TextArea name="{NOTE}" toName="response" '
        'maxSubmissions="1" editable="true"/>'
    )
    lines.append("</View>")
    return "\n".join(lines) + "\n"


_CHOICE = {"yes": 1, "no": 0, "1": 1, "0": 0, "true": 1, "false": 0}


def tasks_from_labels(
    responses: Sequence[Mapping[str, Any]],
    labels: Sequence[LabelRecord],
    *,
    with_model: bool = False,
) -> list[dict[str, Any]]:
    """Tasks for `responses` (dicts with item_id, model, ref, prompt, context, reference,
    response, segment), each with one annotation per annotator who labelled it. Blind unless
    `with_model`: `data` then holds `ref` (every response needs one) but not the item or model."""
    by_response: dict[tuple[str, str], dict[str, list[LabelRecord]]] = {}
    for record in labels:
        by_annotator = by_response.setdefault((record.item_id, record.model), {})
        by_annotator.setdefault(record.annotator, []).append(record)
    shown = ("prompt", "context", "reference", "segment", "response")
    tasks = []
    for number, response in enumerate(responses, start=1):
        key = (response["item_id"], response["model"])
        data = {"ref": response["ref"], **{k: response[k] or "" for k in shown}}
        if with_model:
            data |= {"item_id": key[0], "model": key[1]}
            if data["ref"] is None:
                del data["ref"]
        annotations = []
        for annotator, records in sorted(by_response.get(key, {}).items()):
            result: list[dict[str, Any]] = [
                {
                    "from_name": r.dimension,
                    "to_name": "response",
                    "type": "choices",
                    "value": {"choices": ["yes" if r.label else "no"]},
                }
                for r in records
            ]
            notes = list(dict.fromkeys(r.note for r in records if r.note))
            if notes:
                result.append(
                    {
                        "from_name": NOTE,
                        "to_name": "response",
                        "type": "textarea",
                        "value": {"text": notes},
                    }
                )
            annotations.append(
                {
                    "completed_by": {"email": annotator},
                    "created_at": max(r.time or "" for r in records) or None,
                    "was_cancelled": False,
                    "result": result,
                }
            )
        tasks.append({"id": number, "data": data, "annotations": annotations})
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


def _response_of(
    where: str, data: dict[str, Any], refs: Mapping[str, tuple[str, str]]
) -> tuple[str, str]:
    """(item_id, model) of a task: by `item_id` and `model` when it has them, else by `ref`."""
    if "item_id" in data or "model" in data or "ref" not in data:
        for key in ("item_id", "model"):
            if not isinstance(data.get(key), str) or not data[key]:
                raise InputError(
                    f"{where}.data.{key}: missing or not a string; changeover maps labels back "
                    "by ref (or by item_id and model); export the tasks with `changeover labels "
                    "export --format label-studio`"
                )
        return data["item_id"], data["model"]
    ref = data["ref"]
    if not isinstance(ref, str) or ref not in refs:
        raise InputError(
            f"{where}.data.ref: {json.dumps(ref)} is no response queued in this workspace; "
            "import the tasks into the workspace they were exported from"
        )
    return refs[ref]


def labels_from_tasks(
    path: Path, tasks: Any, refs: Mapping[str, tuple[str, str]]
) -> list[tuple[str, LabelRecord]]:
    """Labels in parsed Label Studio tasks, each with the key path it came from; `refs` maps a
    queue ref to its (item_id, model). Errors name `path` and the key path (e.g.
    `[3].annotations[0].result[1].value.choices`)."""
    if not isinstance(tasks, list):
        raise InputError(f"{path}: expected a JSON list of Label Studio tasks at the top")
    out: list[tuple[str, LabelRecord]] = []
    for t, task in enumerate(tasks):
        where = f"{path}: [{t}]"
        if not isinstance(task, dict):
            raise InputError(f"{where}: expected a task object")
        data = task.get("data")
        if not isinstance(data, dict):
            raise InputError(f"{where}.data: missing; each task needs data with its ref")
        item_id, model = _response_of(where, data, refs)
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
            note = _note(at, result)
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
                    item_id=item_id,
                    model=model,
                    dimension=dimension,
                    annotator=annotator,
                    label=_CHOICE[choices[0].strip().lower()],
                    time=time,
                    note=note,
                )
                out.append((rat, record))
    return out


def _note(at: str, result: list[Any]) -> str | None:
    """The annotation's note: the text of its `note` regions, or None."""
    texts: list[str] = []
    for r, region in enumerate(result):
        if not isinstance(region, dict) or region.get("from_name") != NOTE:
            continue
        value = region.get("value")
        text = value.get("text") if isinstance(value, dict) else None
        if not isinstance(text, list) or not all(isinstance(t, str) for t in text):
            raise InputError(f"{at}.result[{r}].value.text: expected a list of strings")
        texts += text
    return "\n".join(texts) or None
