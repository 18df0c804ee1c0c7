"""Fixtures of the vault tests: a coalition CA, RSA S/MIME certificates, a supervisor on a fixed clock."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tclearn.identity import Identity
from tclearn.pki import init_ca
from tclearn.vault.smime import issue_smime_cert
from tclearn.vault.supervisor import Supervisor
from vault_helpers import PASS, SCRYPT_N, Clock


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def supervisor_id() -> Identity:
    return Identity.from_seed("supervisor", b"vault-tests")


@pytest.fixture
def sup(tmp_path: Path, supervisor_id: Identity, clock: Clock) -> Any:
    s = Supervisor.create(tmp_path / "vault", PASS, supervisor_id, ["h1", "h2", "h3"], clock, scrypt_n=SCRYPT_N)
    yield s
    s.close()


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA and RSA-2048 S/MIME certificates for h1, h2, h3 (valid from 2026-01-01 for a year)."""
    d = tmp_path_factory.mktemp("pki")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    init_ca(d, now=start)
    for m in ("h1", "h2", "h3"):
        issue_smime_cert(d, m, key_size=2048, now=start)
    return d
