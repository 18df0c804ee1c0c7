"""A proposer's id lists over real TLS: a stalling proposer costs a validator a bounded, shrinking time,
and an honest proposer whose first answer is lost still gets its batch checked (not refused).

The proposer here is a real TLS server on a socket, speaking HTTP as `mode` says; the validator's side is
the node's own `PeerClient` and `BatchIdRegistry`. The registry's deadlines are scaled down (one attempt
0.4 s, the budget 1.6 s) so the test runs in seconds; the logic is the node's.
"""

from __future__ import annotations

import contextlib
import hashlib
import ssl
import sys
import time
from pathlib import Path
from typing import Iterator

import cbor2
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "transport"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from evil_tls import EvilTLSServer  # noqa: E402
from tls_coalition import Coalition, coalition  # noqa: E402,F401

from tclearn.consensus.messages import ProposalMsg  # noqa: E402
from tclearn.data.accounting import BatchIds  # noqa: E402
from tclearn.data.ids import merkle_root  # noqa: E402
from tclearn.identity import Identity  # noqa: E402
from tclearn.ledger.records import EMPTY_IDS_ROOT, Proposal  # noqa: E402
from tclearn.node import batch_ids  # noqa: E402
from tclearn.node.batch_ids import BatchIdRegistry, ids_to_wire  # noqa: E402

IDS = tuple(hashlib.sha256(f"sample-{i}".encode()).hexdigest() for i in range(3))
ATTEMPT_S, BUDGET_S = 0.4, 1.6


def _proposal(tag: str) -> Proposal:
    h = hashlib.sha256(tag.encode()).hexdigest()
    return Proposal(proposer="alice", height=1, prev_hash="1" * 64, parent_model_hash="2" * 64, model_hash=h,
                    increment_hash="3" * 64, sample_count=len(IDS), data_ids_root=merkle_root(IDS),
                    reused_count=0, reused_ids_root=EMPTY_IDS_ROOT).signed_by(Identity.from_seed("alice", b"alice"))


class EvilProposer(EvilTLSServer):
    """alice's TLS server answering `GET /v1/batches/…` as `mode` says (`lost-first`: the first connection is
    read and never answered, later ones get the lists)."""

    def answer(self, tls: ssl.SSLSocket, n: int) -> None:
        body = cbor2.dumps(ids_to_wire(BatchIds(IDS)))
        if self.mode == "stall" or (self.mode == "lost-first" and n == 1):
            self.stop.wait(30)
            return
        if self.mode == "trickle":  # a true answer, one byte every 0.3 s
            tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/cbor\r\n"
                        b"Content-Length: %d\r\n\r\n" % len(body))
            for i in range(len(body)):
                if self.stop.wait(0.3):
                    return
                tls.sendall(body[i:i + 1])
            return
        tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/cbor\r\nConnection: close\r\n"
                    b"Content-Length: %d\r\n\r\n" % len(body) + body)
        tls.close()


@pytest.fixture()
def scaled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batch_ids, "BATCH_FETCH_DEADLINE_S", ATTEMPT_S)
    monkeypatch.setattr(batch_ids, "BATCH_CLAIM_BUDGET_S", BUDGET_S)
    monkeypatch.setattr(batch_ids, "BATCH_RETRY_PAUSE_S", 0.05)


@contextlib.contextmanager
def _proposer(coalition: Coalition, mode: str) -> Iterator[EvilProposer]:
    server = EvilProposer(coalition, mode)
    try:
        yield server
    finally:
        server.close()


@pytest.mark.parametrize("mode", ["stall", "trickle"])
def test_a_stalling_proposer_costs_a_bounded_shrinking_time_and_its_batch_is_refused(
        coalition: Coalition, scaled: None, tmp_path: Path, mode: str) -> None:
    with _proposer(coalition, mode) as server:
        client = coalition.client(f"https://127.0.0.1:{server.port}", coalition.bob, retries=0, timeout_s=5.0,
                                  expected_member="alice")
        reg = BatchIdRegistry(tmp_path / "ids", lambda e, **f: None)
        spent = []
        for k in range(3):
            p = _proposal(f"{mode}-{k}")
            reg.note(ProposalMsg(p))
            t0 = time.monotonic()
            reg.fetch_for(p.model_hash, {"alice": client})
            spent.append(time.monotonic() - t0)
            with pytest.raises(Exception, match="served no id lists"):
                reg.check(p.model_hash)
        assert BUDGET_S - ATTEMPT_S < spent[0] < BUDGET_S + 0.5, spent
        assert spent[1] < BUDGET_S / 2 + 0.5 and spent[2] < ATTEMPT_S + 0.5, spent
        assert server.connections <= 10  # a few attempts (7 here), not a flood


def test_an_honest_proposer_whose_first_answer_is_lost_has_its_batch_checked(
        coalition: Coalition, scaled: None, tmp_path: Path) -> None:
    with _proposer(coalition, "lost-first") as server:
        client = coalition.client(f"https://127.0.0.1:{server.port}", coalition.bob, retries=0, timeout_s=5.0,
                                  expected_member="alice")
        reg = BatchIdRegistry(tmp_path / "ids", lambda e, **f: None)
        p = _proposal("honest")
        reg.note(ProposalMsg(p))
        reg.fetch_for(p.model_hash, {"alice": client})
        reg.check(p.model_hash)  # the lists came on the second attempt: nothing to refuse
        assert server.connections == 2
