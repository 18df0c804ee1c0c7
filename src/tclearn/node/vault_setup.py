"""The supervisor of a local level-B coalition: its keys, its vault, its `vault.toml`, its process.

`setup_supervisor` (called by `setup_coalition` at level B) makes, under
``<out>/supervisor/``: a TLS certificate from the coalition's CA (member id
``supervisor``), the Ed25519 identity that signs the audit journal (its public
key goes into genesis), a random vault passphrase (0600; a real supervisor
keeps it elsewhere), the vault itself (``vault/``, every member a partner:
use and publish) holding the initial model, and ``vault.toml`` for `tclearn
vault serve`. `start_supervisor` runs that service as a process (pid under
``supervisor`` in ``pids.json``, so `stop_nodes` stops it with the nodes).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tclearn.identity import Identity, save_identity
from tclearn.node.vault_link import VaultSettings
from tclearn.pki import issue_member
from tclearn.vault.policy import default_policy
from tclearn.fsutil import atomic_write
from tclearn.vault.supervisor import Supervisor

__all__ = ["SUPERVISOR_ID", "SupervisorSetup", "setup_supervisor", "start_supervisor", "supervisor_dir"]

SUPERVISOR_ID = "supervisor"


@dataclass(frozen=True)
class SupervisorSetup:
    settings: VaultSettings  # what each node.toml's [vault] says
    public_key: bytes  # the journal's signing key, recorded in genesis
    vault_dir: Path
    passphrase_file: Path
    config: Path  # vault.toml


def supervisor_dir(out: Path) -> Path:
    return Path(out) / SUPERVISOR_ID


def setup_supervisor(out: Path, pki_dir: Path, ca_cert: Path, members: dict[str, str], initial_model: bytes,
                     port: int) -> SupervisorSetup:
    """Keys, vault (with the initial model) and vault.toml; `members`: member id -> certificate fingerprint."""
    root = supervisor_dir(out)
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    tls = issue_member(pki_dir, SUPERVISOR_ID, hosts=("127.0.0.1", "localhost"))
    identity = Identity.generate(SUPERVISOR_ID)
    key_path = save_identity(identity, root)
    passphrase_file = root / "vault.passphrase"
    passphrase = secrets.token_hex(24).encode()
    atomic_write(passphrase_file, passphrase + b"\n", owner_only=True)
    vault_dir = root / "vault"
    sup = Supervisor.create(vault_dir, passphrase, identity, list(members), policy=default_policy(list(members)))
    try:
        sup.put_local(initial_model, "model", {"by": SUPERVISOR_ID})
    finally:
        sup.close()
    config = root / "vault.toml"
    lines = ["[vault]", f"dir = {json.dumps(str(vault_dir))}", f"passphrase_file = {json.dumps(str(passphrase_file))}",
             f"supervisor_key = {json.dumps(str(key_path))}", "", "[tls]", f"ca = {json.dumps(str(ca_cert))}",
             f"cert = {json.dumps(str(tls.cert))}", f"key = {json.dumps(str(tls.key))}", 'host = "127.0.0.1"',
             f"port = {port}", "", "[members]"] + [f"{m} = {json.dumps(fp)}" for m, fp in members.items()]
    config.write_text("\n".join(lines) + "\n")
    settings = VaultSettings(url=f"https://127.0.0.1:{port}", member_id=SUPERVISOR_ID, fingerprint=tls.fingerprint)
    return SupervisorSetup(settings, identity.public_key, vault_dir, passphrase_file, config)


def start_supervisor(out: Path) -> int | None:
    """Start `tclearn vault serve` for the coalition in `out` (None if it has no supervisor); its pid."""
    config = supervisor_dir(out) / "vault.toml"
    if not config.exists():
        return None
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    src = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    with open(supervisor_dir(out) / "stdout.log", "ab") as log:
        proc = subprocess.Popen([sys.executable, "-c", "from tclearn.cli import main; main()", "vault", "serve",
                                 "--config", str(config)], stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    return proc.pid
