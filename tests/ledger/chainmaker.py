"""Build valid signed chains for tests and benchmarks.

A `ChainMaker` plays a whole coalition: it holds every member's identity
(deterministic, from `Identity.from_seed`), builds each kind of block the way
the protocol would (a signed proposal and quality votes for increments and
rejected candidates, a signed request for reverts, a ≥ 2/3 certificate of
block votes for every block but genesis), checks it with `verify_block`, and
keeps the chain and its state. Timestamps come from a counter, never the clock,
and every random choice from the `random.Random` handed in, so a seed rebuilds
the same chain byte for byte.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from typing import Any

from tclearn.identity import Identity
from tclearn.ledger import Block, ChainState, GenesisConfig, MemberInfo, Proposal, QualityVote, build_genesis
from tclearn.ledger.verify import revert_request_bytes, verify_block, verify_chain

__all__ = ["ChainMaker", "random_chain", "fake_hash", "KIND_CHOICES"]

KIND_CHOICES = ("increment", "rejected", "hyperparams", "membership", "revert")
T0_MS = 1_700_000_000_000


def fake_hash(*parts: object) -> str:
    """A deterministic 64-hex digest standing for a model, increment or data-id root."""
    return hashlib.sha256(repr(parts).encode()).hexdigest()


@dataclass
class ChainMaker:
    """A coalition that builds valid blocks on its own chain."""

    n_members: int = 4
    committee_size: int = 3
    key_seed: bytes = b"chainmaker"
    lam: float = 0.9
    t0_ms: int = T0_MS
    step_ms: int = 1000
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    identities: dict[str, Identity] = field(default_factory=dict)
    blocks: list[Block] = field(default_factory=list)
    state: ChainState | None = None
    _joined: int = 0

    def __post_init__(self) -> None:
        for i in range(self.n_members):
            self._new_identity()
        members = tuple(MemberInfo(m, ident.public_key) for m, ident in self.identities.items())
        self.config = GenesisConfig(
            coalition_id="test-coalition", level="A", members=members, task="digits", architecture="cnn",
            model_config={"channels": 8}, model_seed=7,
            hyperparams={"learning_rate": 0.01, "optimizer": "sgd", "epochs": 1, "min_batch_size": 16},
            lam=self.lam, committee_size=self.committee_size, test_set_hash=fake_hash("G"),
            revert_authorized=(members[0].member_id, members[1].member_id),
        )

    # --- members -----------------------------------------------------------
    def _new_identity(self) -> Identity:
        member_id = f"m{self._joined}"
        self._joined += 1
        ident = Identity.from_seed(member_id, self.key_seed)
        self.identities[member_id] = ident
        return ident

    def _members(self) -> list[str]:
        assert self.state is not None
        return list(self.state.members)

    def _committee(self, exclude: str | None = None) -> list[str]:
        pool = [m for m in self._members() if m != exclude]
        return self.rng.sample(pool, min(self.committee_size, len(pool)))

    # --- blocks ------------------------------------------------------------
    @property
    def head(self) -> Block:
        return self.blocks[-1]

    def _next_timestamp(self) -> int:
        return self.t0_ms + len(self.blocks) * self.step_ms

    def adopt(self, blocks: list[Block]) -> None:
        """Continue the chain `blocks` (built by a maker with the same seed and members), after checking it."""
        assert not self.blocks, "adopt into a fresh maker"
        self.state = verify_chain(blocks)
        self.blocks = list(blocks)

    def genesis(self) -> Block:
        assert not self.blocks, "genesis comes first"
        founder = self.identities[self.config.founder_id]
        block = build_genesis(self.config, fake_hash("model", 0), founder, self.t0_ms)
        self.state = verify_chain([block])
        self.blocks.append(block)
        return block

    def _seal(self, kind: str, committee: list[str], *, model_hash: str, contributor: str | None = None,
              data_ids_root: str | None = None, quality_votes: tuple[QualityVote, ...] = (),
              payload: dict[str, Any] | None = None) -> Block:
        """The general (drawn from the committee) signs; ≥ 2/3 of the committee votes; verify and keep."""
        assert self.state is not None
        general = self.rng.choice(committee)
        block = Block(
            index=self.state.height + 1, timestamp=self._next_timestamp(), kind=kind,
            prev_hash=self.state.head_hash, model_hash=model_hash, contributor=contributor,
            strengths=self.state.strengths(), data_ids_root=data_ids_root or self.head.data_ids_root,
            quality_votes=quality_votes, block_votes=(), general=general, payload=payload or {},
        ).signed_by(self.identities[general])
        quorum = -(-2 * len(committee) // 3)  # ceil(2k/3)
        voters = self.rng.sample(committee, self.rng.randint(quorum, len(committee)))
        block = block.with_votes([block.vote(self.identities[v]) for v in voters])
        self.state = verify_block(self.state, block)
        self.blocks.append(block)
        return block

    def candidate(self, accept: bool, proposer: str | None = None, sample_count: int | None = None) -> Block:
        """An `increment` (accept) or `rejected` block with a signed proposal and quality votes."""
        assert self.state is not None
        proposer = proposer or self.rng.choice(self._members())
        index = self.state.height + 1
        proposal = Proposal(
            proposer=proposer, height=index, prev_hash=self.state.head_hash,
            parent_model_hash=self.state.head_model_hash, model_hash=fake_hash("model", index),
            increment_hash=fake_hash("increment", index),
            sample_count=sample_count or self.rng.randint(16, 512),
            data_ids_root=fake_hash("data", index),
        ).signed_by(self.identities[proposer])
        committee = self._committee(exclude=proposer)
        votes = []
        for v in sorted(committee):
            g_old = round(self.rng.uniform(0.5, 0.9), 6)
            g_new = g_old + (0.01 if accept else -0.2)
            votes.append(QualityVote(
                validator=v, height=index, proposal_hash=proposal.proposal_hash, model_hash=proposal.model_hash,
                accept=accept, scores={"g_old": g_old, "g_new": g_new, "n": 100},
            ).signed_by(self.identities[v]))
        return self._seal(
            "increment" if accept else "rejected", committee,
            model_hash=proposal.model_hash if accept else self.state.head_model_hash,
            contributor=proposer, data_ids_root=proposal.data_ids_root, quality_votes=tuple(votes),
            payload={"proposal": proposal.to_dict()},
        )

    def hyperparams(self, **changes: Any) -> Block:
        assert self.state is not None
        changes = changes or {"learning_rate": round(self.rng.uniform(1e-4, 0.1), 6)}
        return self._seal("hyperparams", self._committee(), model_hash=self.state.head_model_hash,
                          payload={"hyperparams": changes})

    def membership(self, add: int = 1, remove: tuple[str, ...] = ()) -> Block:
        assert self.state is not None
        added = [self._new_identity() for _ in range(add)]
        committee = self._committee()
        return self._seal(
            "membership", committee, model_hash=self.state.head_model_hash,
            payload={"add": [{"id": a.member_id, "public_key": a.public_key} for a in added],
                     "remove": list(remove)},
        )

    def revert(self, target: int | None = None, requester: str | None = None) -> Block:
        assert self.state is not None
        index = self.state.height + 1
        target = self.rng.randrange(index) if target is None else target
        authorised = [m for m in self.state.config.revert_authorized if m in self.state.members]
        requester = requester or self.rng.choice(authorised)
        signature = self.identities[requester].sign(revert_request_bytes(requester, target, index))
        return self._seal(
            "revert", self._committee(), model_hash=self.state.model_by_index[target],
            payload={"target": target, "requester": requester, "request_signature": signature},
        )

    def random_block(self) -> Block:
        """One block of a kind drawn from `rng` (membership keeps ≥ committee + 2 members)."""
        assert self.state is not None
        kind = self.rng.choice(KIND_CHOICES)
        if kind in ("increment", "rejected"):
            return self.candidate(accept=kind == "increment")
        if kind == "hyperparams":
            return self.hyperparams()
        if kind == "membership":
            # The coalition stays between n_members and n_members + 2 (and above committee_size + 1).
            removable = [m for m in self._members() if m not in self.state.config.revert_authorized]
            size = len(self._members())
            floor = max(self.n_members, self.committee_size + 2)
            remove: tuple[str, ...] = ()
            if removable and (size >= floor + 2 or (size > floor and self.rng.random() < 0.5)):
                remove = (self.rng.choice(removable),)
            add = 1 if not remove else self.rng.randint(0, 1)
            return self.membership(add=add, remove=remove)
        return self.revert()


def random_chain(seed: int, length: int, **kwargs: Any) -> ChainMaker:
    """A valid chain of `length` blocks (genesis included) of mixed kinds, from `seed`."""
    maker = ChainMaker(rng=random.Random(seed), **kwargs)
    maker.genesis()
    while len(maker.blocks) < length:
        maker.random_block()
    return maker
