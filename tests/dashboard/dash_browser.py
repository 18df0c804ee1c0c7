"""Debian's Chromium driven by Playwright (the Python package), headless: no Playwright browser download.

`make test` installs Chromium from Debian's packages (`apt-get install chromium`);
`playwright install` is never run (its download host is not reachable from a
closed network). Tests that need the browser skip, saying why, when either is missing.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
# The README's screenshots: refreshed with `TCLEARN_SCREENSHOTS=docs/screenshots make test`; by default a
# run writes them to $TMPDIR/tclearn-screenshots, so running the tests leaves the tree unchanged.
SCREENSHOTS = Path(os.environ.get("TCLEARN_SCREENSHOTS") or Path(tempfile.gettempdir()) / "tclearn-screenshots").resolve()


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
