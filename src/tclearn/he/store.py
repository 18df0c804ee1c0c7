"""The supervisor's HE folder, and the encrypted-model file members receive.

Folder: ``secret.ctx`` (the CKKS context *with* the secret key, owner-only),
``public.ctx`` (what members get), ``models/<id>.json`` (the plain weights
the supervisor encrypted or inspected, owner-only: the resemblance check
needs them), ``journal.jsonl`` (the signed audit journal of every request;
budgets are counted from it). Nothing is pickled: contexts and ciphertexts
are TenSEAL's protobuf, records JSON, the model file canonical CBOR.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable

import numpy as np
import tenseal as ts

from tclearn.errors import EncodingError
from tclearn.he.authority import DEFAULT_BUDGET_SAMPLES, HEAuthority
from tclearn.he.context import DEFAULT_PARAMS, CKKSParams, make_secret_context, public_context_bytes
from tclearn.he.digits_encrypted import DigitsLayout
from tclearn.he.digits_net import DigitsWeights
from tclearn.he.errors import HEError, MalformedCiphertext
from tclearn.identity import Identity
from tclearn.ledger.encoding import canonical_bytes, decode
from tclearn.vault.journal import Journal
from tclearn.fsutil import atomic_write

__all__ = ["keygen", "open_authority", "save_record", "model_file", "read_model_file", "SECRET_FILE", "PUBLIC_FILE",
           "MODEL_FORMAT", "MAX_MODEL_FILE_BYTES"]

SECRET_FILE = "secret.ctx"
PUBLIC_FILE = "public.ctx"
MODELS_DIR = "models"
JOURNAL_FILE = "journal.jsonl"
MODEL_FORMAT = "tclearn-he-model/1"
MAX_MODEL_FILE_BYTES = 64 * 1024 * 1024
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def check_model_id(model_id: str) -> str:
    if not _ID.match(model_id):
        raise HEError(f"a model id is 1-64 letters, digits, '.', '_' or '-', got {model_id!r}")
    return model_id


def keygen(folder: Path, params: CKKSParams = DEFAULT_PARAMS) -> Path:
    """Create the folder's keys; refuses to overwrite a secret context (its models would become unreadable)."""
    folder = Path(folder)
    if (folder / SECRET_FILE).exists():
        raise HEError(f"{folder / SECRET_FILE} exists: keys are generated once")
    folder.mkdir(parents=True, exist_ok=True)
    ctx = make_secret_context(params)
    atomic_write(folder / SECRET_FILE, ctx.serialize(save_secret_key=True), owner_only=True)
    atomic_write(folder / PUBLIC_FILE, public_context_bytes(ctx))
    return folder / PUBLIC_FILE


def save_record(folder: Path, model_id: str, record: dict[str, Any]) -> None:
    path = Path(folder) / MODELS_DIR / f"{check_model_id(model_id)}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, (json.dumps(record) + "\n").encode(), owner_only=True)


def open_authority(folder: Path, supervisor: Identity, clock_ms: Callable[[], int], *,
                   budget_samples: int = DEFAULT_BUDGET_SAMPLES) -> HEAuthority:
    folder = Path(folder)
    try:
        ctx = ts.context_from((folder / SECRET_FILE).read_bytes())
    except FileNotFoundError:
        raise HEError(f"no {SECRET_FILE} in {folder}: run `tclearn he keygen` first") from None
    except Exception as exc:
        raise HEError(f"{folder / SECRET_FILE} is not a TenSEAL context: {exc}") from None
    authority = HEAuthority(ctx, Journal(folder / JOURNAL_FILE, supervisor, clock_ms), budget_samples=budget_samples)
    records = sorted((folder / MODELS_DIR).glob("*.json")) if (folder / MODELS_DIR).exists() else []
    pending = {p.stem: json.loads(p.read_text()) for p in records}
    while pending:  # parents before candidates
        ready = [m for m, r in pending.items() if not r.get("parent") or r["parent"] not in pending]
        if not ready:
            raise HEError("model records name each other as parents in a loop")
        for model_id in ready:
            rec = pending.pop(model_id)
            if rec["kind"] == "logreg":
                authority.protect_logreg(model_id, np.asarray(rec["weights"]), parent=rec.get("parent"))
            else:
                authority.protect_digits(model_id, DigitsWeights(*(np.asarray(rec[k]) for k in
                                                                   ("kernel", "conv_bias", "fc", "fc_bias"))))
    return authority


def model_file(model_id: str, kind: str, blobs: list[bytes], layout: DigitsLayout | None = None) -> bytes:
    doc: dict[str, Any] = {"format": MODEL_FORMAT, "id": check_model_id(model_id), "kind": kind,
                           "ciphertexts": blobs}
    if layout is not None:
        doc["layout"] = [layout.channels, layout.width, layout.per_group, layout.per_ct, layout.slots]
    return canonical_bytes(doc)


def read_model_file(data: bytes) -> tuple[str, str, list[bytes], DigitsLayout | None]:
    if len(data) > MAX_MODEL_FILE_BYTES:
        raise MalformedCiphertext(f"an encrypted model file is at most {MAX_MODEL_FILE_BYTES} bytes")
    try:
        doc = decode(data)
    except EncodingError as exc:
        raise MalformedCiphertext(f"not an encrypted model file: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != MODEL_FORMAT or doc.get("kind") not in ("logreg", "digits"):
        raise MalformedCiphertext(f"not a {MODEL_FORMAT} file")
    blobs = doc.get("ciphertexts")
    if not isinstance(blobs, list) or not all(isinstance(b, bytes) for b in blobs):
        raise MalformedCiphertext("ciphertexts must be a list of byte strings")
    layout = None
    if doc["kind"] == "digits":
        raw = doc.get("layout")
        if not isinstance(raw, list) or len(raw) != 5 or not all(type(v) is int and 0 < v <= 1 << 16 for v in raw):
            raise MalformedCiphertext("a digits model file needs its layout")
        layout = DigitsLayout(*raw)
        if layout != DigitsLayout.plan(layout.channels, layout.slots):
            raise MalformedCiphertext("the digits layout is not the one its channels and slots give")
    return check_model_id(str(doc.get("id"))), doc["kind"], blobs, layout
