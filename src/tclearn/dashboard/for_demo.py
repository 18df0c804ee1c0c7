"""The dashboard of `tclearn demo --serve`: the one-process coalition, live, on a loopback port.

The demo hands `DemoDashboard.watch` its observer's chain store and every
member's store as soon as they exist (`run_coalition(..., watch=...)`): the
loopback server starts then and the pages follow the observer's chain while
the coalition trains; the members page shows each member's own height (its
own chain store) and when it last grew. At levels B and C the supervisor's
audit journal is shown too, verified with the supervisor's key. When the run
ends, `exported` points the pages at the exported `chain.db` before the run's
stores close, and `set_reference` adds the centralised reference score the
demo trains after the coalition.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from tclearn.dashboard.index import ChainIndex
from tclearn.dashboard.loopback import LoopbackServer
from tclearn.dashboard.routes import mount
from tclearn.dashboard.source import DashboardSource, JournalView, StoreHealth
from tclearn.ledger.sqlite_store import SQLiteChainStore
from tclearn.ledger.store import ChainStore
from tclearn.transport.router import Router

__all__ = ["DemoDashboard", "DEFAULT_PORT"]

DEFAULT_PORT = 8050


class DemoDashboard:
    """Serves the demo's dashboard on `host:port` (loopback only) from the moment the chains exist."""

    def __init__(self, title: str, port: int = DEFAULT_PORT, host: str = "127.0.0.1") -> None:
        self.title, self.port, self.host = title, port, host
        self.server: LoopbackServer | None = None
        self.source: DashboardSource | None = None
        self._final_store: SQLiteChainStore | None = None

    def watch(self, observer: str, stores: Mapping[str, ChainStore],
              journal: tuple[Path, bytes] | None = None) -> Callable[[Path], None]:
        """Start serving the observer's chain; returns what the run calls with `chain.db` before closing its stores."""
        self.source = DashboardSource(
            ChainIndex(stores[observer]), title=self.title, member=observer, health=StoreHealth(observer, stores),
            journal=JournalView(*journal) if journal is not None else None,
            notes=["one-process demo: every member runs in this process on a simulated network and clock"])
        router = Router()
        mount(router, self.source)
        self.server = LoopbackServer(router, self.host, self.port).start()
        return self.exported

    def exported(self, chain_db: Path) -> None:
        """The run is ending: serve the exported chain from now on (the run's own stores are about to close)."""
        if self.source is None:
            return
        self._final_store = SQLiteChainStore(chain_db, create=False, read_only=True)
        index = ChainIndex(self._final_store)
        index.sync()
        self.source.index = index
        self.source.health = None
        self.source.notes = ["the run has ended: these pages show the exported chain (chain.db)"]

    def set_reference(self, score: float | None, label: str = "centralised reference") -> None:
        """The centralised reference score on G, once the demo has trained it."""
        if self.source is not None:
            self.source.reference, self.source.reference_label = score, label

    @property
    def url(self) -> str | None:
        return self.server.url if self.server is not None else None

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
        if self._final_store is not None:
            self._final_store.close()
