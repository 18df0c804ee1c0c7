"""Finding 1: a few hundred bytes froze a node; no member and no stranger may do that.

Before: CBOR shared references (tags 28/29), which cbor2 resolves itself
without calling the 'no tags' hook, decoded into a structure that doubles at
every level, and the records re-encoded it in full: the 341-byte governance
message of `governance_bomb(20)` cost 1.3 s of CPU, 22 levels (365 bytes)
about 5 s, each level ×4. A block was hashed before its general's signature
was checked, by anyone who sent it. Now `ledger.cbor_scan.scan` refuses tags,
indefinite lengths, too many items, too deep nesting and lengths past the
end, before cbor2 runs, at every decoder that reads a peer's bytes; a block is
authenticated (its general is a validator of the height and signed it) before
anything else is computed from it.
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cbor_bombs import PLACEHOLDER, governance_bomb, shared_ref_bomb, splice, tag  # noqa: E402

import tclearn.ledger.verify as ledger_verify  # noqa: E402
from tclearn.consensus.messages import BlocksResponse, CommittedMsg, StatusMsg, ValueReply  # noqa: E402
from tclearn.consensus.wire import decode_message, encode_message  # noqa: E402
from tclearn.errors import EncodingError, InvalidBlockError, RemoteProtocolError  # noqa: E402
from tclearn.ledger.block import Block  # noqa: E402
from tclearn.ledger.cbor_scan import MAX_DEPTH, MAX_ITEMS, scan  # noqa: E402
from tclearn.ledger.encoding import canonical_bytes, decode  # noqa: E402
from tclearn.ledger.state import ChainState  # noqa: E402
from tclearn.ledger.verify import verify_block  # noqa: E402
from tclearn.sim.build import synthetic_coalition  # noqa: E402
from tclearn.transport.errors import RequestError  # noqa: E402
from tclearn.transport.schema import CBOR, decode_body  # noqa: E402

LEVELS = 22  # 365 bytes; about 5 s of CPU before the pre-scan, each extra level ×4
FAST_S = 0.5


def refused_fast(call: Callable[[], Any], error: type[Exception]) -> Exception:
    start = time.perf_counter()
    with pytest.raises(error) as info:
        call()
    assert time.perf_counter() - start < FAST_S
    return info.value


def bomb_block_bytes(levels: int) -> bytes:
    block = Block(index=1, timestamp=1, kind="hyperparams", prev_hash="ab" * 32, model_hash="cd" * 32,
                  contributor="m1", strengths={"m0": 0.5, "m1": 0.5}, data_ids_root="ef" * 32, quality_votes=(),
                  block_votes=(), general="m1", payload={"hyperparams": PLACEHOLDER}).sealed()
    return splice(block.to_dict(), shared_ref_bomb(levels))


# --- the pre-scan at every decoder ---------------------------------------------------------
def test_a_shared_reference_bomb_in_a_message_is_refused_before_decoding():
    data = governance_bomb(LEVELS)
    assert len(data) < 400
    error = refused_fast(lambda: decode_message(data), RemoteProtocolError)
    assert "tags are not allowed" in str(error)


def test_a_block_carrying_a_bomb_is_refused_fast_as_bytes_and_inside_a_message():
    data = bomb_block_bytes(LEVELS)
    assert len(data) < 700
    refused_fast(lambda: Block.from_bytes(data), InvalidBlockError)
    refused_fast(lambda: decode(data), EncodingError)
    message = splice({"type": "blocks-response", "body": {"blocks": [PLACEHOLDER]}}, data)
    refused_fast(lambda: decode_message(message), RemoteProtocolError)


def test_a_cbor_request_body_bomb_is_a_400():
    error = refused_fast(lambda: decode_body(shared_ref_bomb(LEVELS), CBOR), RequestError)
    assert error.status == 400  # type: ignore[attr-defined]


@pytest.mark.parametrize("number, payload", [
    (2, b"\x41\x05"),  # bignum 5: cbor2 turns it into the int 5 itself
    (28, b"\x05"),  # a shareable 5
    (55799, None),  # "self-described CBOR" around the whole message
])
def test_no_tag_gets_through_decode_message(number: int, payload: bytes | None):
    honest = encode_message(StatusMsg(5, "ab" * 32))
    if payload is None:
        data = b"\xd9\xd9\xf7" + honest
    else:
        data = splice({"type": "status", "body": {"height": PLACEHOLDER, "head_hash": "ab" * 32}},
                      tag(number, payload))
    with pytest.raises(RemoteProtocolError, match="tags are not allowed"):
        decode_message(data)


@pytest.mark.parametrize("data, reason", [
    (b"\x9f\x01\xff", "indefinite"),
    (b"\x5f\x41\x00\xff", "indefinite"),
    (b"\x9a\xff\xff\xff\xff", "more items than there are bytes"),
    (b"\x7a\x00\x10\x00\x00abc", "runs past the end"),
    (b"\xa1\x01\x02", "keys must be text"),
    (b"\x01\x02", "trailing"),
    (b"\xf7", "simple values"),
    (b"\x81" * (MAX_DEPTH + 1) + b"\x01", "deeper"),
    (b"\x9a" + MAX_ITEMS.to_bytes(4, "big") + b"\x00" * MAX_ITEMS, "CBOR items"),  # MAX_ITEMS + 1 items
    (b"", "truncated"),
])
def test_the_pre_scan_refuses_what_no_record_holds(data: bytes, reason: str):
    with pytest.raises(EncodingError, match=reason):
        scan(data)


def test_the_pre_scan_accepts_every_record_shape_at_its_limits():
    nested: Any = 1
    for _ in range(MAX_DEPTH):
        nested = [nested]
    for value in (nested, {"a": [None, True, False, 1.5, -(2**64), 2**64 - 1, b"x" * 300, "é" * 40]},
                  list(range(MAX_ITEMS - 1))):
        data = canonical_bytes(value)
        scan(data)
        assert decode(data) == value


# --- a block is authenticated before anything is computed from it -------------------------------
@pytest.fixture(scope="module")
def chain():
    setup = synthetic_coalition(5, 3, seed=3)
    c = setup.coalition
    assert c.run_until(2, 400)
    blocks = c.drivers["m0"].store.blocks_from(0)
    return c, blocks


class _Counting:
    """Counts the digests computed from blocks while it is installed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[str] = []
        for name in ("compute_hash", "hash_and_signing_bytes", "sealed", "signing_bytes"):
            original = getattr(Block, name)
            monkeypatch.setattr(Block, name, self._wrap(name, original))

    def _wrap(self, name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def counted(block: Block, *args: Any) -> Any:
            self.calls.append(name)
            return original(block, *args)
        return counted


def test_verify_block_checks_the_generals_signature_before_the_hash(chain, monkeypatch):
    _, blocks = chain
    before = ChainState.from_genesis(blocks[0])
    forged = replace(blocks[1], general_signature=b"\x01" * 64).sealed()
    order: list[str] = []
    real_sha, real_verify = ledger_verify.sha256_hex, ledger_verify.verify_signature
    monkeypatch.setattr(ledger_verify, "sha256_hex", lambda data: order.append("hash") or real_sha(data))
    monkeypatch.setattr(ledger_verify, "verify_signature",
                        lambda *a: order.append("signature") or real_verify(*a))
    with pytest.raises(InvalidBlockError, match="signature of general"):
        verify_block(before, forged)
    assert order[0] == "signature"


def test_an_unsolicited_block_is_dropped_before_any_digest(chain, monkeypatch):
    c, _ = chain
    core = c.drivers["m0"].core
    h = core.work.h
    head = c.drivers["m0"].store.head()
    fake = replace(head, index=h, prev_hash=head.block_hash, general_signature=b"\x02" * 64)
    counting = _Counting(monkeypatch)
    out = core.on_message("m1", BlocksResponse((fake,)), core.now_ms)
    assert counting.calls == []
    assert not [a for a in out if type(a).__name__ == "RecordEvidence"]


def test_a_pushed_block_its_general_did_not_sign_is_not_hashed_and_blames_the_sender(chain, monkeypatch):
    c, _ = chain
    core = c.drivers["m0"].core
    h = core.work.h
    general = sorted(core.work.committee.validators)[0]
    sender = next(m for m in core.state.members if m not in (general, core.me))
    head = c.drivers["m0"].store.head()
    fake = replace(head, index=h, prev_hash=head.block_hash, general=general, general_signature=b"\x03" * 64)
    counting = _Counting(monkeypatch)
    out = core.on_message(sender, CommittedMsg(h, fake.block_hash, fake, None), core.now_ms)
    assert "compute_hash" not in counting.calls and "hash_and_signing_bytes" not in counting.calls
    blamed = [a.evidence.member for a in out if type(a).__name__ == "RecordEvidence"]
    assert general not in blamed


def test_a_value_nobody_asked_for_is_dropped_before_any_digest(chain, monkeypatch):
    c, _ = chain
    validator = sorted(c.drivers["m0"].core.work.committee.validators)[0]
    core = c.drivers[validator].core
    assert core.work.agreements.block is not None
    h = core.work.h
    head = c.drivers[validator].store.head()
    fake = replace(head, index=h, prev_hash=head.block_hash, general_signature=b"\x04" * 64)
    sender = next(m for m in sorted(core.state.members) if m != core.me)
    counting = _Counting(monkeypatch)
    for instance in ("block", "seal"):
        core.on_message(sender, ValueReply(h, instance, fake), core.now_ms)
    assert counting.calls == []


def test_a_round_proposal_or_decision_on_a_block_its_general_did_not_sign_is_held_against_its_sender(chain):
    from tclearn.consensus.messages import DecidedMsg, RoundProposal
    from tclearn.consensus.votes import VoteCertificate

    c, _ = chain
    validator = sorted(c.drivers["m0"].core.work.committee.validators)[0]
    core = c.drivers[validator].core
    h = core.work.h
    sender = next(v for v in sorted(core.work.committee.validators) if v != validator)
    head = c.drivers[validator].store.head()
    fake = replace(head, index=h, prev_hash=head.block_hash, general=sender, block_votes=(), block_hash="",
                   general_signature=b"\x05" * 64)
    round_ = next(r for r in range(8) if core.work.committee.general_of(r) != validator)
    general_of_round = core.work.committee.general_of(round_)
    out = core.on_message(general_of_round, RoundProposal(h, "block", round_, -1, fake, None), core.now_ms)
    proof = VoteCertificate(h, "block", 0, "precommit", "ab" * 32, ((sender, b"\x06" * 64),))
    out += core.on_message(sender, DecidedMsg(h, "block", fake, proof), core.now_ms)
    blamed = [(e.member, e.reason) for e in (a.evidence for a in out if type(a).__name__ == "RecordEvidence")]
    assert (general_of_round, "block proposal of a block its general did not sign") in blamed
    assert (sender, "a decision on a block its general did not sign") in blamed
    assert not core.work.agreements.block.values
