"""What only the SQLite store must do: refuse what is not a chain, survive damage, share with readers."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from chainmaker import random_chain
from tclearn.errors import InvalidBlockError, StoreError
from tclearn.ledger.block import Block
from tclearn.ledger.sqlite_store import MAGIC, SQLiteChainStore, open_store
from tclearn.ledger.verify import verify_chain


@pytest.fixture(scope="module")
def chain() -> list[Block]:
    return random_chain(21, 8).blocks


@pytest.fixture
def db(tmp_path: Path, chain: list[Block]) -> Path:
    path = tmp_path / "chain.db"
    with SQLiteChainStore(path) as store:
        for b in chain:
            store.append(b)
    return path


def raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


# --- what is not a chain ------------------------------------------------------

def test_a_missing_file_is_not_created_without_create(tmp_path: Path) -> None:
    path = tmp_path / "nothing.db"
    for kwargs in ({}, {"read_only": True}):
        with pytest.raises(StoreError, match="no chain store"):
            open_store(path, **kwargs)
    assert not path.exists()


def test_create_makes_an_empty_chain(tmp_path: Path) -> None:
    with open_store(tmp_path / "new.db", create=True) as store:
        assert store.height() == -1 and store.genesis_hash is None
    with open_store(tmp_path / "new.db") as store:
        assert store.height() == -1


def test_a_directory_is_not_a_chain(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="is a directory"):
        open_store(tmp_path, create=True)


def test_a_file_in_a_missing_directory_cannot_be_created(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        open_store(tmp_path / "no" / "such" / "chain.db", create=True)


@pytest.mark.parametrize("content", [b"not a database at all, just text\n" * 20, bytes(range(256)) * 8])
def test_a_file_that_is_not_sqlite_is_refused_untouched(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(content)
    for kwargs in ({}, {"create": True}, {"read_only": True}):
        with pytest.raises(StoreError, match="not an SQLite database"):
            open_store(path, **kwargs)
    assert path.read_bytes() == content


def test_another_applications_database_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    conn = raw(path)
    conn.execute("CREATE TABLE users (name TEXT)")
    conn.execute("INSERT INTO users VALUES ('alice')")
    conn.close()
    before = path.read_bytes()
    for kwargs in ({}, {"create": True}, {"read_only": True}):
        with pytest.raises(StoreError, match="not a TCLearn chain"):
            open_store(path, **kwargs)
    assert path.read_bytes() == before
    conn = raw(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # not switched to WAL
    conn.close()


def test_an_empty_database_is_not_a_chain_unless_created(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.write_bytes(b"")
    with pytest.raises(StoreError, match="empty"):
        open_store(path)
    with open_store(path, create=True) as store:
        assert store.height() == -1


def test_a_wrong_mark_or_schema_version_is_refused(db: Path) -> None:
    conn = raw(db)
    conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(StoreError, match="schema version '99'"):
        open_store(db)
    conn.execute("UPDATE meta SET value = 'something-else' WHERE key = 'magic'")
    with pytest.raises(StoreError, match="not a TCLearn chain"):
        open_store(db)
    conn.execute(f"UPDATE meta SET value = '{MAGIC}' WHERE key = 'magic'")
    conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    conn.close()
    open_store(db).close()


def test_a_genesis_hash_that_disagrees_with_block_0_is_damage(db: Path) -> None:
    conn = raw(db)
    conn.execute("UPDATE meta SET value = ? WHERE key = 'genesis_hash'", ("f" * 64,))
    conn.close()
    with pytest.raises(StoreError, match="damaged"):
        open_store(db)


# --- durability and the append-only rule ---------------------------------------

def test_the_store_is_durable_wal_and_marked(db: Path, chain: list[Block]) -> None:
    with open_store(db) as store:
        assert store._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert store.genesis_hash == chain[0].block_hash
    conn = raw(db)
    assert conn.execute("PRAGMA application_id").fetchone()[0] == 0x54434C4E
    conn.close()


def test_a_store_opened_not_durable_skips_the_fsync_only_and_its_chain_reads_back(db: Path, chain: list[Block]) -> None:
    with SQLiteChainStore(db, durable=False) as store:
        assert store._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    with open_store(db) as store:  # the default again, and every block there
        assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2
        assert [b.block_hash for b in store] == [b.block_hash for b in chain]


def test_the_demo_s_simulated_members_keep_their_chains_without_fsync(tmp_path: Path) -> None:
    from tclearn.demo.engine import DemoOptions, run_coalition

    seen: list[int] = []

    def watch(observer: str, stores: dict[str, SQLiteChainStore], journal: object) -> None:
        seen.extend(s._conn.execute("PRAGMA synchronous").fetchone()[0] for s in stores.values())

    run_coalition(DemoOptions(task="digits", partners=3, rounds=2, seed=0, centralized=False, out=tmp_path),
                  watch=watch)
    assert seen == [1, 1, 1]


def test_sql_cannot_rewrite_or_delete_blocks(db: Path) -> None:
    conn = raw(db)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("UPDATE blocks SET data = x'00' WHERE idx = 1")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("DELETE FROM blocks WHERE idx = 7")
    conn.close()


def test_a_read_only_store_refuses_to_append(db: Path, chain: list[Block]) -> None:
    extra = random_chain(21, 9).blocks[8]
    with open_store(db, read_only=True) as store:
        with pytest.raises(StoreError, match="read-only"):
            store.append(extra)
        assert list(store) == chain


def test_reading_a_closed_chain_leaves_the_directory_as_it_was(db: Path, chain: list[Block]) -> None:
    before = {p.name: p.read_bytes() for p in db.parent.iterdir()}
    for _ in range(2):  # a WAL reader would leave -wal/-shm files, and the shm index changes between reads
        with open_store(db, read_only=True) as store:
            assert list(store) == chain
    assert {p.name: p.read_bytes() for p in db.parent.iterdir()} == before == {db.name: before[db.name]}


# --- damage is named, never a crash ---------------------------------------------

def _overwrite(db: Path, index: int, data: bytes) -> None:
    conn = raw(db)
    conn.execute("DROP TRIGGER blocks_no_update")
    conn.execute("UPDATE blocks SET data = ? WHERE idx = ?", (data, index))
    conn.close()


@pytest.mark.parametrize("damage", ["garbage", "truncated", "flipped", "other block", "text"])
def test_a_damaged_row_is_an_invalid_block_naming_it(db: Path, chain: list[Block], damage: str) -> None:
    good = chain[4].to_bytes()
    data = {
        "garbage": b"\xff\x00garbage",
        "truncated": good[: len(good) // 2],
        "flipped": good[:100] + bytes([good[100] ^ 0x01]) + good[101:],
        "other block": chain[5].to_bytes(),
        "text": None,
    }[damage]
    if data is None:
        conn = raw(db)
        conn.execute("DROP TRIGGER blocks_no_update")
        conn.execute("UPDATE blocks SET data = 'a string' WHERE idx = 4")
        conn.close()
    else:
        _overwrite(db, 4, data)
    with open_store(db, read_only=True) as store:
        reads = [lambda: verify_chain(store)]
        if damage != "flipped":  # a flipped bit may still decode: reading checks the form, verifying the hash
            reads += [lambda: store.get(4), lambda: store.blocks_from(2)]
        for read in reads:
            with pytest.raises(InvalidBlockError) as err:
                read()
            assert err.value.index == 4
        assert store.get(3) == chain[3]


def test_a_gap_in_the_rows_is_named(db: Path) -> None:
    conn = raw(db)
    conn.execute("DROP TRIGGER blocks_no_delete")
    conn.execute("DELETE FROM blocks WHERE idx = 3")
    conn.close()
    with open_store(db, read_only=True) as store:
        with pytest.raises(InvalidBlockError) as err:
            list(store)
        assert err.value.index == 3


# --- readers and writers ----------------------------------------------------------

def test_a_reader_is_not_blocked_by_an_open_write_transaction(db: Path, chain: list[Block]) -> None:
    writer = raw(db)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO meta (key, value) VALUES ('note', 'pending')")
    try:
        with open_store(db, read_only=True) as reader:
            assert reader.height() == len(chain) - 1
            assert list(reader) == chain
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_a_reader_sees_each_block_once_committed(tmp_path: Path, chain: list[Block]) -> None:
    path = tmp_path / "c.db"
    with SQLiteChainStore(path) as writer:
        writer.append(chain[0])
        with open_store(path, read_only=True) as reader:
            for i, b in enumerate(chain[1:], start=1):
                assert reader.height() == i - 1
                writer.append(b)
                assert reader.height() == i and reader.get(i) == b
            assert verify_chain(reader).height == len(chain) - 1


def test_two_writers_racing_for_a_height_commit_exactly_one(tmp_path: Path, chain: list[Block]) -> None:
    path = tmp_path / "c.db"
    with SQLiteChainStore(path) as store:
        for b in chain[:3]:
            store.append(b)
    rival = random_chain(22, 4).blocks  # a different block at index 3 (and no shared genesis: the link fails)
    contenders = [chain[3], rival[3]]
    outcomes: list[object] = [None, None]
    barrier = threading.Barrier(2)

    def run(k: int) -> None:
        with SQLiteChainStore(path) as mine:
            barrier.wait()
            try:
                mine.append(contenders[k])
                outcomes[k] = "ok"
            except InvalidBlockError as exc:
                outcomes[k] = exc

    threads = [threading.Thread(target=run, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("ok") == 1
    with open_store(path) as store:
        assert store.height() == 3
        verify_chain(store)
