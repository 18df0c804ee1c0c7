"""A strict pre-scan of CBOR bytes from a peer, run before any decoder sees them.

Theory of operation. `cbor2` is a general decoder: it resolves several tags
itself — shared references (28/29), which let a few hundred bytes decode into
a structure that doubles at every level, sets, dates, big numbers — without
ever calling a `tag_hook`, and it follows nesting as deep as the bytes go.
TCLearn's records use none of that. `scan` walks the bytes once, iteratively
(a stack of item counts, no recursion), and refuses, before cbor2 runs:

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


def scan(data: bytes | bytearray, *, max_items: int = MAX_ITEMS, max_depth: int = MAX_DEPTH,
         max_string_bytes: int = MAX_STRING_BYTES) -> None:
    """Refuse (EncodingError) CBOR bytes outside TCLearn's strict subset (see the module docstring)."""
    if not isinstance(data, (bytes, bytearray)):
        raise EncodingError("expected bytes")
    end = len(data)
    pos = 0
    items = 0
    left = [1]  # items still to read in each open container; the bottom entry is the top-level value
    in_map = [False]
    while left:
        if left[-1] == 0:
            left.pop()
            in_map.pop()
            continue
        is_key = in_map[-1] and left[-1] % 2 == 0
        left[-1] -= 1
        if pos >= end:
            raise EncodingError("CBOR item truncated")
        items += 1
        if items > max_items:
            raise EncodingError(f"more than {max_items} CBOR items")
        if len(left) - 1 > max_depth:
            raise EncodingError(f"CBOR nested deeper than {max_depth}")
        head = data[pos]
        pos += 1
        major, info = head >> 5, head & 31
        if info < 24:
            arg = info
        elif info < 28:
            size = 1 << (info - 24)
            if pos + size > end:
                raise EncodingError("CBOR item truncated")
            arg = int.from_bytes(data[pos:pos + size], "big")
            pos += size
        else:
            raise EncodingError("indefinite-length and reserved CBOR items are not allowed")
        if is_key and major != 3:
            raise EncodingError("CBOR map keys must be text strings")
        if major <= 1:
            continue
        if major <= 3:
            if arg > max_string_bytes:
                raise EncodingError(f"a CBOR string longer than {max_string_bytes} bytes")
            if arg > end - pos:
                raise EncodingError("CBOR string runs past the end of the data")
            pos += arg
            continue
        if major <= 5:
            count = arg if major == 4 else 2 * arg
            if count > end - pos:
                raise EncodingError("CBOR container announces more items than there are bytes")
            left.append(count)
            in_map.append(major == 5)
            continue
        if major == 6:
            if arg in (2, 3) and pos < end and 0x49 <= data[pos] <= 0x40 | MAX_BIGNUM_BYTES:
                size = data[pos] & 31
                if pos + 1 + size <= end and data[pos + 1] != 0:
                    pos += 1 + size  # the byte string, one more item
                    items += 1
                    continue
            raise EncodingError("CBOR tags are not allowed (but for a canonical big number)")
        if info not in _SIMPLE_OK:
            raise EncodingError("CBOR simple values other than false, true, null and floats are not allowed")
    if pos != end:
        raise EncodingError("trailing bytes after the CBOR item")
