"""Errors of the node-to-node HTTP transport.

Two families, as in the rest of TCLearn: our own misconfiguration
(`TLSConfigError`) and a peer that misbehaves or cannot be reached
(`PeerNotAllowedError`, `PeerUnavailableError`, `HTTPStatusError`,
`ResponseTooLargeError`). `RequestError` is what a route handler raises to
answer a caller with an HTTP error status instead of a 500.
"""

from __future__ import annotations

from tclearn.errors import TransportError

__all__ = [
    "HTTPStatusError",
    "PeerNotAllowedError",
    "PeerUnavailableError",
    "RequestError",
    "ResponseTooLargeError",
    "TLSConfigError",
]


class TLSConfigError(TransportError):
    """Raised when a TLS context cannot be built from the given CA, certificate and key."""


class PeerNotAllowedError(TransportError):
    """Raised when a peer's certificate is valid but not on the coalition's member list."""


class PeerUnavailableError(TransportError):
    """Raised when a peer cannot be reached, or its TLS handshake fails, after the allowed retries."""


class HTTPStatusError(TransportError):
    """Raised by `Response.raise_for_status` when a peer answers with a 4xx or 5xx status."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(f"HTTP {status}: {message}")


class ResponseTooLargeError(TransportError):
    """Raised when a peer's response is larger than the client accepts."""


class RequestError(TransportError):
    """Raised by a route handler to answer with `status` and a JSON error `message`.

    The message goes back to the caller: say what was wrong with the request,
    never anything about our internals.
    """

    def __init__(self, status: int, message: str) -> None:
        if not 400 <= status <= 599:
            raise ValueError(f"RequestError status must be 4xx or 5xx, got {status}")
        self.status = status
        self.message = message
        super().__init__(f"{status}: {message}")
