"""Supervised decryption: honest results decrypted, everything else refused and journaled."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from tclearn.he.authority import ACTION_DECRYPT, DecryptionRequest, HEAuthority
from tclearn.he.digits_encrypted import DigitsLayout
from tclearn.he.digits_net import DigitsWeights, HEDigitsNet
from tclearn.he.errors import DecryptionRefused
from tclearn.he.logreg import plain_logits
from tclearn.he.member import HEMember
from tclearn.vault.journal import Journal, verify_journal


def _weights() -> np.ndarray:
    w = np.random.default_rng(0).normal(0, 0.3, 32)
    w[31] = 0.0
    return w


def _samples(n: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 1, (n, 30))


def _last(journal: Journal) -> Any:
    return journal.entries[-1]


def test_an_honest_prediction_is_decrypted_and_journaled(authority: HEAuthority, public_ctx: Any,
                                                         journal: Journal) -> None:
    w = _weights()
    member = HEMember("hospital-a", public_ctx)
    enc = member.load_logreg(authority.encrypt_logreg("lr-0", w))
    x = _samples(20)
    logits = authority.decrypt(member.predict_logreg("lr-0", enc, x))
    assert np.allclose(logits, plain_logits(w, x), atol=1e-2)
    e = _last(journal)
    assert (e.actor, e.action, e.object, e.outcome, e.detail["samples"]) == ("hospital-a", ACTION_DECRYPT, "lr-0",
                                                                            "granted", 20)
    verify_journal(journal.path, journal._supervisor.public_key)


def test_an_encrypted_weight_vector_passed_off_as_a_result_is_refused(authority: HEAuthority, public_ctx: Any,
                                                                      journal: Journal) -> None:
    member = HEMember("mallory", public_ctx)
    enc = member.load_logreg(authority.encrypt_logreg("lr-0", _weights()))
    # the model's own ciphertext: refused on its shape (a fresh ciphertext sits at the top level)
    with pytest.raises(DecryptionRefused, match="shape"):
        authority.decrypt(DecryptionRequest("mallory", "lr-0", 32, (enc.serialize(),)))
    # the same weights after one multiplication by 1.5 (the level of a prediction): refused on resemblance
    disguised = enc * ([1.5] * 32)
    with pytest.raises(DecryptionRefused, match="resemblance"):
        authority.decrypt(DecryptionRequest("mallory", "lr-0", 32, (disguised.serialize(),)))
    e = _last(journal)
    assert (e.actor, e.action, e.outcome) == ("mallory", ACTION_DECRYPT, "refused")
    assert "resemblance" in e.reason and e.detail["max_corr"] > 0.999
    assert authority.used_samples("mallory") == 0


def test_wrong_shape_is_refused(authority: HEAuthority, public_ctx: Any, journal: Journal) -> None:
    member = HEMember("hospital-a", public_ctx)
    enc = member.load_logreg(authority.encrypt_logreg("lr-0", _weights()))
    req = member.predict_logreg("lr-0", enc, _samples(12))
    for bad in (DecryptionRequest("hospital-a", "lr-0", 10, req.ciphertexts),  # 12 values stated as 10
                DecryptionRequest("hospital-a", "lr-0", 12, req.ciphertexts * 2),  # two ciphertexts
                DecryptionRequest("hospital-a", "lr-0", 12, (b"junk",)),
                DecryptionRequest("hospital-a", "lr-9", 12, req.ciphertexts)):  # no such model
        with pytest.raises(DecryptionRefused):
            authority.decrypt(bad)
        assert _last(journal).outcome == "refused"
    assert authority.used_samples("hospital-a") == 0


def test_budget_exceeded_is_refused(secret_ctx: Any, public_ctx: Any, journal: Journal) -> None:
    authority = HEAuthority(secret_ctx, journal, budgets={"hospital-a": 25})
    member = HEMember("hospital-a", public_ctx)
    enc = member.load_logreg(authority.encrypt_logreg("lr-0", _weights()))
    authority.decrypt(member.predict_logreg("lr-0", enc, _samples(20)))
    with pytest.raises(DecryptionRefused, match="budget"):
        authority.decrypt(member.predict_logreg("lr-0", enc, _samples(6)))
    assert _last(journal).outcome == "refused" and "budget" in _last(journal).reason
    # the budget is counted from the journal: a restarted supervisor keeps it
    again = HEAuthority(secret_ctx, journal, budgets={"hospital-a": 25})
    assert again.used_samples("hospital-a") == 20


def test_digits_encrypted_inference_matches_the_plaintext_network(authority: HEAuthority, public_ctx: Any) -> None:
    torch.manual_seed(0)
    net = HEDigitsNet(4)
    model = authority.encrypt_digits("digits-0", DigitsWeights.of(net))
    member = HEMember("hospital-a", public_ctx)
    loaded = member.load_digits(model.layout, model.to_bytes())
    images = np.random.default_rng(0).random((8, 8, 8))
    logits = authority.decrypt(member.predict_digits("digits-0", loaded, images))
    with torch.no_grad():
        ref = net(torch.tensor(images, dtype=torch.float32)[:, None]).double().numpy()
    assert logits.shape == (8, 10) and np.abs(logits - ref).max() < 1e-2


def test_a_layer_larger_than_the_slots_is_split_across_ciphertexts(secret_ctx: Any) -> None:
    layout = DigitsLayout.plan(32, 4096)  # 32 channels × 16 windows = 512 per class: 8 classes per ciphertext
    assert (layout.per_group, layout.per_ct, len(layout.groups)) == (8, 1, 2)
    torch.manual_seed(1)
    net = HEDigitsNet(32)
    from tclearn.he.digits_encrypted import decode_digits, digits_predict, encrypt_digits

    model = encrypt_digits(secret_ctx, DigitsWeights.of(net))
    images = np.random.default_rng(1).random((2, 8, 8))
    out = digits_predict(model, images)
    assert len(out) == 4
    logits = decode_digits(model.layout, [np.array(v.decrypt()) for v in out], 2)
    with torch.no_grad():
        ref = net(torch.tensor(images, dtype=torch.float32)[:, None]).double().numpy()
    assert np.abs(logits - ref).max() < 1e-2


def test_a_request_off_the_wire_is_signed_checked_and_decrypted(authority: HEAuthority, public_ctx: Any,
                                                               journal: Journal) -> None:
    from tclearn.he.wire import seal_request
    from tclearn.identity import Identity

    alice, mallory = Identity.from_seed("hospital-a", b"a"), Identity.from_seed("mallory", b"m")
    keys = {"hospital-a": alice.public_key}
    w = _weights()
    member = HEMember("hospital-a", public_ctx)
    enc = member.load_logreg(authority.encrypt_logreg("lr-0", w))
    req = member.predict_logreg("lr-0", enc, _samples(5))
    sealed = seal_request(alice, req)
    assert np.allclose(authority.decrypt_sealed(sealed, keys), plain_logits(w, _samples(5)), atol=1e-2)
    from tclearn.ledger.encoding import canonical_bytes, decode

    forged = decode(seal_request(mallory, DecryptionRequest("mallory", "lr-0", 5, req.ciphertexts)))
    as_alice = canonical_bytes({**forged, "member": "hospital-a"})  # mallory's signature under alice's name
    unknown = canonical_bytes(forged)  # mallory is not a member
    for bad in (as_alice, unknown, sealed[:-3], b"\xa0"):
        with pytest.raises(DecryptionRefused):
            authority.decrypt_sealed(bad, keys)
        assert _last(journal).outcome == "refused"


def test_the_vault_supervisor_journals_he_requests_in_its_own_audit_journal(secret_ctx: Any, public_ctx: Any,
                                                                           tmp_path: Any) -> None:
    from tclearn.identity import Identity
    from tclearn.vault.supervisor import Supervisor

    ident = Identity.from_seed("supervisor", b"v")
    ticks = iter(range(1, 10**9))
    vault = Supervisor.create(tmp_path / "vault", b"pass", ident, ["hospital-a"], lambda: next(ticks), scrypt_n=2**10)
    authority = HEAuthority(secret_ctx, vault.journal)
    member = HEMember("hospital-a", public_ctx)
    enc = member.load_logreg(authority.encrypt_logreg("lr-0", _weights()))
    authority.decrypt(member.predict_logreg("lr-0", enc, _samples(3)))
    with pytest.raises(DecryptionRefused):
        authority.decrypt(DecryptionRequest("hospital-a", "lr-0", 32, ((enc * ([1.5] * 32)).serialize(),)))
    vault.close()
    entries = verify_journal(tmp_path / "vault" / "journal.jsonl", ident.public_key)
    he = [(e.action, e.outcome) for e in entries if e.action.startswith("he.")]
    assert he == [("he.encrypt", "recorded"), (ACTION_DECRYPT, "granted"), (ACTION_DECRYPT, "refused")]
    reopened = Supervisor.open(tmp_path / "vault", b"pass", ident, lambda: 10**9)  # the vault still opens
    assert reopened.policy is not None
    reopened.close()


def test_a_single_sample_takes_the_fast_path_with_the_same_shape(authority: HEAuthority, public_ctx: Any) -> None:
    w = _weights()
    member = HEMember("hospital-a", public_ctx)
    enc = member.load_logreg(authority.encrypt_logreg("lr-0", w))
    x = _samples(1, seed=5)
    assert np.allclose(authority.decrypt(member.predict_logreg("lr-0", enc, x)), plain_logits(w, x), atol=1e-2)
