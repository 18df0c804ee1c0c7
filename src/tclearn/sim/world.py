"""A whole coalition in one process: real drivers, simulated network and clock.

`SimCoalition` is what tests, the benchmark and the demo use. Each member is
a `MemberDriver` — the production driver and core — with its own chain store
and safety store; the coalition hands them `SimTransport`s of one seeded
`SimNetwork` and one `VirtualClock`, and moves time forward a tick at a time:
first the messages due at this tick are delivered, then every live member
ticks. Members can crash (their driver is dropped, their stores survive) and
restart (a new driver rebuilt from those stores).

A `Monitor` (`sim.monitor`) checks the invariants at every commit of an honest
member.
"""

from __future__ import annotations

import random
from typing import Any, Callable, Iterable, Mapping

from tclearn.consensus.evidence import Evidence
from tclearn.consensus.params import ConsensusParams
from tclearn.consensus.verifier import SignatureVerifier
from tclearn.identity import Identity
from tclearn.ledger.block import Block
from tclearn.consensus.messages import BlockVoteMsg
from tclearn.ledger.store import ChainStore, MemoryChainStore
from tclearn.member.driver import MemberDriver
from tclearn.member.interfaces import Evaluator, Trainer
from tclearn.member.safety_store import MemorySafetyStore, SafetyStore
from tclearn.meter import Meter
from tclearn.sim.adversary import ByzantineTransport
from tclearn.sim.monitor import Monitor, QualityOracle
from tclearn.sim.network import FaultModel, SimNetwork, VirtualClock

__all__ = ["SimCoalition"]

