"""Real nodes as processes over mutual TLS on loopback: commits, a crash and restart, hostile input."""

from __future__ import annotations

import os
import pickle
import signal
import time
from pathlib import Path

import pytest

from tclearn.consensus import check_certificate
from tclearn.consensus.messages import MAX_MESSAGE_BYTES
from tclearn.ledger.block import Block
from tclearn.ledger.verify import verify_chain
from tclearn.learning import DirectoryModelStore, InvalidModelError
from tclearn.node import (
    chains, coalition_status, kill_node, node_status, setup_coalition, start_node, start_nodes, stop_nodes,
    wait_for_height,
)
from tclearn.transport import (
    MemberAllowList, NodeServer, PeerClient, Router, server_context,
)
from tclearn.errors import RemoteProtocolError

pytestmark = pytest.mark.slow


@pytest.fixture
def coalition(tmp_path: Path):
    out = tmp_path / "coalition"
    setup_coalition(out, 4, task="digits", seed=1)
    try:
        start_nodes(out)
        yield out
    finally:
        stop_nodes(out, grace_s=5)


def _client(out: Path, as_member: str, to: str, url: str) -> PeerClient:
    rows = coalition_status_rows(out)
    allow = MemberAllowList.from_certs([Path(r["cert"]) for r in rows])
    me = next(r for r in rows if r["member"] == as_member)
    return PeerClient(url, Path(me["ca"]), Path(me["cert"]), Path(me["key"]), allow, expected_member=to,
                      timeout_s=5, retries=1)


def coalition_status_rows(out: Path) -> list[dict]:
    import json
    return json.loads((out / "coalition.json").read_text())


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch /tmp/tclearn-pwned-by-pickle",))


def test_hostile_bodies_are_refused_and_node_keeps_running(coalition: Path) -> None:
    assert wait_for_height(coalition, 1, timeout_s=90), coalition_status(coalition)
    rows = coalition_status_rows(coalition)
    m0 = next(r for r in rows if r["member"] == "m0")
    c = _client(coalition, "m1", "m0", m0["url"])
    for body in (b"", b"\x00garbage\xff" * 10, pickle.dumps(_Evil()), b'{"type": "proposal", "body": {}}',
                 pickle.dumps({"type": "proposal", "body": {}})):
        r = c.post("/v1/messages", body)
        assert r.status == 400, (body[:20], r.status)
    assert c.post("/v1/messages", b"x" * (MAX_MESSAGE_BYTES + 1)).status == 413
    assert c.get("/v1/models/not-a-hash").status == 400
    assert c.get("/v1/models/" + "0" * 64).status == 404
    assert not Path("/tmp/tclearn-pwned-by-pickle").exists()
    assert c.health()
    r = c.get("/v1/blocks", {"from": "0"})
    assert r.status == 200
    blocks = [Block.from_bytes(b) for b in r.cbor()["blocks"]]
    assert blocks[0].index == 0 and blocks[0].kind == "genesis"
    assert c.get("/v1/blocks", {"from": "x"}).status == 400
    st = c.get_json("/v1/status")
    assert st["member"] == "m0" and st["height"] >= 1
    log = (coalition / "nodes" / "m0" / "data" / "node.log").read_text()
    assert "message_refused" in log


def test_pickle_served_as_a_model_is_refused(tmp_path: Path) -> None:
    """A peer answering GET /v1/models/{h} with a pickle: framing check and the store refuse it, nothing runs."""
    setup_coalition(tmp_path / "c", 4, task="digits", seed=2)
    rows = coalition_status_rows(tmp_path / "c")
    m3, m1 = rows[3], rows[1]
    evil = pickle.dumps(_Evil())
    router = Router()
    router.route("GET", "/v1/models/{model_hash}", lambda caller, body, q: (200, "application/octet-stream", evil))
    allow = MemberAllowList.from_certs([Path(r["cert"]) for r in rows])
    server = NodeServer(router, server_context(Path(m3["ca"]), Path(m3["cert"]), Path(m3["key"])), allow,
                        member_id="m3").start()
    try:
        client = PeerClient(server.url, Path(m1["ca"]), Path(m1["cert"]), Path(m1["key"]), allow,
                            expected_member="m3", retries=0)
        with pytest.raises(RemoteProtocolError):
            client.get_model("/v1/models/" + "ab" * 32)
        raw = client.get("/v1/models/" + "ab" * 32).body
        with pytest.raises(InvalidModelError):
            DirectoryModelStore(tmp_path / "models").put(raw)
    finally:
        server.stop()
    assert not Path("/tmp/tclearn-pwned-by-pickle").exists()


def test_crash_and_restart_chains_agree(coalition: Path) -> None:
    assert wait_for_height(coalition, 3, timeout_s=120), coalition_status(coalition)
    killed_at = max(s["height"] for s in (node_status(coalition, m) for m in ("m0", "m1", "m3")) if s)
    kill_node(coalition, "m2", signal.SIGKILL)  # mid-round: the others keep proposing
    time.sleep(1.0)
    assert node_status(coalition, "m2") is None
    start_node(coalition, "m2")
    # every node (the restarted one included) reaches the others' height, past the one at the crash, and
    # stays in agreement (agreeing at the crash height alone would not show that m2 follows new blocks)
    deadline = time.monotonic() + 120
    agreed = False
    while time.monotonic() < deadline:
        st = {m: node_status(coalition, m) for m in ("m0", "m1", "m2", "m3")}
        heights = {m: s["height"] for m, s in st.items() if s is not None}
        heads = {s["head"]["hash"] for s in st.values() if s is not None}
        if (len(heights) == 4 and min(heights.values()) >= max(4, killed_at + 1) and len(set(heights.values())) == 1
                and len(heads) == 1):
            agreed = True
            break
        time.sleep(1.0)
    assert agreed, coalition_status(coalition)
    stop_nodes(coalition)
    all_chains = chains(coalition)
    common = min(len(c) for c in all_chains.values())
    assert common >= max(4, killed_at + 2)  # blocks were committed after the crash, and m2 holds them
    ref = [b.block_hash for b in all_chains["m0"][:common]]
    for m, chain in all_chains.items():
        assert [b.block_hash for b in chain[:common]] == ref, m
        verify_chain(iter(chain), certificate_check=check_certificate)
    log = (coalition / "nodes" / "m2" / "data" / "node.log").read_text()
    assert log.count('"node_started"') == 2
