"""Finding 5: "send me one block" reads that block, not the whole chain.

Before: `ServeBlocks` and `GET /v1/blocks` called `store.blocks_from(i)`, which
reads and decodes every block from i to the head (523 ms at 5,000 blocks,
under the core lock), then kept the first few.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ledger"))

from chainmaker import random_chain  # noqa: E402

import tclearn.ledger.sqlite_store as sqlite_store  # noqa: E402
from tclearn.consensus.actions import ServeBlocks  # noqa: E402
from tclearn.consensus.messages import BlocksResponse  # noqa: E402
from tclearn.ledger.sqlite_store import SQLiteChainStore  # noqa: E402
from tclearn.member.driver import MemberDriver  # noqa: E402

LENGTH = 120


class _Sink:
    def __init__(self) -> None:
        self.sent: list[tuple[str, Any]] = []

    def send(self, to: str, message: Any) -> None:
        self.sent.append((to, message))


class _Clock:
    def now_ms(self) -> int:
        return 1_700_000_000_000


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory):
    maker = random_chain(5, LENGTH)
    path = tmp_path_factory.mktemp("chain") / "chain.sqlite"
    with SQLiteChainStore(path) as s:
        for b in maker.blocks:
            s.append(b)
    s = SQLiteChainStore(path)
    yield maker, s
    s.close()


def _count_decodes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    seen: list[int] = []
    real = sqlite_store._decode_row

    def counting(index: int, block_hash: object, data: object) -> Any:
        seen.append(index)
        return real(index, block_hash, data)

    monkeypatch.setattr(sqlite_store, "_decode_row", counting)
    return seen


def test_the_store_reads_a_range_without_the_rest(store, monkeypatch: pytest.MonkeyPatch) -> None:
    maker, s = store
    seen = _count_decodes(monkeypatch)
    got = s.blocks_range(3, 2)
    assert [b.index for b in got] == [3, 4] and seen == [3, 4]
    assert [b.block_hash for b in s.blocks_range(LENGTH - 2, 32)] == [b.block_hash for b in maker.blocks[-2:]]
    assert s.blocks_range(LENGTH + 5, 3) == [] and s.blocks_range(0, 0) == []


def test_serving_one_block_decodes_one_block(store, monkeypatch: pytest.MonkeyPatch) -> None:
    maker, s = store
    sink = _Sink()
    driver = MemberDriver(maker.identities["m0"], s, transport=sink, clock=_Clock())
    seen = _count_decodes(monkeypatch)
    driver._execute([ServeBlocks("m1", 1, 1)])
    assert len(seen) <= 2, f"decoded {len(seen)} blocks to serve one"
    (to, message), = sink.sent
    assert to == "m1" and isinstance(message, BlocksResponse) and [b.index for b in message.blocks] == [1]
