"""Study folders for tests: a study file with a `models:` section, items, a workspace."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from changeover.cli import main
from changeover.io import import_items
from changeover.study import Study, load_study
from changeover.workspace import Workspace, open_workspace

SEGMENTS = ("na", "emea", "apac")
# How the tests run the `changeover` command in a subprocess.
CHANGEOVER = [sys.executable, "-c", "from changeover.cli import main; main()"]


def run_cli(args: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    """Run `changeover ARGS` in this process, as its entry point does; the exit status."""
    monkeypatch.setattr(sys, "argv", ["changeover", *args])
    try:
        main()
    except SystemExit as exit:
        return int(exit.code or 0)
    return 0


def write_study(folder: Path, models: dict[str, dict[str, Any]]) -> Path:
    """A study with the given models (the first is the incumbent) and three segments."""
    names = list(models)
    lines = [
        f"incumbent: {names[0]}",
        f"candidates: {json.dumps(names[1:])}",
        "segments: {na: 2100000, emea: 1400000, apac: 900000}",
        "models:",
    ]
    lines += [f"  {name}: {json.dumps(settings)}" for name, settings in models.items()]
    path = folder / "study.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def write_items(path: Path, prompts: list[str], *, prefix: str = "q") -> Path:
    """A JSONL items file, one item per prompt, segments in turn."""
    with path.open("w") as handle:
        for i, prompt in enumerate(prompts):
            record = {"item_id": f"{prefix}{i:04d}", "prompt": prompt, "segment": SEGMENTS[i % 3]}
            handle.write(json.dumps(record) + "\n")
    return path


def study_with_items(
    folder: Path, models: dict[str, dict[str, Any]], prompts: list[str]
) -> tuple[Study, Workspace]:
    study = load_study(write_study(folder, models))
    workspace = open_workspace(study.resolve(study.workspace), create=True)
    import_items(workspace, write_items(folder / "items.jsonl", prompts), study)
    return study, workspace
