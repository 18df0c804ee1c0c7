"""Errors of the coalition PKI.

Every class is a `TransportError`, so a caller that only cares "the secure
channel could not be set up" catches one class; the CLI maps each subclass to
its own exit code (see `tclearn.cli.pki`).
"""

from __future__ import annotations

from tclearn.errors import TransportError

__all__ = [
    "AlreadyExistsError",
    "BadPassphraseError",
    "CANotFoundError",
    "InvalidCertificateError",
    "InvalidNameError",
    "KeyFileError",
    "MemberNotFoundError",
    "PKIError",
]


class PKIError(TransportError):
    """Raised for coalition CA and certificate problems."""


class CANotFoundError(PKIError):
    """Raised when a PKI directory holds no coalition CA (run `tclearn pki init`)."""


class AlreadyExistsError(PKIError):
    """Raised when a CA or member would overwrite existing key material."""


class MemberNotFoundError(PKIError):
    """Raised when a member has no key or certificate in the PKI directory."""


class KeyFileError(PKIError):
    """Raised when a key file is unreadable, not a key, or readable by others."""


class BadPassphraseError(KeyFileError):
    """Raised when an encrypted key needs a passphrase, or the one given is wrong."""


class InvalidCertificateError(PKIError):
    """Raised when a certificate is malformed, expired, or not issued by the coalition CA."""


class InvalidNameError(PKIError):
    """Raised when a member id, host name or IP address cannot go into a certificate."""
