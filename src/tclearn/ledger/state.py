"""The coalition's state as derived from the chain alone.

Every node folds the same blocks through `ChainState.apply` and so gets the
same members, strengths, head model and rules. Strengths are exact: S_i is
kept as the fraction (D + N·D_i) / (N·D) and only turned into a float at the
edge, so the committee draw can use exact integer weights.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any, Mapping

from tclearn.errors import InvalidBlockError
from tclearn.ledger.block import Block
from tclearn.ledger.genesis import GenesisConfig

__all__ = ["ChainState"]


@dataclass(frozen=True)
class ChainState:
    config: GenesisConfig
    height: int  # index of the last applied block
    head_hash: str
    head_model_hash: str
    head_timestamp: int
    members: dict[str, bytes]  # id -> Ed25519 public key, in join order
    contributions: dict[str, int] = field(default_factory=dict)  # D_i
    hyperparams: dict[str, Any] = field(default_factory=dict)
    model_by_index: tuple[str, ...] = ()  # model hash after each block

    @classmethod
    def from_genesis(cls, genesis: Block) -> "ChainState":
        if genesis.kind != "genesis" or genesis.index != 0:
            raise InvalidBlockError(genesis.index, "the first block must be a genesis block")
        cfg = GenesisConfig.from_payload(genesis.payload.get("config", {}))
        members = {m.member_id: m.public_key for m in cfg.members}
        return cls(
            config=cfg,
            height=0,
            head_hash=genesis.block_hash,
            head_model_hash=genesis.model_hash,
            head_timestamp=genesis.timestamp,
            members=members,
            contributions={m: 0 for m in members},
            hyperparams=dict(cfg.hyperparams),
            model_by_index=(genesis.model_hash,),
        )

    # --- strengths -------------------------------------------------------
    def exact_strengths(self) -> dict[str, Fraction]:
        """S_i = 1/N + D_i/D (D = 0 gives 1/N each)."""
        n = len(self.members)
        total = sum(self.contributions.get(m, 0) for m in self.members)
        out = {}
        for m in self.members:
            d_i = self.contributions.get(m, 0)
            out[m] = Fraction(1, n) + (Fraction(d_i, total) if total else Fraction(0))
        return out

    def strengths(self) -> dict[str, float]:
        return {m: float(s) for m, s in self.exact_strengths().items()}

    def integer_weights(self) -> dict[str, int]:
        """Strengths scaled to integers with the same ratios: D + N·D_i (or 1 each)."""
        n = len(self.members)
        total = sum(self.contributions.get(m, 0) for m in self.members)
        if total == 0:
            return {m: 1 for m in self.members}
        return {m: total + n * self.contributions.get(m, 0) for m in self.members}

    # --- folding ---------------------------------------------------------
    def apply(self, block: Block) -> "ChainState":
        """The state after `block` (assumed verified)."""
        contributions = dict(self.contributions)
        members = dict(self.members)
        hyper = dict(self.hyperparams)
        if block.kind == "increment" and block.contributor is not None:
            count = int(block.payload.get("proposal", {}).get("sample_count", 0))
            contributions[block.contributor] = contributions.get(block.contributor, 0) + count
        elif block.kind == "hyperparams":
            hyper.update(block.payload.get("hyperparams", {}))
        elif block.kind == "membership":
            for m in block.payload.get("add", []):
                members[m["id"]] = bytes(m["public_key"])
                contributions.setdefault(m["id"], 0)
            for mid in block.payload.get("remove", []):
                members.pop(mid, None)
        return replace(
            self,
            height=block.index,
            head_hash=block.block_hash,
            head_model_hash=block.model_hash,
            head_timestamp=block.timestamp,
            members=members,
            contributions=contributions,
            hyperparams=hyper,
            model_by_index=self.model_by_index + (block.model_hash,),
        )

    def public_key(self, member: str) -> bytes | None:
        return self.members.get(member)

    def summary(self) -> Mapping[str, Any]:
        return {"height": self.height, "head": self.head_hash, "model": self.head_model_hash}
