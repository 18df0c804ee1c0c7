"""Governance requests: revert, hyper-parameter and membership changes.

Why requests are signed records: a governance block changes the coalition's
rules, so it must show who asked. The requester signs a request bound to one
height (a signature cannot be replayed at another height); the general of that
height puts the request into the block's payload, and the committee drawn for
the height certifies it like any block (no quality votes: nothing is
evaluated). A request that misses its height is signed again for the next one.

Who may ask (checked by `request_problem`, and again by the certificate check):

* revert: the members the genesis authorises (`revert_authorized`), to the
  model of an earlier block (the signing bytes are the ledger's
  `revert_request_bytes`, so the ledger's own check accepts the block);
* hyperparams: any member (the adaptive learning-rate policy asks this way);
  the values must pass the genesis rules;
* membership: the founder only; an added member is `{id, public_key}` and,
  for a site that joins a running network, its TLS certificate's SHA-256
  fingerprint (`cert_fingerprint`, "sha256:<hex>" as genesis records) and its `url`: every node builds its
  allow-list and peer set from these (`tclearn.node.chain_members`).

Every validator checks the same rules, not only the requester's node: a
revert must target a block whose model was the coalition's (not a `rejected`
candidate); a membership change must leave the genesis committee possible
(k validators besides the proposer: at least k + 1 members) and may not add
a certificate fingerprint that genesis or an earlier membership block recorded
(`ChainState.fingerprints`: a certificate is one member's); hyper-parameter
values must pass the genesis rules (`ledger.hyperparams`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from tclearn.errors import ConsensusError, EncodingError
from tclearn.identity import MEMBER_ID_RE, Identity
from tclearn.ledger.block import EMPTY_ROOT, Block
from tclearn.ledger.encoding import canonical_bytes, sha256_hex
from tclearn.ledger.hyperparams import hyperparams_problem
from tclearn.ledger.records import check_int, check_str
from tclearn.ledger.state import ChainState
from tclearn.ledger.verify import revert_request_bytes

__all__ = ["GOVERNANCE_KINDS", "FINGERPRINT_PREFIX", "MEMBER_ADDITION_KEYS", "MEMBER_URL_MAX", "GovernanceRequest",
           "addition_problem",
           "request_problem", "build_governance_block", "request_of_block"]

GOVERNANCE_KINDS = ("revert", "hyperparams", "membership")
MEMBER_ADDITION_KEYS = frozenset({"id", "public_key", "cert_fingerprint", "url"})  # id and public_key required
MEMBER_URL_MAX = 200
FINGERPRINT_PREFIX = "sha256:"  # the form genesis records (SHA-256 of the certificate's DER)
_HEX = frozenset("0123456789abcdef")


def _signing_bytes(kind: str, requester: str, height: int, body: Mapping[str, Any]) -> bytes:
    if kind == "revert":
        return revert_request_bytes(requester, body["target"], height)
    return canonical_bytes({"type": f"{kind}-request", "body": {"requester": requester, "height": height, **body}})


@dataclass(frozen=True)
class GovernanceRequest:
    """A member's signed request for a governance block at one height."""

    kind: str
    requester: str
    height: int
    body: dict[str, Any]  # revert: {target}; hyperparams: {hyperparams}; membership: {add, remove}
    signature: bytes = b""

    def __post_init__(self) -> None:
        if self.kind not in GOVERNANCE_KINDS:
            raise ConsensusError(f"governance kind must be one of {', '.join(GOVERNANCE_KINDS)}")
        try:
            check_str(self.requester, "requester")
            check_int(self.height, "height", 1)
            canonical_bytes(self.body)
        except EncodingError as exc:
            raise ConsensusError(str(exc)) from None
        if not isinstance(self.body, dict) or not isinstance(self.signature, bytes):
            raise ConsensusError("a governance request has a map body and a bytes signature")
        expected = {"revert": {"target"}, "hyperparams": {"hyperparams"}, "membership": {"add", "remove"}}[self.kind]
        if set(self.body) != expected:
            raise ConsensusError(f"a {self.kind} request carries exactly {sorted(expected)}")

    def signing_bytes(self) -> bytes:
        return _signing_bytes(self.kind, self.requester, self.height, self.body)

    def signed_by(self, identity: Identity) -> "GovernanceRequest":
        if identity.member_id != self.requester:
            raise ConsensusError(f"{identity.member_id} cannot sign a request of {self.requester}")
        return GovernanceRequest(self.kind, self.requester, self.height, self.body, identity.sign(self.signing_bytes()))

    @property
    def request_hash(self) -> str:
        return sha256_hex(canonical_bytes(self.to_dict()))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "requester": self.requester, "height": self.height, "body": dict(self.body),
                "signature": self.signature}

    @classmethod
    def from_dict(cls, data: Any) -> "GovernanceRequest":
        if not isinstance(data, Mapping) or set(data) != {"kind", "requester", "height", "body", "signature"}:
            raise ConsensusError("a governance request has kind, requester, height, body and signature")
        return cls(data["kind"], data["requester"], data["height"], dict(data["body"]) if isinstance(
            data["body"], Mapping) else data["body"], data["signature"])

    def payload(self) -> dict[str, Any]:
        """The block payload this request becomes."""
        if self.kind == "revert":
            return {"target": self.body["target"], "requester": self.requester, "request_signature": self.signature}
        return {**self.body, "requester": self.requester, "request_signature": self.signature}


