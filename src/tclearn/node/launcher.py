"""A coalition of node processes on loopback: set up, start, watch, stop.

    configs = setup_coalition(out_dir, partners=4, task="digits", seed=0)
    start_nodes(out_dir)              # N `python -m tclearn.node serve` processes, pids in out_dir/pids.json
    coalition_status(out_dir)         # [{member, url, head, height, cert, key, ca}, …]
    stop_nodes(out_dir)               # SIGTERM, then SIGKILL after a grace period

Members, their keys, genesis and G come from the one founding path
(`tclearn.founding.plan_for_task`); this module adds what a coalition of
processes needs around it: the CA and certificates, key files, `node.toml`s
and the processes. Each node derives its own partner data from the coalition
seed and its index; no data file is written.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from tclearn.errors import ConfigError, LearningError
from tclearn.ledger.block import Block
from tclearn.node.config import PROPOSE_MODES, NodeConfig, PeerInfo

__all__ = ["setup_coalition", "start_nodes", "start_node", "stop_nodes", "stop_process_groups", "kill_node",
           "coalition_status",
           "require_coalition", "node_status", "wait_for_height", "load_configs", "run_network_coalition", "chains", "free_ports"]


# where listening ports are drawn: below every common ephemeral range (Linux 32768-60999, macOS and Windows
# 49152-65535), so that no outgoing connection can take a node's port between `setup_coalition` and its start
LISTEN_PORTS = range(10000, 32768)
EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def ephemeral_ports() -> range:
    """The ports the kernel hands to outgoing connections (Linux's default where it cannot be read)."""
    try:
        low, high = (int(x) for x in EPHEMERAL_RANGE_FILE.read_text().split())
    except (OSError, ValueError):
        return range(32768, 61000)
    return range(low, high + 1)


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """`n` distinct ports of `host` free now, to be listened on later.

    A port the kernel picks for `bind(0)` lies in the ephemeral range, which
    every outgoing connection on the machine also draws from: between this
    call and the node's own bind (seconds, while certificates and genesis are
    made) another process's connection could take it ("Address already in
    use", seen under a parallel test run). So the ports are drawn at random
    from `LISTEN_PORTS` outside that range, where only another listener can
    collide; where the whole of `LISTEN_PORTS` is ephemeral, from the kernel.
    """
    ephemeral = ephemeral_ports()
    pool = [p for p in LISTEN_PORTS if p not in ephemeral]
    rng = random.SystemRandom()
    socks: list[socket.socket] = []
    try:
        while len(socks) < n:
            s = socket.socket()
            socks.append(s)  # closed in `finally` whether or not it binds
            if not pool:
                s.bind((host, 0))
                continue
            port = pool.pop(rng.randrange(len(pool)))
            try:
                s.bind((host, port))
            except OSError:  # taken: try another
                socks.pop().close()
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def setup_coalition(out_dir: Path | str, partners: int, *, task: str = "digits", seed: int = 0,
                    committee: int | None = None, lam: float = 0.95, tick_ms: int = 100,
                    ports: list[int] | None = None, propose: str = "turn", level: str = "A") -> list[NodeConfig]:
    """CA, member certificates, Ed25519 identities, genesis and one `node.toml` per member.

    All or nothing: if any step fails, what this call created under `out_dir` is removed
    (the folder itself too if it did not exist), so that a rerun starts clean.
    """
    from tclearn.learning import get_task

    out = Path(out_dir).absolute()
    if (out / "coalition.json").exists():
        raise FileExistsError(f"{out} already holds a coalition")
    if partners < 2:
        raise ValueError("a coalition needs at least 2 partners")
    if propose not in PROPOSE_MODES:
        raise ValueError(f"propose must be one of {', '.join(PROPOSE_MODES)}")
    if level not in ("A", "B"):
        raise ValueError(f"node processes run level A or B, not {level!r}")
    try:
        get_task(task)
    except LearningError as exc:
        raise ValueError(str(exc)) from None
    existed = out.exists()
    before = set(out.iterdir()) if existed else set()
    try:
        return _setup(out, partners, task, seed, committee, lam, tick_ms, ports, propose, level)
    except BaseException:
        if not existed:
            shutil.rmtree(out, ignore_errors=True)
        else:
            for path in set(out.iterdir()) - before:
                shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
        raise


def _setup(out: Path, partners: int, task: str, seed: int, committee: int | None, lam: float, tick_ms: int,
           ports: list[int] | None, propose: str, level: str = "A") -> list[NodeConfig]:
    from tclearn.founding import coalition_data, generated_identities, numbered_names, plan_for_task
    from tclearn.identity import save_identity
    from tclearn.learning import get_task
    from tclearn.pki import init_ca, issue_member

    out.mkdir(parents=True, exist_ok=True)
    pki_dir = out / "pki"
    init_ca(pki_dir)
    ids = numbered_names(partners)
    files = {m: issue_member(pki_dir, m, hosts=("127.0.0.1", "localhost")) for m in ids}
    (out / "identities").mkdir(mode=0o700, exist_ok=True)
    identities = generated_identities(ids)
    keys = {i.member_id: save_identity(i, out / "identities") for i in identities}
    t = get_task(task)
    test = coalition_data(t, partners, seed).test  # G: every node derives the same (node/data_source.py)
    sup = None
    if level == "B":  # the supervisor: keys, vault (holding the initial model), vault.toml (node/vault_setup.py)
        from tclearn.learning.serialize import state_to_bytes
        from tclearn.node.vault_setup import setup_supervisor

        sup = setup_supervisor(out, pki_dir, pki_dir / "ca.crt", {m: files[m].fingerprint for m in ids},
                               state_to_bytes(t.initial_state(seed)), free_ports(1)[0])
    sup_fields: dict[str, Any] = {} if sup is None else {"supervisor": sup.settings.member_id,
                                                         "supervisor_key": sup.public_key}
    plan = plan_for_task(t, identities, coalition_id=f"net-{seed}", level=level, seed=seed, lam=lam,
                         committee_size=committee or min(3, partners - 1), test_set_hash=test.digest(),
                         revert_authorized=(ids[0],),
                         fingerprints={m: files[m].fingerprint for m in ids}, **sup_fields)
    (out / "genesis.block").write_bytes(plan.genesis().to_bytes())
    ports = ports or free_ports(partners)
    peers = tuple(PeerInfo(m, f"https://127.0.0.1:{ports[i]}", files[m].fingerprint) for i, m in enumerate(ids))
    configs = []
    summary = []
    for i, m in enumerate(ids):
        node_dir = out / "nodes" / m
        node_dir.mkdir(parents=True, exist_ok=True)
        cfg = NodeConfig(member_id=m, data_dir=node_dir / "data", identity_key=keys[m], tls_cert=files[m].cert,
                         tls_key=files[m].key, ca_cert=pki_dir / "ca.crt", genesis=out / "genesis.block",
                         port=ports[i], fingerprint=files[m].fingerprint, task=task, seed=seed, index=i,
                         partners=partners, tick_ms=tick_ms, propose=propose, peers=peers,
                         vault=None if sup is None else sup.settings)
        (node_dir / "node.toml").write_text(cfg.to_toml())
        configs.append(cfg)
        summary.append({"member": m, "url": cfg.url, "config": str(node_dir / "node.toml"),
                        "cert": str(cfg.tls_cert), "key": str(cfg.tls_key), "ca": str(cfg.ca_cert)})
    (out / "coalition.json").write_text(json.dumps(summary, indent=2))
    return configs


def require_coalition(out_dir: Path | str) -> Path:
    """`out_dir`, if it holds a coalition that `setup_coalition` wrote (ConfigError otherwise)."""
    out = Path(out_dir).absolute()
    try:
        _summary(out)
    except (OSError, ValueError, TypeError) as exc:
        reason = "no coalition.json" if isinstance(exc, FileNotFoundError) else f"unreadable coalition.json: {exc}"
        raise ConfigError(f"no coalition in {out} ({reason}; see `tclearn coalition up`)") from None
    return out


def _summary(out: Path) -> list[dict[str, Any]]:
    rows = json.loads((Path(out) / "coalition.json").read_text())
    if not isinstance(rows, list) or not all(isinstance(r, dict) and "member" in r for r in rows):
        raise ValueError("not a list of members")
    return rows


def load_configs(out_dir: Path | str) -> dict[str, NodeConfig]:
    return {e["member"]: NodeConfig.load(e["config"]) for e in _summary(Path(out_dir))}


def _pids(out: Path) -> dict[str, int]:
    p = out / "pids.json"
    return json.loads(p.read_text()) if p.exists() else {}


def _save_pids(out: Path, pids: dict[str, int]) -> None:
    (out / "pids.json").write_text(json.dumps(pids, indent=2))


def _alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)  # reap our own child if it exited
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie that is not our child still answers kill(0)
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def start_node(out_dir: Path | str, member: str) -> int:
    """Start one member's process (again); returns its pid."""
    out = Path(out_dir).absolute()
    entry = next(e for e in _summary(out) if e["member"] == member)
    node_dir = Path(entry["config"]).parent
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    src = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    with open(node_dir / "stdout.log", "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "tclearn.node", "serve", "--config", entry["config"]],
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                start_new_session=True)
    pids = _pids(out)
    pids[member] = proc.pid
    _save_pids(out, pids)
    return proc.pid


