"""The signature cache never answers for a message it did not check."""

from __future__ import annotations

from dataclasses import replace

from tclearn.consensus.messages import AgreementVote, agreement_vote_bytes
from tclearn.consensus.verifier import SignatureVerifier
from tclearn.identity import Identity
from tclearn.ledger.records import QualityVote, SignedRecord

ID = Identity.from_seed("m1", b"verifier")


def vote(**scores) -> QualityVote:
    return QualityVote(validator="m1", height=2, proposal_hash="ab" * 32, model_hash="cd" * 32, accept=True,
                       scores=scores).signed_by(ID)


def test_a_cached_record_with_other_fields_is_checked_again():
    v = SignatureVerifier()
    good = vote(g_old=0.0, g_new=1.0)
    assert v.verify_record(good, ID.public_key)
    assert v.verify_record(replace(good), ID.public_key) and v.hits == 1
    for forged in (replace(good, accept=False), replace(good, scores={"g_old": -0.0, "g_new": 1.0}),
                   replace(good, scores={"g_old": 0, "g_new": 1.0}), replace(good, height=3)):
        assert not v.verify_record(forged, ID.public_key)
    assert v.checks == 5


def test_the_fast_vote_encoding_is_the_canonical_one():
    for args in (("m1", 1, "block", 0, "prevote", "ab" * 32), ("x" * 60, 10**12, "seal", 9999, "precommit", "0" * 64)):
        record = AgreementVote(validator=args[0], height=args[1], instance=args[2], round=args[3], phase=args[4],
                               value=args[5])
        assert agreement_vote_bytes(*args) == SignedRecord.signing_bytes(record)
