"""A member's TLS server that misbehaves on purpose: the hostile tests' peer on a real socket.

`EvilTLSServer` listens on 127.0.0.1 (an ephemeral port) with alice's certificate, completes each TLS
handshake, reads the request, and hands the connection to `answer(tls, n)` (n: the connection's number,
from 1) on its own thread; subclasses say how to misbehave. `stop` is set by `close`, so an answer that
stalls can wait on it.
"""

from __future__ import annotations

import socket
import ssl
import threading
from typing import Any

from tclearn.transport import server_context


class EvilTLSServer:
    def __init__(self, coalition: Any, mode: str) -> None:
        self.mode, self.connections = mode, 0
        self.context = server_context(coalition.ca, coalition.alice.cert, coalition.alice.key)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                raw, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            threading.Thread(target=self._run, args=(raw, self.connections), daemon=True).start()

    def _run(self, raw: socket.socket, n: int) -> None:
        try:
            tls = self.context.wrap_socket(raw, server_side=True)
            tls.recv(65536)
            self.answer(tls, n)
        except (OSError, ssl.SSLError):
            pass

    def answer(self, tls: ssl.SSLSocket, n: int) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.stop.set()
        self.sock.close()
