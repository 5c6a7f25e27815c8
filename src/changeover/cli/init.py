"""`changeover init`: a new study folder with a commented study file and a workspace."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from changeover.cli.app import (
    SET_UP,
    app,
    console,
)
from changeover.errors import ChangeoverError
from changeover.study import load_study
from changeover.workspace import open_workspace

STUDY_TEMPLATE = """\
# changeover study file. Every key is documented in docs/generate.md and the README.
# The incumbent is the model in production; candidates are the models that might replace it.
incumbent: legacy
candidates: [cand-a]

# Segments (e.g. regions) and their traffic weights, e.g. interactions per month.
segments: {na: 2100000, emea: 1400000, apac: 900000}

# The SQLite workspace, relative to this file.
workspace: changeover.db

# How to reach each model. API keys are never written here: `api_key_env` names the
# environment variable that holds the key.
models:
  legacy:
    provider: openai             # the official openai SDK; base_url for any compatible endpoint
    model: gpt-4-0613
    api_key_env: OPENAI_API_KEY
    temperature: 0
    max_tokens: 512
    concurrency: 16
    # requests_per_minute: 500
    # tokens_per_minute: 150000
    # price_input_per_million: 30.0
    # price_output_per_million: 60.0
  cand-a:
    provider: anthropic          # the official anthropic SDK
    model: claude-sonnet-x
    api_key_env: ANTHROPIC_API_KEY
    temperature: 0
    max_tokens: 512
    requests_per_minute: 600
  # cand-b: {provider: replay, file: cand-b.jsonl}   # responses recorded elsewhere
decision: {probability: 0.95}
gates:
  - {name: correctness, dimension: correctness, better: higher, margin: 0.02}
  - {name: over_refusal, dimension: refusal, group: answer, better: lower, margin: 0.01}
"""


@app.command(rich_help_panel=SET_UP)
def init(
    directory: Annotated[Path, typer.Argument(help="Folder for the new study.")] = Path("."),
) -> None:
    """Create a study folder: a commented study.yaml and an empty workspace."""
    directory.mkdir(parents=True, exist_ok=True)
    study_path = directory / "study.yaml"
    if study_path.exists():
        raise ChangeoverError(
            f"{study_path}: a study file is already there; init leaves it alone (pick another "
            "folder or remove the file)"
        )
    study_path.write_text(STUDY_TEMPLATE, encoding="utf-8")
    study = load_study(study_path)
    with open_workspace(study.workspace_path, create=True) as workspace:
        version = workspace.schema_version
    console.print(
        f"created {study_path} and workspace {study.workspace_path} (schema v{version}); "
        "edit the study, then `changeover import items FILE`"
    )
