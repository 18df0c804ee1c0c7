"""The two chain fields that anchor the vault journal: `Proposal.vault_head` and genesis `supervisor_key`.

Both are optional: left out of the bytes while unset, so level-A chains keep
their hashes (the golden vector, tests/ledger/test_ledger_golden.py, pins that).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tclearn.errors import ConfigError, EncodingError
from tclearn.identity import Identity
from tclearn.ledger.encoding import sha256_hex
from tclearn.ledger.genesis import GenesisConfig, MemberInfo, build_genesis, parse_config
from tclearn.ledger.records import Proposal
from tclearn.vault.anchors import chain_anchors, genesis_supervisor_key
from tclearn.vault.errors import IntegrityError
from tclearn.vault.journal import GENESIS_PREV, Entry, check_anchors

IDS = {m: Identity.from_seed(m, b"anchor fields") for m in ("m0", "m1", "m2")}


def _h(label: str) -> str:
    return sha256_hex(label.encode())


def _proposal(**kw: object) -> Proposal:
    fields = dict(proposer="m1", height=1, prev_hash=_h("prev"), parent_model_hash=_h("p"), model_hash=_h("c"),
                  increment_hash=_h("i"), sample_count=8, data_ids_root=_h("d"))
    fields.update(kw)
    return Proposal(**fields).signed_by(IDS["m1"])  # type: ignore[arg-type]


def test_vault_head_is_left_out_of_the_bytes_when_unset_and_signed_when_set() -> None:
    plain = _proposal()
    assert "vault_head" not in plain.to_dict()
    anchored = _proposal(vault_head=f"12:{_h('entry')}")
    assert anchored.to_dict()["vault_head"] == f"12:{_h('entry')}"
    assert anchored.proposal_hash != plain.proposal_hash
    back = Proposal.from_dict(anchored.to_dict())
    back.verify(IDS["m1"].public_key)
    assert back == anchored
    with pytest.raises(Exception):  # the anchor is under the proposer's signature
        dataclasses.replace(anchored, vault_head=f"13:{_h('entry')}").verify(IDS["m1"].public_key)


@pytest.mark.parametrize("bad", ["12", f"x:{_h('e')}", f"012:{_h('e')}", f"-1:{_h('e')}", "3:ABC", 7,
                                 f"{2**60}:{_h('e')}"])
def test_a_malformed_vault_head_is_refused(bad: object) -> None:
    with pytest.raises(EncodingError):
        _proposal(vault_head=bad)


def _config(**kw: object) -> GenesisConfig:
    base = dict(coalition_id="c", level="B", supervisor="sup",
                members=tuple(MemberInfo(m, i.public_key) for m, i in IDS.items()), task="digits",
                architecture="tclearn.DigitsCNN", model_config={}, model_seed=0,
                hyperparams={"learning_rate": 0.05, "optimizer": "sgd", "epochs": 1, "min_batch_size": 8},
                lam=0.95, committee_size=2, test_set_hash=_h("G"))
    base.update(kw)
    return GenesisConfig(**base)  # type: ignore[arg-type]


def test_genesis_records_the_supervisor_key_only_when_given() -> None:
    key = Identity.from_seed("sup", b"x").public_key
    without = build_genesis(_config(), _h("m"), IDS["m0"], 0)
    with_key = build_genesis(_config(supervisor_key=key), _h("m"), IDS["m0"], 0)
    assert "supervisor_key" not in without.payload["config"]
    assert genesis_supervisor_key(without) is None and genesis_supervisor_key(with_key) == key
    assert GenesisConfig.from_payload(with_key.payload["config"]).supervisor_key == key
    with pytest.raises(ConfigError):
        _config(supervisor_key=b"short")


def test_genesis_toml_takes_a_supervisor_key_in_hex() -> None:
    key = Identity.from_seed("sup", b"x").public_key
    doc = {"coalition": {"id": "c", "level": "B", "supervisor": "sup", "supervisor_key": key.hex()},
           "model": {"task": "digits"}, "consensus": {"lambda": 0.95, "committee_size": 1},
           "hyperparams": {"learning_rate": 0.05, "optimizer": "sgd", "epochs": 1, "min_batch_size": 8},
           "members": [{"id": "m0"}, {"id": "m1"}]}
    assert parse_config(doc)[0].supervisor_key == key
    doc["coalition"]["supervisor_key"] = "zz"
    with pytest.raises(ConfigError):
        parse_config(doc)


def _entries(n: int) -> list[Entry]:
    out, prev = [], GENESIS_PREV
    for i in range(n):
        e = Entry(i, 0, prev, "a", "use", None, "granted", "", "", {}, _h(f"e{i}"), "")
        out.append(e)
        prev = e.hash
    return out


def test_check_anchors_finds_a_cut_and_a_rewrite() -> None:
    entries = _entries(5)
    check_anchors(entries, [f"2:{_h('e2')}", f"4:{_h('e4')}"])
    with pytest.raises(IntegrityError, match="rolled back or cut"):
        check_anchors(entries[:4], [f"4:{_h('e4')}"])
    with pytest.raises(IntegrityError, match="rewritten"):
        check_anchors(entries, [f"3:{_h('other')}"])


def test_chain_anchors_reads_the_proposals_of_increment_and_rejected_blocks() -> None:
    class _B:
        def __init__(self, kind: str, proposal: Proposal | None) -> None:
            self.index = 0
            self.kind, self.payload = kind, ({"proposal": proposal.to_dict()} if proposal else {})

    blocks = [_B("genesis", None), _B("increment", _proposal(vault_head=f"3:{_h('a')}")),
              _B("rejected", _proposal(vault_head=f"7:{_h('b')}")), _B("increment", _proposal()),
              _B("increment", _proposal(vault_head=f"3:{_h('a')}"))]
    assert chain_anchors(blocks) == [f"3:{_h('a')}", f"7:{_h('b')}"]  # type: ignore[arg-type]


def test_a_false_anchor_is_reported_with_the_block_and_proposer_that_recorded_it(tmp_path: Path) -> None:
    from tclearn.vault.anchors import verify_journal_against_chain
    from tclearn.vault.journal import Journal

    sup = Identity.from_seed("supervisor", b"anchor fields")
    journal = Journal(tmp_path / "journal.jsonl", sup, lambda: 1_000)
    made = [journal.append("m1", "publish", _h(f"o{i}"), "granted") for i in range(4)]
    journal.close()

    class _B:
        def __init__(self, index: int, kind: str, payload: dict) -> None:  # type: ignore[type-arg]
            self.index, self.kind, self.payload = index, kind, payload

    genesis = _B(0, "genesis", {"config": {"supervisor_key": sup.public_key}})
    good = _B(1, "increment", {"proposal": _proposal(vault_head=f"{made[1].seq}:{made[1].hash}").to_dict()})
    checked = verify_journal_against_chain(tmp_path / "journal.jsonl", [genesis, good])  # type: ignore[list-item]
    assert checked.anchors == [f"1:{made[1].hash}"] and checked.last_anchor_seq == 1
    false = _B(2, "rejected", {"proposal": _proposal(vault_head=f"9:{_h('never')}").to_dict()})
    with pytest.raises(IntegrityError, match=r"recorded by m1's proposal in block 2"):
        verify_journal_against_chain(tmp_path / "journal.jsonl", [genesis, good, false])  # type: ignore[list-item]
    with pytest.raises(IntegrityError, match="not the one genesis records"):
        verify_journal_against_chain(tmp_path / "journal.jsonl", [genesis, good],  # type: ignore[list-item]
                                     supervisor_pub=Identity.from_seed("other", b"x").public_key)
