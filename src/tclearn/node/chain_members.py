"""The coalition's current members as the chain says: keys, certificate fingerprints and URLs.

Why: a membership block brings a site into a running coalition, or takes one
out, without anyone restarting. Every node folds the chain into the members
it talks to: genesis lists the founding members (key and certificate
fingerprint; their URLs come from the node's config), and each committed
`membership` block adds members — a joining site's addition carries its
certificate's SHA-256 fingerprint and its URL (`consensus.governance`) — or
removes them. From that one mapping a node builds its TLS allow-list (who may
connect, and whom it accepts as a server) and its peer set (whom it sends to).
A removed member drops out of both, so its connections are refused.

Pure: genesis payload and blocks in, members out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from tclearn.ledger.block import Block

__all__ = ["ChainMember", "genesis_members", "apply_membership", "members_of_chain", "allowlist_table",
           "peer_urls", "removal_of"]


@dataclass(frozen=True)
class ChainMember:
    """One current member: id, Ed25519 key, certificate fingerprint ("" if none recorded), URL ("" if none)."""

    member_id: str
    public_key: bytes
    fingerprint: str = ""
    url: str = ""


def genesis_members(config_payload: Mapping[str, Any]) -> dict[str, ChainMember]:
    """The founding members genesis lists (its `config` payload)."""
    return {str(m["id"]): ChainMember(str(m["id"]), bytes(m["public_key"]), str(m.get("cert_fingerprint", "") or ""))
            for m in config_payload["members"]}


def apply_membership(members: Mapping[str, ChainMember], block: Block) -> dict[str, ChainMember]:
    """The members after `block` (a verified block: only `membership` blocks change them)."""
    out = dict(members)
    if block.kind != "membership":
        return out
    for m in block.payload.get("add", []):
        mid = str(m["id"])
        out[mid] = ChainMember(mid, bytes(m["public_key"]), str(m.get("cert_fingerprint", "") or ""),
                               str(m.get("url", "") or ""))
    for mid in block.payload.get("remove", []):
        out.pop(str(mid), None)
    return out


def members_of_chain(config_payload: Mapping[str, Any], blocks: Iterable[Block]) -> dict[str, ChainMember]:
    """The members after every block of `blocks` (genesis first or not: a genesis block changes nothing)."""
    members = genesis_members(config_payload)
    for block in blocks:
        members = apply_membership(members, block)
    return members


def allowlist_table(members: Mapping[str, ChainMember]) -> dict[str, str]:
    """fingerprint -> member id for `tclearn.transport.MemberAllowList` (members without a fingerprint left out)."""
    return {m.fingerprint: m.member_id for m in members.values() if m.fingerprint}


def peer_urls(members: Mapping[str, ChainMember], configured: Mapping[str, str], me: str) -> dict[str, str]:
    """Whom to send to: every current member but `me`, at its configured URL, else the URL the chain records."""
    return {m: configured.get(m) or c.url for m, c in members.items()
            if m != me and (configured.get(m) or c.url)}


def removal_of(member: str, blocks: Iterable[Block]) -> int | None:
    """Index of the last membership block that removed `member` (None if none did, or it was added again after)."""
    removed = None
    for block in blocks:
        if block.kind != "membership":
            continue
        if member in [str(m) for m in block.payload.get("remove", [])]:
            removed = block.index
        elif any(isinstance(m, Mapping) and m.get("id") == member for m in block.payload.get("add", [])):
            removed = None
    return removed
