"""The encrypted-model file members receive: canonical CBOR, bounded, its layout checked."""

from __future__ import annotations

import pytest

from tclearn.he.digits_encrypted import DigitsLayout
from tclearn.he.errors import HEError, MalformedCiphertext
from tclearn.he.store import model_file, read_model_file
from tclearn.ledger.encoding import canonical_bytes, decode


def test_a_model_file_round_trips_and_a_forged_layout_is_refused() -> None:
    layout = DigitsLayout.plan(4, 4096)
    data = model_file("digits-1", "digits", [b"a", b"b"], layout)
    assert read_model_file(data) == ("digits-1", "digits", [b"a", b"b"], layout)
    doc = decode(data)
    for forged in ({**doc, "layout": [4, 64, 10, 4000, 4096]},  # 2.5 M slots claimed: would allocate
                   {**doc, "kind": "pickle"}, {**doc, "ciphertexts": ["text"]}):
        with pytest.raises(MalformedCiphertext):
            read_model_file(canonical_bytes(forged))
    with pytest.raises(MalformedCiphertext):
        read_model_file(data[:-1])
    with pytest.raises(HEError):
        model_file("../etc/passwd", "logreg", [b"a"])
