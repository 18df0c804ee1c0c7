"""Members from the chain (allow-list, peer set) and the joining catch-up, on a simulated chain.

The chain comes from a synthetic coalition whose founder adds m9 — a site
joining the running network, with its certificate fingerprint and URL — and
removes m4. The joining catch-up is run against members that serve that
chain (`GET /v1/blocks`); one of them serves a block with a forged field,
which is refused before anything is stored.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import cbor2
import pytest

from tclearn.errors import ConfigError
from tclearn.identity import Identity
from tclearn.ledger.block import Block
from tclearn.ledger.store import MemoryChainStore
from tclearn.node.chain_members import allowlist_table, members_of_chain, peer_urls, removal_of
from tclearn.node.joining import catch_up_to_membership
from tclearn.sim.build import synthetic_coalition
from tclearn.transport import MemberAllowList
from tclearn.transport.client import Response

JOINER = Identity.from_seed("m9", b"joining-site")
FP = "sha256:" + "9" * 64
URL = "https://127.0.0.9:7009"


@pytest.fixture(scope="module")
def chain() -> list[Block]:
    c = synthetic_coalition(6, 3, seed=4).coalition
    assert c.run_until(2, 300)
    c.drivers["m0"].request_membership([{"id": "m9", "public_key": JOINER.public_key, "cert_fingerprint": FP,
                                         "url": URL}], ["m4"])
    assert c.run_until(c.monitor.height + 1, 800)
    blocks = c.chain("m1")
    assert any(b.kind == "membership" for b in blocks)
    return blocks


def test_members_allowlist_and_peers_follow_the_membership_block(chain: list[Block]) -> None:
    genesis = chain[0].payload["config"]
    at = next(b.index for b in chain if b.kind == "membership")
    before, after = members_of_chain(genesis, chain[:at]), members_of_chain(genesis, chain)
    assert "m9" not in before and "m4" in before
    assert "m4" not in after and after["m9"].public_key == JOINER.public_key
    assert allowlist_table(after)[FP] == "m9" and after["m9"].url == URL
    configured = {m: f"https://127.0.0.1:{7000 + i}" for i, m in enumerate(("m0", "m1", "m2", "m3", "m4", "m5"))}
    peers = peer_urls(after, configured, "m1")
    assert peers["m9"] == URL and "m4" not in peers and "m1" not in peers  # the chain's URL for the joiner
    # a removed member restarting its node is told which block removed it
    assert removal_of("m4", chain) == at and removal_of("m9", chain) is None and removal_of("m1", chain) is None


class _Serving:
    """A member serving `GET /v1/blocks` from its chain (what `NodeAPI.on_blocks` answers), possibly forged."""

    def __init__(self, blocks: list[Block], forge_at: int | None = None) -> None:
        self.blocks, self.forge_at, self.asked = blocks, forge_at, 0

    def request(self, method: str, path: str, query: Mapping[str, str] | None = None, **_: Any) -> Response:
        self.asked += 1
        start = int((query or {})["from"])
        out = []
        for b in self.blocks[start:start + 32]:
            if b.index == self.forge_at:  # the timestamp changed: the hash and the general's signature break
                b = dataclasses.replace(b, timestamp=b.timestamp + 1)
            out.append(b.to_bytes())
        return Response(200, "application/cbor", cbor2.dumps({"blocks": out}), "m0")


def test_a_joining_site_catches_up_to_its_membership_block_with_every_block_checked(chain: list[Block]) -> None:
    at = next(b.index for b in chain if b.kind == "membership")
    forger, honest = _Serving(chain, forge_at=1), _Serving(chain)
    store = MemoryChainStore()
    logged: list[tuple[str, dict[str, Any]]] = []

    def clients(allowlist: MemberAllowList, members: Mapping[str, Any]) -> dict[str, Any]:
        return {"m0": forger, "m1": honest}

    members = catch_up_to_membership(store, chain[0], "m9", JOINER.public_key, clients,
                                     lambda event, **kw: logged.append((event, kw)), wait_s=5, sleep=lambda _s: None)
    assert "m9" in members and "m4" not in members
    assert store.height() >= at and [store.get(i).block_hash for i in range(store.height() + 1)] == \
        [b.block_hash for b in chain[: store.height() + 1]]
    failed = [kw for event, kw in logged if event == "join_fetch_failed"]
    assert failed and failed[0]["peer"] == "m0"  # the forged block was refused, nothing of it stored
    assert logged[-1][0] == "joined"


def test_a_site_nobody_added_gives_up_with_a_clear_message(chain: list[Block]) -> None:
    stranger = Identity.from_seed("m7", b"stranger")
    with pytest.raises(ConfigError, match="m7 is not a member of this coalition yet.*tclearn membership add"):
        catch_up_to_membership(MemoryChainStore(), chain[0], "m7", stranger.public_key,
                               lambda a, m: {"m1": _Serving(chain)}, lambda *a, **k: None, wait_s=0.0,
                               sleep=lambda _s: None)
    with pytest.raises(ConfigError, match="another identity key"):
        catch_up_to_membership(MemoryChainStore(), chain[0], "m9", stranger.public_key,
                               lambda a, m: {"m1": _Serving(chain)}, lambda *a, **k: None, wait_s=5,
                               sleep=lambda _s: None)