def start_nodes(out_dir: Path | str) -> dict[str, int]:
    out = Path(out_dir).absolute()
    from tclearn.node.vault_setup import SUPERVISOR_ID, start_supervisor

    pid = start_supervisor(out)  # level B: the supervisor's vault service, stopped with the nodes
    if pid is not None:
        pids = _pids(out)
        pids[SUPERVISOR_ID] = pid
        _save_pids(out, pids)
    for e in _summary(out):
        start_node(out, e["member"])
    return _pids(out)


def kill_node(out_dir: Path | str, member: str, sig: int = signal.SIGKILL, grace_s: float = 5.0) -> None:
    """Send `sig` to one member's process and wait (bounded) until it is gone."""
    out = Path(out_dir).absolute()
    pid = _pids(out).get(member)
    if pid is None or not _alive(pid):
        return
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.05)
    if _alive(pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.05)


def stop_nodes(out_dir: Path | str, grace_s: float = 5.0) -> int:
    """SIGTERM every node, SIGKILL those still running after `grace_s`; how many were running."""
    out = Path(out_dir).absolute()
    pids = _pids(out)
    running = 0
    for pid in pids.values():
        if _alive(pid):
            running += 1
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(_alive(p) for p in pids.values()):
        time.sleep(0.05)
    for member in pids:
        kill_node(out, member, signal.SIGKILL)
    return running


