"""Debian's Chromium driven by Playwright (the Python package), headless: no Playwright browser download.

`make test` installs Chromium from Debian's packages (`apt-get install chromium`);
`playwright install` is never run (its download host is not reachable from a
closed network). Tests that need the browser skip, saying why, when either is missing.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def chromium_path() -> str:
    if CHROMIUM.exists():
        return str(CHROMIUM)
    found = shutil.which("chromium")
    if found is None:
        pytest.skip("Debian's chromium is not installed (make test installs it: apt-get install -y chromium)")
    return found


def launch(playwright: object) -> object:
    """A headless Chromium (Debian's) under Playwright."""
    return playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS,  # type: ignore[attr-defined]
                                      headless=True)
