"""`changeover --help` is the map of the tool: every command in a panel, in a study's order."""

from __future__ import annotations

import pytest

from changeover.cli import COMMAND_ORDER, app, command_name
from tests.fakes.studies import run_cli as run

LISTED = [
    "demo",
    *("init", "import", "export"),
    *("generate", "score"),
    *("counts", "fit"),
    *("next", "annotate", "queue", "agreement", "annotators", "labels"),
    *("run", "report", "status"),
]


def test_every_command_is_placed_and_documented() -> None:
    infos = [*app.registered_commands, *app.registered_groups]
    assert all(info.rich_help_panel for info in infos), "a command without a help panel"
    names = [command_name(info) for info in app.registered_commands]
    groups = {info.name for info in app.registered_groups}
    placed = [name for name in COMMAND_ORDER if name not in groups]
    assert names == placed, "add a new command to changeover.cli.COMMAND_ORDER"
    assert "import" in groups and "import" in COMMAND_ORDER


def test_help_lists_the_commands_in_order(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "150")
    assert run(["--help"], monkeypatch) == 0
    out = capsys.readouterr().out
    lines = [line.strip("│ ").split(" ")[0] for line in out.splitlines()]
    assert [name for name in lines if name in LISTED] == LISTED
    panels = ["Try it", "Set up a study", "Responses and signals", "Decide", "Human labels"]
    positions = [out.index(panel) for panel in [*panels, "The whole pipeline"]]
    assert positions == sorted(positions)


@pytest.mark.parametrize("command", [*COMMAND_ORDER, "annotators", "labels"])
def test_every_command_has_help(
    command: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "150")
    assert run([command, "--help"], monkeypatch) == 0
    out = capsys.readouterr().out
    assert f"changeover {command} [OPTIONS]" in out  # the usage line
