"""Hostile CBOR for the strict-wire tests: shared-reference bombs and tagged values.

`shared_ref_bomb(levels)` is a list whose item k is a shareable (tag 28) pair
of references (tag 29) to item k − 1: about 10 bytes a level, and item k
decodes into 2**k leaves. cbor2 resolves tags 28/29 itself, so a `tag_hook`
never sees them.
"""

from __future__ import annotations

from typing import Any

import cbor2

PLACEHOLDER = "@@hostile@@"


def tag(number: int, payload: bytes) -> bytes:
    """CBOR head of `tag(number)` (number < 256) followed by the tagged item's bytes."""
    return (bytes((0xC0 | number,)) if number < 24 else bytes((0xD8, number))) + payload


def shared_ref_bomb(levels: int) -> bytes:
    items = [tag(28, cbor2.dumps(["x"]))]
    for k in range(1, levels):
        ref = tag(29, cbor2.dumps(k - 1))
        items.append(tag(28, b"\x82" + ref + ref))
    head = bytes((0x80 | levels,)) if levels < 24 else bytes((0x98, levels))
    return head + b"".join(items)


def splice(value: Any, hostile: bytes) -> bytes:
    """Canonical CBOR of `value` with the (single) string PLACEHOLDER replaced by `hostile` bytes."""
    data = cbor2.dumps(value, canonical=True)
    marker = cbor2.dumps(PLACEHOLDER)
    assert data.count(marker) == 1
    return data.replace(marker, hostile)


def governance_bomb(levels: int) -> bytes:
    """A governance message whose hyper-parameters are a shared-reference bomb."""
    message = {"type": "governance", "body": {"request": {
        "kind": "hyperparams", "requester": "m1", "height": 1, "body": {"hyperparams": PLACEHOLDER},
        "signature": b"\0" * 64}}}
    return splice(message, shared_ref_bomb(levels))
