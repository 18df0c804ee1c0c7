"""The hash genesis records for a data file or folder (G, as distributed with the kit).

A file: the SHA-256 of its bytes (what `sha256sum FILE` prints). A folder: the
SHA-256 of the lines `<sha256 of file>  <path relative to the folder>\\n` of
every regular file below it, sorted by path — what
`(cd DIR && find . -type f | sed 's|^./||' | LC_ALL=C sort | xargs sha256sum) | sha256sum`
prints, so an operator can check it without TCLearn. Hashing the bytes, not the
decoded samples, keeps the answer independent of library versions (NIfTI
resampling, say).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from tclearn.errors import DataError

__all__ = ["data_hash"]

_CHUNK = 1 << 20


def _file_hash(path: Path) -> str:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                h.update(chunk)
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    return h.hexdigest()


def data_hash(path: Path | str) -> str:
    """Hex SHA-256 of a file's bytes, or of a folder's sorted `sha256sum` listing."""
    path = Path(path)
    if path.is_file():
        return _file_hash(path)
    if not path.is_dir():
        raise DataError(f"no file or folder at {path}")
    files = sorted((p for p in path.rglob("*") if p.is_file()), key=lambda p: p.relative_to(path).as_posix().encode())
    if not files:
        raise DataError(f"{path} holds no file")
    listing = "".join(f"{_file_hash(p)}  {p.relative_to(path).as_posix()}\n" for p in files)
    return hashlib.sha256(listing.encode()).hexdigest()
