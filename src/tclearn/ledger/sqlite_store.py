"""The chain on disk: an append-only SQLite file.

Theory of operation. One file holds one chain. A `meta` table marks it as a
TCLearn chain (magic, schema version, genesis hash), so that opening any other
file (not SQLite, another application's database, a directory) fails with a
`StoreError` that says so, and changes nothing. Blocks are rows
`(idx, hash, data)` where `data` is the block's canonical encoding; reads
decode it with `Block.from_bytes`, so a damaged row is an `InvalidBlockError`
naming its block, never a crash.

Durability: the journal is a write-ahead log (WAL) and `synchronous=FULL`,
so an append that returned survives a crash of the process or of the
machine. `durable=False` (`synchronous=NORMAL`: no fsync per append) is for
the demo's simulated members, ten chains in one process on one disk: an
append still survives a crash of the process and the file stays
consistent, but a power cut may take its last blocks, and the run is made
again. An append is one `BEGIN IMMEDIATE` transaction that reads the head
*inside* the transaction, checks the block follows it (`check_follows`), and
inserts: two writers serialise on the database lock, and a refused or
interrupted append leaves the file as it was. Triggers refuse UPDATE and
DELETE on blocks, so even a stray SQL statement cannot rewrite history.

Concurrency: WAL lets readers (the CLI, another process) read while a node
writes; a reader sees whole committed blocks only, and iteration stops at
the head it saw when it began. Opening with `read_only=True` never writes to
the chain. A writer that closes puts the file back in rollback-journal mode,
so reading a chain no node holds open (`tclearn model get`, `chain show`)
leaves no -wal or -shm side files behind; while a node runs they exist anyway.
"""

from __future__ import annotations

import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator
from urllib.parse import quote

from tclearn.errors import InvalidBlockError, StoreError
from tclearn.ledger.block import Block
from tclearn.ledger.store import ChainStore, check_follows

__all__ = ["SQLiteChainStore", "open_store", "MAGIC", "SCHEMA_VERSION"]

MAGIC = "tclearn-chain"
SCHEMA_VERSION = 1
APPLICATION_ID = 0x54434C4E  # "TCLN" in the SQLite header, for file(1) and friends
_BATCH_ROWS = 256

_SCHEMA = f"""
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE blocks (
    idx INTEGER PRIMARY KEY CHECK (idx >= 0),
    hash TEXT NOT NULL UNIQUE,
    data BLOB NOT NULL
);
CREATE TRIGGER blocks_no_update BEFORE UPDATE ON blocks
BEGIN SELECT RAISE(ABORT, 'TCLearn chain blocks are append-only'); END;
CREATE TRIGGER blocks_no_delete BEFORE DELETE ON blocks
BEGIN SELECT RAISE(ABORT, 'TCLearn chain blocks are append-only'); END;
INSERT INTO meta (key, value) VALUES ('magic', '{MAGIC}'), ('schema_version', '{SCHEMA_VERSION}');
PRAGMA application_id = {APPLICATION_ID};
"""


