"""Byzantine members: the honest driver with a lying transport (and trainer).

Why this shape: a byzantine member runs the very driver and core honest
members run, and lies only on its way out — its transport rewrites what it
sends, re-signing with the member's own key. So the adversaries exercise the
receiving side of the real code, and the simulator needs no second protocol
implementation. Behaviours (any combination per member):

* `always-accept` / `always-reject`: quality votes say so, whatever the scores;
* `lie-scores`: quality votes report other G scores (and the opposite verdict);
* `equivocate`: half of the recipients get a different quality vote, other
  prevotes and precommits, and a block vote for another block;
* `bad-general`: as a general, proposes a block that differs from the one it
  built: another model hash, other strengths, another parent, or another
  index — to every validator, or (equivocating) only to half of them;
* `forge-seal`: attests to non-validators a differently sealed copy of the
  committed block (another subset of its votes), or a made-up hash;
* `silent`: sends nothing at all;
* `degrading-proposer`: set on the trainer (`SyntheticTrainer(degrading=True)`).
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import replace

from tclearn.consensus.messages import (
    BlockVoteMsg, CommittedMsg, Message, QualityVoteMsg, RoundProposal, RoundVotes, VoteEntry,
)
from tclearn.identity import Identity
from tclearn.ledger.records import BlockVote
from tclearn.member.interfaces import Transport

__all__ = ["BEHAVIOURS", "ByzantineTransport"]

BEHAVIOURS = ("always-accept", "always-reject", "lie-scores", "equivocate", "bad-general", "forge-seal", "silent",
              "degrading-proposer")


def _junk_hash(*parts: object) -> str:
    return hashlib.sha256(repr(("junk", *parts)).encode()).hexdigest()


class ByzantineTransport:
    """Rewrites what a byzantine member sends (see the module docstring)."""

    def __init__(self, inner: Transport, identity: Identity, behaviours: set[str], rng: random.Random) -> None:
        unknown = set(behaviours) - set(BEHAVIOURS)
        if unknown:
            raise ValueError(f"unknown behaviours {sorted(unknown)}")
        self.inner = inner
        self.identity = identity
        self.me = identity.member_id
        self.behaviours = set(behaviours)
        self.rng = rng
        self.lies = 0
        self.flaws: tuple[str, ...] = ("model_hash", "strengths", "prev_hash", "index")  # a bad general's choices

    def _half(self, to: str) -> bool:
        """A fixed half of the members (by id) gets the other version."""
        return hashlib.sha256((self.me + "|" + to).encode()).digest()[0] & 1 == 1

    def send(self, to: str, message: Message) -> None:
        b = self.behaviours
        if "silent" in b:
            return
        out = message
        if isinstance(message, QualityVoteMsg):
            out = self._quality_vote(to, message)
        elif isinstance(message, RoundVotes) and "equivocate" in b and self._half(to):
            out = RoundVotes(message.height, message.instance, tuple(
                VoteEntry(v.round, v.phase, None if v.value is not None else _junk_hash(v.round, v.phase))
                for v in message.votes))
        elif isinstance(message, BlockVoteMsg) and "equivocate" in b and self._half(to):
            out = BlockVoteMsg(BlockVote(validator=self.me, index=message.vote.index,
                                         signing_hash=_junk_hash("bv", message.vote.index)).signed_by(self.identity))
        elif isinstance(message, RoundProposal) and "bad-general" in b and message.instance == "block" \
                and message.block.general == self.me and (self._half(to) or "equivocate" not in b):
            out = self._bad_block(message)
        elif isinstance(message, CommittedMsg) and "forge-seal" in b:
            out = self._forged_seal(message)
        if out is not message:
            self.lies += 1
        self.inner.send(to, out)

    def _quality_vote(self, to: str, m: QualityVoteMsg) -> Message:
        b, vote = self.behaviours, m.vote
        accept, scores = vote.accept, dict(vote.scores)
        if "always-accept" in b:
            accept = True
        if "always-reject" in b:
            accept = False
        if "lie-scores" in b:
            scores["g_new"] = round(scores.get("g_new", 0.5) + 0.25, 6)
            accept = not accept
        if "equivocate" in b and self._half(to):
            accept = not accept
        if accept == vote.accept and scores == vote.scores:
            return m
        return QualityVoteMsg(m.proposal, replace(vote, accept=accept, scores=scores).signed_by(self.identity))

    def _bad_block(self, m: RoundProposal) -> Message:
        block = m.block
        flaw = self.rng.choice(self.flaws)
        height = m.height
        if flaw == "model_hash":
            block = replace(block, model_hash=_junk_hash("model", block.index))
        elif flaw == "strengths":
            strengths = dict(block.strengths)
            first = sorted(strengths)[0]
            strengths[first] = strengths[first] * 2
            block = replace(block, strengths=strengths)
        elif flaw == "prev_hash":
            block = replace(block, prev_hash=_junk_hash("parent", block.index))
        else:
            block = replace(block, index=block.index + 1)
            height += 1
        return RoundProposal(height, m.instance, m.round, m.valid_round, block.signed_by(self.identity))

    def _forged_seal(self, m: CommittedMsg) -> Message:
        if m.block is not None and len(m.block.block_votes) > 1:
            votes = list(m.block.block_votes)[1:]
            forged = m.block.with_votes(votes)
            return CommittedMsg(m.height, forged.block_hash, forged)
        return CommittedMsg(m.height, _junk_hash("seal", m.height), None)
