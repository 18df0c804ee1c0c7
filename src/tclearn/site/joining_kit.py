"""`tclearn site kit ENTRY --node NODE_TOML --out KIT`: a kit for a new member of a running coalition.

Why: `tclearn init` writes kits only for the members genesis lists. A site
that joins later needs the same kit — genesis, the CA certificate, its own
certificate, G, and whom to talk to — but the members it must reach are the
chain's *current* members, which only a running node knows. The operator runs
this next to one of its own nodes: the node's chain is read (read-only) and
verified (hashes, signatures, each block's committee certificate), its members
are folded from genesis and the membership blocks (`node.chain_members`), and
their certificate fingerprints and URLs go into the kit's node.toml and
members.toml. The new member comes from the entry `tclearn pki sign` wrote
(PKI/members/<id>.toml: id, Ed25519 public key, certificate, URL); its
certificate must be issued by the node's CA and name it.

The kit is marked as a joining kit by `joining.toml` (the member's id, key,
fingerprint and the chain's height and head when the kit was made):
`tclearn site join` then accepts a kit whose genesis does not list the site,
and the node it configures waits for the membership block that adds it
(`node.joining`). Refused in one line, nothing written: a member the chain
already holds, a certificate the chain already records (validators refuse it
too: `consensus.governance`), an OUT that exists.
"""

from __future__ import annotations

import json
import os
import shutil
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Mapping

from tclearn.consensus.certificate import check_certificate
from tclearn.data.content_hash import data_hash
from tclearn.errors import ConfigError, StoreError
from tclearn.ledger.block import Block
from tclearn.ledger.genesis import GenesisConfig
from tclearn.ledger.sqlite_store import SQLiteChainStore
from tclearn.ledger.state import ChainState
from tclearn.ledger.verify import verify_chain
from tclearn.node.chain_members import ChainMember, members_of_chain
from tclearn.node.config import NodeConfig, PeerInfo
from tclearn.node.data_spec import DataSpec
from tclearn.node.layout import NodeLayout
from tclearn.pki.certs import cert_fingerprint, verify_member_cert
from tclearn.pki.errors import PKIError
from tclearn.pki.requests import check_url

__all__ = ["JOINING_FILE", "JoiningMark", "NewMember", "read_entry", "read_joining_mark", "write_joining_kit"]

JOINING_FILE = "joining.toml"
GENESIS_FILE = "genesis.block"


@dataclass(frozen=True)
class NewMember:
    """The member a joining kit is for, as `tclearn pki sign` recorded it."""

    member_id: str
    public_key: bytes
    certificate: Path
    url: str


@dataclass(frozen=True)
class JoiningMark:
    """What joining.toml records: who the kit is for, and the chain it was made from."""

    member_id: str
    public_key: bytes
    fingerprint: str
    chain_height: int
    chain_head: str


def read_entry(path: Path) -> NewMember:
    """The [[members]] entry `tclearn pki sign` wrote (PKI/members/<id>.toml)."""
    try:
        data = tomllib.loads(Path(path).read_text())
        entry = data["members"][0] if isinstance(data.get("members"), list) else data
        member = NewMember(str(entry["id"]), bytes.fromhex(str(entry["public_key"])),
                           Path(path).parent / str(entry["certificate"]), str(entry["url"]))
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, KeyError, IndexError, TypeError, ValueError) as exc:
        raise ConfigError(f"{path} is not a member entry from `tclearn pki sign` (id, public_key, certificate, "
                          f"url): {exc}") from None
    if len(member.public_key) != 32:
        raise ConfigError(f"{path}: public_key is 32 bytes (Ed25519), in hex")
    return member


def read_joining_mark(kit_dir: Path) -> JoiningMark | None:
    """The kit's joining.toml (None for a kit `tclearn init` wrote)."""
    path = Path(kit_dir) / JOINING_FILE
    if not path.exists():
        return None
    try:
        d = tomllib.loads(path.read_text())
        return JoiningMark(str(d["member_id"]), bytes.fromhex(str(d["public_key"])), str(d["fingerprint"]),
                           int(d["chain_height"]), str(d["chain_head"]))
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{path} is not a joining mark: {exc}") from None


def verified_chain(node: NodeConfig) -> tuple[list[Block], ChainState]:
    """The node's chain, read-only, verified from its genesis (certificates included), and its state."""
    try:
        genesis = Block.from_bytes(Path(node.genesis).read_bytes())
    except OSError as exc:
        raise ConfigError(f"the node's genesis {node.genesis}: {exc.strerror or exc}") from None
    path = NodeLayout(node.data_dir).chain
    if not path.exists():
        raise StoreError(f"{path}: the node {node.member_id} has no chain (run this beside a node that has started)")
    with SQLiteChainStore(path, create=False, read_only=True) as store:
        blocks = list(store)
    if not blocks or blocks[0].block_hash != genesis.block_hash:
        raise ConfigError(f"the chain in {path} does not start with the node's genesis {node.genesis}")
    return blocks, verify_chain(blocks, certificate_check=check_certificate, genesis_hash=genesis.block_hash)


def _current_peers(node: NodeConfig, members: Mapping[str, ChainMember]) -> list[PeerInfo]:
    """Each current member with the URL the chain records, else the operator's node's own, else its peers'."""
    configured = {p.member_id: p.url for p in node.peers}
    configured[node.member_id] = node.url
    peers = []
    for mid, m in members.items():
        url = m.url or configured.get(mid, "")
        if url and m.fingerprint:
            peers.append(PeerInfo(mid, url, m.fingerprint))
    if not peers:
        raise ConfigError("no current member has both a URL and a certificate fingerprint: the new member could "
                          "reach nobody")
    return peers


def _mark_toml(mark: JoiningMark) -> str:
    return ("# A joining kit: genesis does not list this member; its node waits for the membership block\n"
            "# that adds it (`tclearn membership add`), then catches up. Made from the chain at:\n"
            f"member_id = {json.dumps(mark.member_id)}\npublic_key = {json.dumps(mark.public_key.hex())}\n"
            f"fingerprint = {json.dumps(mark.fingerprint)}\nchain_height = {mark.chain_height}\n"
            f"chain_head = {json.dumps(mark.chain_head)}\n")


def _members_toml(coalition: str, head: str, peers: list[PeerInfo], keys: Mapping[str, bytes]) -> str:
    lines = [f"# The current members of coalition {coalition} (chain head {head}), and the new member last"]
    for p in peers:
        lines += ["", "[[members]]", f"id = {json.dumps(p.member_id)}", f"url = {json.dumps(p.url)}",
                  f"fingerprint = {json.dumps(p.fingerprint)}", f"public_key = {json.dumps(keys[p.member_id].hex())}"]
    return "\n".join(lines) + "\n"


def write_joining_kit(entry_path: Path, node_toml: Path, out: Path, tick_ms: int | None = None) -> JoiningMark:
    """Check the new member against the node's verified chain and CA, then write OUT (nothing on failure)."""
    out = Path(out)
    if out.exists():
        raise StoreError(f"{out} already exists: refusing to overwrite it")
    member = read_entry(entry_path)
    node = NodeConfig.load(node_toml)
    blocks, state = verified_chain(node)
    members = members_of_chain(blocks[0].payload["config"], blocks)
    if member.member_id in members:
        raise ConfigError(f"{member.member_id!r} is already a member of the chain (block {state.height}): a joining "
                          f"kit is for a new member")
    try:
        cert, ca = member.certificate.read_bytes(), Path(node.ca_cert).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{exc.filename}: {exc.strerror or exc}") from None
    try:
        named = verify_member_cert(cert, ca, datetime.now(UTC))
        host, port = check_url(member.url)
    except PKIError as exc:
        raise ConfigError(f"the certificate of {member.member_id} ({member.certificate}): {exc}") from None
    if named != member.member_id:
        raise ConfigError(f"certificate {member.certificate} names {named!r}, not {member.member_id!r}")
    fingerprint = cert_fingerprint(cert)
    if fingerprint in state.fingerprints:
        raise ConfigError(f"the certificate of {member.member_id} ({fingerprint}) is one the chain already records "
                          f"for another member")
    config = GenesisConfig.from_payload(blocks[0].payload["config"])
    test = node.test_set
    if test.path is not None and data_hash(Path(test.path)) != config.test_set_hash:
        raise ConfigError(f"the node's G {test.path} does not hash to genesis's test_set_hash")
    peers = [*_current_peers(node, members), PeerInfo(member.member_id, member.url, fingerprint)]
    keys = {**{mid: m.public_key for mid, m in members.items()}, member.member_id: member.public_key}
    kit_test = test if test.path is None else DataSpec(test.kind, Path("test_set") / Path(test.path).name)
    kit_node = NodeConfig(
        member_id=member.member_id, data_dir=Path("../state"), identity_key=Path(f"../identity/{member.member_id}.key"),
        tls_cert=Path(f"{member.member_id}.crt"), tls_key=Path(f"../tls/{member.member_id}.key"), ca_cert=Path("ca.crt"),
        genesis=Path(GENESIS_FILE), port=port, fingerprint=fingerprint, host=host, task=config.task,
        seed=config.model_seed, index=len(members), partners=len(members) + 1,
        tick_ms=node.tick_ms if tick_ms is None else tick_ms, proposal_timeout_ticks=node.proposal_timeout_ticks,
        peers=tuple(peers), test_set=kit_test)
    mark = JoiningMark(member.member_id, member.public_key, fingerprint, state.height, state.head_hash)
    tmp = out.parent / f".{out.name}.{os.getpid()}.tmp"
    try:
        (tmp / "test_set").mkdir(parents=True)
        (tmp / GENESIS_FILE).write_bytes(blocks[0].to_bytes())
        (tmp / "ca.crt").write_bytes(ca)
        (tmp / f"{member.member_id}.crt").write_bytes(cert)
        if test.path is not None:
            src = Path(test.path)
            if src.is_dir():
                shutil.copytree(src, tmp / "test_set" / src.name)
            else:
                shutil.copyfile(src, tmp / "test_set" / src.name)
        (tmp / "members.toml").write_text(_members_toml(config.coalition_id, state.head_hash, peers, keys))
        (tmp / JOINING_FILE).write_text(_mark_toml(mark))
        (tmp / "node.toml").write_text(
            "# A NEW member's node settings (a joining kit), from the coalition's operator. Put this folder in\n"
            "# the site's folder as kit/, then run `tclearn site join kit --dir SITE --data PATH --data-kind KIND`.\n"
            + kit_node.to_toml())
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return mark

