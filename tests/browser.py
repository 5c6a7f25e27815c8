"""Chromium driven by Playwright, for the browser tests (never a browser downloaded at run time).

Chromium is looked for where Debian, other distributions, Playwright's own installs and macOS put
it (or at CHANGEOVER_CHROMIUM). Where none is found the browser tests skip, saying why; `.ci/run`
installs Debian's Chromium and requires them (tests/tools.py).
"""

from __future__ import annotations

import glob
import os
import shutil
from pathlib import Path
from typing import Any

from tests.tools import skip_or_fail

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
ARTIFACTS = Path(
    os.environ.get("CHANGEOVER_ARTIFACTS", Path(__file__).parents[1] / "test-artifacts")
)
_ON_PATH = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
_PLACES = (
    "/usr/bin/chromium",
    "/usr/lib/chromium/chromium",
    "/snap/bin/chromium",
    "/opt/google/chrome/chrome",
    "~/.cache/ms-playwright/chromium-*/chrome-linux*/chrome",
    "~/.cache/ms-playwright/chromium_headless_shell-*/chrome-linux*/headless_shell",
    "~/Library/Caches/ms-playwright/chromium-*/chrome-mac*/Chromium.app/Contents/MacOS/Chromium",
    "/Applications/Chromium.app/Contents/MacOS/Chromium",
    "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
)


def find_chromium() -> str | None:
    """A Chromium (or Chrome) binary on this machine, or None."""
    wanted = os.environ.get("CHANGEOVER_CHROMIUM")
    if wanted:
        return wanted if os.path.exists(wanted) else None
    for name in _ON_PATH:
        if (found := shutil.which(name)) is not None:
            return found
    for place in _PLACES:
        for found in sorted(glob.glob(os.path.expanduser(place)), reverse=True):
            if os.access(found, os.X_OK):
                return found
    return None


#: The binary the browser tests launch ("chromium" when none is found: those tests skip).
CHROMIUM = find_chromium() or "chromium"


def playwright_or_fail() -> Any:
    """Playwright's sync API, or skip saying why (fail where the tools are required)."""
    problem = None
    if find_chromium() is None:
        where = os.environ.get("CHANGEOVER_CHROMIUM") or "the usual places"
        problem = (
            f"no Chromium found ({where}); install one (Debian: `apt-get install -y chromium`) "
            "or point CHANGEOVER_CHROMIUM at it"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        problem = "Playwright for Python is not installed: `pip install playwright`"
    if problem is not None:
        skip_or_fail(f"browser test: {problem}")
    return sync_playwright
