"""Attacks on running nodes over the network, for the hostile-peer tests and `bench/hostile.py`.

Each attacker is a small object with `start()`, `stop()` and `bytes_sent`
(what the attack cost its author on the wire), run in threads of the calling
process against real node processes:

* `StalledHandshakes` — a host without a certificate (another loopback address,
  127.0.0.2) holding `connections` TCP connections open, each trickling a real
  TLS ClientHello one byte a second; a closed one is reopened at once.
* `HeaderTrickle` — a member (its own certificate) holding `connections` TLS
  connections, each sending a request's header one byte a second.
* `SlowModelProxy` — stands in front of a member's node on its advertised
  port and forwards both ways, except that a burst of more than
  `burst_bytes` from the node (a model being served) is sent on at one byte
  every `byte_interval_s` (mode `trickle`), or the connection is cut (mode
  `drop`: a proposer whose model cannot be fetched, so every evaluation of
  its candidates fails). Messages, status answers and handshakes pass.
* `BlocksFlood` — a member asking `GET /v1/blocks?from=0` over and over
  (catch-up reads).

`ATTACKS` names them; `proxied_coalition` sets up a coalition whose member
`evil` serves through a `SlowModelProxy`, and `make_attack` builds an
attacker by name. Nothing here is used by a node.
"""

from __future__ import annotations

import select
import socket
import ssl
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["ATTACKS", "BlocksFlood", "HeaderTrickle", "SlowModelProxy", "StalledHandshakes", "client_hello",
           "make_attack", "proxied_coalition"]

STRANGER_SOURCE = "127.0.0.2"


