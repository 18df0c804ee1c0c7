"""One HTTP/1.1 connection of an authenticated member: parse, bound, route, answer, log.

Runs on a TLS socket whose peer `NodeServer` has already identified; the
member id arrives as `caller` and is the only identity a handler ever sees.
Headers are parsed by `http.server` (which already bounds the request line to
64 KiB and the header count to 100); the body is ours to bound.
"""

from __future__ import annotations

import json
import logging
import time
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import parse_qsl, urlsplit

from tclearn.errors import RemoteProtocolError
from tclearn.transport.errors import RequestError
from tclearn.transport.router import HandlerResult, Query, RouteMatch

if TYPE_CHECKING:
    from tclearn.transport.server import NodeServer

__all__ = ["RequestHandler"]

_logger = logging.getLogger("tclearn.transport")
_CHUNK = 256 * 1024
# After refusing a body (413, 404...), read and drop up to this much of it before closing, so the
# client reads our answer instead of a connection reset (a "lingering close", as nginx does).
_DISCARD_MAX_BYTES = 64 * 1024 * 1024
_DISCARD_MAX_S = 2.0
_MAX_QUERY_PARAMS = 64


class _ClientGone(Exception):
    """The peer stopped sending or closed the connection mid-request."""


def _error_body(status: int, message: str) -> HandlerResult:
    return status, "application/json", json.dumps({"error": message, "status": status}).encode()


