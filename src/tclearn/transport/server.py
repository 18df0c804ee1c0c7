"""The HTTPS API server of a node: mutual TLS 1.3, one thread per connection.

Theory of operation. `ThreadingHTTPServer` accepts plain TCP connections; each
one gets a thread (at most `max_connections` at once, the rest are closed at
once) that does the TLS handshake under a total deadline, identifies the caller
from its certificate and the allow-list (`tls.py`), and only then reads HTTP.
The handshake runs in the connection's thread, not in the accept loop, so a
peer that stalls mid-handshake delays nobody else. Strangers cannot exhaust
the slots (`admission.py`): connections not yet identified are limited per
source address and in all, below `max_connections`, and each member may hold
`max_connections_per_member`. Each request's line and headers, and each
response, have a total deadline too; refusals are logged at a bounded rate
(a few lines, then one `refusals_summary` line per interval).

Why the standard library: the caller's identity comes from the client
certificate, and the handler needs it (access control, audit); an ASGI server
such as uvicorn does not hand the peer certificate to the application, while
`http.server` gives us the socket itself.

Every request is bounded: the body by a size limit (413 before reading it; a
route can raise its own limit for model uploads), every socket read and write
by a timeout, the whole body by a deadline. Every request, refused handshake
and dropped connection is one JSON log line, with the caller's member id when
it is known. A handler that raises never takes the server down: `RequestError`
becomes its status, anything else a 500 with the traceback in the log only.
"""

from __future__ import annotations

import json
import logging
import socket
import socketserver
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from typing import Any, NamedTuple, Self, cast

from tclearn.transport.admission import Admission, RefusalLog, Ticket, Watchdog
from tclearn.transport.errors import PeerNotAllowedError, TLSConfigError
from tclearn.transport.handler import RequestHandler
from tclearn.transport.router import Router
from tclearn.transport.tls import MemberAllowList

__all__ = ["EventLog", "NodeServer", "ServerLimits", "log_json_line"]

EventLog = Callable[[dict[str, Any]], None]

_logger = logging.getLogger("tclearn.transport")


def log_json_line(record: dict[str, Any]) -> None:
    """Default event sink: one JSON object per line on the `tclearn.transport` logger."""
    level = logging.WARNING if record.get("level") == "warning" else logging.INFO
    _logger.log(level, json.dumps(record, sort_keys=True, default=str))