class SQLiteChainStore(ChainStore):
    """A chain in an SQLite file (see the module docstring).

    `create`: make a new, empty chain if `path` does not exist (or is an
    empty database). `read_only`: never write; the file must exist.
    `timeout_s`: how long an append waits for another writer's lock.
    `durable`: fsync every append (see the module docstring); a real node's
    chain always is.
    """

    def __init__(
        self, path: str | Path, *, create: bool = True, read_only: bool = False, timeout_s: float = 30.0,
        durable: bool = True,
    ) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self.durable = durable
        self._lock = threading.RLock()
        self._head_cache: Block | None = None
        self._conn = self._connect(create and not read_only, timeout_s)
        try:
            self._open_schema(create and not read_only)
        except BaseException:
            self._conn.close()
            raise

    # --- opening -----------------------------------------------------------
    def _connect(self, create: bool, timeout_s: float) -> sqlite3.Connection:
        path = self.path
        if path.is_dir():
            raise StoreError(f"{path} is a directory, not a chain store")
        if not path.exists():
            if not create:
                raise StoreError(f"no chain store at {path}")
            if not path.parent.is_dir():
                raise StoreError(f"cannot create {path}: directory {path.parent} does not exist")
        mode = "ro" if self.read_only else ("rwc" if create else "rw")
        uri = f"file:{quote(str(path.absolute()))}?mode={mode}"
        try:
            return sqlite3.connect(uri, uri=True, isolation_level=None, timeout=timeout_s, check_same_thread=False)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open {path}: {exc}") from None

    def _tables(self) -> set[str]:
        try:
            rows = self._conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        except sqlite3.DatabaseError as exc:
            if "not a database" in str(exc) or "malformed" in str(exc):
                raise StoreError(f"{self.path} is not a TCLearn chain: not an SQLite database") from None
            raise StoreError(f"cannot read {self.path}: {exc}") from None
        return {name for (name,) in rows}

    def _open_schema(self, create: bool) -> None:
        tables = self._tables()
        if not tables:
            if not create:
                raise StoreError(f"{self.path} is not a TCLearn chain: the database is empty")
            self._create_schema()
            tables = self._tables()
        if "meta" not in tables or "blocks" not in tables:
            raise StoreError(f"{self.path} is not a TCLearn chain: it is another application's SQLite database")
        meta = self._meta()
        if meta.get("magic") != MAGIC:
            raise StoreError(f"{self.path} is not a TCLearn chain: its meta table lacks the TCLearn mark")
        if meta.get("schema_version") != str(SCHEMA_VERSION):
            raise StoreError(
                f"{self.path}: chain schema version {meta.get('schema_version')!r} is not supported "
                f"(this TCLearn reads version {SCHEMA_VERSION})"
            )
        if not self.read_only:
            with self._sql("set up"):
                self._conn.execute("PRAGMA journal_mode = WAL")
                self._conn.execute(f"PRAGMA synchronous = {'FULL' if self.durable else 'NORMAL'}")
        genesis = meta.get("genesis_hash")
        first = self._row_hash(0)
        if genesis != first:
            raise StoreError(f"{self.path}: damaged chain store: the genesis hash in meta differs from block 0")

    def _create_schema(self) -> None:
        with self._sql("create the chain in"):
            self._conn.execute("PRAGMA journal_mode = WAL")  # outside a transaction, as SQLite requires
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                if not self._tables():  # another process may have created it meanwhile
                    for statement in _SCHEMA.split(";\n"):
                        if statement.strip():
                            self._conn.execute(statement)
                self._conn.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise

    def _meta(self) -> dict[str, str]:
        with self._lock, self._sql("read"):
            return dict(self._conn.execute("SELECT key, value FROM meta").fetchall())

    def _row_hash(self, index: int) -> str | None:
        with self._lock, self._sql("read"):
            row = self._conn.execute("SELECT hash FROM blocks WHERE idx = ?", (index,)).fetchone()
        return None if row is None else row[0]

    @contextmanager
    def _sql(self, doing: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise StoreError(f"cannot {doing} {self.path}: {exc}") from None

    def _rollback(self) -> None:
        try:
            self._conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # no transaction left to roll back (SQLite already did)

    # --- the ChainStore interface -------------------------------------------
    @property
    def genesis_hash(self) -> str | None:
        """The hash of block 0, as recorded when it was appended (None while empty)."""
        return self._meta().get("genesis_hash")

    def append(self, block: Block) -> None:
        if self.read_only:
            raise StoreError(f"{self.path} is open read-only")
        data = block.to_bytes()
        with self._lock, self._sql("append to"):
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                check_follows(self._head_in_transaction(), block)
                self._conn.execute(
                    "INSERT INTO blocks (idx, hash, data) VALUES (?, ?, ?)", (block.index, block.block_hash, data)
                )
                if block.index == 0:
                    self._conn.execute("INSERT INTO meta (key, value) VALUES ('genesis_hash', ?)", (block.block_hash,))
                self._conn.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise
            self._head_cache = block

    def _head_in_transaction(self) -> Block | None:
        row = self._conn.execute("SELECT idx, hash FROM blocks ORDER BY idx DESC LIMIT 1").fetchone()
        if row is None:
            return None
        cached = self._head_cache
        if cached is not None and (cached.index, cached.block_hash) == tuple(row):
            return cached
        return self.get(row[0])

    def get(self, index: int) -> Block:
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise IndexError(index)
        with self._lock, self._sql("read"):
            row = self._conn.execute("SELECT hash, data FROM blocks WHERE idx = ?", (index,)).fetchone()
        if row is None:
            raise IndexError(index)
        return _decode_row(index, row[0], row[1])

    def height(self) -> int:
        with self._lock, self._sql("read"):
            (top,) = self._conn.execute("SELECT MAX(idx) FROM blocks").fetchone()
        return -1 if top is None else int(top)

    def __iter__(self) -> Iterator[Block]:
        return iter(self._blocks_between(0, self.height()))

    def blocks_from(self, start: int) -> list[Block]:
        return list(self._blocks_between(max(0, start), self.height()))

    def blocks_range(self, start: int, count: int) -> list[Block]:
        """At most `count` blocks from index `start`: one ranged SELECT, only those rows decoded."""
        start = max(0, start)
        end = min(self.height(), start + count - 1)
        return list(self._blocks_between(start, end)) if count > 0 else []

    def _blocks_between(self, start: int, end: int) -> Iterator[Block]:
        """Blocks start..end in order, read in batches; a gap is a damaged store."""
        expected = start
        while expected <= end:
            with self._lock, self._sql("read"):
                rows = self._conn.execute(
                    "SELECT idx, hash, data FROM blocks WHERE idx >= ? AND idx <= ? ORDER BY idx LIMIT ?",
                    (expected, end, _BATCH_ROWS),
                ).fetchall()
            if not rows:
                raise InvalidBlockError(expected, "missing from the store")
            for idx, block_hash, data in rows:
                if idx != expected:
                    raise InvalidBlockError(expected, "missing from the store")
                yield _decode_row(idx, block_hash, data)
                expected += 1

    def close(self) -> None:
        with self._lock:
            if not self.read_only:
                try:  # best effort: another connection still open keeps WAL, and that is fine
                    self._conn.execute("PRAGMA journal_mode = DELETE")
                except sqlite3.Error:
                    pass
            self._conn.close()

    def __enter__(self) -> "SQLiteChainStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SQLiteChainStore({str(self.path)!r}{', read_only=True' if self.read_only else ''})"


def _decode_row(index: int, block_hash: object, data: object) -> Block:
    if not isinstance(data, bytes):
        raise InvalidBlockError(index, "stored block is damaged: its data is not a blob")
    try:
        block = Block.from_bytes(data)
    except InvalidBlockError as exc:
        raise InvalidBlockError(index, f"stored block is damaged: {exc.reason}") from None
    if block.index != index:
        raise InvalidBlockError(index, f"stored block is damaged: it says it is block {block.index}")
    if block.block_hash != block_hash:
        raise InvalidBlockError(index, "stored block is damaged: its hash differs from the one recorded")
    return block


def open_store(path: str | Path, create: bool = False, *, read_only: bool = False) -> SQLiteChainStore:
    """Open the chain at `path`; with `create`, make an empty one if there is none.

    Without `create`, a missing file is a `StoreError` (never silently created).
    """
    return SQLiteChainStore(path, create=create, read_only=read_only)
