"""The dashboard on a loopback-only plain-HTTP port: for the operator's own browser and the one-process demo.

A node's main port wants a member's client certificate, which a browser must
first import; an operator on the node's own machine may prefer
`[dashboard] port = 8080` in `node.toml`, and `tclearn demo --serve` has no
certificates at all. This server binds 127.0.0.1 (or ::1) and nothing else —
any other address is refused here, so the unauthenticated port can never face
the network — answers GET only, to the same `Router` handlers the mutual-TLS
server uses (the caller is `"loopback"`), with a socket timeout on every read
and a bounded thread count.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tclearn.errors import ConfigError
from tclearn.transport.errors import RequestError
from tclearn.transport.router import Query, Router

__all__ = ["LoopbackServer", "LOOPBACK_CALLER", "MAX_THREADS"]

LOOPBACK_CALLER = "loopback"
MAX_THREADS = 16
IO_TIMEOUT_S = 10.0
_logger = logging.getLogger("tclearn.dashboard")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = IO_TIMEOUT_S
    server: "_Server"

    def version_string(self) -> str:
        return "tclearn"

    def do_GET(self) -> None:
        split = urlsplit(self.path)
        try:
            if self.headers.get("Content-Length", "0") not in ("", "0") or "Transfer-Encoding" in self.headers:
                raise RequestError(400, "a GET carries no body")
            query = Query(dict(parse_qsl(split.query, keep_blank_values=True, max_num_fields=64)))
            status, content_type, body = self.server.router.dispatch("GET", split.path, LOOPBACK_CALLER, b"", query)
        except RequestError as exc:
            status, content_type = exc.status, "application/json"
            body = json.dumps({"error": exc.message, "status": exc.status}).encode()
        except ValueError as exc:
            status, content_type, body = 400, "application/json", json.dumps({"error": str(exc)}).encode()
        except Exception:
            _logger.exception("dashboard handler failed for %s", split.path)
            status, content_type, body = 500, "application/json", b'{"error": "internal error"}'
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        self.send_error(405, "the dashboard is read-only")

    def log_message(self, format: str, *args: Any) -> None:
        _logger.debug("dashboard: " + format, *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], router: Router) -> None:
        self.router = router
        self.slots = threading.BoundedSemaphore(MAX_THREADS)
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.slots.acquire(blocking=False):  # every slot busy: close at once rather than queue threads
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()


class LoopbackServer:
    """`start()` binds `host:port` (port 0: any free one) on loopback and serves in a daemon thread."""

    def __init__(self, router: Router, host: str = "127.0.0.1", port: int = 0) -> None:
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ConfigError(f"the dashboard's plain-HTTP port binds loopback only (127.0.0.1 or ::1), not {host!r}")
        self.router, self.host, self.port = router, host, port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> "LoopbackServer":
        try:
            self._server = _Server((self.host, self.port), self.router)
        except OSError as exc:
            raise ConfigError(f"cannot listen on {self.host}:{self.port} for the dashboard: {exc.strerror}") from None
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name=f"tclearn-dashboard-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def __enter__(self) -> "LoopbackServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
