"""Polling helpers shared by the governance end-to-end tests (real node processes)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tclearn.node import node_status


def wait_until(predicate: Any, timeout_s: float, what: str) -> Any:
    """The first truthy value of `predicate()`, polled every 0.3 s; an AssertionError after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def height(out: Path, member: str = "m0") -> int:
    """A member's chain height from its /v1/status, or -1 when it does not answer."""
    st = node_status(out, member)
    return -1 if st is None else int(st["height"])
