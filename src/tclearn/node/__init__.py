"""One member's running process, and coalitions of them on loopback.

* `config`: `NodeConfig` (`node.toml`).
* `runtime`: `Node` — the driver wired to SQLite, the wall clock and mutual-TLS HTTPS.
* `api`: its HTTP handlers; `fetching`: models fetched from peers; `peers`: outboxes and senders;
  `trainer`: `NodeTrainer`; `data_source`: the partner's data and G; `layout`: its files.
* `launcher`: `setup_coalition` (founded through `tclearn.founding`), `start_nodes`, `stop_nodes`, `coalition_status`,
  `run_network_coalition`.
"""

from tclearn.node.launcher import (
    chains, coalition_status, kill_node, load_configs, node_status, require_coalition, run_network_coalition,
    setup_coalition, start_node, start_nodes, stop_nodes, wait_for_height,
)
from tclearn.node.config import NodeConfig, PeerInfo

__all__ = ["NodeConfig", "PeerInfo", "chains", "coalition_status", "kill_node", "load_configs", "node_status",
           "require_coalition", "run_network_coalition", "setup_coalition", "start_node", "start_nodes", "stop_nodes", "wait_for_height"]
