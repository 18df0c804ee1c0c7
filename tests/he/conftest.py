"""Shared CKKS keys for the HE tests: key generation and the 65 MB public context cost seconds, so once."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

pytest.importorskip("tenseal")

from tclearn.he.authority import HEAuthority  # noqa: E402
from tclearn.he.context import load_public_context, make_secret_context, public_context_bytes  # noqa: E402
from tclearn.identity import Identity  # noqa: E402
from tclearn.vault.journal import Journal  # noqa: E402


@pytest.fixture(scope="session")
def secret_ctx() -> Any:
    return make_secret_context()


@pytest.fixture(scope="session")
def public_ctx_bytes(secret_ctx: Any) -> bytes:
    return public_context_bytes(secret_ctx)


@pytest.fixture(scope="session")
def public_ctx(public_ctx_bytes: bytes) -> Any:
    return load_public_context(public_ctx_bytes)


@pytest.fixture()
def journal(tmp_path: Path) -> Iterator[Journal]:
    ticks = iter(range(1, 10**9))
    j = Journal(tmp_path / "journal.jsonl", Identity.from_seed("supervisor", b"s" * 32), lambda: next(ticks),
                fsync=False)
    yield j
    j.close()


@pytest.fixture()
def authority(secret_ctx: Any, journal: Journal) -> HEAuthority:
    return HEAuthority(secret_ctx, journal)
