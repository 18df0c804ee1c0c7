"""The client side: one node calling another over mutual TLS 1.3.

`PeerClient` opens a fresh connection per request (a full handshake each time,
so the server sees our certificate on every call, and no pool to go stale),
checks that the server is a coalition member by its certificate fingerprint
*before* sending any byte of the request, and bounds everything: a timeout on
each socket operation, a cap on the response size, and a fixed number of
retries with exponential back-off. A request may also have a total deadline
(`deadline_s`: connect, handshake, request and the whole response, retries
included), which a server sending one byte just before each read timeout
cannot stretch: a timer shuts the socket down when it passes.

What is retried: a refused or reset connection, a timeout, a connection closed
before the response. What is not: a certificate problem on either side (it
will not fix itself in a second) or any HTTP status (the server answered).
A POST may therefore reach the server twice; the protocol messages it carries
are signed and idempotent, and the core drops duplicates.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import cbor2

from tclearn.errors import EncodingError, RemoteProtocolError
from tclearn.ledger.cbor_scan import scan
from tclearn.transport.errors import (
    HTTPStatusError,
    PeerNotAllowedError,
    PeerUnavailableError,
    ResponseTooLargeError,
)
from tclearn.transport.schema import CBOR, JSON, OCTET, check_safetensors
from tclearn.transport.tls import MemberAllowList, client_context

__all__ = ["PeerClient", "Response"]

_TRANSIENT_TLS = (ssl.SSLEOFError, ssl.SSLZeroReturnError)


class _Transient(Exception):
    """A failure worth one more try."""


@dataclass(frozen=True)
class Response:
    """A peer's answer, and which member gave it."""

    status: int
    content_type: str
    body: bytes
    server_member: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def raise_for_status(self) -> Response:
        if not self.ok:
            message = self.body[:500].decode("utf-8", "replace")
            try:
                message = str(json.loads(self.body)["error"])
            except (ValueError, KeyError, TypeError):
                pass
            raise HTTPStatusError(self.status, f"{self.server_member}: {message}")
        return self

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise RemoteProtocolError(f"{self.server_member} sent malformed JSON: {exc}") from None

    def cbor(self) -> Any:
        try:
            scan(self.body)  # tags, sizes, depth: refused before cbor2 runs (see `ledger.cbor_scan`)
            return cbor2.loads(self.body)
        except (ValueError, cbor2.CBORDecodeError, EncodingError) as exc:
            raise RemoteProtocolError(f"{self.server_member} sent malformed CBOR: {exc}") from None


def _as_allowlist(allowed: MemberAllowList | Mapping[str, str] | Iterable[str]) -> MemberAllowList:
    return allowed if isinstance(allowed, MemberAllowList) else MemberAllowList(allowed)


