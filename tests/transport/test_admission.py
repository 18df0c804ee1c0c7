"""Admission counts: a cut pending handshake hands its slots to the newcomer at once.

A fresh-clone CI run showed why this must not wait for the cut connection's
thread: under load the stranger's thread had not even started when a
member knocked, so there was nothing to cut yet, and later its slot came free
only when that thread ended; the member was refused seven times in a row.
"""

from __future__ import annotations

import socket

from tclearn.transport.admission import Admission


def test_the_oldest_pending_handshake_is_cut_and_its_slots_go_to_the_newcomer_at_once() -> None:
    adm = Admission(max_connections=2, max_pending=1, max_pending_per_source=4, max_per_member=2)
    stranger_server, stranger_client = socket.socketpair()
    member_server, member_client = socket.socketpair()
    try:
        stalled, reason = adm.admit("10.0.0.9", stranger_server)  # its thread has not started: nothing attached
        assert stalled is not None and reason is None
        member, reason = adm.admit("10.0.0.2", member_server)
        assert member is not None and reason is None, reason
        assert stalled.evicted and adm.counts() == {"open": 1, "pending": {"10.0.0.2": 1}, "members": {}}
        stranger_client.settimeout(2)
        assert stranger_client.recv(1) == b""  # its socket was shut down

        # the evicted connection's thread runs late: it is told to end, and the counts stay the member's
        assert not adm.attach(stalled, stranger_server)
        assert adm.identified(stalled, None) == "cut to make room for another connection"
        adm.closed(stalled, None)
        assert adm.counts() == {"open": 1, "pending": {"10.0.0.2": 1}, "members": {}}

        assert adm.attach(member, member_server)
        assert adm.identified(member, "bob") is None
        assert adm.counts() == {"open": 1, "pending": {}, "members": {"bob": 1}}
        adm.closed(member, "bob")
        assert adm.counts() == {"open": 0, "pending": {}, "members": {}}
    finally:
        for s in (stranger_server, stranger_client, member_server, member_client):
            s.close()


def test_identified_connections_are_never_cut_and_the_bounds_still_hold() -> None:
    adm = Admission(max_connections=2, max_pending=1, max_pending_per_source=1, max_per_member=1)
    socks = [socket.socketpair() for _ in range(4)]
    try:
        first, _ = adm.admit("10.0.0.2", socks[0][0])
        assert first is not None and adm.identified(first, "bob") is None  # identified: no longer pending
        second, _ = adm.admit("10.0.0.3", socks[1][0])
        assert second is not None
        # all slots taken; a newcomer may cut the pending one, never the identified one
        third, _ = adm.admit("10.0.0.4", socks[2][0])
        assert third is not None and second.evicted and not first.evicted
        assert adm.counts()["open"] == 2
        # one address may not hold more pending handshakes than its share, cut or not
        fourth, reason = adm.admit("10.0.0.4", socks[3][0])
        assert fourth is None and reason == "too many unidentified connections from this address"
        # a second connection of the same member is refused when the handshake ends
        assert adm.identified(third, "bob") == "too many connections from member bob"
        adm.closed(third, None)
        adm.closed(first, "bob")
        adm.closed(second, None)  # evicted: already accounted for
        assert adm.counts() == {"open": 0, "pending": {}, "members": {}}
    finally:
        for a, b in socks:
            a.close()
            b.close()
