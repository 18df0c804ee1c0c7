"""The dashboard of a running node: its chain, its peers' health, its `[dashboard]` settings.

`mount_node(router, node)` is the one line a node adds where it builds its
router: the pages then answer on the node's mutual-TLS port, to any member's
certificate (a browser holding its member certificate and key), and a
stranger's connection never gets past the handshake. With `[dashboard] port`
the same routes also answer on a loopback-only plain-HTTP port, which stops
when the node stops.

Health: each peer's `/v1/status` over mutual TLS with this node's own client
certificate (`source.PeerHealth`: bounded, cached), so "last seen" is the last
time the peer answered and "lag" how many blocks it is behind this node.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tclearn.dashboard.index import ChainIndex
from tclearn.dashboard.loopback import LoopbackServer
from tclearn.dashboard.routes import mount
from tclearn.dashboard.settings import DashboardSettings
from tclearn.dashboard.source import PEER_STATUS_TIMEOUT_S, DashboardSource, JournalView, PeerHealth, StatusProbe
from tclearn.errors import ConfigError
from tclearn.transport import PeerClient
from tclearn.transport.router import Router

if TYPE_CHECKING:
    from tclearn.node.runtime import Node

__all__ = ["mount_node", "node_source"]


def node_source(node: "Node", settings: DashboardSettings) -> DashboardSource:
    """The dashboard source of `node`: its chain store, its peers, its journal and reference if configured."""
    cfg = node.config
    peers = {p.member_id: PeerClient.from_context(p.url, node.client_ctx, node.allowlist, expected_member=p.member_id,
                                                  timeout_s=PEER_STATUS_TIMEOUT_S, retries=0)
             for p in cfg.peers if p.member_id != cfg.member_id}
    health = PeerHealth(cfg.member_id, node.status, {m: _status_probe(client) for m, client in peers.items()})
    journal = None
    if settings.journal is not None:
        key = None
        if settings.supervisor_key is not None:
            try:
                key = bytes.fromhex(settings.supervisor_key.read_text().strip())
            except (OSError, ValueError) as exc:
                raise ConfigError(f"[dashboard] supervisor_key {settings.supervisor_key}: not a hex key ({exc})") from None
        journal = JournalView(settings.journal, key)
    coalition = node.genesis.payload.get("config", {}).get("coalition_id", "coalition")
    source = DashboardSource(ChainIndex(node.store), title=str(coalition), member=cfg.member_id, health=health,
                             journal=journal, reference=settings.reference)
    # index the chain in the background (10,000 blocks: seconds, mostly decoding them), not on the node's
    # start path; a page asked meanwhile previews the newest blocks (ChainIndex.rows_or_preview)
    source.index.catch_up(inline_blocks=0)
    return source


def _status_probe(client: PeerClient) -> StatusProbe:
    def probe() -> Mapping[str, Any]:
        answer = client.get_json("/v1/status")
        if not isinstance(answer, dict):
            raise ValueError("a status answer is a JSON object")
        return answer

    return probe


def mount_node(router: Router, node: "Node") -> DashboardSource | None:
    """Mount the dashboard on the node's router (unless `[dashboard] enabled = false`); start the loopback port."""
    settings: DashboardSettings = getattr(node.config, "dashboard", None) or DashboardSettings()
    if not settings.enabled:
        return None
    source = node_source(node, settings)
    mount(router, source)
    if settings.port is not None:
        loopback = Router()
        mount(loopback, source)
        server = LoopbackServer(loopback, "127.0.0.1", settings.port).start()
        node.log("dashboard_loopback", url=server.url)
        _stop_with(node, server)
    return source


def _stop_with(node: Any, server: LoopbackServer) -> None:
    """Stop the loopback server when the node stops (its stop event), without a line in the node's stop()."""
    stopped = getattr(node, "_stop", None)
    if not isinstance(stopped, threading.Event):
        return  # a process-lifetime server (daemon thread)

    def wait() -> None:
        stopped.wait()
        server.stop()

    threading.Thread(target=wait, name="tclearn-dashboard-stop", daemon=True).start()
