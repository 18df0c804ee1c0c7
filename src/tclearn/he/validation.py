"""Validation under encryption: the quality rule on scores obtained through supervised decryption.

A validator holds G (shared) and L (its own) in clear, the head and the
candidate encrypted. It computes encrypted predictions of both models on
G ∪ L, has them decrypted by the supervisor (checked and journaled like any
result), turns the logits into per-sample correctness and hands the pairs to
`tclearn.quality.judge`, so level C decides with the very rule levels A and B
use (perf(new) ≥ λ·perf(old), paired test, floors); the committee's majority
decides (`committee_accepts`).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import tenseal as ts

from tclearn.he.authority import DecryptionRequest
from tclearn.he.logreg import sample_scores
from tclearn.he.member import Decryptor, HEMember
from tclearn.quality import Judgement, PairedScores, judge

__all__ = ["encrypted_scores", "judge_encrypted_candidate", "committee_accepts"]


def encrypted_scores(member: HEMember, decrypt: Decryptor, model_id: str, enc_w: ts.CKKSVector,
                     x: np.ndarray, y: np.ndarray, ref: str = "") -> np.ndarray:
    req: DecryptionRequest = member.predict_logreg(model_id, enc_w, x, ref)
    return sample_scores(decrypt(req), y)


def judge_encrypted_candidate(member: HEMember, decrypt: Decryptor, head: tuple[str, ts.CKKSVector],
                              candidate: tuple[str, ts.CKKSVector], g: tuple[np.ndarray, np.ndarray],
                              local: tuple[np.ndarray, np.ndarray], lam: float) -> Judgement:
    """One validator's vote on an encrypted logistic-regression candidate."""
    x = np.concatenate([g[0], local[0]])
    y = np.concatenate([g[1], local[1]])
    n_g = len(g[1])
    scores = {}
    for name, (model_id, enc) in (("old", head), ("new", candidate)):
        # one request for G ∪ L: an encrypted prediction costs the same for 1 or 4096 samples
        s = encrypted_scores(member, decrypt, model_id, enc, x, y, ref=f"validate:{model_id}")
        scores[f"g_{name}"], scores[f"l_{name}"] = tuple(s[:n_g]), tuple(s[n_g:])
    return judge(PairedScores(**scores), lam)


def committee_accepts(votes: Sequence[Judgement]) -> bool:
    """A strict majority of the validators' votes accepts."""
    return sum(v.accept for v in votes) * 2 > len(votes)