class PeerClient:
    """HTTPS client to one peer node, e.g. `PeerClient("https://127.0.0.1:8443", ca, cert, key, allowed)`.

    Pass a shared `MemberAllowList` as `allowed_fingerprints` so membership
    changes reach every client at once. `expected_member`, if given, must be
    the member id the server's certificate names.
    """

    def __init__(
        self,
        base_url: str,
        ca: Path | bytes,
        cert: Path,
        key: Path,
        allowed_fingerprints: MemberAllowList | Mapping[str, str] | Iterable[str],
        *,
        key_password: bytes | None = None,
        check_hostname: bool = True,
        **options: Any,
    ) -> None:
        context = client_context(ca, cert, key, key_password, check_hostname=check_hostname)
        self._setup(base_url, context, _as_allowlist(allowed_fingerprints), **options)

    @classmethod
    def from_context(
        cls,
        base_url: str,
        context: ssl.SSLContext,
        allowed_fingerprints: MemberAllowList | Mapping[str, str] | Iterable[str],
        **options: Any,
    ) -> PeerClient:
        """A client sharing an already-built `client_context` (one per node, not one per peer)."""
        client = cls.__new__(cls)
        client._setup(base_url, context, _as_allowlist(allowed_fingerprints), **options)
        return client

    def _setup(
        self,
        base_url: str,
        context: ssl.SSLContext,
        allowlist: MemberAllowList,
        *,
        expected_member: str | None = None,
        timeout_s: float = 10.0,
        retries: int = 2,
        backoff_s: float = 0.2,
        max_response_bytes: int = 1 << 30,
        sleep: Callable[[float], None] = time.sleep,
        source_host: str | None = None,
    ) -> None:
        if context.minimum_version != ssl.TLSVersion.TLSv1_3 or context.verify_mode != ssl.CERT_REQUIRED:
            raise PeerUnavailableError("the client context must be a TLS 1.3 `client_context`")
        split = urlsplit(base_url)
        if split.scheme != "https" or not split.hostname:
            raise ValueError(f"peer URL must be https://host[:port], got {base_url!r}")
        if retries < 0 or timeout_s <= 0 or max_response_bytes < 0:
            raise ValueError("retries >= 0, timeout_s > 0 and max_response_bytes >= 0, please")
        self.base_url = base_url.rstrip("/")
        self._host, self._port = split.hostname, split.port or 443
        self._prefix = split.path.rstrip("/")
        self._context, self.allowlist = context, allowlist
        self.expected_member = expected_member
        self.timeout_s, self.retries, self.backoff_s = timeout_s, retries, backoff_s
        self.max_response_bytes = max_response_bytes
        self._sleep = sleep
        # the local address connections leave from (None: the system's choice); a member on its own loopback
        # address speaks from it, as a member on its own host would
        self._source = None if source_host is None else (source_host, 0)

    # -- requests -----------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        content_type: str | None = None,
        query: Mapping[str, str] | None = None,
        *,
        max_bytes: int | None = None,
        deadline_s: float | None = None,
    ) -> Response:
        """Send one request (with bounded retries) and return the answer, whatever its status.

        `max_bytes` lowers the response cap for this request; `deadline_s` bounds the whole
        exchange, retries included (`PeerUnavailableError` when it passes).
        """
        target = self._prefix + path + (("?" + urlencode(query)) if query else "")
        limit = self.max_response_bytes if max_bytes is None else min(max_bytes, self.max_response_bytes)
        deadline = None if deadline_s is None else time.monotonic() + deadline_s
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                self._sleep(self.backoff_s * (2 ** (attempt - 1)))
            if deadline is not None and time.monotonic() >= deadline:
                break
            try:
                return self._once(method.upper(), target, body, content_type, limit, deadline)
            except _Transient as exc:
                last = exc
        if deadline is not None and time.monotonic() >= deadline:
            raise PeerUnavailableError(f"{self.base_url}{path}: no complete answer within {deadline_s:g} s ({last})")
        raise PeerUnavailableError(f"{self.base_url}{path}: {last} (gave up after {self.retries + 1} attempts)")

    def get(self, path: str, query: Mapping[str, str] | None = None) -> Response:
        return self.request("GET", path, query=query)

    def post(self, path: str, body: bytes, content_type: str = OCTET) -> Response:
        return self.request("POST", path, body, content_type)

    def post_json(self, path: str, value: Any) -> Response:
        return self.post(path, json.dumps(value, sort_keys=True, separators=(",", ":")).encode(), JSON)

    def post_cbor(self, path: str, value: Any) -> Response:
        return self.post(path, cbor2.dumps(value, canonical=True), CBOR)

    def get_json(self, path: str, query: Mapping[str, str] | None = None) -> Any:
        return self.get(path, query).raise_for_status().json()

    def get_model(self, path: str, query: Mapping[str, str] | None = None, *, max_bytes: int | None = None,
                  deadline_s: float | None = None) -> bytes:
        """Safetensors bytes of a model or increment, framing checked (not the hash: the caller's job).

        `max_bytes` and `deadline_s`: see `request` (a node passes the size its genesis
        architecture implies, and a deadline derived from it).
        """
        response = self.request("GET", path, query=query, max_bytes=max_bytes,
                                deadline_s=deadline_s).raise_for_status()
        if response.content_type.split(";", 1)[0].strip() != OCTET:
            raise RemoteProtocolError(f"{response.server_member} served a model as {response.content_type!r}")
        try:
            check_safetensors(response.body)
        except ValueError as exc:
            raise RemoteProtocolError(f"{response.server_member} served a malformed model: {exc}") from None
        return response.body

    def health(self) -> dict[str, Any]:
        value = self.get_json("/health")
        if not isinstance(value, dict):
            raise RemoteProtocolError("malformed /health answer")
        return value

    # -- one attempt --------------------------------------------------------

    def _once(self, method: str, target: str, body: bytes, content_type: str | None, limit: int | None = None,
              deadline: float | None = None) -> Response:
        limit = self.max_response_bytes if limit is None else limit
        timeout = self.timeout_s if deadline is None else max(0.001, min(self.timeout_s, deadline - time.monotonic()))
        conn = http.client.HTTPSConnection(self._host, self._port, context=self._context, timeout=timeout,
                                           source_address=self._source)
        timer = None if deadline is None else threading.Timer(max(0.0, deadline - time.monotonic()), _cut, (conn,))
        if timer is not None:
            timer.daemon = True
            timer.start()
        try:
            member = self._connect(conn)
            headers = {"Content-Length": str(len(body))}
            if content_type:
                headers["Content-Type"] = content_type
            try:
                conn.request(method, target, body=body, headers=headers)
                response = conn.getresponse()
                return Response(response.status, response.getheader("Content-Type", ""), self._read(response, limit),
                                member)
            except ssl.SSLError as exc:
                if isinstance(exc, _TRANSIENT_TLS):
                    raise _Transient(f"TLS connection closed: {exc}") from None
                raise PeerUnavailableError(f"{self.base_url} refused our certificate: {exc.reason or exc}") from None
            except (OSError, http.client.HTTPException) as exc:
                raise _Transient(f"{type(exc).__name__}: {exc}") from None
        finally:
            if timer is not None:
                timer.cancel()
            conn.close()

    def _connect(self, conn: http.client.HTTPSConnection) -> str:
        """TLS handshake, then the allow-list check; the member id of the server."""
        try:
            conn.connect()
        except ssl.SSLCertVerificationError as exc:
            raise PeerUnavailableError(f"{self.base_url}: server certificate refused: {exc.verify_message}") from None
        except _TRANSIENT_TLS as exc:
            raise _Transient(f"TLS handshake cut short: {exc}") from None
        except ssl.SSLError as exc:
            raise PeerUnavailableError(f"{self.base_url}: TLS handshake failed: {exc.reason or exc}") from None
        except OSError as exc:
            raise _Transient(f"cannot connect: {exc.strerror or exc}") from None
        sock = conn.sock
        if not isinstance(sock, ssl.SSLSocket):  # pragma: no cover - HTTPSConnection always wraps
            raise PeerUnavailableError("connection is not TLS")
        member = self.allowlist.identify(sock.getpeercert(binary_form=True))
        if self.expected_member is not None and member != self.expected_member:
            raise PeerNotAllowedError(f"{self.base_url} is {member!r}, expected {self.expected_member!r}")
        return member

    def _read(self, response: http.client.HTTPResponse, limit: int | None = None) -> bytes:
        limit = self.max_response_bytes if limit is None else limit
        declared = response.getheader("Content-Length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise ResponseTooLargeError(f"response of {declared} bytes is over the limit of {limit}")
        chunks, size = [], 0
        while size <= limit:  # read1: returns what one read gave (the deadline timer can cut between reads)
            chunk = response.read1(min(limit + 1 - size, 1 << 16))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise ResponseTooLargeError(f"response is over the limit of {limit} bytes")
        if declared is not None and declared.isdigit() and size < int(declared):  # cut short (or by our deadline)
            raise http.client.IncompleteRead(b"", int(declared) - size)
        return b"".join(chunks)


def _cut(conn: http.client.HTTPSConnection) -> None:
    """The deadline passed: shut the connection's socket down under whoever is reading it."""
    sock = conn.sock
    if sock is not None:
        try:
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        except OSError:
            pass
