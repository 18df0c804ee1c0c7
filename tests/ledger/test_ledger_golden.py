"""The golden chain: fixed seeds and times, pinned hashes and bytes.

A change to the block encoding, to how digests or signatures are formed, or
to genesis's payload changes these bytes: this test fails, and the change is
a new chain format that every member must adopt together. If the change is
deliberate, regenerate the vector and say so in the commit:

    .venv/bin/python tests/ledger/test_ledger_golden.py --write

The chain is built here step by step (not by chainmaker, which may evolve):
genesis, an accepted increment, a rejected candidate, new hyper-parameters,
a revert to genesis's model and a new member, each with a 2/3 certificate.
Ed25519 signatures are deterministic, so the same seeds give the same bytes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from tclearn.identity import Identity
from tclearn.ledger import Block, ChainState, GenesisConfig, MemberInfo, Proposal, QualityVote, build_genesis
from tclearn.ledger.encoding import sha256_hex
from tclearn.ledger.verify import revert_request_bytes, verify_block, verify_chain

VECTOR = Path(__file__).with_name("golden_chain.json")
SEED = b"tclearn golden vector v1"
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z, in ms

# Pinned here as well as in the JSON file, so a regenerated file shows up in the diff of this test too.
GOLDEN_HASHES = [
    "f8b257aa3265bedfeb62f8cd256ffb857ed4a0b319a5fc17472e3aa48973842b",
    "e2e3f93be61ccde1695e5df8f05da71b70a018d5727a8c8719b4eab5537bf800",
    "c103f54b2de960c947a37b58de0d67c7d72b3cd0c7c121ade184b24239d3c8aa",
    "d8b71e7767da408df9b778aa679c1c781ba65e99af10c095abeca042b9d27a61",
    "c8059cf49bf3a25b1ec572dd70125d6fee04ccfd5d1c8d0afa35379984fc0b51",
    "ecff9838f7a35e578c433761e0a62b1a740ca7427df9dee4ba2eeaaf03f35919",
]


def h(label: str) -> str:
    return sha256_hex(label.encode())


def golden_chain() -> list[Block]:
    ids = {m: Identity.from_seed(m, SEED) for m in ("alice", "bob", "carol", "dave")}
    config = GenesisConfig(
        coalition_id="golden", level="A", members=tuple(MemberInfo(m, i.public_key) for m, i in ids.items()),
        task="digits", architecture="tclearn.DigitsCNN", model_config={"channels": [16, 32], "hidden": 64},
        model_seed=1, hyperparams={"learning_rate": 0.05, "optimizer": "sgd", "epochs": 1, "min_batch_size": 8},
        lam=0.95, committee_size=3, test_set_hash=h("test set G"), revert_authorized=("alice",),
    )
    chain = [build_genesis(config, h("model 0"), ids["alice"], T0)]
    state = verify_chain(chain)

    def seal(state: ChainState, kind: str, general: str, voters: list[str], **fields: Any) -> Block:
        fields.setdefault("model_hash", state.head_model_hash)
        fields.setdefault("contributor", None)
        fields.setdefault("data_ids_root", chain[-1].data_ids_root)
        fields.setdefault("quality_votes", ())
        fields.setdefault("payload", {})
        block = Block(index=state.height + 1, timestamp=T0 + 60_000 * (state.height + 1), kind=kind,
                      prev_hash=state.head_hash, strengths=state.strengths(), block_votes=(), general=general,
                      **fields).signed_by(ids[general])
        return block.with_votes([block.vote(ids[v]) for v in voters])

    def candidate(state: ChainState, proposer: str, samples: int, accept: bool, validators: list[str]) -> Block:
        index = state.height + 1
        proposal = Proposal(
            proposer=proposer, height=index, prev_hash=state.head_hash, parent_model_hash=state.head_model_hash,
            model_hash=h(f"model {index}"), increment_hash=h(f"increment {index}"), sample_count=samples,
            data_ids_root=h(f"data {index}"),
        ).signed_by(ids[proposer])
        votes = tuple(
            QualityVote(validator=v, height=index, proposal_hash=proposal.proposal_hash,
                        model_hash=proposal.model_hash, accept=accept,
                        scores={"g_old": 0.75, "g_new": 0.8125 if accept else 0.5, "l_old": 0.5, "l_new": 0.625,
                                "n": 64}).signed_by(ids[v])
            for v in validators
        )
        return seal(state, "increment" if accept else "rejected", validators[0], validators,
                    model_hash=proposal.model_hash if accept else state.head_model_hash, contributor=proposer,
                    data_ids_root=proposal.data_ids_root, quality_votes=votes,
                    payload={"proposal": proposal.to_dict()})

    steps = [
        lambda s: candidate(s, "bob", 96, True, ["alice", "carol", "dave"]),
        lambda s: candidate(s, "carol", 32, False, ["alice", "bob", "dave"]),
        lambda s: seal(s, "hyperparams", "dave", ["bob", "carol", "dave"],
                       payload={"hyperparams": {"learning_rate": 0.025, "epochs": 2}}),
        lambda s: seal(s, "revert", "bob", ["alice", "bob", "carol"], model_hash=s.model_by_index[0], payload={
            "target": 0, "requester": "alice",
            "request_signature": ids["alice"].sign(revert_request_bytes("alice", 0, s.height + 1))}),
        lambda s: seal(s, "membership", "carol", ["alice", "carol", "dave"], payload={
            "add": [{"id": "erin", "public_key": Identity.from_seed("erin", SEED).public_key}], "remove": []}),
    ]
    for step in steps:
        block = step(state)
        state = verify_block(state, block)
        chain.append(block)
    return chain


def vector_of(chain: list[Block]) -> list[dict[str, str]]:
    return [{"kind": b.kind, "hash": b.block_hash, "bytes": b.to_bytes().hex()} for b in chain]


def test_the_golden_chain_is_built_byte_for_byte_as_pinned() -> None:
    pinned = json.loads(VECTOR.read_text())
    built = vector_of(golden_chain())
    assert [b["hash"] for b in built] == GOLDEN_HASHES
    assert [p["hash"] for p in pinned] == GOLDEN_HASHES
    for mine, theirs in zip(built, pinned):
        assert mine == theirs, f"block {theirs['kind']} encodes differently"


def test_the_pinned_bytes_decode_to_a_valid_chain_that_encodes_back() -> None:
    pinned = json.loads(VECTOR.read_text())
    blocks = [Block.from_bytes(bytes.fromhex(p["bytes"])) for p in pinned]
    state = verify_chain(blocks, genesis_hash=GOLDEN_HASHES[0])
    assert state.height == len(GOLDEN_HASHES) - 1
    assert [b.kind for b in blocks] == ["genesis", "increment", "rejected", "hyperparams", "revert", "membership"]
    for b, p in zip(blocks, pinned):
        assert b.compute_hash() == b.block_hash == p["hash"]
        assert b.to_bytes().hex() == p["bytes"]
    assert state.hyperparams["learning_rate"] == 0.025 and "erin" in state.members
    assert state.head_model_hash == blocks[0].model_hash  # reverted
    assert state.strengths() == {"alice": 0.2, "bob": 1.2, "carol": 0.2, "dave": 0.2, "erin": 0.2}  # 1/N + D_i/D


if __name__ == "__main__" and "--write" in sys.argv:
    vector = vector_of(golden_chain())
    VECTOR.write_text(json.dumps(vector, indent=1) + "\n")
    print("GOLDEN_HASHES = [\n" + "".join(f'    "{v["hash"]}",\n' for v in vector) + "]")
