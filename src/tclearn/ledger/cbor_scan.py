"""A strict pre-scan of CBOR bytes from a peer, run before any decoder sees them.

Theory of operation. `cbor2` is a general decoder: it resolves several tags
itself — shared references (28/29), which let a few hundred bytes decode into
a structure that doubles at every level, sets, dates, big numbers — without
ever calling a `tag_hook`, and it follows nesting as deep as the bytes go.
TCLearn's records use none of that. `scan` walks the bytes once, iteratively
(a stack of item counts, a table of the 256 initial bytes, no recursion), and
refuses, before cbor2 runs:

* any tag (major type 6) but one: a canonical big number (tag 2 or 3 on a
  byte string of 9 to `MAX_BIGNUM_BYTES` bytes, no leading zero), which is
  how the encoder writes an integer beyond 64 bits;
* any indefinite-length item, reserved or simple values other than false,
  true, null and the three float widths;
* a map key that is not a text string;
* more than `max_items` items in all, an item nested deeper than `max_depth`
  (the depth rule of `encoding`: the top value is at depth 0), a string
  longer than `max_string_bytes`;
* a length that runs past the bytes left (an array or map announcing more
  items than there are bytes, a string longer than what remains), and
  trailing bytes.

What passes decodes into a tree (no sharing) of at most `max_items` nodes and
at most `max_depth` levels whose strings fit in the input: the memory of the
decoded value, and the time of any later walk over it (canonical check,
re-encoding, hashing), are linear in the input's length. The scan itself
costs O(len(data)): each step consumes at least one byte.
"""

from __future__ import annotations

from tclearn.errors import EncodingError

__all__ = ["MAX_ITEMS", "MAX_DEPTH", "MAX_STRING_BYTES", "MAX_BIGNUM_BYTES", "scan"]

MAX_ITEMS = 1 << 17  # data items in one encoding (a 64-block catch-up reply, 100 members, k = 30: < 65 536)
MAX_DEPTH = 32  # nesting, as `encoding` counts it (records never go past 6)
MAX_STRING_BYTES = 4 * 1024 * 1024  # one text or byte string (hashes, signatures, a block's bytes)
MAX_BIGNUM_BYTES = 16  # integers below 2**128

_SIMPLE_OK = frozenset({20, 21, 22, 25, 26, 27})  # false, true, null, half / single / double float
_REFUSED = -99  # in `_HEAD`: indefinite length or reserved


def _head_table() -> tuple[tuple[int, int], ...]:
    """Per initial byte: (major type, argument), the argument negative when it follows: -(its size in bytes).

    The simple values we accept become major type 0 (skipped like an integer,
    a float's bits being its argument); any other simple value stays major 7.
    """
    table = []
    for byte in range(256):
        major, info = byte >> 5, byte & 31
        arg = info if info < 24 else -(1 << (info - 24)) if info < 28 else _REFUSED
        if major == 7 and info in _SIMPLE_OK:
            major = 0
        table.append((major, arg))
    return tuple(table)


_HEAD = _head_table()


def scan(data: bytes | bytearray, *, max_items: int = MAX_ITEMS, max_depth: int = MAX_DEPTH,
         max_string_bytes: int = MAX_STRING_BYTES) -> None:
    """Refuse (EncodingError) CBOR bytes outside TCLearn's strict subset (see the module docstring)."""
    if not isinstance(data, (bytes, bytearray)):
        raise EncodingError("expected bytes")
    end = len(data)
    pos = 0
    budget = max_items
    left, in_map = 1, False  # items still to read in the open container (the top level holds one); a map?
    stack: list[tuple[int, bool]] = []  # (left, in_map) of the enclosing containers
    head_of = _HEAD
    while True:
        if not left:
            if not stack:
                break
            left, in_map = stack.pop()
            continue
        if pos >= end:
            raise EncodingError("CBOR item truncated")
        budget -= 1
        if budget < 0:
            raise EncodingError(f"more than {max_items} CBOR items")
        major, arg = head_of[data[pos]]
        if in_map and not left & 1 and major != 3:
            raise EncodingError("CBOR map keys must be text strings")
        left -= 1
        pos += 1
        if arg < 0:
            if arg == _REFUSED:
                raise EncodingError("indefinite-length and reserved CBOR items are not allowed")
            if pos - arg > end:
                raise EncodingError("CBOR item truncated")
            arg, pos = int.from_bytes(data[pos:pos - arg], "big"), pos - arg
        if major == 3 or major == 2:
            if arg > max_string_bytes:
                raise EncodingError(f"a CBOR string longer than {max_string_bytes} bytes")
            if arg > end - pos:
                raise EncodingError("CBOR string runs past the end of the data")
            pos += arg
        elif major == 4 or major == 5:
            count = arg if major == 4 else 2 * arg
            if count > end - pos:
                raise EncodingError("CBOR container announces more items than there are bytes")
            if count:
                if len(stack) >= max_depth:  # its items would sit deeper than max_depth
                    raise EncodingError(f"CBOR nested deeper than {max_depth}")
                stack.append((left, in_map))
                left, in_map = count, major == 5
        elif major == 6:
            if arg in (2, 3) and pos < end and 0x49 <= data[pos] <= 0x40 | MAX_BIGNUM_BYTES:
                size = data[pos] & 31
                if pos + 1 + size <= end and data[pos + 1] != 0:
                    pos += 1 + size  # the big number's bytes: one more item
                    budget -= 1
                    continue
            raise EncodingError("CBOR tags are not allowed (but for a canonical big number)")
        elif major == 7:
            raise EncodingError("CBOR simple values other than false, true, null and floats are not allowed")
    if pos != end:
        raise EncodingError("trailing bytes after the CBOR item")
