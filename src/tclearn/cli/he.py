"""`tclearn he`: level C with homomorphic encryption (CKKS, TenSEAL).

    tclearn he keygen DIR                       # the supervisor: secret.ctx (owner-only) + public.ctx
    tclearn he encrypt-model DIR --key SUP.pem --task breast-cancer --id lr-1 --out lr-1.hem
    tclearn he predict lr-1.hem --public DIR/public.ctx --key hospital-a.pem --task breast-cancer \
        --partner 0 --out request.cbor          # a member: its own data, the encrypted model, no secret key
    tclearn he decrypt-result DIR --key SUP.pem --request request.cbor --member hospital-a=<hex key>

Exit codes (besides `tclearn.cli.errors`'): 41 decryption refused by the
supervisor (journaled), 42 a malformed ciphertext, model file or request,
43 a context holding the secret key given to a member, 49 any other HE error.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

import numpy as np
import typer

from tclearn.cli.errors import fail, handle_errors, register_exit_code

app = typer.Typer(help="Models members use without reading them (CKKS homomorphic encryption).",
                  no_args_is_help=True)

TASKS = ("breast-cancer", "digits")
KEY_HELP = "The supervisor's Ed25519 identity key (signs the audit journal)."


def _register_codes() -> None:
    from tclearn.he.errors import BadRequest, DecryptionRefused, HEError, MalformedCiphertext, SecretKeyLeak

    for cls, code in ((DecryptionRefused, 41), (MalformedCiphertext, 42), (BadRequest, 42), (SecretKeyLeak, 43),
                      (HEError, 49)):
        register_exit_code(cls, code)


try:
    _register_codes()
except ImportError:  # tenseal not installed: the commands say so when run
    pass


def _task(task: str) -> str:
    if task not in TASKS:
        fail(f"unknown task {task!r} (known: {', '.join(TASKS)})")
    return task


def _now_ms() -> int:
    return int(time.time() * 1000)


@app.command("keygen")
@handle_errors
def keygen_command(directory: Path = typer.Argument(..., file_okay=False, help="The supervisor's HE folder.")) -> None:
    """Generate the CKKS keys: secret.ctx stays with the supervisor, public.ctx goes to members."""
    from tclearn.he.store import keygen

    public = keygen(directory)
    typer.echo(f"keys in {directory}; members get {public} ({public.stat().st_size:,} bytes)")


@app.command("encrypt-model")
@handle_errors
def encrypt_model_command(
    directory: Path = typer.Argument(..., exists=True, file_okay=False, help="The supervisor's HE folder."),
    key: Path = typer.Option(..., "--key", exists=True, dir_okay=False, help=KEY_HELP),
    task: str = typer.Option(..., "--task", help="breast-cancer or digits."),
    model_id: str = typer.Option(..., "--id", help="The model's id (letters, digits, . _ -)."),
    out: Path = typer.Option(..., "--out", dir_okay=False, help="The encrypted model file for members."),
    epochs: Optional[int] = typer.Option(None, "--epochs", min=1, help="Training epochs (default 20 / 60)."),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Train the task's HE-friendly model on the pooled data, encrypt it, journal it."""
    from tclearn.he.digits_net import DigitsWeights, train_he_digits
    from tclearn.he.logreg import load_breast_cancer_coalition, plain_train
    from tclearn.he.store import check_model_id, model_file, open_authority, save_record
    from tclearn.identity import load_identity
    from tclearn.learning.task_digits import DigitsTask

    _task(task)
    check_model_id(model_id)
    authority = open_authority(directory, load_identity(key), _now_ms)
    if task == "breast-cancer":
        data = load_breast_cancer_coalition(4, seed=seed).pooled
        w = plain_train(np.zeros(32), data.x.numpy().astype(np.float64), data.y.numpy(), epochs=epochs or 20, lr=0.05)
        save_record(directory, model_id, {"kind": "logreg", "weights": w.tolist()})
        blob = model_file(model_id, "logreg", [authority.encrypt_logreg(model_id, w)])
    else:
        net = train_he_digits(DigitsTask().coalition_data(5, seed=seed).pooled, epochs=epochs or 60, seed=seed)
        weights = DigitsWeights.of(net)
        save_record(directory, model_id, {"kind": "digits", **{k: v.tolist() for k, v in weights.protected().items()}})
        model = authority.encrypt_digits(model_id, weights)
        blob = model_file(model_id, "digits", model.to_bytes(), model.layout)
    out.write_bytes(blob)
    authority.journal.close()
    typer.echo(f"{model_id}: encrypted {task} model in {out} ({len(blob):,} bytes)")


