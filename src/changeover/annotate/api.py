"""The annotation app's JSON API, for scripts holding a token (`Authorization: Bearer`): the next
screen, labels, skip and undo; the same operations as the pages, the same opaque refs."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from changeover.annotate.labels import record_screen, skip_screen, undo_last
from changeover.annotate.queue import next_screen, progress, queued_refs
from changeover.annotate.web import settings_of, workspace_of
from changeover.errors import InputError

__all__ = ["router"]

router = APIRouter(prefix="/api")
_NOT_JSON = object()


async def _json_of(request: Request) -> Any:
    """The body as JSON, or `_NOT_JSON`."""
    try:
        return await request.json()
    except ValueError:
        return _NOT_JSON


def _error(message: str, status: int) -> Response:
    return JSONResponse({"error": message}, status_code=status)


@router.get("/next")
async def api_next(request: Request) -> Response:
    annotator = request.state.annotator
    workspace, seed = workspace_of(request), settings_of(request).seed
    screen = next_screen(workspace, annotator, seed=seed)
    done = progress(workspace, annotator, seed=seed)
    body: dict[str, Any] = {"labelled": done.labelled, "remaining": done.remaining}
    if screen is not None:
        body["screen"] = asdict(screen)
    return JSONResponse(body)


@router.post("/labels")
async def api_labels(request: Request) -> Response:
    payload = await _json_of(request)
    if payload is _NOT_JSON:
        return _error("the body must be JSON", 400)
    if not isinstance(payload, dict) or not isinstance(payload.get("labels"), dict):
        return _error('expected {"ref": ..., "labels": {"<dimension>": 0 or 1}}', 422)
    note = payload.get("note")
    try:
        stored = record_screen(
            workspace_of(request),
            annotator=request.state.annotator,
            ref=str(payload.get("ref", "")),
            answers={str(k): str(v) for k, v in payload["labels"].items()},
            note=note if isinstance(note, str) else None,
        )
    except InputError as error:
        return _error(str(error), 422)
    return JSONResponse(asdict(stored))


@router.post("/skip")
async def api_skip(request: Request) -> Response:
    payload = await _json_of(request)
    if payload is _NOT_JSON:
        return _error("the body must be JSON", 400)
    ref = str(payload.get("ref", "")) if isinstance(payload, dict) else ""
    if not skip_screen(workspace_of(request), request.state.annotator, ref):
        return _error(f"unknown ref '{ref}'", 422)
    return JSONResponse({"skipped": ref})


@router.post("/undo")
async def api_undo(request: Request) -> Response:
    workspace = workspace_of(request)
    undone = undo_last(workspace, request.state.annotator)
    if undone is None:
        return JSONResponse({"undone": None})
    ref = queued_refs(workspace).get((undone.item_id, undone.model))
    return JSONResponse({"undone": {"ref": ref, "dimensions": list(undone.dimensions)}})