def stop_process_groups(procs: Sequence["subprocess.Popen[Any]"], grace_s: float = 15.0) -> None:
    """SIGTERM the process group of each running `Popen` (started with `start_new_session=True`), then SIGKILL
    the groups still running after `grace_s`; every process is reaped. For nodes started without pid files."""
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for p in procs:
        try:
            p.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def _client(out: Path, entry: dict[str, Any], timeout_s: float = 3.0) -> Any:
    from tclearn.transport import MemberAllowList, PeerClient

    configs = json.loads((out / "coalition.json").read_text())
    allow = MemberAllowList.from_certs([Path(e["cert"]) for e in configs])
    # ask as the first member (any member certificate may read status)
    me = configs[0]
    return PeerClient(entry["url"], Path(me["ca"]), Path(me["cert"]), Path(me["key"]), allow,
                      expected_member=entry["member"], timeout_s=timeout_s, retries=0)


def node_status(out_dir: Path | str, member: str) -> dict[str, Any] | None:
    out = Path(out_dir).absolute()
    entry = next(e for e in _summary(out) if e["member"] == member)
    try:
        return _client(out, entry).get_json("/v1/status")
    except Exception:
        return None


def coalition_status(out_dir: Path | str) -> list[dict[str, Any]]:
    """Per node: member, url, pid, running, height, head (hash), cert, key, ca."""
    out = Path(out_dir).absolute()
    pids = _pids(out)
    rows = []
    for e in _summary(out):
        st = node_status(out, e["member"])
        pid = pids.get(e["member"])
        rows.append({"member": e["member"], "url": e["url"], "pid": pid, "running": bool(pid and _alive(pid)),
                     "height": st["height"] if st else None,
                     "head": st["head"]["hash"] if st and st.get("head") else None,
                     "cert": e["cert"], "key": e["key"], "ca": e["ca"]})
    return rows


def wait_for_height(out_dir: Path | str, height: int, timeout_s: float, members: list[str] | None = None) -> bool:
    """Poll until every listed member (default: all) reached `height`; False on timeout."""
    out = Path(out_dir).absolute()
    names = members or [e["member"] for e in _summary(out)]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        pids = _pids(out)
        if pids and not any(_alive(p) for p in pids.values()):
            return False  # every process has exited: nothing will change
        st = {m: node_status(out, m) for m in names}
        if all(s is not None and s["height"] >= height for s in st.values()):
            return True
        time.sleep(0.5)
    return False


def chains(out_dir: Path | str) -> dict[str, list[Block]]:
    """Every node's chain, read (read-only) from its SQLite file."""
    from tclearn.ledger.sqlite_store import SQLiteChainStore

    result = {}
    for m, cfg in load_configs(out_dir).items():
        path = cfg.data_dir / "chain.sqlite"
        if not path.exists():
            result[m] = []
            continue
        with SQLiteChainStore(path, create=False, read_only=True) as store:
            result[m] = list(store)
    return result


def run_network_coalition(out_dir: Path | str, partners: int = 4, rounds: int = 3, task: str = "digits",
                          seed: int = 0, timeout_s: float = 300.0) -> dict[str, Any]:
    """Set up and start a coalition of processes, wait for `rounds` blocks, stop it; the chains and a summary."""
    out = Path(out_dir).absolute()
    setup_coalition(out, partners, task=task, seed=seed)
    t0 = time.monotonic()
    try:
        start_nodes(out)
        reached = wait_for_height(out, rounds, timeout_s)
    finally:
        stop_nodes(out)
    elapsed = time.monotonic() - t0
    all_chains = chains(out)
    common = min(len(c) for c in all_chains.values()) - 1
    agree = all(c[i].block_hash == all_chains["m0"][i].block_hash
                for c in all_chains.values() for i in range(common + 1))
    return {"reached": reached, "seconds": round(elapsed, 2), "common_height": common, "agree": agree,
            "chains": all_chains,
            "kinds": [b.kind for b in all_chains["m0"][1:]]}