@app.command("predict")
@handle_errors
def predict_command(
    model_path: Path = typer.Argument(..., exists=True, dir_okay=False, help="The encrypted model file."),
    public: Path = typer.Option(..., "--public", exists=True, dir_okay=False, help="The public context (public.ctx)."),
    key: Path = typer.Option(..., "--key", exists=True, dir_okay=False, help="This member's identity key."),
    task: str = typer.Option(..., "--task", help="breast-cancer or digits."),
    partner: int = typer.Option(..., "--partner", min=0, help="Which partner's data is this member's own."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Predict the first N samples only."),
    out: Path = typer.Option(..., "--out", dir_okay=False, help="The signed request for the supervisor."),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Encrypted predictions on this member's own data; writes a signed request for the supervisor."""
    from tclearn.he.logreg import load_breast_cancer_coalition
    from tclearn.he.member import HEMember
    from tclearn.he.store import read_model_file
    from tclearn.he.wire import seal_request
    from tclearn.identity import load_identity
    from tclearn.learning.task_digits import DigitsTask

    _task(task)
    identity = load_identity(key)
    model_id, kind, blobs, layout = read_model_file(model_path.read_bytes())
    if (kind == "logreg") != (task == "breast-cancer"):
        fail(f"{model_path} holds a {kind} model, not one for {task}")
    member = HEMember(identity.member_id, public.read_bytes())
    partners = (load_breast_cancer_coalition(4, seed=seed) if task == "breast-cancer"
                else DigitsTask().coalition_data(5, seed=seed)).partners
    if partner >= len(partners):
        fail(f"--partner must be below {len(partners)}")
    x = partners[partner].x.numpy().astype(np.float64)[:limit]
    if kind == "logreg":
        if len(blobs) != 1:
            fail("a logistic-regression model is one ciphertext")
        req = member.predict_logreg(model_id, member.load_logreg(blobs[0]), x)
    else:
        assert layout is not None
        req = member.predict_digits(model_id, member.load_digits(layout, blobs), x[:, 0])
    data = seal_request(identity, req)
    out.write_bytes(data)
    typer.echo(f"{len(x)} encrypted predictions of {model_id} in {out} ({len(data):,} bytes)")


@app.command("decrypt-result")
@handle_errors
def decrypt_result_command(
    directory: Path = typer.Argument(..., exists=True, file_okay=False, help="The supervisor's HE folder."),
    key: Path = typer.Option(..., "--key", exists=True, dir_okay=False, help=KEY_HELP),
    request: Path = typer.Option(..., "--request", exists=True, dir_okay=False, help="A member's signed request."),
    member: list[str] = typer.Option(..., "--member", help="NAME=HEX: a member and its Ed25519 public key (repeat)."),
    budget: int = typer.Option(20_000, "--budget", min=1, help="Samples each member may have decrypted."),
    out: Optional[Path] = typer.Option(None, "--out", dir_okay=False, help="Write the logits here (JSON)."),
) -> None:
    """Decrypt a member's result if its shape, the member's budget and the resemblance check allow (journaled)."""
    from tclearn.he.store import open_authority
    from tclearn.identity import load_identity

    keys = {}
    for item in member:
        name, sep, hex_key = item.partition("=")
        try:
            keys[name] = bytes.fromhex(hex_key)
        except ValueError:
            fail(f"--member takes NAME=HEX, got {item!r}")
        if not sep or len(keys[name]) != 32:
            fail(f"--member takes NAME=HEX with a 32-byte Ed25519 key, got {item!r}")
    authority = open_authority(directory, load_identity(key), _now_ms, budget_samples=budget)
    try:
        logits = authority.decrypt_sealed(request.read_bytes(), keys)
    finally:
        authority.journal.close()
    predictions = (logits > 0).astype(int) if logits.ndim == 1 else logits.argmax(axis=1)
    if out is not None:
        out.write_text(json.dumps({"logits": logits.tolist(), "predictions": predictions.tolist()}) + "\n")
    typer.echo(f"granted: {len(predictions)} predictions; classes {np.bincount(predictions).tolist()}")
