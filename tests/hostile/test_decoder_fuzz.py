"""Every decoder at the boundary, fed arbitrary and mutated inputs (issue 11, "strict wire format").

Each input either decodes or raises the decoder's documented error — never
another exception, never slowly:

| decoder | documented error |
|---|---|
| `consensus.wire.decode_message` (peer messages, governance requests inside) | `RemoteProtocolError` |
| `Block.from_bytes` (stored rows, fetched blocks) | `InvalidBlockError` |
| `ledger.encoding.decode` (records, safety snapshots) | `EncodingError` |
| `transport.schema.decode_body` (request bodies, JSON and CBOR) | `RequestError` (400 / 415) |
| `GovernanceRequest.from_dict` | `ConsensusError` |
| `ledger.genesis.load_config` + `parse_config`, `node.config.NodeConfig.load` | `ConfigError` |

Mutations start from valid encodings and flip, insert (tags, indefinite
heads, shared references among the inserts), delete and truncate bytes.
Budgets are modest (`make test` runs these on every change).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tclearn.consensus.governance import GovernanceRequest
from tclearn.consensus.messages import (
    BlocksRequest, BlocksResponse, BlockVoteMsg, CommittedMsg, GovernanceMsg, ProposalMsg, QualityVoteMsg, RoundVotes,
    StatusMsg, VoteEntry,
)
from tclearn.consensus.wire import decode_message, encode_message
from tclearn.errors import ConfigError, ConsensusError, EncodingError, InvalidBlockError, RemoteProtocolError
from tclearn.ledger.block import Block
from tclearn.ledger.encoding import canonical_bytes, decode
from tclearn.ledger.genesis import load_config, parse_config
from tclearn.ledger.records import BlockVote, Proposal, QualityVote
from tclearn.node.config import NodeConfig
from tclearn.sim.build import make_genesis, make_identities
from tclearn.transport.errors import RequestError
from tclearn.transport.schema import CBOR, JSON, decode_body

SLOW_S = 1.0  # a bomb costs seconds; anything honest or mutated costs microseconds to milliseconds
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
EXAMPLE_TOML = Path(__file__).resolve().parents[2] / "examples" / "coalition.toml"

_IDS = make_identities(4)
GENESIS = make_genesis(_IDS, 2, "ab" * 32)


def _seed_messages() -> list[bytes]:
    a, b = _IDS[1], _IDS[2]
    proposal = Proposal(proposer=a.member_id, height=1, prev_hash=GENESIS.block_hash, parent_model_hash="ab" * 32,
                        model_hash="cd" * 32, increment_hash="ef" * 32, sample_count=16,
                        data_ids_root="12" * 32).signed_by(a)
    vote = QualityVote(validator=b.member_id, height=1, proposal_hash=proposal.proposal_hash,
                       model_hash=proposal.model_hash, accept=True, scores={"g_old": 0.5, "g_new": 0.75}).signed_by(b)
    request = GovernanceRequest("hyperparams", a.member_id, 1, {"hyperparams": {"epochs": 2}}).signed_by(a)
    block = Block(index=1, timestamp=GENESIS.timestamp, kind="hyperparams", prev_hash=GENESIS.block_hash,
                  model_hash=GENESIS.model_hash, contributor=a.member_id, strengths=dict(GENESIS.strengths),
                  data_ids_root=GENESIS.data_ids_root, quality_votes=(), block_votes=(), general=b.member_id,
                  payload=request.payload()).signed_by(b)
    block = block.with_votes([block.vote(b)])
    messages = [
        StatusMsg(3, "ab" * 32), BlocksRequest(1, 8), BlocksResponse((GENESIS, block)), ProposalMsg(proposal),
        QualityVoteMsg(proposal, vote), GovernanceMsg(request),
        BlockVoteMsg(BlockVote(validator=b.member_id, index=1, signing_hash="34" * 32).signed_by(b)),
        RoundVotes(1, "block", (VoteEntry(0, "prevote", "56" * 32, b"\x01" * 64), VoteEntry(0, "precommit", None))),
        CommittedMsg(1, block.block_hash, block, None),
    ]
    return [encode_message(m) for m in messages]


SEED_MESSAGES = _seed_messages()
HOSTILE_INSERTS = [b"\xd8\x1c", b"\xd8\x1d\x00", b"\xc2\x41\x05", b"\xd9\xd9\xf7", b"\x9f", b"\xbf", b"\xff",
                   b"\x5f", b"\xf7", b"\xfb\x7f\xf8\x00\x00\x00\x00\x00\x00", b"\x9b\xff\xff\xff\xff\xff\xff\xff\xff",
                   b"\x81" * 40]


@st.composite
def mutated(draw: Callable[..., Any], seeds: list[bytes]) -> bytes:
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "insert", "hostile", "delete", "truncate"]))
        i = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[i] = draw(st.integers(0, 255))
        elif op == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=4))
        elif op == "hostile":
            data[i:i] = draw(st.sampled_from(HOSTILE_INSERTS))
        elif op == "delete" and data:
            del data[i:i + draw(st.integers(1, 8))]
        elif op == "truncate":
            del data[i:]
    return bytes(data)


def outcome(call: Callable[[], Any], documented: type[Exception] | tuple[type[Exception], ...]) -> Any:
    """The decoded value, or None when `call` raised its documented error (any other error fails the test)."""
    start = time.perf_counter()
    try:
        return call()
    except documented:
        return None
    finally:
        assert time.perf_counter() - start < SLOW_S


# --- wire messages -------------------------------------------------------------------------------
@FUZZ
@given(st.one_of(st.binary(max_size=400), mutated(SEED_MESSAGES)))
def test_decode_message_decodes_or_refuses(data: bytes) -> None:
    message = outcome(lambda: decode_message(data), RemoteProtocolError)
    if message is not None:  # what decodes re-encodes canonically, and that decodes again
        again = decode_message(encode_message(message))
        assert encode_message(again) == encode_message(message)


# --- blocks and records ----------------------------------------------------------------------------
@FUZZ
@given(st.one_of(st.binary(max_size=400), mutated([GENESIS.to_bytes()])))
def test_block_from_bytes_decodes_or_refuses(data: bytes) -> None:
    block = outcome(lambda: Block.from_bytes(data), InvalidBlockError)
    if block is not None:
        assert block.to_bytes() == data  # only canonical bytes decode


@FUZZ
@given(mutated([GENESIS.to_bytes(), canonical_bytes({"a": [1, 2.5, None, True, b"x", "y", -3]})]))
def test_record_decode_decodes_or_refuses(data: bytes) -> None:
    value = outcome(lambda: decode(data), EncodingError)
    if value is not None:
        assert canonical_bytes(value) == data


# --- transport bodies --------------------------------------------------------------------------------
@FUZZ
@given(st.one_of(st.binary(max_size=300), mutated(SEED_MESSAGES[:6])), st.sampled_from([CBOR, JSON]))
def test_decode_body_decodes_or_is_a_400(body: bytes, content_type: str) -> None:
    start = time.perf_counter()
    try:
        decode_body(body, content_type)
    except RequestError as exc:
        assert exc.status == 400
    assert time.perf_counter() - start < SLOW_S


_plain = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=8) | st.binary(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
_requests = st.fixed_dictionaries({
    "kind": st.sampled_from(["revert", "hyperparams", "membership", "other"]) | _plain,
    "requester": st.sampled_from(["m1", ""]) | _plain,
    "height": st.integers(-1, 3) | _plain,
    "body": st.fixed_dictionaries({"hyperparams": _plain}) | st.fixed_dictionaries({"target": _plain}) | _plain,
    "signature": st.binary(max_size=64) | _plain,
})


@FUZZ
@given(st.one_of(_plain, _requests))
def test_governance_request_from_dict_builds_or_refuses(data: Any) -> None:
    outcome(lambda: GovernanceRequest.from_dict(data), ConsensusError)


# --- configuration files ----------------------------------------------------------------------------------
def _with_file(data: bytes, read: Callable[[Path], Any]) -> Any:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.toml"
        path.write_bytes(data)
        return read(path)


def _genesis_config(path: Path) -> Any:
    return parse_config(load_config(path))


@FUZZ
@given(st.one_of(st.binary(max_size=300), mutated([EXAMPLE_TOML.read_bytes()])))
def test_genesis_config_loads_or_is_a_config_error(data: bytes) -> None:
    outcome(lambda: _with_file(data, _genesis_config), ConfigError)


_NODE_TOML = b"""[node]
member_id = "m1"
data_dir = "data"
identity_key = "keys/m1.key"
tls_cert = "tls/m1.pem"
tls_key = "tls/m1.key"
ca_cert = "tls/ca.pem"
genesis = "genesis.block"
port = 8443
tick_ms = 100
propose = "turn"
self_check = true

[[peers]]
id = "m2"
url = "https://127.0.0.1:8444"
"""


@FUZZ
@given(st.one_of(st.binary(max_size=300), mutated([_NODE_TOML])))
def test_node_config_loads_or_is_a_config_error(data: bytes) -> None:
    outcome(lambda: _with_file(data, NodeConfig.load), ConfigError)


def test_the_seeds_are_valid() -> None:
    for data in SEED_MESSAGES:
        decode_message(data)
    assert Block.from_bytes(GENESIS.to_bytes()) == GENESIS
    _genesis_config(EXAMPLE_TOML)
    _with_file(_NODE_TOML, NodeConfig.load)
