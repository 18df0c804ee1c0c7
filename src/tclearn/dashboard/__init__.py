"""A read-only web dashboard of the coalition: the chain, the votes, the members, the audit journal.

Served by every node on its mutual-TLS port (`for_node.mount_node`, a
member's browser certificate) or a loopback-only port (`[dashboard] port`),
and by `tclearn demo --serve`. Server-rendered pages (`pages`, with
`string.Template`), a JSON API (`routes`), charts drawn in the browser by
uPlot (vendored under `static/`, MIT), live updates by polling.

Modules: `index` (the chain folded into rows), `source` (what a dashboard
shows: index, member health, journal, reference score), `pages`, `routes`
(`mount(router, source)`), `loopback` (the plain-HTTP loopback server),
`settings` (`[dashboard]` in node.toml), `for_node`, `for_demo`.
"""

from tclearn.dashboard.index import BlockRow, ChainIndex, Verdict
from tclearn.dashboard.loopback import LoopbackServer
from tclearn.dashboard.routes import mount
from tclearn.dashboard.settings import DashboardSettings, dashboard_settings
from tclearn.dashboard.source import DashboardSource, JournalView, PeerHealth, StoreHealth

__all__ = ["BlockRow", "ChainIndex", "DashboardSettings", "DashboardSource", "JournalView", "LoopbackServer",
           "PeerHealth", "StoreHealth", "Verdict", "dashboard_settings", "mount"]
