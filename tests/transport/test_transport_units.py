"""Router, schema and safetensors checks, without a socket."""

from __future__ import annotations

import json
import struct
from typing import Any

import cbor2
import numpy as np
import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from safetensors.numpy import save
from tls_coalition import Coalition

from tclearn.pki import cert_fingerprint, load_cert
from tclearn.transport import (
    Field,
    MemberAllowList,
    PeerNotAllowedError,
    Query,
    RequestError,
    Router,
    Schema,
    check_safetensors,
    decode_body,
    validated,
)


def _echo(caller: str, body: bytes, query: Any) -> tuple[int, str, bytes]:
    return 200, "application/json", json.dumps({"caller": caller, "query": dict(query)}).encode()


def test_router_path_parameters_and_errors() -> None:
    router = Router()
    router.route("GET", "/v1/models/{model_hash}", _echo)
    status, _, body = router.dispatch("GET", "/v1/models/sha256:ab12", "bob", b"", Query({"v": "1"}))
    assert status == 200 and json.loads(body) == {"caller": "bob", "query": {"v": "1", "model_hash": "sha256:ab12"}}
    with pytest.raises(RequestError) as err:
        router.dispatch("GET", "/v1/models/..%2Fetc", "bob", b"", Query())
    assert err.value.status == 404
    with pytest.raises(RequestError) as err:
        router.dispatch("POST", "/v1/models/x", "bob", b"", Query())
    assert err.value.status == 405
    with pytest.raises(RequestError) as err:
        router.dispatch("GET", "/v1/models/x", "bob", b"", Query({"model_hash": "y"}))
    assert err.value.status == 400


def test_router_refuses_bad_routes() -> None:
    router = Router()
    router.route("POST", "/v1/messages", _echo)
    with pytest.raises(ValueError, match="already routed"):
        router.route("POST", "/v1/messages", _echo)
    for pattern in ("v1", "/v1/{bad name}", "/v1/a b"):
        with pytest.raises(ValueError):
            router.route("GET", pattern, _echo)
    with pytest.raises(ValueError, match="unsupported method"):
        router.route("PATCH", "/x", _echo)

    @router.get("/v1/decorated")
    def decorated(caller: str, body: bytes, query: Any) -> tuple[int, str, bytes]:
        return 204, "text/plain", b""

    assert router.dispatch("GET", "/v1/decorated", "a", b"", Query())[0] == 204


def test_schema_nested_and_lists() -> None:
    vote = Schema({"voter": Field(str), "score": Field(float)})
    block = Schema({"index": Field(int), "votes": Field(list, items=vote, max_len=3),
                    "meta": Field(dict, required=False, schema=Schema({}, allow_extra=True))})
    good = {"index": 1, "votes": [{"voter": "a", "score": 1}, {"voter": "b", "score": 0.5}]}
    assert block(good) == good
    for bad, message in [
        ({"index": 1, "votes": [{"voter": "a"}]}, "body.votes[0].score is required"),
        ({"index": 1, "votes": [{"voter": 1, "score": 1.0}]}, "body.votes[0].voter must be a string"),
        ({"index": 1, "votes": [{}] * 4}, "longer than 3"),
        ({"index": 1.0, "votes": []}, "body.index must be an integer"),
        ({"index": 1, "votes": [], "meta": []}, "body.meta must be an object"),
    ]:
        with pytest.raises(RequestError, match=message.replace("[", r"\[").replace("]", r"\]")):
            block(bad)


def test_validated_wrapper_decodes_by_content_type() -> None:
    seen: list[dict[str, Any]] = []
    handler = validated(Schema({"a": Field(bytes)}), lambda c, p, q: (seen.append(p), (200, "x", b""))[1])
    assert handler("bob", cbor2.dumps({"a": b"\x00"}), Query(content_type="application/cbor"))[0] == 200
    assert seen == [{"a": b"\x00"}]
    with pytest.raises(RequestError) as err:
        handler("bob", b'{"a": "text"}', Query(content_type="application/json; charset=utf-8"))
    assert err.value.status == 400
    with pytest.raises(RequestError) as err:
        decode_body(b"{}", "")
    assert err.value.status == 415
    with pytest.raises(RequestError, match="nested too deeply"):
        decode_body(b"[" * 40 + b"]" * 40, "application/json")


def test_check_safetensors() -> None:
    data = save({"w": np.ones((2, 2), dtype=np.float32)})
    assert check_safetensors(data)["w"]["shape"] == [2, 2]
    header = json.dumps({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 999]}}).encode()
    for bad in (b"", b"\x00" * 7, struct.pack("<Q", 10**9) + b"{}", struct.pack("<Q", 2) + b"[]",
                struct.pack("<Q", len(header)) + header + b"\x00" * 16):
        with pytest.raises(ValueError):
            check_safetensors(bad)


def test_allowlist_binds_fingerprint_to_member(coalition: Coalition) -> None:
    alice_pem, bob_pem = coalition.alice.cert.read_bytes(), coalition.bob.cert.read_bytes()
    alice_der = load_cert(alice_pem).public_bytes(Encoding.DER)
    allow = MemberAllowList.from_certs([coalition.alice.cert, bob_pem])
    assert allow.identify(alice_der) == "alice" and len(allow) == 2
    assert cert_fingerprint(alice_pem).upper().replace("SHA256:", "") in allow
    mislabeled = MemberAllowList({coalition.alice.fingerprint: "bob"})
    with pytest.raises(PeerNotAllowedError, match="records it for 'bob'"):
        mislabeled.identify(alice_der)
    with pytest.raises(PeerNotAllowedError, match="no certificate"):
        allow.identify(None)
    allow.replace([coalition.bob.fingerprint])
    with pytest.raises(PeerNotAllowedError, match="not a coalition member"):
        allow.identify(alice_der)
