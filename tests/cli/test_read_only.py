"""A read-only workspace (a read-only mount, a copy without write permission) still answers the
commands that only read it; a write is a one-line error that says why."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.fakes.studies import write_items, write_study
from tests.tools import skip_or_fail


def _read_only(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`changeover ARGS` with `folder` mounted read-only (a private mount namespace)."""
    command = " ".join(f"'{a}'" for a in [sys.executable, "-m", "changeover", *args])
    script = f"mount --bind '{folder}' '{folder}' && mount -o remount,ro,bind '{folder}' && "
    return subprocess.run(
        ["unshare", "-m", "sh", "-c", script + command],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_read_only_workspace_reads_and_refuses_writes(tmp_path: Path) -> None:
    if shutil.which("unshare") is None:
        skip_or_fail("unshare (util-linux) is not installed: cannot mount a folder read-only")
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", f"mount --bind '{tmp_path}' '{tmp_path}'"],
        capture_output=True,
    )
    if probe.returncode != 0:
        skip_or_fail("mount namespaces are not permitted here: cannot mount a folder read-only")
    study_dir = tmp_path / "study"
    study_dir.mkdir()
    replay = {"provider": "replay", "file": "r.jsonl"}
    study = write_study(study_dir, {"legacy": replay, "cand": replay})
    items = write_items(study_dir / "items.jsonl", ["one?", "two?", "three?"])
    ok = subprocess.run(
        [sys.executable, "-m", "changeover", "import", "items", str(items), "--study", str(study)],
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stderr
    out = tmp_path / "items-out.csv"
    read = _read_only(study_dir, "export", "items", "--out", str(out), "--study", str(study))
    assert read.returncode == 0, read.stderr
    assert out.read_text(encoding="utf-8").count("\n") == 4
    write = _read_only(study_dir, "import", "items", str(items), "--study", str(study))
    assert write.returncode == 2
    assert write.stderr.count("\n") == 1 and "read-only" in write.stderr, write.stderr
    assert "Traceback" not in write.stderr
