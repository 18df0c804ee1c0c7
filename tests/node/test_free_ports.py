"""`free_ports`: listening ports that no outgoing connection can take before a node binds them.

A CI run once lost a level-B coalition test to "cannot listen on
127.0.0.1:51775: Address already in use": the port had come from `bind(0)`,
so from the ephemeral range, and another process's connection took it while
the coalition's certificates were being made.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

import tclearn.node.launcher as launcher
from tclearn.node.launcher import ephemeral_ports, free_ports


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def test_ports_are_distinct_free_and_outside_the_ephemeral_range() -> None:
    ports = free_ports(8)
    assert len(set(ports)) == 8
    assert all(p in launcher.LISTEN_PORTS and p not in ephemeral_ports() for p in ports)
    assert all(_bindable(p) for p in ports)  # nothing is left holding them


def test_a_port_in_use_is_passed_over(monkeypatch: pytest.MonkeyPatch) -> None:
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    taken = busy.getsockname()[1]
    with busy:
        free = next(p for p in range(20000, 32768) if p != taken and _bindable(p))
        monkeypatch.setattr(launcher, "LISTEN_PORTS", [taken, free])
        monkeypatch.setattr(launcher, "ephemeral_ports", lambda: range(0))
        assert free_ports(1) == [free]  # whichever of the two it tries first
        monkeypatch.setattr(launcher, "LISTEN_PORTS", [taken])  # the only candidate is taken: the kernel picks
        (other,) = free_ports(1)
        assert other != taken and _bindable(other)


def test_the_kernel_chooses_where_every_listening_port_is_ephemeral(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    wide = tmp_path / "ip_local_port_range"
    wide.write_text("1024\t65535\n")
    monkeypatch.setattr(launcher, "EPHEMERAL_RANGE_FILE", wide)
    assert ephemeral_ports() == range(1024, 65536)
    ports = free_ports(3)
    assert len(set(ports)) == 3 and all(_bindable(p) for p in ports)


def test_an_unreadable_range_is_taken_as_linuxs_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(launcher, "EPHEMERAL_RANGE_FILE", tmp_path / "absent")
    assert ephemeral_ports() == range(32768, 61000)
    (tmp_path / "garbled").write_text("not ports\n")
    monkeypatch.setattr(launcher, "EPHEMERAL_RANGE_FILE", tmp_path / "garbled")
    assert ephemeral_ports() == range(32768, 61000)
