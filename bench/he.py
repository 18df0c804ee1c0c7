"""Level C, part 2 (homomorphic encryption): what using and training an encrypted model costs.

For `digits` (the HE-friendly network of `tclearn.he.digits_net`, next to the
level-A `DigitsCNN` trained centrally on the same split) and for logistic
regression on breast cancer:

* accuracy on G: plaintext vs encrypted (the encrypted logits decrypted by the
  supervisor through `HEAuthority.decrypt`, every check on, journaled);
* latency: a member's encrypted prediction per ciphertext (a batch) and per
  sample, and the supervisor's checked decryption per request;
* bytes: the public context, the encrypted model, the result per sample;
* training (breast cancer): encrypted full-batch epochs with masked refreshes
  by the supervisor, time per epoch, final accuracy vs the same training in
  plaintext (same polynomial sigmoid, same rate and epochs);
* the resemblance check on honest results: the largest |r| and value matches
  the supervisor measured (granted requests), next to its limits.

    python bench/he.py [--epochs 20] [--digits-samples 300] [--out bench/results/he.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from tclearn.he.authority import ACTION_DECRYPT, HEAuthority  # noqa: E402
from tclearn.he.context import DEFAULT_PARAMS, make_secret_context  # noqa: E402
from tclearn.he.digits_encrypted import digits_predict  # noqa: E402
from tclearn.he.digits_net import DigitsWeights, train_he_digits  # noqa: E402
from tclearn.he.logreg import accuracy, load_breast_cancer_coalition, plain_logits, plain_train  # noqa: E402
from tclearn.he.logreg_encrypted import lr_predict  # noqa: E402
from tclearn.he.member import HEMember  # noqa: E402
from tclearn.he.resemblance import CORRELATION_LIMIT  # noqa: E402
from tclearn.identity import Identity  # noqa: E402
from tclearn.learning.centralized import train_centralized  # noqa: E402
from tclearn.learning.task_digits import DigitsTask  # noqa: E402
from tclearn.vault.journal import Journal  # noqa: E402


def _timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def bench_digits(authority: HEAuthority, member: HEMember, n_eval: int, seed: int) -> dict[str, Any]:
    task = DigitsTask()
    data = task.coalition_data(5, seed=seed)
    train, g = data.pooled, data.test
    rates = task.centralized_learning_rates or (task.default_hyperparams.learning_rate,)
    hp = replace(task.default_hyperparams, learning_rate=rates[0])
    cnn, t_cnn = _timed(train_centralized, task, train, g, hp, passes=40, seed=seed)
    net, t_train = _timed(train_he_digits, train, seed=seed)
    with torch.no_grad():
        plain_logits_g = net(g.x).double().numpy()
    y = g.y.numpy()
    plain_acc = float((plain_logits_g.argmax(1) == y).mean())
    model, t_enc = _timed(authority.encrypt_digits, "digits-he", DigitsWeights.of(net))
    model_bytes = model.to_bytes()
    loaded = member.load_digits(model.layout, model_bytes)
    images = g.x.numpy()[:n_eval, 0].astype(np.float64)
    per_ct = model.layout.per_ct
    # one full ciphertext (a batch) and one image alone, timed apart from the evaluation run
    _, t_batch = _timed(digits_predict, loaded, images[:per_ct])
    single, t_single = _timed(digits_predict, loaded, images[:1])
    req, t_predict = _timed(member.predict_digits, "digits-he", loaded, images)
    logits, t_decrypt = _timed(authority.decrypt, req)
    enc_acc = float((logits.argmax(1) == y[:n_eval]).mean())
    plain_acc_same = float((plain_logits_g[:n_eval].argmax(1) == y[:n_eval]).mean())
    return {
        "level_a_cnn_accuracy": cnn.score, "level_a_cnn_passes": 40, "level_a_cnn_train_s": t_cnn,
        "he_net": "conv 3x3/2 (4 ch) -> x^2 -> linear 64->10",
        "he_net_train_s": t_train,
        "plain_accuracy_g": plain_acc,
        "samples_encrypted": n_eval,
        "plain_accuracy_same_samples": plain_acc_same,
        "encrypted_accuracy": enc_acc,
        "max_abs_logit_error": float(np.abs(logits - plain_logits_g[:n_eval]).max()),
        "argmax_disagreements": int((logits.argmax(1) != plain_logits_g[:n_eval].argmax(1)).sum()),
        "samples_per_ciphertext": per_ct,
        "latency_batch_s": t_batch,
        "latency_single_image_s": t_single,
        "latency_per_image_s": t_predict / n_eval,
        "supervisor_decrypt_s_per_image": t_decrypt / n_eval,
        "encrypt_model_s": t_enc,
        "model_bytes": sum(len(b) for b in model_bytes),
        "result_bytes_per_image": sum(len(b) for b in req.ciphertexts) / n_eval,
        "result_bytes_per_ciphertext": len(req.ciphertexts[0]),
        "result_bytes_single_image": sum(len(v.serialize()) for v in single),
    }


def bench_logreg(authority: HEAuthority, public: bytes, epochs: int, lr: float, seed: int) -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression

    data = load_breast_cancer_coalition(4, seed=seed)
    x, y = data.pooled.x.numpy().astype(np.float64), data.pooled.y.numpy()
    gx, gy = data.test.x.numpy().astype(np.float64), data.test.y.numpy()
    w0 = np.zeros(32)
    plain_w, t_plain = _timed(plain_train, w0, x, y, epochs=epochs, lr=lr)
    sk = LogisticRegression(max_iter=2000).fit(x, y).score(gx, gy)
    member = HEMember("hospital-a", public, seed=seed)
    # encrypted inference of the plaintext-trained model
    enc_plain = member.load_logreg(authority.encrypt_logreg("lr-plain", plain_w))
    one, t_one = _timed(lr_predict, enc_plain, gx[:1])
    req, t_batch = _timed(member.predict_logreg, "lr-plain", enc_plain, gx)
    logits, t_dec = _timed(authority.decrypt, req)
    # encrypted training from zeros on the pooled data, one masked refresh per epoch
    enc = member.load_logreg(authority.encrypt_logreg("lr-0", w0))
    times = []
    for _ in range(epochs):
        enc, t = _timed(member.train_logreg, enc, x, y, epochs=1, lr=lr, refresh=authority.refresh)
        times.append(t)
    fresh = authority.register_candidate("lr-trained", "lr-0", enc.serialize(), "hospital-a")
    trained = member.load_logreg(fresh)
    enc_trained_logits = authority.decrypt(member.predict_logreg("lr-trained", trained, gx))
    import tenseal as ts

    w_enc = np.array(ts.ckks_vector_from(authority.ctx, fresh).decrypt())
    return {
        "train_samples": len(y), "g_samples": len(gy), "epochs": epochs, "lr": lr,
        "sklearn_lbfgs_accuracy": float(sk),
        "plain_accuracy": accuracy(plain_logits(plain_w, gx), gy),
        "encrypted_inference_accuracy": accuracy(logits, gy),
        "max_abs_logit_error": float(np.abs(logits - plain_logits(plain_w, gx)).max()),
        "latency_single_s": t_one,
        "latency_batch_s": t_batch, "batch": len(gy),
        "latency_per_prediction_s": t_batch / len(gy),
        "supervisor_decrypt_s": t_dec,
        "model_bytes": len(authority.encrypt_logreg("lr-size", plain_w)),
        "result_bytes_per_prediction": sum(len(b) for b in req.ciphertexts) / len(gy),
        "result_bytes_single": sum(len(v.serialize()) for v in one),
        "encrypted_epoch_s_mean": float(np.mean(times)), "encrypted_epoch_s_max": float(np.max(times)),
        "plain_train_s": t_plain,
        "encrypted_training_accuracy": accuracy(enc_trained_logits, gy),
        "plain_training_accuracy": accuracy(plain_logits(plain_w, gx), gy),
        "weights_max_abs_diff_enc_vs_plain": float(np.abs(w_enc - plain_w).max()),
        "weights_max_abs": float(np.abs(plain_w).max()),
    }


def bladder_estimate(ctx: Any) -> dict[str, Any]:
    """Why the bladder U-Net stays at levels B/C-watermark: operation counts × measured unit costs.

    Each 3-D convolution with encrypted weights on encrypted activations needs,
    per (input channel, output channel, kernel tap), one ciphertext ×
    ciphertext product for every ciphertext of the activation map (4096 voxels
    per ciphertext). The unit times are measured here; the total is a count,
    not a run.
    """
    import tenseal as ts

    from tclearn.learning.task_bladder import BladderTask

    task = BladderTask()
    model = task.build_model(0)
    in_channels = next(m for m in model.modules() if isinstance(m, torch.nn.Conv3d)).in_channels
    shapes: list[tuple[int, ...]] = []
    hooks = [m.register_forward_hook(lambda mod, inp, out: shapes.append((mod.in_channels, mod.out_channels,
                                                                          int(np.prod(mod.kernel_size)),
                                                                          int(np.prod(out.shape[2:])))))
             for m in model.modules() if isinstance(m, (torch.nn.Conv3d, torch.nn.ConvTranspose3d))]
    with torch.no_grad():
        model(torch.zeros(1, in_channels, *task.shape))
    for h in hooks:
        h.remove()
    slots = DEFAULT_PARAMS.slots
    mults = sum(cin * cout * k * -(-vox // slots) for cin, cout, k, vox in shapes)
    a = ts.ckks_vector(ctx, list(np.random.default_rng(0).random(slots)))
    _, t_mul = _timed(lambda: [a * a for _ in range(10)])
    params = sum(p.numel() for p in model.parameters())
    return {"parameters": params, "conv_layers": len(shapes), "ct_ct_multiplications": mults,
            "ct_ct_mul_s": t_mul / 10, "estimated_inference_s": mults * t_mul / 10,
            "depth_needed_at_least": 2 * len(shapes), "depth_available": DEFAULT_PARAMS.depth}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--digits-samples", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("bench/results/he.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    load = os.getloadavg()
    ctx, t_keygen = _timed(make_secret_context, DEFAULT_PARAMS)
    with tempfile.TemporaryDirectory() as tmp:
        journal = Journal(Path(tmp) / "journal.jsonl", Identity.from_seed("supervisor", b"b" * 32),
                          lambda: int(time.time() * 1000), fsync=False)
        authority = HEAuthority(ctx, journal)
        public, t_ser = _timed(authority.public_context)
        member, t_load = _timed(HEMember, "hospital-a", public, 0)
        digits = bench_digits(authority, member, args.digits_samples, args.seed)
        logreg = bench_logreg(authority, public, args.epochs, args.lr, args.seed)
        bladder = bladder_estimate(ctx)
        granted = [e for e in journal.entries if e.action == ACTION_DECRYPT and e.outcome == "granted"]
        honest = {"requests": len(granted),
                  "max_corr_honest": max(e.detail["max_corr"] for e in granted),
                  "max_matches_honest": max(e.detail["matches"] for e in granted),
                  "correlation_limit": CORRELATION_LIMIT,
                  "journal_entries": len(journal.entries)}
        journal.close()
    result = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "loadavg_start": load,
                    "loadavg_end": os.getloadavg(), "threads": 1},
        "ckks": {"poly_modulus_degree": DEFAULT_PARAMS.poly_modulus_degree,
                 "coeff_mod_bit_sizes": list(DEFAULT_PARAMS.coeff_mod_bit_sizes), "scale_bits": DEFAULT_PARAMS.scale_bits,
                 "keygen_s": t_keygen, "public_context_bytes": len(public), "serialize_public_s": t_ser,
                 "member_load_context_s": t_load},
        "digits": digits, "breast_cancer": logreg, "resemblance_on_honest_results": honest,
        "bladder_unet_estimate": bladder,
    }
    d, b = digits, logreg
    rows = [
        ("digits: accuracy on G (level-A CNN / HE net plain / HE net encrypted)",
         f"{d['level_a_cnn_accuracy']:.4f} / {d['plain_accuracy_same_samples']:.4f} / {d['encrypted_accuracy']:.4f}"),
        ("digits: latency per image (batch of {0}) / one image alone".format(d["samples_per_ciphertext"]),
         f"{d['latency_per_image_s'] * 1000:.0f} ms / {d['latency_single_image_s'] * 1000:.0f} ms"),
        ("digits: supervisor decrypt per image", f"{d['supervisor_decrypt_s_per_image'] * 1000:.1f} ms"),
        ("digits: bytes per image (result, batch) / one image alone / model",
         f"{d['result_bytes_per_image']:,.0f} / {d['result_bytes_single_image']:,} / {d['model_bytes']:,}"),
        ("breast cancer: accuracy (sklearn / plain poly-LR / encrypted inference)",
         f"{b['sklearn_lbfgs_accuracy']:.4f} / {b['plain_accuracy']:.4f} / {b['encrypted_inference_accuracy']:.4f}"),
        ("breast cancer: latency one sample / batch of {0}".format(b["batch"]),
         f"{b['latency_single_s'] * 1000:.0f} ms / {b['latency_batch_s'] * 1000:.0f} ms"),
        ("breast cancer: bytes per prediction (batch) / one sample alone / model",
         f"{b['result_bytes_per_prediction']:,.0f} / {b['result_bytes_single']:,} / {b['model_bytes']:,}"),
        ("breast cancer: encrypted training, s per epoch ({0} samples)".format(b["train_samples"]),
         f"{b['encrypted_epoch_s_mean']:.2f} (max {b['encrypted_epoch_s_max']:.2f})"),
        ("breast cancer: accuracy after {0} epochs, plain / encrypted".format(b["epochs"]),
         f"{b['plain_training_accuracy']:.4f} / {b['encrypted_training_accuracy']:.4f}"),
        ("public context bytes / keygen s", f"{len(public):,} / {t_keygen:.1f}"),
        ("bladder U-Net under HE (estimate: count x measured ct*ct time) / depth needed vs available",
         f"{bladder['ct_ct_multiplications']:,} mults x {bladder['ct_ct_mul_s'] * 1000:.1f} ms = "
         f"{bladder['estimated_inference_s'] / 3600:.1f} h / {bladder['depth_needed_at_least']} vs "
         f"{bladder['depth_available']}"),
        ("honest results: max |r| vs limit; max value matches",
         f"{honest['max_corr_honest']:.4f} vs {CORRELATION_LIMIT}; {honest['max_matches_honest']}"),
    ]
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    print(f"load average at start / end: {load[0]:.1f} / {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
