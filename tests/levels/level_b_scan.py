"""The scan behind "no model bytes on any disk in the clear", shared by the demo and coalition level-B tests."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Iterable


def model_probes(plain: Iterable[bytes]) -> list[bytes]:
    """Byte strings that only a plaintext copy of these safetensors models holds: each whole header, and
    64-byte windows of the tensor bytes (past the header) that are not runs of zeros (biases)."""
    probes = []
    for data in plain:
        (n,) = struct.unpack("<Q", data[:8])
        body = data[8 + n:]
        windows = [body[i: i + 64] for i in range(0, len(body) - 64, max(64, len(body) // 16))]
        probes += [data[: 8 + n]] + [w for w in windows if len(set(w)) >= 24]
    return probes


def assert_no_plaintext(files: Iterable[Path], probes: list[bytes]) -> None:
    """No file looks like a safetensors file or holds any probe."""
    for path in files:
        raw = path.read_bytes()
        if len(raw) >= 10:
            (n,) = struct.unpack("<Q", raw[:8])
            assert not (0 < n < len(raw) and raw[8:10] == b'{"'), f"{path} looks like a safetensors file"
        for probe in probes:
            assert probe not in raw, f"{path} holds model bytes in the clear"
