"""A member restarted from its files: the SQLite chain and the safety snapshot on disk."""

from __future__ import annotations

from tclearn.ledger.sqlite_store import SQLiteChainStore
from tclearn.member.safety_store import FileSafetyStore
from tclearn.sim.build import synthetic_coalition
from tclearn.sim.network import FaultModel


def test_a_member_restarts_from_its_sqlite_chain_and_safety_file_and_rejoins(tmp_path):
    stores = {f"m{i}": SQLiteChainStore(tmp_path / f"m{i}.sqlite") for i in range(5)}
    setup = synthetic_coalition(5, 3, seed=21, faults=FaultModel(drop=0.05, delay_min=1, delay_max=3))
    c = setup.coalition
    # swap in the durable stores before anything happens (the genesis goes in on boot)
    for m in c.members:
        c.crash(m)
        c.restart(m, store=stores[m], safety=FileSafetyStore(tmp_path / f"{m}.safety"))
    assert c.run_until(3, 400)
    for round_trip in range(2):
        c.crash("m2")
        stores["m2"].close()
        c.run(25)
        stores["m2"] = SQLiteChainStore(tmp_path / "m2.sqlite", create=False)
        c.restart("m2", store=stores["m2"], safety=FileSafetyStore(tmp_path / "m2.safety"), verify_on_start=True)
        assert c.run_until(c.monitor.height + 1, 400)
    assert [b.block_hash for b in stores["m2"]] == [b.block_hash for b in stores["m0"]][: stores["m2"].height() + 1]
    assert not [e for _, e in c.evidence if e.member == "m2"]
    assert not c.monitor.violations
    for s in stores.values():
        s.close()
