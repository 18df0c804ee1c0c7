"""The boundary: decode and validate request bodies, encode responses.

A peer's bytes are untrusted. A route that takes structured data wraps its
handler with `validated(schema, handler)`: the body is decoded by its
Content-Type (JSON or CBOR), checked against the schema, and only then is the
handler called, with a plain `dict` of the declared fields. Anything malformed
becomes a 400 (415 for an unknown content type) with a message that says which
field is wrong, and the handler never sees it.

`Schema` is deliberately small (types, required, lengths, nested schemas,
list items): enough for protocol messages, with no dependency. A route can
pass any `Validator` callable instead (a typed message's constructor, say).

Models travel as `application/octet-stream` safetensors bytes; `check_safetensors`
checks the framing (header length, JSON header, offsets inside the file)
without loading a tensor, so a truncated or hostile file is refused at the door.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import cbor2

from tclearn.errors import EncodingError
from tclearn.ledger.cbor_scan import scan
from tclearn.transport.errors import RequestError
from tclearn.transport.router import Handler, HandlerResult, Query

__all__ = [
    "CBOR",
    "JSON",
    "OCTET",
    "Field",
    "PayloadHandler",
    "Schema",
    "Validator",
    "cbor_response",
    "check_safetensors",
    "decode_body",
    "json_response",
    "safetensors_response",
    "validated",
]

JSON = "application/json"
CBOR = "application/cbor"
OCTET = "application/octet-stream"

Validator = Callable[[Any], dict[str, Any]]
PayloadHandler = Callable[[str, dict[str, Any], Query], HandlerResult]

_MAX_DEPTH = 32
_SAFETENSORS_MAX_HEADER = 100 * 1024 * 1024


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def _check_plain(value: Any, depth: int = 0) -> None:
    """Only the types both encodings share; CBOR tags (dates, regexes, sets) are refused."""
    if depth > _MAX_DEPTH:
        raise RequestError(400, "body nested too deeply")
    if value is None or isinstance(value, (bool, int, str, bytes)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise RequestError(400, "NaN and infinite numbers are not allowed")
        return
    if isinstance(value, list):
        for item in value:
            _check_plain(item, depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise RequestError(400, "map keys must be strings")
            _check_plain(item, depth + 1)
        return
    raise RequestError(400, f"values of type {type(value).__name__} are not allowed")


def decode_body(body: bytes, content_type: str) -> Any:
    """JSON or CBOR body to plain Python values; RequestError 400/415 otherwise."""
    media = content_type.split(";", 1)[0].strip().lower()
    try:
        if media == JSON:
            value = json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
        elif media == CBOR:
            scan(body)  # tags, sizes, depth: refused before cbor2 runs (see `ledger.cbor_scan`)
            value = cbor2.loads(body)
        else:
            raise RequestError(415, f"content type must be {JSON} or {CBOR}, got {media or 'none'!r}")
    except RequestError:
        raise
    except (ValueError, cbor2.CBORDecodeError, EncodingError, RecursionError, UnicodeDecodeError) as exc:
        raise RequestError(400, f"malformed {media} body: {exc}") from None
    _check_plain(value)
    return value


_TYPE_NAMES = {str: "a string", bytes: "bytes", int: "an integer", float: "a number",
               bool: "a boolean", list: "a list", dict: "an object"}


@dataclass(frozen=True)
class Field:
    """One field: its type (`kind`), whether it must be present, and bounds.

    `max_len` bounds a str, bytes or list; `schema` validates a nested object;
    `items` is the type (or schema) of every element of a list.
    """

    kind: type
    required: bool = True
    max_len: int | None = None
    schema: Schema | None = None
    items: type | Schema | None = None


def _check_type(value: Any, expected: type, where: str) -> None:
    if expected is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif expected is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, expected)
    if not ok:
        raise RequestError(400, f"{where} must be {_TYPE_NAMES.get(expected, expected.__name__)}")


@dataclass(frozen=True)
class Schema:
    """Fields of an object; unknown fields are refused unless `allow_extra`."""

    fields: Mapping[str, Field]
    allow_extra: bool = False
    name: str = field(default="body")

    def __call__(self, value: Any) -> dict[str, Any]:
        return self.validate(value)

    def validate(self, value: Any, where: str | None = None) -> dict[str, Any]:
        where = where or self.name
        if not isinstance(value, dict):
            raise RequestError(400, f"{where} must be an object")
        extra = set(value) - set(self.fields)
        if extra and not self.allow_extra:
            raise RequestError(400, f"{where} has unknown field(s): {', '.join(sorted(extra))}")
        out: dict[str, Any] = {}
        for name, spec in self.fields.items():
            if name not in value:
                if spec.required:
                    raise RequestError(400, f"{where}.{name} is required")
                continue
            out[name] = _validate_field(value[name], spec, f"{where}.{name}")
        return out


def _validate_field(value: Any, spec: Field, where: str) -> Any:
    _check_type(value, spec.kind, where)
    if spec.max_len is not None and isinstance(value, (str, bytes, list)) and len(value) > spec.max_len:
        raise RequestError(400, f"{where} is longer than {spec.max_len}")
    if spec.schema is not None:
        return spec.schema.validate(value, where)
    if spec.items is not None and isinstance(value, list):
        if isinstance(spec.items, Schema):
            return [spec.items.validate(v, f"{where}[{i}]") for i, v in enumerate(value)]
        for i, item in enumerate(value):
            _check_type(item, spec.items, f"{where}[{i}]")
    return value


def validated(validator: Validator, handler: PayloadHandler) -> Handler:
    """A route handler that decodes and validates the body, then calls `handler(caller, payload, query)`.

    The body is decoded by the request's Content-Type (`query.content_type`).
    """

    def wrapper(caller: str, body: bytes, query: Query) -> HandlerResult:
        payload = validator(decode_body(body, query.content_type))
        return handler(caller, payload, query)

    wrapper.__name__ = getattr(handler, "__name__", "validated")
    wrapper.__doc__ = handler.__doc__
    return wrapper


def json_response(value: Any, status: int = 200) -> HandlerResult:
    return status, JSON, json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def cbor_response(value: Any, status: int = 200) -> HandlerResult:
    return status, CBOR, cbor2.dumps(value, canonical=True)


def check_safetensors(data: bytes) -> dict[str, Any]:
    """The header of a safetensors file, after checking its framing; ValueError if it is not one."""
    if len(data) < 8:
        raise ValueError("safetensors data shorter than its 8-byte header length")
    (header_len,) = struct.unpack("<Q", data[:8])
    if header_len > min(len(data) - 8, _SAFETENSORS_MAX_HEADER):
        raise ValueError("safetensors header length runs past the end of the data")
    try:
        header = json.loads(data[8 : 8 + header_len].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"safetensors header is not JSON: {exc}") from None
    if not isinstance(header, dict):
        raise ValueError("safetensors header is not a JSON object")
    payload = len(data) - 8 - header_len
    for name, info in header.items():
        if name == "__metadata__":
            continue
        offsets = info.get("data_offsets") if isinstance(info, dict) else None
        if (not isinstance(offsets, list) or len(offsets) != 2
                or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
                or not 0 <= offsets[0] <= offsets[1] <= payload):
            raise ValueError(f"safetensors tensor {name!r} has bad data_offsets")
    return header


def safetensors_response(data: bytes) -> HandlerResult:
    """Serve a model: the bytes as-is, after checking they are safetensors (a 500 if not: our bug)."""
    check_safetensors(data)
    return 200, OCTET, data
