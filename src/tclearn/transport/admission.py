"""Who may hold a connection, for how long, and how much a refusal may cost in log lines.

Theory of operation. Connections are admitted in two stages. Before the TLS
handshake nobody is known, so the accept loop counts *pending* connections
(accepted, not yet identified) per source address and in all, and refuses
beyond `max_pending_per_source`; beyond `max_pending` in all (strangers from
many addresses) the oldest pending handshake is cut and the newcomer takes
its slots at once (`Ticket`), so a member's handshake, which takes
milliseconds, gets through on its first attempt. The rest of
the `max_connections` slots are only ever used by identified members. After the handshake the caller is
a member id, and each member may hold at most `max_connections_per_member`.

Timeouts on a socket bound one read each; a peer that sends one byte just
before each timeout would never be cut. `Watchdog` gives a phase of a
connection (the handshake, a request's line and headers, a response) a total
deadline, and shuts the socket down when it passes; the connection's own
thread then fails its read and ends.

`RefusalLog` keeps refusals from becoming a log flood: per event kind, the
first `burst` of each interval are written as they come, the rest are counted
and summed up in one `refusals_summary` line per interval.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Admission", "RefusalLog", "Ticket", "Watchdog"]


@dataclass(eq=False)
class Ticket:
    """One admitted connection's claim on the counts, until `Admission.closed`.

    `sock` is what a cut shuts down: the accepted socket, then the TLS socket
    once the connection's thread has wrapped it (`Admission.attach`).
    `evicted`: its pending handshake was cut to make room for a newer
    connection, which took over its slots; its own thread ends without
    touching the counts again.
    """

    source: str
    sock: socket.socket
    evicted: bool = False


class Admission:
    """Counts of pending connections per source address and of identified connections per member."""

    def __init__(self, max_connections: int, max_pending: int, max_pending_per_source: int,
                 max_per_member: int) -> None:
        if not 0 < max_pending <= max_connections or max_pending_per_source < 1 or max_per_member < 1:
            raise ValueError("connection limits must be positive, with max_pending <= max_connections")
        self.max_connections, self.max_pending = max_connections, max_pending
        self.max_pending_per_source, self.max_per_member = max_pending_per_source, max_per_member
        self._lock = threading.Lock()
        self._pending: Counter[str] = Counter()
        self._waiting: dict[int, Ticket] = {}  # pending tickets, oldest first (dicts keep insertion order)
        self._members: Counter[str] = Counter()
        self._open = 0

    def admit(self, source: str, sock: socket.socket) -> tuple[Ticket | None, str | None]:
        """Take a pending slot for the new connection `sock` from `source`: its ticket, or why it is refused.

        When all pending slots are taken, the oldest pending handshake is cut
        and the new connection takes its slots at once, whether or not the
        cut connection's thread has even started: its socket is shut down now,
        and its thread, when it runs, finds its ticket evicted and ends.
        """
        victim: Ticket | None = None
        with self._lock:
            if self._pending[source] >= self.max_pending_per_source:
                return None, "too many unidentified connections from this address"
            if sum(self._pending.values()) >= self.max_pending:
                if not self._waiting:
                    return None, "too many unidentified connections"
                victim = next(iter(self._waiting.values()))
                victim.evicted = True
                self._release_pending(victim)
                self._open -= 1
            if self._open >= self.max_connections:
                return None, "too many connections"
            ticket = Ticket(source, sock)
            self._pending[source] += 1
            self._waiting[id(ticket)] = ticket
            self._open += 1
            if victim is not None:
                _shutdown(victim.sock)  # under the lock: `attach` cannot swap the socket meanwhile
        return ticket, None

    def attach(self, ticket: Ticket, sock: socket.socket) -> bool:
        """The connection's thread wrapped its socket in `sock` (TLS): cut that one from now on.

        False when the ticket was evicted before: the thread must end at once.
        """
        with self._lock:
            if ticket.evicted:
                return False
            ticket.sock = sock
            return True

    def _release_pending(self, ticket: Ticket) -> None:
        """Free `ticket`'s pending slot, if it still holds one (its handshake has not ended)."""
        if self._waiting.pop(id(ticket), None) is None:
            return
        self._pending[ticket.source] -= 1
        if self._pending[ticket.source] <= 0:
            del self._pending[ticket.source]

    def identified(self, ticket: Ticket, member: str | None) -> str | None:
        """The handshake of `ticket`'s connection ended (`member`: who it is, None: refused).

        Frees its pending slot; for a member, takes one of its slots (the reason if none is left).
        """
        with self._lock:
            if ticket.evicted:
                return "cut to make room for another connection"
            self._release_pending(ticket)
            if member is None:
                return None
            if self._members[member] >= self.max_per_member:
                return f"too many connections from member {member}"
            self._members[member] += 1
            return None

    def closed(self, ticket: Ticket, member: str | None) -> None:
        """`ticket`'s connection ended (`member`: the member it was counted for, if any)."""
        with self._lock:
            if ticket.evicted:
                return  # its slots went to the connection that evicted it
            self._release_pending(ticket)
            self._open -= 1
            if member is not None:
                self._members[member] -= 1
                if self._members[member] <= 0:
                    del self._members[member]

    def counts(self) -> dict[str, Any]:
        with self._lock:
            return {"open": self._open, "pending": dict(self._pending), "members": dict(self._members)}


