"""Rubric templates: the built-in ones shipped in `signals/rubrics/` and a study's own files.

Kept apart from the judge so that the study's validation can check a template without the
judging machinery.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

__all__ = ["builtin_source", "builtin_template", "load_template"]


def _environment() -> SandboxedEnvironment:
    # Sandboxed: a study's template is a file from the user, rendered with plain data only.
    return SandboxedEnvironment(
        undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False
    )


_SAMPLE_CONTEXT: dict[str, Any] = {
    "rubric": "correctness",
    "scale": "binary",
    "verdicts": ("correct", "incorrect"),
    "refusal_levels": ("partial", "refused"),
    "style_guide": "Be brief.",
    "style_rules": ["At most 200 words."],
}


def load_template(path: Path) -> jinja2.Template:
    """A study's rubric template (Jinja), checked by rendering it once; ValueError says why not.

    The template may use `rubric`, `scale`, `verdicts`, `refusal_levels`, `style_guide` (the
    guide's text or None) and `style_rules` (one line per rule of the guide).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(
            f"file {path} not found; fix the path (relative to the study file)"
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"cannot read {path} ({error})") from None
    try:
        template = _environment().from_string(text)
        rendered = template.render(**_SAMPLE_CONTEXT)
    except jinja2.TemplateSyntaxError as error:
        raise ValueError(
            f"{path}: line {error.lineno}: {error.message}; fix the Jinja syntax"
        ) from None
    except jinja2.TemplateError as error:
        raise ValueError(
            f"{path}: {error}; a rubric template may use {', '.join(_SAMPLE_CONTEXT)}"
        ) from None
    if not rendered.strip():
        raise ValueError(f"{path}: the template renders to nothing; write the rubric in it")
    return template


@cache
def builtin_source(rubric: str) -> str:
    """The text of the rubric template shipped with changeover (`signals/rubrics/<rubric>.j2`)."""
    return (resources.files("changeover.signals") / "rubrics" / f"{rubric}.j2").read_text("utf-8")


@cache
def builtin_template(rubric: str) -> jinja2.Template:
    """The rubric shipped with changeover (`signals/rubrics/<rubric>.j2`)."""
    return _environment().from_string(builtin_source(rubric))
