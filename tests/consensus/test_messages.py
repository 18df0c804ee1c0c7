"""Messages: validated at construction, canonical on the wire, a peer's garbage never crashes us."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tclearn.consensus.messages import BlocksRequest, CommittedMsg, RoundVotes, StatusMsg, VoteEntry
from tclearn.consensus.wire import decode_message, encode_message
from tclearn.consensus.snapshot import SafetySnapshot
from tclearn.errors import ConsensusError, RemoteProtocolError
from tclearn.member.safety_store import FileSafetyStore
from tclearn.sim.build import synthetic_coalition


@pytest.fixture(scope="module")
def traffic():
    """Every message a short run in wire mode sent, as they were sent."""
    setup = synthetic_coalition(5, 3, seed=2, wire=True)
    c = setup.coalition
    seen: dict[str, object] = {}
    original = c.network.submit

    def spy(sender, to, message):
        seen.setdefault(message.TYPE, message)
        original(sender, to, message)

    c.network.submit = spy  # type: ignore[method-assign]
    assert c.run_until(3, 300)
    return seen, c


def test_every_message_round_trips_through_its_wire_form(traffic):
    seen, c = traffic
    assert {"proposal", "quality-vote", "round-proposal", "round-votes", "block-vote", "committed"} <= set(seen)
    for message in seen.values():
        data = encode_message(message)
        again = decode_message(data)
        assert encode_message(again) == data
    assert c.network.stats.bytes > 0 and not c.monitor.violations


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_garbage_bytes_are_a_remote_protocol_error(data):
    try:
        decode_message(data)
    except RemoteProtocolError:
        pass


def test_a_peers_malformed_message_becomes_evidence_not_a_crash(traffic):
    _, c = traffic
    d = c.drivers["m1"]
    before = len(d.evidence)
    d.receive_bytes("m2", b"\xa2dbody\xa0dtypeenonsense")
    d.receive_bytes("m2", encode_message(StatusMsg(0, "ab" * 32))[:-3])
    assert len(d.evidence) == before + 2


def test_messages_validate_at_construction():
    with pytest.raises(ConsensusError):
        VoteEntry(-1, "prevote", None)
    with pytest.raises(ConsensusError):
        VoteEntry(0, "vote", None)
    with pytest.raises(ConsensusError):
        RoundVotes(1, "block", ())
    with pytest.raises(ConsensusError):
        RoundVotes(1, "other", (VoteEntry(0, "prevote", None),))
    with pytest.raises(ConsensusError):
        BlocksRequest(1, 10_000)
    with pytest.raises(ConsensusError):
        CommittedMsg(1, "not a hash")


def test_safety_snapshots_survive_a_file_round_trip(tmp_path, traffic):
    _, c = traffic
    snap = c.safety["m1"].load()
    assert isinstance(snap, SafetySnapshot)
    store = FileSafetyStore(tmp_path / "safety.cbor")
    assert store.load() is None
    store.save(snap)
    again = store.load()
    assert again is not None and again.to_bytes() == snap.to_bytes()
    assert (tmp_path / "safety.cbor").stat().st_mode & 0o077 == 0
    # after a commit the snapshot of the next height keeps the head block's seal proof
    assert again.head_proof is not None and again.head_proof.height == again.height - 1
    assert again.head_proof.value == c.chain("m1")[again.height - 1].block_hash
