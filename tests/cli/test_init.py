"""`changeover init` end to end."""

from __future__ import annotations

from pathlib import Path

import pytest

from changeover.study import load_study
from tests.fakes.studies import run_cli as run


def test_init_writes_a_valid_commented_study_and_workspace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "study"
    assert run(["init", str(folder)], monkeypatch) == 0
    study = load_study(folder / "study.yaml")
    assert study.models is not None and set(study.models) == {"legacy", "cand-a"}
    text = (folder / "study.yaml").read_text()
    assert "docs/signals.md" in text and "docs/engine.md" in text
    # A complete first study: a signal for every gated dimension, a style guide, an LLM judge
    # waiting to be switched on, gates on the three dimensions.
    assert study.signals is not None and study.style_guide is not None
    assert {g.dimension for g in study.gates} == {"correctness", "refusal", "style"}
    assert {g.dimension for g in study.gates} <= set(study.signals.dimensions)
    assert {s.kind for _, s in study.signals.items()} == {"refusal", "reference", "style"}
    assert "# correctness_judge: {kind: judge" in text
    assert (folder / "changeover.db").exists()
    before = (folder / "study.yaml").read_text()
    capsys.readouterr()
    assert run(["init", str(folder)], monkeypatch) == 2
    err = capsys.readouterr().err
    assert "a study file is already there" in err and len(err.strip().splitlines()) == 1
    assert (folder / "study.yaml").read_text() == before