class RequestHandler(BaseHTTPRequestHandler):
    """Serves the requests of one connection; one instance per connection."""

    protocol_version = "HTTP/1.1"
    default_request_version = "HTTP/1.1"  # answer garbage with a status line, not HTTP/0.9's bare body
    disable_nagle_algorithm = True

    def __init__(self, request: Any, client_address: Any, server: Any, *, caller: str) -> None:
        self.caller = caller
        self.node = cast("NodeServer", server.node)  # socket timeouts: set by NodeServer.serve_connection
        self._bytes_in = 0
        self._declared: int | None = 0
        self._body_consumed = True
        super().__init__(request, client_address, server)

    def handle_one_request(self) -> None:
        """Wait (idle, up to the read timeout) for a request, then give its line and headers a deadline."""
        try:
            ready = self.rfile.peek(1)  # type: ignore[attr-defined]
        except (TimeoutError, OSError):
            ready = b""
        if not ready:
            self.close_connection = True
            return
        self.node.watchdog.watch(self.connection, self.node.limits.header_deadline_s, "headers")
        try:
            super().handle_one_request()
        finally:
            self.node.watchdog.release(self.connection)

    def version_string(self) -> str:
        """The Server header: no Python version for a scanner to match."""
        return "tclearn"

    # http.server calls these by method name.
    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        self.node.watchdog.release(self.connection)  # headers read; the body has its own deadline
        started = time.monotonic()
        self._bytes_in = 0
        self._declared = self._declared_length()
        self._body_consumed = self._declared == 0
        split = urlsplit(self.path)
        try:
            status, content_type, payload = self._answer(split.path, split.query)
        except _ClientGone as gone:
            self.close_connection = True
            self._log(split.path, 0, started, error=str(gone))
            return
        if not self._body_consumed:
            # The body (or what is left of it) is still on the wire: this connection
            # cannot carry another request.
            self.close_connection = True
        self._send(status, content_type, payload)
        self._log(split.path, status, started, bytes_out=len(payload))
        if not self._body_consumed and self._declared and not self._bytes_in:
            self._discard(self._declared)

    def _answer(self, path: str, query_string: str) -> HandlerResult:
        if not self.node.allowlist.admits(self.caller):  # removed since this connection was identified
            self.close_connection = True
            self.node.refusals.refuse("peer_refused", peer=self.client_address, caller=self.caller,
                                      reason="no longer a coalition member")
            return _error_body(403, f"{self.caller} is no longer a coalition member")
        try:
            query = self._parse_query(query_string)
            if path == "/health" and self.command == "GET":
                return self._health()
            found = self.node.router.match(self.command, path)
            limit = found.route.max_body_bytes
            body = self._read_body(self.node.limits.max_body_bytes if limit is None else limit)
            return self._call(found, body, query)
        except RequestError as exc:
            if exc.status >= 500:
                self.close_connection = True
            return _error_body(exc.status, exc.message)
        except RemoteProtocolError as exc:
            return _error_body(400, str(exc))

    def _call(self, found: RouteMatch, body: bytes, query: Query) -> HandlerResult:
        try:
            result = found.call(self.caller, body, query)
        except (RequestError, RemoteProtocolError):
            raise
        except Exception:
            _logger.exception("handler for %s %s failed (caller %s)", self.command, found.route.pattern, self.caller)
            raise RequestError(500, "internal error") from None
        if (not isinstance(result, tuple) or len(result) != 3 or not isinstance(result[0], int)
                or not isinstance(result[1], str) or not isinstance(result[2], (bytes, bytearray))):
            _logger.error("handler for %s %s returned %r, not (status, content_type, bytes)",
                          self.command, found.route.pattern, type(result))
            raise RequestError(500, "internal error")
        return result[0], result[1], bytes(result[2])

    def _parse_query(self, query_string: str) -> Query:
        try:
            pairs = parse_qsl(query_string, keep_blank_values=True, strict_parsing=bool(query_string),
                              max_num_fields=_MAX_QUERY_PARAMS, errors="strict")
        except (ValueError, UnicodeDecodeError) as exc:
            raise RequestError(400, f"malformed query string: {exc}") from None
        names = [name for name, _ in pairs]
        if len(set(names)) != len(names):
            raise RequestError(400, "a query parameter is repeated")
        return Query(dict(pairs), content_type=self.headers.get("Content-Type", ""))

    def _declared_length(self) -> int | None:
        """The Content-Length, 0 without one; None when chunked or invalid."""
        if "Transfer-Encoding" in self.headers:
            return None
        lengths = self.headers.get_all("Content-Length") or []
        if not lengths:
            return 0
        if len(set(lengths)) != 1 or not lengths[0].strip().isdigit():
            return None
        return int(lengths[0])

    def _read_body(self, limit: int) -> bytes:
        length = self._declared
        if length is None:
            if "Transfer-Encoding" in self.headers:
                raise RequestError(411, "chunked bodies are not accepted: send a Content-Length")
            raise RequestError(400, "invalid Content-Length")
        if length > limit:
            raise RequestError(413, f"body of {length} bytes is over the limit of {limit} bytes")
        deadline = time.monotonic() + self.node.limits.body_deadline_s
        chunks: list[bytes] = []
        remaining = length
        while remaining:
            if time.monotonic() > deadline:
                raise RequestError(408, "body took too long to arrive")
            try:
                chunk = self.rfile.read1(min(remaining, _CHUNK))
            except (TimeoutError, OSError) as exc:
                raise _ClientGone(f"body read failed after {length - remaining} of {length} bytes: {exc}") from None
            if not chunk:
                raise _ClientGone(f"peer closed after {length - remaining} of {length} body bytes")
            chunks.append(chunk)
            remaining -= len(chunk)
            self._bytes_in = length - remaining
        self._body_consumed = True
        return b"".join(chunks)

    def _discard(self, length: int) -> None:
        """Drop a refused body, within bounds; the connection closes after it either way."""
        if length > _DISCARD_MAX_BYTES:
            return
        deadline = time.monotonic() + _DISCARD_MAX_S
        try:
            while length > 0 and time.monotonic() < deadline:
                chunk = self.rfile.read1(min(length, _CHUNK))
                if not chunk:
                    return
                length -= len(chunk)
        except OSError:
            return

    def _health(self) -> HandlerResult:
        body = {"status": "ok", "member": self.node.member_id, "caller": self.caller}
        return 200, "application/json", json.dumps(body, sort_keys=True).encode()

    def _send(self, status: int, content_type: str, payload: bytes) -> None:
        self.node.watchdog.watch(self.connection, self.node.limits.send_deadline_s, "response")
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Cache-Control", "no-store")
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(payload)
            self.wfile.flush()
        except OSError:
            self.close_connection = True  # the peer left; the access log still records the request
        finally:
            self.node.watchdog.release(self.connection)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own errors (bad request line, 414, 431, 501), as JSON and logged."""
        self.close_connection = True
        code = int(code)
        _, content_type, payload = _error_body(code, message or self.responses.get(code, ("error",))[0])
        self._send(code, content_type, payload)
        self._log(urlsplit(getattr(self, "path", "") or "").path, code, time.monotonic(), bytes_out=len(payload))

    def _log(self, path: str, status: int, started: float, bytes_out: int = 0, error: str | None = None) -> None:
        fields: dict[str, Any] = {
            "peer": self.client_address, "caller": self.caller, "method": getattr(self, "command", None),
            "path": path, "status": status, "bytes_in": self._bytes_in, "bytes_out": bytes_out,
            "ms": round((time.monotonic() - started) * 1000, 3),
        }
        if error is not None:
            fields["error"] = error
            fields["level"] = "warning"
        self.node.emit("request", **fields)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence http.server's stderr lines; `_log` writes the structured ones."""
        _logger.debug("http.server: " + format, *args)
