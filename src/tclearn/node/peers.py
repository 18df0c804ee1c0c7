"""Messages to the peers: one bounded outbox and one sender thread per peer, over a kept-alive mutual-TLS link.

Fire and forget: a full outbox drops its oldest message, and the backlog to a
dead peer is dropped — the protocol re-sends what matters.

The peer set follows the chain (`tclearn.node.chain_members`): `add_peer` for a
member a membership block added (its sender starts at once if the others
run), `remove_peer` for one it removed (its sender closes its link and ends).
"""

from __future__ import annotations

import hashlib
import http.client
import ipaddress
import queue
import ssl
import threading
from typing import Callable
from urllib.parse import urlsplit

from tclearn.consensus.messages import Message
from tclearn.consensus.wire import encode_message
from tclearn.transport import MemberAllowList, PeerNotAllowedError

__all__ = ["OUTBOX_MAX", "Outboxes", "PeerLink", "source_host_for"]

OUTBOX_MAX = 1024


def source_host_for(host: str) -> str | None:
    """The address a node's connections leave from: its own when it listens on a loopback address.

    Members on distinct loopback addresses (127.0.0.2, 127.0.0.3, …) then speak
    from them, as members on separate hosts would; anywhere else the system
    chooses (a public address may sit behind NAT, a name may resolve to several).
    """
    try:
        return host if ipaddress.ip_address(host).is_loopback else None
    except ValueError:
        return None


class PeerLink:
    """A kept-alive mutual-TLS connection to one peer for `POST /v1/messages` (one TLS handshake, many messages).

    The server's certificate must be the peer's (allow-list and member id); a stale connection is
    re-opened once per message (a duplicate is harmless: the protocol ignores repeated messages).
    """

    def __init__(self, url: str, context: ssl.SSLContext, allowlist: MemberAllowList, member: str,
                 timeout_s: float = 5.0, source_host: str | None = None) -> None:
        split = urlsplit(url)
        self.host, self.port = split.hostname or "127.0.0.1", split.port or 443
        self.source = None if source_host is None else (source_host, 0)
        self.context, self.allowlist, self.member, self.timeout_s = context, allowlist, member, timeout_s
        self.conn: http.client.HTTPSConnection | None = None

    def _open(self) -> http.client.HTTPSConnection:
        conn = http.client.HTTPSConnection(self.host, self.port, context=self.context, timeout=self.timeout_s,
                                           source_address=self.source)
        conn.connect()
        sock = conn.sock
        who = self.allowlist.identify(sock.getpeercert(binary_form=True)) if isinstance(sock, ssl.SSLSocket) else None
        if who != self.member:
            conn.close()
            raise PeerNotAllowedError(f"{self.host}:{self.port} is {who!r}, expected {self.member!r}")
        return conn

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def post(self, path: str, body: bytes) -> int:
        for attempt in range(2):
            fresh = self.conn is None
            if self.conn is None:
                self.conn = self._open()
            try:
                self.conn.request("POST", path, body=body,
                                  headers={"Content-Type": "application/octet-stream", "Content-Length": str(len(body))})
                response = self.conn.getresponse()
                response.read(1 << 16)
                if response.will_close:
                    self.close()
                return response.status
            except (OSError, http.client.HTTPException):
                self.close()
                if attempt or fresh:
                    raise
        raise ConnectionError("unreachable")  # pragma: no cover


class Outboxes:
    """The transport seam the driver sends through (`send`, core thread), and the senders that drain it."""

    def __init__(self, peer_urls: dict[str, str], context: ssl.SSLContext, allowlist: MemberAllowList,
                 log: Callable[..., None], stop: threading.Event, trace: bool = False,
                 source_host: str | None = None) -> None:
        self.peer_urls, self.context, self.allowlist = peer_urls, context, allowlist
        self.source_host = source_host  # see `source_host` in tclearn.node.runtime
        self.log, self.stop, self.trace = log, stop, trace
        self.boxes: dict[str, queue.Queue[bytes]] = {m: queue.Queue(maxsize=OUTBOX_MAX) for m in peer_urls}
        self._started = False

    def add_peer(self, member: str, url: str) -> None:
        """Send to `member` at `url` from now on (a new member; a changed URL replaces the old sender)."""
        if member in self.boxes and self.peer_urls.get(member) == url:
            return
        self.peer_urls[member] = url
        self.boxes[member] = queue.Queue(maxsize=OUTBOX_MAX)
        if self._started:
            threading.Thread(target=self.run_sender, args=(member,), name=f"tclearn-send-{member}",
                             daemon=True).start()

    def remove_peer(self, member: str) -> None:
        """Stop sending to `member` (removed from the coalition): its sender ends and closes its link."""
        self.boxes.pop(member, None)
        self.peer_urls.pop(member, None)

    def send(self, to: str, message: Message) -> None:
        box = self.boxes.get(to)
        if box is None:
            return
        data = encode_message(message)
        if self.trace:
            self.log("msg_out", to=to, kind=type(message).__name__, id=hashlib.sha256(data).hexdigest()[:12])
        try:
            box.put_nowait(data)
        except queue.Full:  # drop the oldest: the protocol re-sends what matters
            try:
                box.get_nowait()
                box.put_nowait(data)
            except (queue.Empty, queue.Full):
                pass

    def threads(self) -> list[threading.Thread]:
        self._started = True
        return [threading.Thread(target=self.run_sender, args=(m,), name=f"tclearn-send-{m}", daemon=True)
                for m in self.boxes]

    def run_sender(self, member: str) -> None:
        box = self.boxes[member]
        link = PeerLink(self.peer_urls[member], self.context, self.allowlist, member, source_host=self.source_host)
        failures = 0
        # removed or replaced: this sender delivers what was queued before (the block that removed the peer,
        # say), then ends
        while not self.stop.is_set() and (self.boxes.get(member) is box or not box.empty()):
            try:
                data = box.get(timeout=0.2)
            except queue.Empty:
                continue
            try:
                status = link.post("/v1/messages", data)
                if status >= 400:
                    self.log("send_refused", to=member, status=status)
                failures = 0
            except Exception as exc:  # peer down: drop what is queued for it (the protocol re-sends), back off
                failures += 1
                dropped = 0
                while True:
                    try:
                        box.get_nowait()
                        dropped += 1
                    except queue.Empty:
                        break
                if failures in (1, 10) or failures % 100 == 0:
                    self.log("send_failed", to=member, reason=str(exc)[:200], failures=failures, dropped=dropped)
                self.stop.wait(min(1.0, 0.05 * failures))
        link.close()
