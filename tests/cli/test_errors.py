"""The entry point's last line of defence: a user mistake is one `error:` line and exit 2, whatever
text it quotes."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import MINIMAL_STUDY
from tests.fakes.studies import run_cli as run


@pytest.mark.parametrize("name", ["[/x]counts.csv", "[link=http://evil.example]c.csv", "[bold]"])
def test_user_text_in_an_error_is_printed_literally(
    tmp_path: Path,
    name: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "study.yaml").write_text(MINIMAL_STUDY, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")
    assert run(["fit", "--counts", name], monkeypatch) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert f"{Path(name)}: counts file not found" in err
    assert "\x1b]8;" not in err  # never a terminal hyperlink
