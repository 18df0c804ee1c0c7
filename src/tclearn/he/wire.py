"""A decryption request on the wire: canonical CBOR, signed by the member, bounded before parsing.

Envelope ``{member, body, sig}``: the supervisor looks up the member's
Ed25519 key, checks ``sig`` over a domain tag and ``body`` *before* decoding
the body (no work for an unauthenticated peer), then decodes ``body``
``{format, member, model, samples, ciphertexts, ref}`` with the project's
canonical-CBOR decoder (pre-scanned by `tclearn.ledger.cbor_scan`). The
ciphertexts stay opaque bytes until `HEAuthority.decrypt` bounds and loads
them. No pickle anywhere: TenSEAL serialises with protobuf and SEAL's own
bounded format.
"""

from __future__ import annotations

from typing import Any, Mapping

from tclearn.errors import EncodingError, SignatureError
from tclearn.he.authority import MAX_REQUEST_CIPHERTEXTS, DecryptionRequest
from tclearn.he.errors import BadRequest
from tclearn.identity import Identity, verify_signature
from tclearn.ledger.encoding import canonical_bytes, decode

__all__ = ["seal_request", "open_request", "REQUEST_FORMAT", "MAX_REQUEST_BYTES"]

REQUEST_FORMAT = "tclearn-he-result/1"
MAX_REQUEST_BYTES = 256 * 1024 * 1024
_TAG = b"tclearn-he-request/1\x00"


def seal_request(identity: Identity, req: DecryptionRequest) -> bytes:
    if identity.member_id != req.member:
        raise BadRequest("a member seals its own requests only")
    body = canonical_bytes({"format": REQUEST_FORMAT, "member": req.member, "model": req.model_id,
                            "samples": req.n_samples, "ciphertexts": list(req.ciphertexts), "ref": req.ref})
    return canonical_bytes({"member": req.member, "body": body, "sig": identity.sign(_TAG + body)})


def _decode(data: bytes, what: str) -> Any:
    try:
        return decode(data)
    except EncodingError as exc:
        raise BadRequest(f"{what}: {exc}") from None


def open_request(data: bytes, member_keys: Mapping[str, bytes]) -> DecryptionRequest:
    """The request, once its size, envelope and signature check; BadRequest otherwise."""
    if not isinstance(data, (bytes, bytearray)) or len(data) > MAX_REQUEST_BYTES:
        raise BadRequest(f"a request is bytes of at most {MAX_REQUEST_BYTES}")
    env = _decode(data, "envelope")
    if not isinstance(env, dict) or set(env) != {"member", "body", "sig"} or not isinstance(env["body"], bytes):
        raise BadRequest("envelope must be {member, body, sig}")
    key = member_keys.get(env["member"]) if isinstance(env["member"], str) else None
    if key is None:
        raise BadRequest(f"unknown member {str(env['member'])[:40]!r}")
    try:
        verify_signature(key, env["sig"], _TAG + env["body"])
    except SignatureError as exc:
        raise BadRequest(f"signature: {exc}") from None
    body = _decode(env["body"], "body")
    if (not isinstance(body, dict) or body.get("format") != REQUEST_FORMAT
            or set(body) != {"format", "member", "model", "samples", "ciphertexts", "ref"}):
        raise BadRequest(f"body must be a {REQUEST_FORMAT} map")
    if body["member"] != env["member"]:
        raise BadRequest("the body names another member than the envelope")
    cts = body["ciphertexts"]
    if (not isinstance(body["model"], str) or type(body["samples"]) is not int or not isinstance(body["ref"], str)
            or not isinstance(cts, list) or len(cts) > MAX_REQUEST_CIPHERTEXTS
            or not all(isinstance(c, bytes) for c in cts)):
        raise BadRequest("body fields have the wrong types or too many ciphertexts")
    return DecryptionRequest(body["member"], body["model"], body["samples"], tuple(cts), body["ref"])