@dataclass(frozen=True)
class ServerLimits:
    """Bounds on what one peer can make the server do."""

    max_body_bytes: int = 1 << 20
    handshake_timeout_s: float = 5.0  # the whole handshake (CPython's do_handshake keeps one deadline)
    io_timeout_s: float = 10.0  # one read or write; also how long a kept-alive connection may idle
    header_deadline_s: float = 10.0  # a request's line and headers, from its first byte
    body_deadline_s: float = 120.0
    send_deadline_s: float = 60.0  # writing one response
    max_connections: int = 64
    max_pending: int | None = None  # connections not yet identified, in all (None: half of max_connections)
    max_pending_per_source: int = 8  # ... from one source address
    max_connections_per_member: int = 16
    log_interval_s: float = 10.0  # refusal lines: `log_burst` per kind per interval, then one summary
    log_burst: int = 5

    @property
    def pending_max(self) -> int:
        return self.max_pending if self.max_pending is not None else max(1, self.max_connections // 2)


class _Accepted(NamedTuple):
    """What the accept loop hands a connection's thread: the peer's address and its admission ticket."""

    peer: Any
    ticket: Ticket


class _TLSHTTPServer(ThreadingHTTPServer):
    """Accept loop; TLS and HTTP happen in `NodeServer.serve_connection`, per thread."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], node: NodeServer) -> None:
        self.node = node
        # socketserver never builds the handler itself (finish_request is ours, and adds the caller).
        super().__init__(address, cast(Any, RequestHandler))

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host name (a DNS lookup); we have no use for it.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        source = str(client_address[0]) if isinstance(client_address, tuple) else str(client_address)
        ticket, reason = self.node.admission.admit(source, request)
        if ticket is None:  # before any TLS work: a refusal costs an accept and a close
            self.node.refusals.refuse("connection_refused", peer=client_address, reason=reason)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, _Accepted(client_address, ticket))
        except BaseException:
            self.node.admission.closed(ticket, None)
            raise

    def finish_request(self, request: Any, client_address: Any) -> None:
        self.node.serve_connection(request, client_address.peer, client_address.ticket)

    def handle_error(self, request: Any, client_address: Any) -> None:
        _logger.exception("unexpected error on connection from %s", getattr(client_address, "peer", client_address))


class NodeServer:
    """A node's API server; `start()` binds and serves in a background thread, `stop()` ends it.

    `context` must be a `server_context` (TLS 1.3 only, client certificates
    required); anything weaker is refused here rather than trusted.
    `GET /health` is answered by the server itself, before the router: any
    member may ask it, and it says who answered and who asked.
    """

    def __init__(
        self,
        router: Router,
        context: ssl.SSLContext,
        allowlist: MemberAllowList,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        member_id: str | None = None,
        limits: ServerLimits = ServerLimits(),
        log: EventLog = log_json_line,
    ) -> None:
        if context.verify_mode != ssl.CERT_REQUIRED:
            raise TLSConfigError("the server context must require client certificates (CERT_REQUIRED)")
        if context.minimum_version != ssl.TLSVersion.TLSv1_3 or context.maximum_version != ssl.TLSVersion.TLSv1_3:
            raise TLSConfigError("the server context must allow TLS 1.3 and nothing else")
        self.router = router
        self.context = context
        self.allowlist = allowlist
        self.member_id = member_id
        self.limits = limits
        self.admission = Admission(limits.max_connections, min(limits.pending_max, limits.max_connections),
                                   limits.max_pending_per_source, limits.max_connections_per_member)
        self._log = log
        self.refusals = RefusalLog(self.emit, limits.log_interval_s, limits.log_burst)
        self.watchdog = Watchdog(lambda phase: self.refusals.refuse("deadline_passed", phase=phase),
                                 every_period=self.refusals.flush)
        self._address = (host, port)
        self._httpd: _TLSHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._active: set[ssl.SSLSocket] = set()
        self._active_lock = threading.Lock()

    # -- life cycle ---------------------------------------------------------

    def start(self) -> Self:
        """Bind (port 0: an ephemeral port, see `port`) and serve in a daemon thread."""
        if self._httpd is not None:
            raise RuntimeError("server already started")
        try:
            self._httpd = _TLSHTTPServer(self._address, self)
        except OSError as exc:
            raise TLSConfigError(f"cannot listen on {self._address[0]}:{self._address[1]}: {exc.strerror}") from None
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1}, name=f"tclearn-https-{self.port}", daemon=True
        )
        self._thread.start()
        self.watchdog.start()
        self.emit("server_started", url=self.url)
        return self

    def stop(self) -> None:
        """Stop accepting, close the listening socket and cut open connections."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        with self._active_lock:
            active = list(self._active)
        for sock in active:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.watchdog.stop()
        self.refusals.flush(force=True)
        self.emit("server_stopped")

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("server not started")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        host = self._address[0]
        return f"https://{f'[{host}]' if ':' in host else host}:{self.port}"

    # -- per connection -----------------------------------------------------

    def emit(self, event: str, **fields: Any) -> None:
        """One structured log record; a failing log sink never breaks a request."""
        record: dict[str, Any] = {"ts": round(time.time(), 6), "event": event, "server": self.member_id}
        peer = fields.pop("peer", None)
        if isinstance(peer, tuple):
            record["peer"] = f"{peer[0]}:{peer[1]}"
        record.update(fields)
        try:
            self._log(record)
        except Exception:  # a broken sink must not become a broken server
            _logger.exception("event log sink failed")

    def serve_connection(self, raw: socket.socket, peer: tuple[str, int], ticket: Ticket) -> None:
        """Handshake, identify the caller, then serve HTTP requests until the connection ends.

        The connection holds a pending slot (its `ticket`, taken by the accept loop) until the
        handshake ends, then, for a member, one of that member's slots.
        """
        counted = None
        try:
            raw.settimeout(self.limits.handshake_timeout_s)
            try:
                tls = self.context.wrap_socket(raw, server_side=True, do_handshake_on_connect=False)
            except (OSError, ValueError) as exc:
                self.refusals.refuse("tls_refused", peer=peer, reason=str(exc))
                return
            with self._active_lock:
                self._active.add(tls)
            try:
                if not self.admission.attach(ticket, tls):
                    self.refusals.refuse("tls_refused", peer=peer, reason="cut to make room for another connection")
                    return
                self.watchdog.watch(tls, self.limits.handshake_timeout_s + 0.5, "handshake")
                try:
                    tls.do_handshake()
                    caller = self.allowlist.identify(tls.getpeercert(binary_form=True))
                except PeerNotAllowedError as exc:
                    self.refusals.refuse("peer_refused", peer=peer, reason=str(exc))
                    return
                except (OSError, ValueError) as exc:
                    self.refusals.refuse("tls_refused", peer=peer, reason=_tls_reason(exc))
                    return
                finally:
                    self.watchdog.release(tls)
                refused = self.admission.identified(ticket, caller)
                if refused is not None:
                    self.refusals.refuse("connection_refused", peer=peer, caller=caller, reason=refused)
                    return
                counted = caller
                tls.settimeout(self.limits.io_timeout_s)
                try:
                    RequestHandler(tls, peer, self._httpd_or_raise(), caller=caller)
                except OSError as exc:  # reset, broken pipe, TLS EOF: the peer went away
                    self.emit("connection_dropped", peer=peer, caller=caller, reason=_tls_reason(exc))
            finally:
                self.watchdog.release(tls)
                with self._active_lock:
                    self._active.discard(tls)
                tls.close()
        finally:
            self.admission.closed(ticket, counted)

    def _httpd_or_raise(self) -> _TLSHTTPServer:
        if self._httpd is None:
            raise ConnectionAbortedError("server stopping")
        return self._httpd


def _tls_reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return f"{exc.reason} ({exc.library})" if exc.library else str(exc.reason)
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return "timed out"
    return str(exc) or type(exc).__name__
