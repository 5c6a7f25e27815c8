"""The annotation app's HTML pages: the labelling screen (or "nothing left"), and the forms that
label, skip and undo. They work without JavaScript; static/app.js adds the keyboard."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from changeover.annotate.labels import MAX_NOTE, record_screen, skip_screen, undo_last
from changeover.annotate.queue import next_screen, progress
from changeover.annotate.web import form_of, render, settings_of, workspace_of
from changeover.errors import InputError

__all__ = ["MESSAGES", "router"]

STATIC = Path(__file__).parent / "static"
# Messages shown after a redirect, by code (never free text from the URL).
MESSAGES = {
    "undone": "Undone: your last answers are back in the queue.",
    "nothing-to-undo": "Nothing to undo.",
    "not-stored": "Not stored: answer every question (a note holds at most 2,000 characters), "
    "then submit.",
    "skipped": "Skipped: it comes back after everything else.",
}

router = APIRouter()


@router.get("/")
async def home(request: Request) -> Response:
    annotator = request.state.annotator
    workspace, settings = workspace_of(request), settings_of(request)
    screen = next_screen(workspace, annotator, seed=settings.seed)
    done = progress(workspace, annotator, seed=settings.seed)
    message = MESSAGES.get(request.query_params.get("m", ""))
    if screen is None:
        return render(request, "done.html", annotator=annotator, progress=done, message=message)
    style = "style" in screen.dimensions
    return render(
        request,
        "screen.html",
        annotator=annotator,
        screen=screen,
        progress=done,
        rules=settings.rules if style else [],
        guide_text=settings.guide_text if style else None,
        max_note=MAX_NOTE,
        message=message,
    )


@router.post("/label")
async def label_form(request: Request) -> Response:
    form = await form_of(request)
    answers = {
        key.removeprefix("label."): value for key, value in form.items() if key.startswith("label.")
    }
    try:
        record_screen(
            workspace_of(request),
            annotator=request.state.annotator,
            ref=form.get("ref", ""),
            answers=answers,
            note=form.get("note") or None,
        )
    except InputError:
        return RedirectResponse("/?m=not-stored", status_code=303)
    return RedirectResponse("/", status_code=303)


@router.post("/skip")
async def skip_form(request: Request) -> Response:
    ref = (await form_of(request)).get("ref", "")
    skip_screen(workspace_of(request), request.state.annotator, ref)
    return RedirectResponse("/?m=skipped", status_code=303)


@router.post("/undo")
async def undo_form(request: Request) -> Response:
    undone = undo_last(workspace_of(request), request.state.annotator)
    code = "undone" if undone else "nothing-to-undo"
    return RedirectResponse(f"/?m={code}", status_code=303)


@router.get("/static/{name}")
async def static(name: str) -> Response:
    if name not in {p.name for p in STATIC.iterdir()}:
        return Response("not found", status_code=404)
    return FileResponse(STATIC / name)