def request_problem(state: ChainState, request: GovernanceRequest, public_key_check: Any = None) -> str | None:
    """Why `request` cannot become the block after `state` (None when it can).

    `public_key_check(public_key, signature, message) -> bool` checks the
    signature (a `SignatureVerifier.verify`); without it the signature is not
    checked (the ledger's own check covers reverts).
    """
    if request.height != state.height + 1:
        return f"request is for height {request.height}, not {state.height + 1}"
    key = state.public_key(request.requester)
    if key is None:
        return f"requester {request.requester} is not a member"
    if public_key_check is not None and not public_key_check(key, request.signature, request.signing_bytes()):
        return f"{request.kind} request signature of {request.requester} does not verify"
    body = request.body
    if request.kind == "revert":
        target = body["target"]
        if request.requester not in state.config.revert_authorized:
            return f"{request.requester} is not authorised to revert"
        if not isinstance(target, int) or isinstance(target, bool) or not 0 <= target < request.height:
            return "revert target must be an earlier block index"
        if len(state.kind_by_index) > target and state.kind_by_index[target] == "rejected":
            return (f"block {target} is a rejected candidate: its model was never the coalition's "
                    "(revert to an increment, revert or genesis block)")
        if state.model_by_index[target] == state.head_model_hash:
            return "the head model already is the target's model"
        return None
    if request.kind == "hyperparams":
        return hyperparams_problem(body["hyperparams"])
    if request.requester != state.config.founder_id:
        return "only the founder may change the membership"
    add, remove = body["add"], body["remove"]
    if not isinstance(add, list) or not isinstance(remove, list) or not (add or remove):
        return "membership must add or remove members"
    added: set[str] = set()
    added_fps: set[str] = set()
    for m in add:
        problem = addition_problem(m)
        if problem:
            return problem
        if m["id"] in state.members:
            return f"{m['id']} is already a member"
        if m["id"] in added:
            return f"{m['id']} is added twice"
        added.add(m["id"])
        fp = m.get("cert_fingerprint")
        if fp and fp in state.fingerprints:
            return f"the certificate of {m['id']} ({fp}) is one the chain already records for another member"
        if fp and fp in added_fps:
            return f"two additions carry the certificate {fp}"
        if fp:
            added_fps.add(fp)
    if len(set(map(str, remove))) != len(remove):
        return "a member is removed twice"
    for mid in remove:
        if mid not in state.members:
            return f"{mid!r} is not a member"
    left = len(state.members) + len(add) - len(remove)
    k = state.config.committee_size
    if left < max(2, k + 1):
        return (f"the change leaves {left} member(s): the genesis committee of {k} validator(s) besides the "
                f"proposer needs at least {k + 1}")
    return None


def addition_problem(m: Any) -> str | None:
    """What is wrong with one member to add (None when it can be added)."""
    if not isinstance(m, Mapping) or not {"id", "public_key"} <= set(m) <= MEMBER_ADDITION_KEYS:
        return "membership additions are {id, public_key} and optionally cert_fingerprint, url"
    if not isinstance(m["id"], str) or not MEMBER_ID_RE.match(m["id"]):
        return f"membership addition has an invalid member id {str(m['id'])[:70]!r}"
    if not isinstance(m["public_key"], bytes) or len(m["public_key"]) != 32:
        return f"the public key of {m['id']} is 32 bytes (Ed25519)"
    fp = m.get("cert_fingerprint")
    if fp is not None and (not isinstance(fp, str) or not fp.startswith(FINGERPRINT_PREFIX)
                           or len(fp) != len(FINGERPRINT_PREFIX) + 64 or not set(fp[len(FINGERPRINT_PREFIX):]) <= _HEX):
        return f"the certificate fingerprint of {m['id']} is sha256:<64 lowercase hex digits> (as genesis records)"
    url = m.get("url")
    if url is not None and (not isinstance(url, str) or not url.startswith("https://")
                            or not 8 < len(url) <= MEMBER_URL_MAX or any(c.isspace() for c in url)):
        return f"the url of {m['id']} is https://host:port (at most {MEMBER_URL_MAX} characters)"
    return None


def build_governance_block(state: ChainState, request: GovernanceRequest, general: str, timestamp: int) -> Block:
    """The unsigned governance block for `request` (the general signs it)."""
    model = state.model_by_index[request.body["target"]] if request.kind == "revert" else state.head_model_hash
    return Block(
        index=state.height + 1,
        timestamp=max(timestamp, state.head_timestamp),
        kind=request.kind,
        prev_hash=state.head_hash,
        model_hash=model,
        contributor=request.requester,
        strengths=state.strengths(),
        data_ids_root=EMPTY_ROOT,
        quality_votes=(),
        block_votes=(),
        general=general,
        payload=request.payload(),
    )


def request_of_block(block: Block) -> GovernanceRequest:
    """The request a governance block carries (ConsensusError if it carries none)."""
    p = block.payload
    try:
        if block.kind == "revert":
            body: dict[str, Any] = {"target": p["target"]}
        elif block.kind == "hyperparams":
            body = {"hyperparams": dict(p["hyperparams"])}
        elif block.kind == "membership":
            body = {"add": list(p.get("add", [])), "remove": list(p.get("remove", []))}
        else:
            raise ConsensusError(f"a {block.kind} block carries no governance request")
        return GovernanceRequest(block.kind, p["requester"], block.index, body, p["request_signature"])
    except (KeyError, TypeError) as exc:
        raise ConsensusError(f"governance payload is incomplete: {exc}") from None