class SimCoalition:
    """Members, network and clock of a simulated coalition (see the module docstring)."""

    def __init__(
        self,
        genesis: Block,
        identities: Iterable[Identity],
        *,
        evaluators: Mapping[str, Evaluator],
        trainers: Mapping[str, Trainer | None],
        params: ConsensusParams | None = None,
        rng: random.Random | None = None,
        faults: FaultModel | None = None,
        wire: bool = False,
        byzantine: Mapping[str, set[str]] | None = None,
        skews_ms: Mapping[str, int] | None = None,
        tick_ms: int = 1000,
        stores: Mapping[str, ChainStore] | None = None,
        shared_verifier: bool = True,
        oracle: QualityOracle | None = None,
        on_commit: Callable[[str, Block], None] | None = None,
        meter: Meter | None = None,
    ) -> None:
        """`meter`: where signing, signature checks, chain appends and sent messages are reported (none: not)."""
        self.meter = meter
        self.identities = {i.member_id: (i.metered(meter) if meter is not None else i) for i in identities}
        self.members = list(self.identities)
        self.genesis = genesis
        self.rng = rng or random.Random(0)
        self.clock = VirtualClock(tick_ms=tick_ms, start_ms=genesis.timestamp)
        self.network = SimNetwork(self.rng, faults, wire)
        self.params = params or ConsensusParams()
        self.evaluators = dict(evaluators)
        self.trainers = dict(trainers)
        self.byzantine = {m: set(b) for m, b in (byzantine or {}).items()}
        self.honest = set(self.members) - set(self.byzantine)
        self.skews = dict(skews_ms or {})
        self.stores: dict[str, ChainStore] = dict(stores) if stores else {m: MemoryChainStore() for m in self.members}
        self.safety: dict[str, SafetyStore] = {m: MemorySafetyStore() for m in self.members}
        self.verifier = SignatureVerifier(meter=meter) if shared_verifier else None
        self.monitor = Monitor(genesis, self.honest, oracle)
        self.evidence: list[tuple[str, Evidence]] = []
        self.on_commit = on_commit
        self.drivers: dict[str, MemberDriver | None] = {}
        self.lies: dict[str, ByzantineTransport] = {}
        self.tick = 0
        self.network.observers.append(
            lambda sender, to, m: self.monitor.on_block_vote(m.vote) if isinstance(m, BlockVoteMsg) else None)
        for m in self.members:
            self._boot(m)

    # --- members -------------------------------------------------------------------
    def _boot(self, member: str, verify_on_start: bool = False) -> None:
        transport: Any = self.network.endpoint(member)
        if member in self.byzantine:
            transport = ByzantineTransport(transport, self.identities[member], self.byzantine[member],
                                           random.Random(self.rng.random()))
            self.lies[member] = transport

        def commit(block: Block, member: str = member) -> None:
            self.monitor.on_commit(member, block)
            if self.on_commit is not None:
                self.on_commit(member, block)

        driver = MemberDriver(
            self.identities[member], self.stores[member], transport=transport,
            clock=self.clock.skewed(self.skews.get(member, 0)), evaluator=self.evaluators.get(member),
            trainer=self.trainers.get(member), genesis=self.genesis, safety=self.safety[member],
            params=self.params,
            verifier=self.verifier if self.verifier is not None else SignatureVerifier(meter=self.meter),
            verify_on_start=verify_on_start, on_commit=commit,
            on_evidence=lambda e, member=member: self.evidence.append((member, e)), meter=self.meter,
        )
        self.drivers[member] = driver
        driver.start()

    def crash(self, member: str) -> None:
        """The member stops: its in-memory state is lost, its stores survive."""
        self.drivers[member] = None
        self.network.down.add(member)

    def restart(self, member: str, store: ChainStore | None = None, safety: SafetyStore | None = None,
                verify_on_start: bool = False) -> None:
        """A new driver for the member, rebuilt from its chain store and safety snapshot.

        Pass `store` / `safety` to restart from freshly opened files (what a real restart does).
        """
        if self.drivers.get(member) is not None:
            return
        if store is not None:
            self.stores[member] = store
        if safety is not None:
            self.safety[member] = safety
        self.network.down.discard(member)
        self._boot(member, verify_on_start)

    def is_up(self, member: str) -> bool:
        return self.drivers.get(member) is not None

    # --- time ------------------------------------------------------------------------
    def step(self) -> None:
        """One tick: deliver what is due, then tick every live member."""
        self.tick += 1
        self.clock.tick = self.tick
        for sender, to, payload in self.network.due(self.tick):
            driver = self.drivers.get(to)
            if driver is None:
                continue
            if isinstance(payload, bytes):
                driver.receive_bytes(sender, payload)
            else:
                driver.receive(sender, payload)
        for m in self.members:
            driver = self.drivers.get(m)
            if driver is not None:
                driver.tick()
                self._watch_decisions(m, driver)

    def _watch_decisions(self, member: str, driver: MemberDriver) -> None:
        work = driver.status().work
        if work.block_decided is not None:
            self.monitor.on_decision(member, work.height, "block", work.block_decided)
        if work.seal_decided is not None:
            self.monitor.on_decision(member, work.height, "seal", work.seal_decided)

    def run(self, ticks: int) -> None:
        for _ in range(ticks):
            self.step()

    def run_until(self, height: int, max_ticks: int, members: Iterable[str] | None = None,
                  stop: Callable[[], bool] | None = None) -> bool:
        """Step until every listed member (default: the honest ones that are up) reached `height`.

        `stop`: asked after every step; True ends the run early (it returns False then).
        """
        watched = list(members) if members is not None else None
        for _ in range(max_ticks):
            if self._reached(height, watched):
                return True
            self.step()
            if stop is not None and stop():
                return False
        return self._reached(height, watched)

    def _reached(self, height: int, watched: list[str] | None) -> bool:
        names = watched if watched is not None else [m for m in self.honest if self.is_up(m)]
        return all((d := self.drivers.get(m)) is not None and d.height >= height for m in names)

    # --- results -----------------------------------------------------------------------
    def heights(self) -> dict[str, int]:
        return {m: self.stores[m].height() for m in self.members}

    def chain(self, member: str) -> list[Block]:
        return list(self.stores[member])

    def rounds(self) -> int:
        """Block-agreement rounds used, summed over the committed heights (as honest validators saw them)."""
        per_height: dict[int, int] = {}
        for m in self.honest:
            d = self.drivers.get(m)
            if d is None:
                continue
            for h, r in d.rounds_by_height().items():
                per_height[h] = max(per_height.get(h, 0), r)
        return sum(per_height.values())