class RefusalLog:
    """Rate-limited refusal lines: `burst` per kind per interval, then one summary line per interval."""

    def __init__(self, emit: Callable[..., None], interval_s: float = 10.0, burst: int = 5,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._emit, self.interval_s, self.burst, self._clock = emit, interval_s, burst, clock
        self._lock = threading.Lock()
        self._started = clock()
        self._written: Counter[str] = Counter()
        self._suppressed: Counter[str] = Counter()
        self.total: Counter[str] = Counter()

    def refuse(self, event: str, **fields: Any) -> None:
        self.flush()
        with self._lock:
            self.total[event] += 1
            write = self._written[event] < self.burst
            if write:
                self._written[event] += 1
            else:
                self._suppressed[event] += 1
        if write:
            self._emit(event, level="warning", **fields)

    def flush(self, force: bool = False) -> None:
        """Write the summary of the interval that ended (every so often, and on stop)."""
        with self._lock:
            now = self._clock()
            if not force and now - self._started < self.interval_s:
                return
            counts, elapsed = dict(self._suppressed), now - self._started
            self._started, self._written, self._suppressed = now, Counter(), Counter()
        if counts:
            self._emit("refusals_summary", level="warning", counts=counts, interval_s=round(elapsed, 3))


class Watchdog:
    """Total deadlines on phases of connections; a socket past its deadline is shut down.

    `watch(sock, seconds)` starts (or replaces) the deadline of `sock`, `release(sock)` ends
    it; a thread checks every `period_s` and also runs `every_period` (the refusal summaries).
    """

    def __init__(self, on_expired: Callable[[str], None], period_s: float = 0.2,
                 every_period: Callable[[], None] | None = None) -> None:
        self._on_expired, self.period_s, self._every_period = on_expired, period_s, every_period
        self._lock = threading.Lock()
        self._deadlines: dict[int, tuple[float, socket.socket, str]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="tclearn-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)

    def watch(self, sock: socket.socket, seconds: float, phase: str) -> None:
        with self._lock:
            self._deadlines[id(sock)] = (time.monotonic() + seconds, sock, phase)

    def release(self, sock: socket.socket) -> None:
        with self._lock:
            self._deadlines.pop(id(sock), None)

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            now = time.monotonic()
            with self._lock:
                expired = [(k, s, phase) for k, (t, s, phase) in self._deadlines.items() if t <= now]
                for k, _, _ in expired:
                    del self._deadlines[k]
            for _, sock, phase in expired:
                _shutdown(sock)
                self._on_expired(phase)
            if self._every_period is not None:
                self._every_period()


def _shutdown(sock: socket.socket) -> None:
    """The plain socket's shutdown (an SSLSocket's own would drop its TLS state under the reading thread)."""
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass
