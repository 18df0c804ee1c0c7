"""The audit journal anchored in the chain (levels B and C).

Why: a supervisor (or an intruder with its key files) can roll the journal
back together with its signed head, or rewrite it and sign it again; the
result verifies on its own. The chain stops that. At levels B/C genesis
records the supervisor's public key (`supervisor_key`), and every proposal
carries the journal head its proposer saw right after publishing its
candidate in the vault (`Proposal.vault_head`, ``SEQ:HASH``), signed by the
proposer and certified with its block. So the journal must

- verify under the key genesis names (not just the key file beside it), and
- still hold, at each anchored sequence number, the entry with the anchored hash.

`verify_journal_against_chain` checks both; `tclearn audit verify DIR --chain
chain.db` runs it on a verified chain. A failing anchor is reported with the
block and the proposer that recorded it: a proposer can sign a head that
never existed (nobody checks it when the block is made), so one member's
anchors failing while later anchors of others hold points at that member,
not at the journal.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from tclearn.ledger.block import Block
from tclearn.ledger.records import Proposal
from tclearn.vault.errors import IntegrityError, VaultError
from tclearn.vault.journal import Entry, check_anchors, verify_journal

__all__ = ["AnchorCheck", "chain_anchors", "genesis_supervisor_key", "verify_journal_against_chain"]


@dataclass(frozen=True)
class AnchorCheck:
    """What the chain vouched for: the journal's entries and the anchors found in it."""

    entries: list[Entry]
    anchors: list[str]
    last_anchor_seq: int | None


def chain_anchors(blocks: Iterable[Block]) -> list[str]:
    """The journal heads (SEQ:HASH) recorded by the chain's proposals, in chain order, each once."""
    return list(_anchor_sources(blocks))


def _anchor_sources(blocks: Iterable[Block]) -> dict[str, tuple[int, str]]:
    """Each anchor -> (index of the first block recording it, its proposer)."""
    seen: dict[str, tuple[int, str]] = {}
    for block in blocks:
        if block.kind in ("increment", "rejected"):
            p = Proposal.from_dict(block.payload["proposal"])
            if p.vault_head:
                seen.setdefault(p.vault_head, (block.index, p.proposer))
    return seen


def genesis_supervisor_key(genesis: Block) -> bytes | None:
    """The supervisor's Ed25519 public key recorded by genesis, or None (level A, or a chain without it)."""
    if genesis.kind != "genesis":
        raise VaultError("the chain's first block is not a genesis block")
    config = genesis.payload.get("config")
    key = config.get("supervisor_key") if isinstance(config, dict) else None
    return None if key is None else bytes(key)


def verify_journal_against_chain(journal_path: Path, blocks: list[Block],
                                 supervisor_pub: bytes | None = None) -> AnchorCheck:
    """Verify the journal under genesis's supervisor key and against every anchor the chain holds.

    `blocks`: a verified chain. `supervisor_pub` (the key file beside the
    journal, if any) must be genesis's key. IntegrityError on any mismatch.
    """
    if not blocks:
        raise VaultError("the chain is empty")
    key = genesis_supervisor_key(blocks[0])
    if key is None:
        raise VaultError("genesis records no supervisor key (a level-A chain, or one made before anchoring)")
    if supervisor_pub is not None and supervisor_pub != key:
        raise IntegrityError("the vault's supervisor key is not the one genesis records")
    entries = verify_journal(journal_path, key)
    sources = _anchor_sources(blocks)
    for anchor, (index, proposer) in sources.items():
        try:
            check_anchors(entries, [anchor])
        except IntegrityError as exc:
            raise IntegrityError(f"{exc} (the head {anchor[:24]}… recorded by {proposer}'s proposal in block "
                                 f"{index})") from None
    anchors = list(sources)
    last = max((int(a.partition(":")[0]) for a in anchors), default=None)
    return AnchorCheck(entries, anchors, last)
