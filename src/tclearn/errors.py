"""One root error with a subtree per part.

A local misuse and a peer's misbehaviour are different classes: a peer's bad
message is evidence against the peer, never a crash of ours. The CLI maps each
class to a documented exit code (see `tclearn.cli.errors`).
"""

from __future__ import annotations


class TCLearnError(Exception):
    """Raised for every error TCLearn reports on purpose."""


class ConfigError(TCLearnError):
    """Raised when a configuration file is missing, malformed or incomplete."""


class EncodingError(TCLearnError):
    """Raised when bytes are not a valid canonical encoding of a record."""


class IdentityError(TCLearnError):
    """Raised when a key file cannot be read, decrypted or written safely."""


class SignatureError(TCLearnError):
    """Raised when a signature does not verify against the claimed signer."""


class LedgerError(TCLearnError):
    """Raised for ledger problems."""


class InvalidBlockError(LedgerError):
    """Raised when a block is malformed, mis-hashed, mis-signed or out of place.

    `index` names the offending block, `reason` says why.
    """

    def __init__(self, index: int | None, reason: str) -> None:
        self.index = index
        self.reason = reason
        where = f"block {index}" if index is not None else "block"
        super().__init__(f"{where}: {reason}")


class StoreError(LedgerError):
    """Raised when a chain store cannot be opened or is not a TCLearn chain."""


class ConsensusError(TCLearnError):
    """Raised when the consensus core is misused locally (a bug of the caller)."""


class RemoteProtocolError(TCLearnError):
    """Raised when a peer's message is invalid; the peer is at fault, not us."""


class LearningError(TCLearnError):
    """Raised for model, data and training problems."""


class NotYetError(LearningError):
    """Raised when work cannot be done yet (a model no peer served so far): the member driver asks again later."""


class DataError(LearningError):
    """Raised when a data set is missing, malformed or unusable."""


class TransportError(TCLearnError):
    """Raised for PKI, TLS and HTTP transport problems."""
