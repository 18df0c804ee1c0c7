"""Encrypted training with masked refreshes, and validation of an encrypted increment by the quality rule."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import tenseal as ts

from tclearn.he.authority import ACTION_REFRESH, HEAuthority
from tclearn.he.errors import DecryptionRefused
from tclearn.he.logreg import load_breast_cancer_coalition, plain_epoch, plain_train
from tclearn.he.logreg_encrypted import MASK_BOUND
from tclearn.he.member import HEMember
from tclearn.he.validation import committee_accepts, judge_encrypted_candidate
from tclearn.vault.journal import Journal

LR = 0.05


@pytest.fixture(scope="module")
def coalition() -> Any:
    return load_breast_cancer_coalition(4, seed=0)


def _xy(d: Any, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    return d.x.numpy().astype(np.float64)[:n], d.y.numpy()[:n]


def test_an_encrypted_epoch_matches_plaintext_and_refreshes_are_masked(secret_ctx: Any, public_ctx: Any,
                                                                       journal: Journal, coalition: Any) -> None:
    seen: list[np.ndarray] = []

    class Watching(HEAuthority):  # what the supervisor gets to see during a refresh
        def refresh(self, member: str, masked: bytes, ref: str = "") -> bytes:
            seen.append(np.array(ts.ckks_vector_from(self.ctx, masked).decrypt()))
            return super().refresh(member, masked, ref)

    authority = Watching(secret_ctx, journal, refresh_budget=2)
    w0 = np.zeros(32)
    x, y = _xy(coalition.partners[0], 100)
    member = HEMember("hospital-a", public_ctx, seed=7)
    enc = member.train_logreg(member.load_logreg(authority.encrypt_logreg("lr-0", w0)), x, y, epochs=2, lr=LR,
                              refresh=authority.refresh)
    plain = plain_epoch(plain_epoch(w0, x, y, LR), x, y, LR)
    got = np.array(ts.ckks_vector_from(secret_ctx, enc.serialize()).decrypt())
    assert np.abs(got - plain).max() < 1e-3
    # the supervisor saw w + mask, far from w: the mask dominates every coordinate
    assert len(seen) == 2 and np.median(np.abs(seen[1] - plain)) > MASK_BOUND / 10
    assert [e.action for e in journal.entries].count(ACTION_REFRESH) == 2
    with pytest.raises(DecryptionRefused):  # the refresh budget (2) is used
        authority.refresh("hospital-a", enc.serialize())
    assert journal.entries[-1].outcome == "refused"


@pytest.mark.slow
def test_an_encrypted_increment_is_accepted_by_validators_and_a_degrading_one_rejected(
        authority: HEAuthority, public_ctx: Any, coalition: Any) -> None:
    gx, gy = _xy(coalition.test, 80)
    head_w = plain_train(np.zeros(32), *_xy(coalition.partners[3]), epochs=3, lr=LR)  # the chain's head
    head_bytes = authority.encrypt_logreg("head", head_w)
    trainer = HEMember("hospital-a", public_ctx, seed=1)
    x, y = _xy(coalition.partners[0], 120)
    head = trainer.load_logreg(head_bytes)
    honest = trainer.train_logreg(head, x, y, epochs=2, lr=LR, refresh=authority.refresh)
    published = {"honest": authority.register_candidate("honest", "head", honest.serialize(), "hospital-a"),
                 "degrading": authority.register_candidate("degrading", "head", (head * -1.0).serialize(), "mallory")}
    for cand_id, expected in (("honest", True), ("degrading", False)):
        cand = trainer.load_logreg(published[cand_id])
        votes = []
        for i, name in enumerate(("hospital-b", "hospital-c", "hospital-d")):
            validator = HEMember(name, public_ctx, seed=10 + i)
            local = _xy(coalition.partners[1 + i % 3], 30)
            votes.append(judge_encrypted_candidate(validator, authority.decrypt, ("head", head), (cand_id, cand),
                                                   (gx, gy), local, lam=0.97))
        assert committee_accepts(votes) is expected, [v.scores for v in votes]