def client_hello(ca: Path) -> bytes:
    """The first flight of a real TLS 1.3 client without a certificate."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(ca)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname="127.0.0.1")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


class _Attacker:
    def __init__(self) -> None:
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self.bytes_sent = 0
        self.connections_opened = 0
        self.connections_refused = 0

    def _count(self, sent: int = 0, opened: int = 0, refused: int = 0) -> None:
        with self._lock:
            self.bytes_sent += sent
            self.connections_opened += opened
            self.connections_refused += refused

    def _spawn(self, target: Any, *args: Any) -> None:
        t = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(t)
        t.start()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=5)

    def report(self) -> dict[str, Any]:
        return {"bytes_sent": self.bytes_sent, "connections_opened": self.connections_opened,
                "connections_refused": self.connections_refused}


class StalledHandshakes(_Attacker):
    """`connections` connections from a host without a certificate, each trickling a ClientHello."""

    def __init__(self, port: int, ca: Path, connections: int = 500, byte_interval_s: float = 1.0,
                 host: str = "127.0.0.1", source: str = STRANGER_SOURCE) -> None:
        super().__init__()
        self.port, self.host, self.source = port, host, source
        self.connections, self.byte_interval_s = connections, byte_interval_s
        self.hello = client_hello(ca)

    def start(self) -> "StalledHandshakes":
        per_thread = 50
        for first in range(0, self.connections, per_thread):
            self._spawn(self._run, min(per_thread, self.connections - first))
        return self

    def _open(self) -> socket.socket | None:
        s = socket.socket()
        s.settimeout(2)
        try:
            s.bind((self.source, 0))
            s.connect((self.host, self.port))
            s.setblocking(False)
        except OSError:
            s.close()
            self._count(refused=1)
            return None
        self._count(opened=1, sent=60)  # SYN, ACK: what a connection costs on the wire
        return s

    def _run(self, n: int) -> None:
        socks: list[list[Any]] = [[None, 0] for _ in range(n)]
        while not self._stop.is_set():
            for entry in socks:
                if entry[0] is None:
                    entry[0], entry[1] = self._open(), 0
                    if entry[0] is None:
                        continue
                s, sent = entry
                try:
                    try:
                        if s.recv(4096) == b"":
                            raise ConnectionResetError
                    except BlockingIOError:
                        pass
                    s.send(self.hello[sent % len(self.hello): sent % len(self.hello) + 1])
                    entry[1] += 1
                    self._count(sent=1)
                except OSError:
                    s.close()
                    entry[0] = None
            self._stop.wait(self.byte_interval_s)
        for s, _ in socks:
            if s is not None:
                s.close()


class HeaderTrickle(_Attacker):
    """A member holding `connections` TLS connections, each sending its request header a byte at a time."""

    def __init__(self, port: int, ca: Path, cert: Path, key: Path, connections: int = 64,
                 byte_interval_s: float = 1.0, host: str = "127.0.0.1") -> None:
        super().__init__()
        from tclearn.transport import client_context

        self.port, self.host, self.connections, self.byte_interval_s = port, host, connections, byte_interval_s
        self.context = client_context(ca, cert, key)
        self.header = b"GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 4000

    def start(self) -> "HeaderTrickle":
        for _ in range(self.connections):
            self._spawn(self._run)
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                tls = self.context.wrap_socket(socket.create_connection((self.host, self.port), timeout=5),
                                               server_hostname=self.host)
            except OSError:
                self._count(refused=1)
                self._stop.wait(self.byte_interval_s)
                continue
            self._count(opened=1, sent=2000)  # a full handshake with a certificate chain, roughly
            try:
                for byte in self.header:
                    if self._stop.is_set():
                        break
                    tls.sendall(bytes([byte]))
                    self._count(sent=23)  # one byte in one TLS record
                    self._stop.wait(self.byte_interval_s)
            except OSError:
                pass
            finally:
                tls.close()


class SlowModelProxy(_Attacker):
    """Listens on `listen_port`, forwards to `upstream_port`; big bursts from upstream are trickled or dropped."""

    def __init__(self, listen_port: int, upstream_port: int, mode: str = "trickle", burst_bytes: int = 32 * 1024,
                 byte_interval_s: float = 5.0, host: str = "127.0.0.1") -> None:
        super().__init__()
        if mode not in ("trickle", "drop", "pass"):
            raise ValueError("mode is trickle, drop or pass")
        self.mode, self.burst_bytes, self.byte_interval_s = mode, burst_bytes, byte_interval_s
        self.host, self.upstream_port = host, upstream_port
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((host, listen_port))
        self.listener.listen(128)
        self.listener.settimeout(0.2)
        self.models_held = 0

    def start(self) -> "SlowModelProxy":
        self._spawn(self._accept)
        return self

    def stop(self) -> None:
        super().stop()
        self.listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.listener.accept()
            except (TimeoutError, OSError):
                continue
            try:
                upstream = socket.create_connection((self.host, self.upstream_port), timeout=5)
            except OSError:
                client.close()
                continue
            self._spawn(self._pipe, client, upstream)

    def _pipe(self, client: socket.socket, upstream: socket.socket) -> None:
        window: list[tuple[float, int]] = []
        try:
            while not self._stop.is_set():
                ready, _, _ = select.select([client, upstream], [], [], 0.2)
                for s in ready:
                    data = s.recv(1 << 16)
                    if not data:
                        return
                    if s is client:
                        upstream.sendall(data)
                        continue
                    now = time.monotonic()
                    window = [(t, n) for t, n in window if now - t < 0.5] + [(now, len(data))]
                    if self.mode != "pass" and sum(n for _, n in window) > self.burst_bytes:
                        self._hold(client, data)
                        return
                    client.sendall(data)
                    self._count(sent=len(data))
        except OSError:
            return
        finally:
            client.close()
            upstream.close()

    def _hold(self, client: socket.socket, data: bytes) -> None:
        """A model is on its way: drop the connection, or send it on one byte per interval."""
        with self._lock:
            self.models_held += 1
        if self.mode == "drop":
            return
        client.sendall(data[:1])
        self._count(sent=1)
        for i in range(1, len(data)):
            if self._stop.wait(self.byte_interval_s):
                return
            client.sendall(data[i:i + 1])
            self._count(sent=1)


class BlocksFlood(_Attacker):
    """A member asking for the chain from block 0, `rate_per_s` times a second."""

    def __init__(self, url: str, ca: Path, cert: Path, key: Path, allow: Any, member: str,
                 rate_per_s: float = 20.0) -> None:
        super().__init__()
        from tclearn.transport import PeerClient

        self.client = PeerClient(url, ca, cert, key, allow, expected_member=member, timeout_s=5, retries=0)
        self.rate_per_s = rate_per_s

    def start(self) -> "BlocksFlood":
        self._spawn(self._run)
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.client.get("/v1/blocks", {"from": "0"})
                self._count(sent=2300, opened=1)  # handshake and request, roughly
            except Exception:
                self._count(refused=1)
            self._stop.wait(1.0 / self.rate_per_s)


ATTACKS = ("stalled-handshakes", "header-trickle", "slow-model", "unfetchable-model", "blocks-flood")


# --- a coalition to attack --------------------------------------------------------------------------------


def proxied_coalition(out_dir: Path, partners: int = 4, *, seed: int = 0, task: str = "digits",
                      evil: str | None = None) -> dict[str, Any]:
    """Set up a coalition (`tclearn.node.setup_coalition`) whose member `evil` serves through a proxy.

    The peers know `evil` at its advertised port; its own node.toml is rewritten to listen on
    another one, which a `SlowModelProxy` (mode `pass` until an attack changes it) forwards to.
    Returns {member: {"url", "cert", "key", "ca", "config"}, "_proxy": the proxy or None}.
    """
    from tclearn.node import setup_coalition
    from tclearn.node.launcher import free_ports

    configs = setup_coalition(out_dir, partners, task=task, seed=seed)
    proxy = None
    if evil is not None:
        cfg = next(c for c in configs if c.member_id == evil)
        toml = Path(out_dir) / "nodes" / evil / "node.toml"
        (inner,) = free_ports(1)
        text = toml.read_text()
        toml.write_text(text.replace(f"port = {cfg.port}\n", f"port = {inner}\n", 1))
        proxy = SlowModelProxy(cfg.port, inner, mode="pass").start()
    files: dict[str, Any] = {c.member_id: {"url": c.url, "cert": c.tls_cert, "key": c.tls_key, "ca": c.ca_cert,
                                           "port": c.port} for c in configs}
    files["_proxy"] = proxy
    return files


def make_attack(name: str, files: dict[str, Any], victim: str = "m0", attacker: str = "m3") -> Any:
    """The attacker `name` (one of ATTACKS) against `victim`, played by `attacker` where it needs a member."""
    v, a = files[victim], files[attacker]
    if name == "stalled-handshakes":
        return StalledHandshakes(v["port"], v["ca"], connections=500)
    if name == "header-trickle":
        return HeaderTrickle(v["port"], a["ca"], a["cert"], a["key"], connections=64)
    if name in ("slow-model", "unfetchable-model"):
        return _ProxyMode(files["_proxy"], "trickle" if name == "slow-model" else "drop")
    if name == "blocks-flood":
        from tclearn.transport import MemberAllowList

        allow = MemberAllowList.from_certs([Path(f["cert"]) for m, f in files.items() if not m.startswith("_")])
        return BlocksFlood(v["url"], a["ca"], a["cert"], a["key"], allow, victim)
    raise ValueError(f"unknown attack {name!r} (known: {', '.join(ATTACKS)})")


class _ProxyMode:
    """Switches a running `SlowModelProxy` into an attack mode (and back to `pass` on stop)."""

    def __init__(self, proxy: SlowModelProxy, mode: str) -> None:
        if proxy is None:
            raise ValueError("this attack needs a coalition set up with proxied_coalition(evil=...)")
        self.proxy, self.mode = proxy, mode
        self._sent_before = 0

    @property
    def bytes_sent(self) -> int:
        return self.proxy.bytes_sent - self._sent_before

    def start(self) -> "_ProxyMode":
        self._sent_before = self.proxy.bytes_sent
        self.proxy.mode = self.mode
        return self

    def stop(self) -> None:
        self.proxy.mode = "pass"

    def report(self) -> dict[str, Any]:
        return {"bytes_sent": self.bytes_sent, "models_held": self.proxy.models_held}
