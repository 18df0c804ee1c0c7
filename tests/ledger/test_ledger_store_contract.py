"""One contract, every ChainStore: in memory and SQLite (as Flower's linkstate_test)."""

from __future__ import annotations

import abc
import random
from dataclasses import replace
from pathlib import Path

import pytest

from chainmaker import ChainMaker, random_chain
from tclearn.errors import InvalidBlockError
from tclearn.ledger.block import Block
from tclearn.ledger.sqlite_store import SQLiteChainStore
from tclearn.ledger.store import ChainStore, MemoryChainStore


@pytest.fixture(scope="module")
def chain() -> list[Block]:
    return random_chain(11, 12).blocks


@pytest.fixture(scope="module")
def other_chain() -> list[Block]:
    """Another coalition's chain: same indices, different hashes."""
    return random_chain(12, 6, key_seed=b"another coalition").blocks


class StoreContract(abc.ABC):
    """Every test here runs against each store; a subclass says how to make one."""

    @abc.abstractmethod
    def make_store(self, tmp_path: Path) -> ChainStore: ...

    @pytest.fixture
    def store(self, tmp_path: Path):  # type: ignore[no-untyped-def]
        s = self.make_store(tmp_path)
        yield s
        s.close()

    def fill(self, store: ChainStore, blocks: list[Block]) -> None:
        for b in blocks:
            store.append(b)

    def test_an_empty_store_has_no_head(self, store: ChainStore) -> None:
        assert store.height() == -1
        assert store.head() is None
        assert len(store) == 0
        assert list(store) == []
        assert store.blocks_from(0) == []
        with pytest.raises(IndexError):
            store.get(0)

    def test_appended_blocks_read_back_equal(self, store: ChainStore, chain: list[Block]) -> None:
        self.fill(store, chain)
        assert store.height() == len(chain) - 1
        assert len(store) == len(chain)
        assert store.head() == chain[-1]
        assert [store.get(i) for i in range(len(chain))] == chain
        assert list(store) == chain

    def test_blocks_from_clamps_its_start(self, store: ChainStore, chain: list[Block]) -> None:
        self.fill(store, chain)
        assert store.blocks_from(5) == chain[5:]
        assert store.blocks_from(-3) == chain
        assert store.blocks_from(len(chain)) == []

    def test_missing_indices_raise_index_error(self, store: ChainStore, chain: list[Block]) -> None:
        self.fill(store, chain[:3])
        for index in (-1, 3, 100):
            with pytest.raises(IndexError):
                store.get(index)

    def test_the_first_block_must_be_genesis(self, store: ChainStore, chain: list[Block]) -> None:
        with pytest.raises(InvalidBlockError) as err:
            store.append(chain[1])
        assert err.value.index == 1
        assert store.height() == -1

    @pytest.mark.parametrize("what", ["skip", "repeat", "stale", "foreign", "unsealed", "mis-hashed"])
    def test_a_block_that_does_not_follow_the_head_is_refused_and_nothing_changes(
        self, store: ChainStore, chain: list[Block], other_chain: list[Block], what: str
    ) -> None:
        self.fill(store, chain[:4])
        bad = {
            "skip": chain[5],  # index too far
            "repeat": chain[3],  # the head again
            "stale": chain[2],  # an old block
            "foreign": other_chain[4],  # right index, another parent
            "unsealed": replace(chain[4], block_hash=""),
            "mis-hashed": replace(chain[4], block_hash=chain[5].block_hash),
        }[what]
        with pytest.raises(InvalidBlockError):
            store.append(bad)
        assert store.height() == 3
        assert list(store) == chain[:4]
        store.append(chain[4])  # and the store still takes the right block
        assert store.head() == chain[4]

    def test_a_tampered_but_resealed_block_with_the_right_link_is_taken(self, store: ChainStore) -> None:
        """The store checks linkage only; signatures are the verifier's job (documented in store.py)."""
        maker = ChainMaker(rng=random.Random(3))
        g = maker.genesis()
        b1 = maker.hyperparams()
        store.append(g)
        forged = replace(b1, timestamp=b1.timestamp + 1).sealed()
        store.append(forged)
        assert store.head() == forged


class TestMemoryStore(StoreContract):
    def make_store(self, tmp_path: Path) -> ChainStore:
        return MemoryChainStore()


class TestSQLiteStore(StoreContract):
    def make_store(self, tmp_path: Path) -> ChainStore:
        return SQLiteChainStore(tmp_path / "chain.db")

    def test_blocks_survive_closing_and_reopening(self, tmp_path: Path, chain: list[Block]) -> None:
        with SQLiteChainStore(tmp_path / "c.db") as store:
            self.fill(store, chain)
        with SQLiteChainStore(tmp_path / "c.db", create=False) as again:
            assert list(again) == chain
            again.append(random_chain(11, 13).blocks[12])
            assert again.height() == 12
