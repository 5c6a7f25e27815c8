"""Many `changeover` commands in subprocesses, without paying Python's start-up for each.

A fork server is one Python process that has imported the command line once; for each command it
forks a child, which sets its working folder, argv and standard streams and runs the real entry
point (`changeover.cli.main`), then exits with its status. Each command still runs in a process
of its own, as a user's would; only the imports are shared. The bad-input suite runs hundreds of
commands this way.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

_SERVER = r"""
import json, os, sys, traceback
from changeover.cli import main

for line in sys.stdin:
    request = json.loads(line)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.chdir(request["cwd"])
            for fd, path in ((1, request["out"]), (2, request["err"])):
                os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
            sys.argv = ["changeover", *request["args"]]
            try:
                main()
                code = 0
            except SystemExit as exit:
                code = exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 1)
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    sys.stdout.write(json.dumps(os.waitstatus_to_exitcode(status)) + "\n")
    sys.stdout.flush()
"""


@dataclass(frozen=True)
class Done:
    """A finished command: its exit status and what it printed."""

    returncode: int
    stdout: str
    stderr: str


class ForkServer:
    """One fork server; `run` is not thread-safe (give each thread its own server)."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-c", _SERVER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self._scratch = Path(tempfile.mkdtemp(prefix="changeover-forkserver-"))

    def run(self, args: list[str], *, cwd: Path) -> Done:
        out, err = self._scratch / "out", self._scratch / "err"
        request = {"args": args, "cwd": str(cwd), "out": str(out), "err": str(err)}
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.write(json.dumps(request) + "\n")
        self._process.stdin.flush()
        code = json.loads(self._process.stdout.readline())
        return Done(
            code,
            out.read_text(encoding="utf-8", errors="replace"),
            err.read_text(encoding="utf-8", errors="replace"),
        )

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        self._process.wait(timeout=60)
        if self._process.stdout is not None:
            self._process.stdout.close()
        for name in ("out", "err"):
            (self._scratch / name).unlink(missing_ok=True)
        self._scratch.rmdir()

    def __enter__(self) -> ForkServer:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
