"""Tests that need a tool beyond Python (Chromium, Java, Node, mount namespaces) skip where it is
missing, saying why, so that the README's test command passes on a machine with only Python.
`.ci/run` installs the tools and sets CHANGEOVER_REQUIRE_TOOLS=1: there a missing tool fails the
test instead, so CI always runs them."""

from __future__ import annotations

import os

import pytest


def skip_or_fail(reason: str) -> None:
    """Skip this test for `reason`, or fail it where the tools are required (CI)."""
    if os.environ.get("CHANGEOVER_REQUIRE_TOOLS") == "1":
        pytest.fail(f"CHANGEOVER_REQUIRE_TOOLS=1 but {reason}")
    pytest.skip(reason)
