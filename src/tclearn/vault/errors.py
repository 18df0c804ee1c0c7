"""Errors of the level-B vault: one subtree under `TCLearnError`.

The CLI gives each class its own exit code (31-39, see `tclearn.cli.errors`).
"""

from __future__ import annotations

from tclearn.errors import TCLearnError

__all__ = ["VaultError", "AccessDenied", "IntegrityError", "RequestError", "VaultLockedError", "ObjectNotFound"]


class VaultError(TCLearnError):
    """Raised for a vault problem that no subclass describes."""


class AccessDenied(VaultError):
    """Raised when the access policy refuses a request (the refusal is journaled first)."""


class IntegrityError(VaultError):
    """Raised when a stored object, its metadata or the audit journal was altered, cut or reordered."""


class RequestError(VaultError):
    """Raised when an offline (S/MIME) request is malformed, mis-signed, replayed or from an unknown certificate."""


class VaultLockedError(VaultError):
    """Raised when the key-encryption key cannot be unlocked (wrong passphrase, missing or damaged key file)."""


class ObjectNotFound(VaultError):
    """Raised when the vault holds no object under the requested id."""
