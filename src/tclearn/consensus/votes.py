"""Agreement votes: the entry a vote travels as, and the signed record a quorum is shown as.

Why votes for values are signed although the transport names the sender: see
`AgreementVote`. Shared validation helpers of the consensus messages live here
too (every constructor validates its fields and raises `ConsensusError`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import cbor2

from tclearn.errors import ConsensusError, EncodingError
from tclearn.ledger.records import SignedRecord, check_hash, check_int, check_str

__all__ = ["INSTANCES", "PHASES", "MAX_MESSAGE_BYTES", "MAX_VOTES_PER_MESSAGE", "MAX_BLOCKS_PER_MESSAGE",
           "VoteEntry", "AgreementVote", "VoteCertificate", "agreement_vote_bytes"]

INSTANCES = ("block", "seal")  # the two agreements of a height: on the block, then on its sealed form
PHASES = ("prevote", "precommit")
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
MAX_VOTES_PER_MESSAGE = 512
MAX_BLOCKS_PER_MESSAGE = 64


def _int(value: Any, name: str, minimum: int = 0) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConsensusError(f"{name} must be an integer ≥ {minimum}")
    return value


def _instance(value: Any) -> str:
    if value not in INSTANCES:
        raise ConsensusError(f"instance must be one of {', '.join(INSTANCES)}")
    return str(value)


def _hash(value: Any, name: str) -> str:
    try:
        return check_hash(value, name)
    except EncodingError as exc:
        raise ConsensusError(str(exc)) from None


def _type(value: Any, kind: type, name: str) -> Any:
    if not isinstance(value, kind):
        raise ConsensusError(f"{name} must be a {kind.__name__}")
    return value


@dataclass(frozen=True, slots=True)
class VoteEntry:
    """One prevote or precommit of the sender: for a value id, or None (nil)."""

    round: int
    phase: str
    value: str | None
    signature: bytes = b""  # of the AgreementVote, for a vote for a value (empty for nil)

    def __post_init__(self) -> None:
        _int(self.round, "round")
        if self.phase not in PHASES:
            raise ConsensusError(f"phase must be one of {', '.join(PHASES)}")
        if self.value is not None:
            _hash(self.value, "value")
        _type(self.signature, bytes, "signature")


@dataclass(frozen=True)
class AgreementVote(SignedRecord):
    """A validator's prevote or precommit for a value, as a signed record.

    Why votes for values are signed although the transport names the sender:
    a quorum of them is sometimes shown to a member that did not see it — a
    general re-proposing the block it is locked on shows the polka that locked
    it (otherwise honest members locked on different values could never
    agree), and a member that saw a seal decided shows the precommits to one
    that did not (`CommittedMsg.proof`). Signatures are checked lazily: only
    when a quorum is about to be acted on or shown. Nil votes are never shown
    and are not signed.
    """

    TAG: ClassVar[str] = "agreement-vote"
    validator: str
    height: int
    instance: str
    round: int
    phase: str
    value: str

    def __post_init__(self) -> None:
        try:
            check_str(self.validator, "validator")
            check_int(self.height, "height", 1)
            check_int(self.round, "round", 0)
            check_hash(self.value, "value")
        except EncodingError as exc:
            raise ConsensusError(str(exc)) from None
        _instance(self.instance)
        if self.phase not in PHASES:
            raise ConsensusError(f"phase must be one of {', '.join(PHASES)}")

    def signer(self) -> str:
        return self.validator

    def signing_bytes(self) -> bytes:
        return agreement_vote_bytes(self.validator, self.height, self.instance, self.round, self.phase, self.value)


def agreement_vote_bytes(validator: str, height: int, instance: str, round_: int, phase: str, value: str) -> bytes:
    """`AgreementVote(...).signing_bytes()` without building the record (votes are signed and checked a lot).

    canonical_bytes of {"type", "body"} minus the type walk: every field is a
    plain str or int here (the test suite checks the bytes are the same).
    """
    body = {"validator": validator, "height": height, "instance": instance, "round": round_, "phase": phase,
            "value": value}
    return cbor2.dumps({"type": "agreement-vote", "body": body}, canonical=True)


@dataclass(frozen=True, slots=True)
class VoteCertificate:
    """Signed votes of one round and phase for one value (a polka, or a decision): relayable."""

    height: int
    instance: str
    round: int
    phase: str
    value: str
    signers: tuple[tuple[str, bytes], ...]  # (validator, signature of its AgreementVote)

    def __post_init__(self) -> None:
        _int(self.height, "height", 1)
        _instance(self.instance)
        _int(self.round, "round")
        if self.phase not in PHASES:
            raise ConsensusError(f"phase must be one of {', '.join(PHASES)}")
        _hash(self.value, "value")
        _type(self.signers, tuple, "signers")
        if not self.signers or len(self.signers) > MAX_VOTES_PER_MESSAGE:
            raise ConsensusError("a certificate holds some signed votes")
        seen = set()
        for pair in self.signers:
            if not isinstance(pair, tuple) or len(pair) != 2 or not isinstance(pair[0], str) \
                    or not isinstance(pair[1], bytes) or pair[0] in seen:
                raise ConsensusError("a certificate's signers are distinct (validator, signature) pairs")
            seen.add(pair[0])

    def votes(self) -> list[AgreementVote]:
        return [AgreementVote(validator=v, height=self.height, instance=self.instance, round=self.round,
                              phase=self.phase, value=self.value, signature=sig) for v, sig in self.signers]

    def to_wire(self) -> dict[str, Any]:
        return {"height": self.height, "instance": self.instance, "round": self.round, "phase": self.phase,
                "value": self.value, "signers": [[v, sig] for v, sig in self.signers]}

    @classmethod
    def from_wire(cls, d: Any) -> "VoteCertificate":
        if not isinstance(d, dict) or not isinstance(d.get("signers"), list):
            raise ConsensusError("a certificate is a map with signers")
        return cls(d["height"], d["instance"], d["round"], d["phase"], d["value"],
                   tuple(tuple(p) if isinstance(p, list) else p for p in d["signers"]))
