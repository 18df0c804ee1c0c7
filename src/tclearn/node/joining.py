"""A site joining a running coalition: it catches up from the members until a membership block lists it.

Why: a new site has genesis, its own keys and certificate, and the members'
URLs — but genesis does not list it, so its protocol core cannot start (a
core only runs for a member of its chain). The founder adds it with
`tclearn membership add --id … --identity-pub … --tls-cert … --url …`; once
that block is committed, every member's allow-list admits the site's
certificate (`tclearn.node.chain_members`). The joining node then asks the
members for blocks (`GET /v1/blocks?from=i`, mutual TLS: it checks each
server against the certificates the chain records, as they check it), and
verifies every block — hashes, links, signatures and the committee's
certificate (`consensus.certificate`) — before it appends it, until its own
id and key appear. From there the node starts like any member; the protocol's
own catch-up brings it to the head.

Bounds: each answer is at most `BLOCKS_ANSWER_MAX_BYTES` within
`JOIN_FETCH_DEADLINE_S`; the whole wait is `join_wait_s` (the founder may add
the site after it was started); then a clear `ConfigError`.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Mapping

from tclearn.consensus.certificate import make_certificate_check
from tclearn.consensus.verifier import SignatureVerifier
from tclearn.errors import ConfigError, InvalidBlockError
from tclearn.ledger.block import Block
from tclearn.ledger.state import ChainState
from tclearn.ledger.store import ChainStore
from tclearn.ledger.verify import verify_block
from tclearn.node.chain_members import ChainMember, allowlist_table, apply_membership, genesis_members
from tclearn.transport import MemberAllowList, PeerClient

__all__ = ["BLOCKS_ANSWER_MAX_BYTES", "JOIN_FETCH_DEADLINE_S", "JOIN_WAIT_S", "catch_up_to_membership"]

BLOCKS_ANSWER_MAX_BYTES = 32 * 1024 * 1024  # GET /v1/blocks answers at most 32 blocks
JOIN_FETCH_DEADLINE_S = 10.0
JOIN_WAIT_S = 300.0
JOIN_RETRY_S = 1.0


def _chain_state(store: ChainStore, genesis: Block, check: Any) -> ChainState:
    """The state after the blocks already stored (verified again: they may be from an earlier, broken try)."""
    if store.height() < 0:
        store.append(genesis)
    first = store.get(0)
    if first.block_hash != genesis.block_hash:
        raise ConfigError("the chain in data_dir starts with another genesis than node.genesis")
    state = ChainState.from_genesis(genesis)
    for i in range(1, store.height() + 1):
        state = verify_block(state, store.get(i), check)
    return state


def catch_up_to_membership(store: ChainStore, genesis: Block, me: str, public_key: bytes,
                           clients_for: Callable[[MemberAllowList, Mapping[str, ChainMember]], dict[str, PeerClient]],
                           log: Callable[..., None], wait_s: float = JOIN_WAIT_S,
                           sleep: Callable[[float], None] = time.sleep) -> dict[str, ChainMember]:
    """Fetch, verify and append blocks until one lists `me` with `public_key`; the members then.

    `clients_for(allowlist, members)` makes a client per member URL, checking
    servers against `allowlist` (kept up to date here as blocks arrive).
    """
    check = make_certificate_check(SignatureVerifier())
    state = _chain_state(store, genesis, check)
    members = genesis_members(genesis.payload["config"])
    for i in range(1, store.height() + 1):
        members = apply_membership(members, store.get(i))
    allowlist = MemberAllowList(allowlist_table(members))
    deadline = time.monotonic() + wait_s
    log("join_catch_up", height=state.height, listed=me in members)
    while me not in members:
        clients = clients_for(allowlist, members)
        progressed = False
        for peer, client in sorted(clients.items()):
            try:
                response = client.request("GET", "/v1/blocks", query={"from": str(state.height + 1)},
                                          max_bytes=BLOCKS_ANSWER_MAX_BYTES, deadline_s=JOIN_FETCH_DEADLINE_S)
                if response.status != 200:
                    log("join_fetch_refused", peer=peer, status=response.status)
                    continue
                raw = response.cbor()
                blocks = raw.get("blocks") if isinstance(raw, dict) else None
                if not isinstance(blocks, list):
                    raise InvalidBlockError(state.height + 1, "the answer holds no block list")
                for data in blocks:
                    block = Block.from_bytes(data)
                    state = verify_block(state, block, check)  # certificate included, before it is kept
                    store.append(block)
                    members = apply_membership(members, block)
                    progressed = True
                allowlist.replace(allowlist_table(members))
            except Exception as exc:  # a peer that is down, refuses us (not added yet) or sends a bad block
                log("join_fetch_failed", peer=peer, reason=str(exc)[:200])
                continue
            if me in members:
                break
        if me in members:
            break
        if time.monotonic() >= deadline:
            raise ConfigError(f"{me} is not a member of this coalition yet (the members' chain reaches block "
                              f"{state.height}): ask its founder to add it with `tclearn membership add --id {me} "
                              f"--identity-pub … --tls-cert … --url …`, then start this node again")
        if not progressed:
            sleep(JOIN_RETRY_S)
    if members[me].public_key != public_key:
        raise ConfigError(f"the membership block that adds {me} records another identity key than this node's")
    log("joined", height=state.height, members=sorted(members))
    return members
