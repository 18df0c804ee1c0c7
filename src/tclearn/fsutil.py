"""One atomic file write for every store: a file is either the old one or the new one, never half of either.

Why one helper: keys, safety snapshots, certificates, models and reports are
all written the same way — to a fresh temporary file beside the target,
flushed to disk, then renamed over the target (`os.replace`, atomic on POSIX)
or, when the target must not be overwritten (key material), linked to it
(`os.link` fails if the name exists, so two writers never both win). The
temporary file has the final mode from its first byte: 0600 for owner-only
files, otherwise what the umask allows. The directory is synced after the
rename, so the new name survives a power cut too.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable
from pathlib import Path

__all__ = ["atomic_write"]


def atomic_write(path: Path | str, data: bytes | bytearray | memoryview | Iterable[bytes | memoryview], *,
                 owner_only: bool = False, exclusive: bool = False) -> None:
    """Write `data` to `path` atomically, creating missing parent directories.

    `data` is bytes, or chunks (each written before the next is drawn, so an
    encrypting generator never holds the whole ciphertext in memory).
    `owner_only`: mode 0600 (keys, snapshots, models); otherwise 0666 less the umask.
    `exclusive`: refuse to replace an existing file (raises `FileExistsError`, nothing written).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if owner_only else 0o666)
    try:
        try:
            for chunk in [data] if isinstance(data, (bytes, bytearray, memoryview)) else data:
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        if exclusive:
            os.link(tmp, path)  # FileExistsError if the name is taken: the existing file stays as it was
        else:
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # after a rename there is nothing left; after a link or a failure, the copy
    _sync_directory(path.parent)


def _sync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return  # not every platform opens directories; the rename itself is still atomic
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
