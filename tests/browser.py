"""Debian's Chromium driven by Playwright, for the browser tests (never a downloaded browser).

Chromium is required: without it a browser test fails (CI installs it). Set
CHANGEOVER_SKIP_BROWSER=1 to skip them on a machine without Chromium.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("CHANGEOVER_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
ARTIFACTS = Path(
    os.environ.get("CHANGEOVER_ARTIFACTS", Path(__file__).parents[1] / "test-artifacts")
)


def playwright_or_fail() -> Any:
    """Playwright's sync API, or fail (skip only when CHANGEOVER_SKIP_BROWSER=1)."""
    problem = None
    if shutil.which(CHROMIUM) is None and not os.path.exists(CHROMIUM):
        problem = (
            f"Chromium not found at {CHROMIUM}: `apt-get install -y chromium` (or point "
            "CHANGEOVER_CHROMIUM at a Chromium binary)"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        problem = "Playwright for Python is not installed: `pip install playwright`"
    if problem is not None:
        if os.environ.get("CHANGEOVER_SKIP_BROWSER") == "1":
            pytest.skip(f"CHANGEOVER_SKIP_BROWSER=1: {problem}")
        pytest.fail(f"{problem}; set CHANGEOVER_SKIP_BROWSER=1 to skip this test locally")
    return sync_playwright
