"""The coalition's state as derived from the chain alone.

Every node folds the same blocks through `ChainState.apply` and so gets the
same members, strengths, head model and rules. Strengths are exact: S_i is
kept as the fraction (D + N·D_i) / (N·D) and only turned into a float at the
edge, so the committee draw can use exact integer weights.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Iterable, Iterator, Mapping, Sequence, overload

from tclearn.errors import InvalidBlockError
from tclearn.ledger.block import Block
from tclearn.ledger.genesis import GenesisConfig

__all__ = ["ChainState", "ModelHistory"]


class ModelHistory(Sequence[str]):
    """The model hash after each block: an immutable sequence that grows in O(1).

    Successive states share one list and each sees its own prefix, so folding
    n blocks costs O(n), not the O(n²) of copying a tuple per block. Extending
    a state that is not the newest (a fork) copies its prefix first. Compares
    equal to the tuple of the same hashes.
    """

    __slots__ = ("_items", "_length")

    def __init__(self, items: Iterable[str] = ()) -> None:
        self._items = list(items)
        self._length = len(self._items)

    def appended(self, model_hash: str) -> "ModelHistory":
        if self._length == len(self._items):
            items = self._items
            items.append(model_hash)
        else:
            items = self._items[: self._length] + [model_hash]
        new = ModelHistory.__new__(ModelHistory)
        new._items = items
        new._length = self._length + 1
        return new

    def __len__(self) -> int:
        return self._length

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[str, ...]: ...

    def __getitem__(self, index: int | slice) -> str | tuple[str, ...]:
        if isinstance(index, slice):
            return tuple(self._items[: self._length][index])
        i = index + self._length if index < 0 else index
        if not 0 <= i < self._length:
            raise IndexError("model history index out of range")
        return self._items[i]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items[: self._length])

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (ModelHistory, tuple)):
            return len(self) == len(other) and tuple(self) == tuple(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __add__(self, other: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(self) + tuple(other)

    def __repr__(self) -> str:
        return f"ModelHistory({tuple(self)!r})"


def _appended(history: Sequence[str], model_hash: str) -> ModelHistory:
    if isinstance(history, ModelHistory):
        return history.appended(model_hash)
    return ModelHistory((*history, model_hash))


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
    model_by_index: Sequence[str] = ()  # model hash after each block (a ModelHistory)
    kind_by_index: Sequence[str] = ()  # kind of each block (a ModelHistory of kinds): a revert may not target a rejected one
    # every certificate fingerprint genesis or a membership block recorded (removed members' too): a joining
    # site may not reuse one; derived from the blocks, never stored or hashed
    fingerprints: frozenset[str] = frozenset()

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
            model_by_index=ModelHistory((genesis.model_hash,)),
            kind_by_index=ModelHistory((genesis.kind,)),
            fingerprints=frozenset(m.cert_fingerprint for m in cfg.members if m.cert_fingerprint),
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
        """The floats of `exact_strengths`, computed without Fractions.

        S_i = (D + N·D_i) / (N·D); Python's int / int is correctly rounded, so
        this is exactly float(exact_strengths()[i]) at a fraction of the cost
        (every block's check recomputes it).
        """
        n = len(self.members)
        contributions = self.contributions
        total = sum(contributions.get(m, 0) for m in self.members)
        if total == 0:
            return {m: 1 / n for m in self.members}
        denominator = n * total
        return {m: (total + n * contributions.get(m, 0)) / denominator for m in self.members}

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
        fingerprints = self.fingerprints
        if block.kind == "increment" and block.contributor is not None:
            count = int(block.payload.get("proposal", {}).get("sample_count", 0))
            contributions[block.contributor] = contributions.get(block.contributor, 0) + count
        elif block.kind == "hyperparams":
            hyper.update(block.payload.get("hyperparams", {}))
        elif block.kind == "membership":
            for m in block.payload.get("add", []):
                members[m["id"]] = bytes(m["public_key"])
                contributions.setdefault(m["id"], 0)
            recorded = {str(m["cert_fingerprint"]) for m in block.payload.get("add", []) if m.get("cert_fingerprint")}
            if recorded:
                fingerprints = fingerprints | recorded
            for mid in block.payload.get("remove", []):
                members.pop(mid, None)
        return type(self)(  # not dataclasses.replace, which is slow: this runs once per block
            config=self.config,
            height=block.index,
            head_hash=block.block_hash,
            head_model_hash=block.model_hash,
            head_timestamp=block.timestamp,
            members=members,
            contributions=contributions,
            hyperparams=hyper,
            model_by_index=_appended(self.model_by_index, block.model_hash),
            kind_by_index=_appended(self.kind_by_index, block.kind),
            fingerprints=fingerprints,
        )

    def public_key(self, member: str) -> bytes | None:
        return self.members.get(member)

    def summary(self) -> Mapping[str, Any]:
        return {"height": self.height, "head": self.head_hash, "model": self.head_model_hash}
