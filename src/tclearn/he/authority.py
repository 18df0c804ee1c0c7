"""The supervisor's side of level C: the only holder of the secret key, and what it agrees to decrypt.

Theory of operation. Members hold the model encrypted and the public context
only; whatever they want in clear goes through `HEAuthority.decrypt`, which
grants a request only when

1. the model is one the supervisor encrypted (or inspected as a candidate);
2. the ciphertexts have the *shape* of that model's output for the stated
   number of samples: their count, their sizes, and their level (the depth
   the honest circuit spends: 1 for a logistic-regression prediction, 4 for
   the digits network), so a copy of the model's own ciphertexts, which are
   at the top level and of another size, is refused before decryption;
3. the member has budget left (samples decrypted, counted from the journal,
   so a restart does not reset it);
4. the decrypted values released (the stated samples only) do not resemble
   the model's weights or any increment (`tclearn.he.resemblance`).

Every request, granted or refused, is appended to the vault's audit journal
(`tclearn.vault.journal.Journal`) before an answer leaves; a refusal then
raises `DecryptionRefused`. `refresh` re-encrypts a masked ciphertext that ran
out of depth (`tclearn.he.refresh` explains why the member learns nothing and
the supervisor learns nothing of the member's data).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, NoReturn

import numpy as np
import tenseal as ts

from tclearn.he.context import level_of, load_vector, public_context_bytes
from tclearn.he.digits_encrypted import (DIGITS_DEPTH, DigitsLayout, EncryptedDigits, decode_digits,
                                         encrypt_digits, result_count)
from tclearn.he.digits_net import DigitsWeights
from tclearn.he.errors import BadRequest, DecryptionRefused, HEError, MalformedCiphertext
from tclearn.he.logreg import WIDTH
from tclearn.he.logreg_encrypted import LR_PREDICT_DEPTH, encrypt_weights
from tclearn.he.resemblance import Verdict, check_resemblance, protected_vectors
from tclearn.vault.journal import Journal

__all__ = ["HEAuthority", "DecryptionRequest", "ACTION_DECRYPT", "ACTION_REFRESH", "DEFAULT_BUDGET_SAMPLES",
           "MAX_REQUEST_SAMPLES", "MAX_REQUEST_CIPHERTEXTS", "DEFAULT_REFRESH_BUDGET"]

ACTION_DECRYPT = "he.decrypt"
ACTION_REFRESH = "he.refresh"
ACTION_ENCRYPT = "he.encrypt"
ACTION_INSPECT = "he.inspect"
DEFAULT_BUDGET_SAMPLES = 20_000
DEFAULT_REFRESH_BUDGET = 2_000
MAX_REQUEST_SAMPLES = 10_000
MAX_REQUEST_CIPHERTEXTS = 2_048
LR_PER_CT = 4096


@dataclass(frozen=True)
class DecryptionRequest:
    """A member's encrypted result and what it claims to be."""

    member: str
    model_id: str
    n_samples: int
    ciphertexts: tuple[bytes, ...]
    ref: str = ""


@dataclass
class _Model:
    kind: str  # "logreg" | "digits"
    protected: list[np.ndarray]
    weights: np.ndarray | None = None  # logreg: the plain vector (for increments of candidates)
    layout: DigitsLayout | None = None
    parent: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class HEAuthority:
    """Holds the secret context; encrypts models, decrypts results under checks, refreshes ciphertexts."""

    def __init__(self, ctx: ts.Context, journal: Journal, *, budget_samples: int = DEFAULT_BUDGET_SAMPLES,
                 budgets: dict[str, int] | None = None, refresh_budget: int = DEFAULT_REFRESH_BUDGET) -> None:
        if not ctx.has_secret_key():
            raise HEError("the supervisor's context must hold the secret key")
        self.ctx = ctx
        self.journal = journal
        self.budget_samples = budget_samples
        self.budgets = dict(budgets or {})
        self.refresh_budget = refresh_budget
        self._models: dict[str, _Model] = {}
        self._samples: Counter[str] = Counter()
        self._refreshes: Counter[str] = Counter()
        for e in journal.entries:  # budgets survive a restart: the journal is the record
            if e.outcome == "granted" and e.action == ACTION_DECRYPT:
                self._samples[e.actor] += int(e.detail.get("samples", 0))
            elif e.outcome == "granted" and e.action == ACTION_REFRESH:
                self._refreshes[e.actor] += 1

    # -- models -------------------------------------------------------------------------------
    def public_context(self) -> bytes:
        return public_context_bytes(self.ctx)

    def budget_of(self, member: str) -> int:
        return self.budgets.get(member, self.budget_samples)

    def used_samples(self, member: str) -> int:
        return self._samples[member]

    def protect_logreg(self, model_id: str, w: np.ndarray, parent: str | None = None) -> None:
        """Know a logistic-regression model (and, with `parent`, its increment) without journaling:
        for a supervisor reopening its folder (`tclearn.he.store`)."""
        w = np.asarray(w, dtype=np.float64)
        tensors = {"w": w[:WIDTH - 1]}
        base = self._models.get(parent) if parent else None
        if base is not None and base.weights is not None:
            tensors["increment"] = (w - base.weights)[:WIDTH - 1]
        self._models[model_id] = _Model("logreg", protected_vectors(tensors) + (base.protected if base else []),
                                        weights=w, parent=parent)

    def protect_digits(self, model_id: str, weights: DigitsWeights) -> DigitsLayout:
        layout = DigitsLayout.plan(weights.channels, self.ctx.seal_context().data.first_context_data().parms()
                                   .poly_modulus_degree() // 2)
        self._models[model_id] = _Model("digits", protected_vectors(weights.protected()), layout=layout)
        return layout

    def encrypt_logreg(self, model_id: str, w: np.ndarray) -> bytes:
        self.protect_logreg(model_id, w)
        self._record(ACTION_ENCRYPT, model_id, "supervisor encrypted a logistic-regression model")
        data: bytes = encrypt_weights(self.ctx, np.asarray(w, dtype=np.float64)).serialize()
        return data

    def encrypt_digits(self, model_id: str, weights: DigitsWeights) -> EncryptedDigits:
        self.protect_digits(model_id, weights)
        model = encrypt_digits(self.ctx, weights)
        self._record(ACTION_ENCRYPT, model_id, "supervisor encrypted a digits model")
        return model

    def weights_of(self, model_id: str) -> np.ndarray | None:
        """A logistic-regression model's plain weights (the supervisor's own, for its store)."""
        m = self._models.get(model_id)
        return None if m is None or m.weights is None else m.weights.copy()

    def register_candidate(self, model_id: str, parent_id: str, candidate: bytes, member: str) -> bytes:
        """A member's encrypted logistic-regression candidate: the supervisor decrypts it for itself only,
        to protect its weights and its increment (never released), journaled; returns the candidate
        re-encrypted fresh, the copy validators score (so no candidate arrives at an odd level)."""
        parent = self._models.get(parent_id)
        if parent is None or parent.kind != "logreg" or parent.weights is None:
            raise HEError(f"no logistic-regression model {parent_id!r} to build on")
        vec = load_vector(self.ctx, candidate)
        if vec.size() != WIDTH:
            raise MalformedCiphertext(f"a logistic-regression candidate has {WIDTH} slots, got {vec.size()}")
        w = np.asarray(vec.decrypt(), dtype=np.float64)
        self.protect_logreg(model_id, w, parent=parent_id)
        self._record(ACTION_INSPECT, model_id, f"supervisor inspected {member}'s candidate (kept, not released)",
                     {"parent": parent_id, "member": member})
        fresh: bytes = encrypt_weights(self.ctx, w).serialize()
        return fresh

    # -- decryption ---------------------------------------------------------------------------
    def decrypt(self, req: DecryptionRequest) -> np.ndarray:
        """Logits of the stated samples ([n] for logreg, [n, 10] for digits), or DecryptionRefused."""
        counted = type(req.n_samples) is int
        detail: dict[str, Any] = {"samples": req.n_samples if counted else -1, "ciphertexts": len(req.ciphertexts)}
        if len(req.ciphertexts) > MAX_REQUEST_CIPHERTEXTS:  # bounded before any parsing
            self._refuse(req, f"shape: more than {MAX_REQUEST_CIPHERTEXTS} ciphertexts", detail)
        model = self._models.get(req.model_id)
        if model is None:
            self._refuse(req, "no such encrypted model", detail)
        if not counted or not 1 <= req.n_samples <= MAX_REQUEST_SAMPLES:
            self._refuse(req, f"the sample count must lie in 1..{MAX_REQUEST_SAMPLES}", detail)
        sizes, level = self._expected(model, req.n_samples)
        if len(req.ciphertexts) != len(sizes):
            self._refuse(req, f"shape: {len(req.ciphertexts)} ciphertexts, the model's output for "
                              f"{req.n_samples} samples has {len(sizes)}", detail)
        try:
            vecs = [load_vector(self.ctx, b) for b in req.ciphertexts]
        except MalformedCiphertext as exc:
            self._refuse(req, f"shape: {exc}", detail)
        got = [v.size() for v in vecs]
        if got != sizes:
            self._refuse(req, f"shape: sizes {got[:4]}…, the model's output has {sizes[:4]}…", detail)
        levels = sorted({level_of(v) for v in vecs})
        if levels != [level]:
            self._refuse(req, f"shape: level {levels}, the model's circuit ends at level {level}", detail)
        budget, used = self.budget_of(req.member), self._samples[req.member]
        if used + req.n_samples > budget:
            self._refuse(req, f"budget: {used} of {budget} samples used, {req.n_samples} more asked", detail)
        values = self._release(model, vecs, req.n_samples)
        verdict = check_resemblance(values, model.protected)
        detail.update(_verdict_detail(verdict))
        if verdict.resembles:
            self._refuse(req, f"resemblance: {verdict.reason}", detail)
        self.journal.append(req.member, ACTION_DECRYPT, req.model_id, "granted", "result decrypted", req.ref, detail)
        self._samples[req.member] += req.n_samples
        return values

    def decrypt_sealed(self, data: bytes, member_keys: dict[str, bytes]) -> np.ndarray:
        """`decrypt` for a request off the wire (`tclearn.he.wire`): size and signature checked first."""
        from tclearn.he.wire import open_request  # wire imports this module

        try:
            req = open_request(data, member_keys)
        except BadRequest as exc:
            self.journal.append("?", ACTION_DECRYPT, None, "refused", f"request: {exc}", "", {"bytes": len(data)})
            raise DecryptionRefused(str(exc)) from None
        return self.decrypt(req)

    def _expected(self, model: _Model, n: int) -> tuple[list[int], int]:
        top = self.ctx.seal_context().data.first_context_data().chain_index()
        if model.kind == "logreg":
            return [min(LR_PER_CT, n - i) for i in range(0, n, LR_PER_CT)], top - LR_PREDICT_DEPTH
        assert model.layout is not None
        return [model.layout.rows] * result_count(model.layout, n), top - DIGITS_DEPTH

    def _release(self, model: _Model, vecs: list[ts.CKKSVector], n: int) -> np.ndarray:
        plain = [np.asarray(v.decrypt(), dtype=np.float64) for v in vecs]
        if model.kind == "logreg":
            return np.concatenate(plain)[:n]
        assert model.layout is not None
        return decode_digits(model.layout, plain, n)

    def _refuse(self, req: DecryptionRequest, reason: str, detail: dict[str, Any]) -> NoReturn:
        self.journal.append(req.member, ACTION_DECRYPT, req.model_id, "refused", reason, req.ref, detail)
        raise DecryptionRefused(reason)

    # -- refresh ------------------------------------------------------------------------------
    def refresh(self, member: str, masked: bytes, ref: str = "") -> bytes:
        """A fresh encryption of a masked weight vector (see `tclearn.he.refresh`); journaled."""
        detail: dict[str, Any] = {"bytes": len(masked)}
        if self._refreshes[member] >= self.refresh_budget:
            self.journal.append(member, ACTION_REFRESH, None, "refused", "refresh budget used", ref, detail)
            raise DecryptionRefused(f"{member} used its {self.refresh_budget} refreshes")
        try:
            vec = load_vector(self.ctx, masked)
            if vec.size() != WIDTH:
                raise MalformedCiphertext(f"a refresh takes one {WIDTH}-slot weight vector, got {vec.size()}")
        except MalformedCiphertext as exc:
            self.journal.append(member, ACTION_REFRESH, None, "refused", str(exc), ref, detail)
            raise DecryptionRefused(str(exc)) from None
        fresh: bytes = ts.ckks_vector(self.ctx, vec.decrypt()).serialize()
        self.journal.append(member, ACTION_REFRESH, None, "granted", "masked vector re-encrypted", ref, detail)
        self._refreshes[member] += 1
        return fresh

    def _record(self, action: str, obj: str, reason: str, detail: dict[str, Any] | None = None) -> None:
        self.journal.append(self.journal.signer_id, action, obj, "recorded", reason, "", detail)


def _verdict_detail(v: Verdict) -> dict[str, Any]:
    return {"max_corr": round(v.max_correlation, 6), "matches": v.matches, "null_matches": round(v.null_matches, 2)}
