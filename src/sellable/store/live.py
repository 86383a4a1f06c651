"""Live stock: the catalog and the calculation core in memory, kept up to the store.

The order book, the sync engine, the CLI and the imports all read stock through one
:class:`LiveStock`. It loads the catalog and every stock row, catches up with what other
writers changed (the ``sellable_changes`` outbox), records stock rows written elsewhere,
and owns the SKU code <-> id and warehouse code <-> id mappings.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import date

from sqlalchemy import Connection, Engine, func, select, tuple_

from sellable.config import Settings
from sellable.core import SkuWarehouse, StockEngine, StockKey, StockLevels
from sellable.store import schema
from sellable.store.db import sync_warehouses
from sellable.store.loader import StoredCatalog, load_catalog, load_engine
from sellable.store.sql import chunked, copy_rows, db_time, utcnow

#: How many outbox rows before the last one seen are read again at each refresh.
OUTBOX_LOOKBACK = 1000

#: The most stock rows remembered (as existing, or as fed to the core) before starting afresh.
KNOWN_STOCK_LIMIT = 500_000


def max_change_id(connection: Connection) -> int:
    return int(connection.execute(select(func.max(schema.sellable_changes.c.id))).scalar() or 0)


def catalog_version(connection: Connection) -> str:
    value = connection.execute(
        select(schema.meta.c.value).where(schema.meta.c.key == "catalog_version")
    ).scalar()
    return str(value or "")


class LiveStock:
    """The catalog and an incremental core, in memory, kept up to the store.

    Callers that refresh and then read (or write and record) hold :attr:`lock`.
    """

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        self.lock = threading.RLock()
        warehouse_ids = sync_warehouses(engine, settings.warehouses)
        self.warehouse_ids: dict[str, int] = warehouse_ids
        self.warehouse_codes: dict[int, str] = {wid: code for code, wid in warehouse_ids.items()}
        #: Stock rows seen to exist (stock rows are never deleted).
        self.known_stock: set[StockKey] = set()
        #: The date lots were last expired for (the merchant's calendar, [costing] timezone).
        self._expired_for: date | None = None
        #: Called with the (SKU, warehouse) pairs whose stock rows or sellable changed, each
        #: time the core is fed (the shared allocation re-splits from them).
        self.listeners: list[Callable[[set[SkuWarehouse]], None]] = []
        self.reload()
        self.expire_lots()

    # -- loading ----------------------------------------------------------------------------

    def reload(self) -> None:
        """Load the catalog and every stock row afresh (the daily reconcile does this, so the
        in-memory core can never drift for long whatever happened in the store)."""
        with self.lock, self.engine.connect() as connection:
            # Read the outbox position and catalog version first: whatever changes while
            # the catalog loads is caught up by the next refresh().
            self._changes_seen = max_change_id(connection)
            self._catalog_version = catalog_version(connection)
            self.catalog: StoredCatalog = load_catalog(connection)
            self.core: StockEngine = load_engine(connection, self.settings, self.catalog)
            #: The levels last given to the core per stock row.
            self._core_levels: dict[StockKey, StockLevels] = {}

    def refresh(self) -> None:
        """Catch the in-memory catalog and core up with what other writers changed (CLI
        imports, other processes): reload the catalog if it changed, else re-read the stock
        rows named in the ``sellable_changes`` outbox since the last look."""
        change, st = schema.sellable_changes.c, schema.stock.c
        with self.lock:
            self.expire_lots()
            with self.engine.connect() as connection:
                if catalog_version(connection) != self._catalog_version:
                    reload = True
                else:
                    reload = False
                    newest = max_change_id(connection)
                    if newest <= self._changes_seen:
                        return
                    # Re-read a window before the last id seen: on PostgreSQL a transaction
                    # that took a lower id may commit after a higher one was already read.
                    since = self._changes_seen - OUTBOX_LOOKBACK
                    pairs = sorted(
                        {
                            (s, w)
                            for s, w in connection.execute(
                                select(change.sku_id, change.warehouse_id).where(
                                    (change.id > since) & (change.id <= newest)
                                )
                            )
                        }
                    )
                    levels: dict[StockKey, StockLevels] = {}
                    for chunk in chunked(pairs, 2000):
                        for s, w, oh, lk, al, hd, ex in connection.execute(
                            select(
                                st.sku_id,
                                st.warehouse_id,
                                st.on_hand,
                                st.locked,
                                st.allocated,
                                st.held,
                                st.expired,
                            ).where(tuple_(st.sku_id, st.warehouse_id).in_(chunk))
                        ):
                            levels[StockKey(s, w)] = StockLevels(oh, lk, al, hd, ex)
            if reload:
                self.reload()
                return
            self.feed(levels)
            self._changes_seen = newest

    def expire_lots(self) -> set[SkuWarehouse]:
        """At each date change (and on start): units of lots past their expiry date stop
        being sellable, and the core and the outbox hear of it. A database error is logged
        and the sweep tried again at the next refresh."""
        today = self.settings.costing.today()
        if today == self._expired_for:
            return set()
        # Imported here: the costing module imports the ledger, which imports this one.
        from sellable.costing.moves import expire_lots_if_writable

        with self.lock:
            changed = expire_lots_if_writable(
                self.engine, today, self.record_levels, self.known_stock
            )
            if changed is None:
                return set()  # tried again at the next refresh
            self._expired_for = today
        return changed

    # -- mappings ---------------------------------------------------------------------------

    def knows(self, sku: str) -> bool:
        return sku in self.catalog.catalog

    def sku_id(self, sku: str) -> int:
        return self.catalog.sku_id(sku)

    def code(self, sku_id: int) -> str:
        return self.catalog.code(sku_id)

    # -- stock ------------------------------------------------------------------------------

    def sellable_in(self, sku: str, warehouses: Iterable[str]) -> int:
        """The core's sellable of ``sku`` summed over ``warehouses`` (unknown ones ignored)."""
        core = self.core
        return sum(core.sellable(sku, w) for w in warehouses if w in self.warehouse_ids)

    def backorderable(self, sku: str, warehouses: Iterable[str]) -> bool:
        """True when an order for ``sku`` is accepted beyond its stock in one of ``warehouses``
        (the SKU, or what binds it, allows orders exceeding stock)."""
        return any(self.core.unbounded(sku, w) for w in warehouses if w in self.warehouse_ids)

    def feed(self, levels: Mapping[StockKey, StockLevels]) -> set[SkuWarehouse]:
        """Bring the in-memory core up to these stock rows (another process may have moved
        them); returns the (SKU, warehouse) pairs whose sellable changed."""
        fed = self._core_levels
        if len(fed) > KNOWN_STOCK_LIMIT:
            fed.clear()
        codes = self.warehouse_codes
        code = self.catalog.code
        changes = {}
        for key, level in levels.items():
            # Rows the core already holds at these levels (this process wrote or read them
            # last) cannot change anything: skip them.
            if fed.get(key) != level and key[1] in codes:
                changes[SkuWarehouse(code(key[0]), codes[key[1]])] = level
                fed[key] = level
        if not changes:
            return set()
        changed = self.core.apply(changes)
        if self.listeners:
            touched = changed | set(changes)
            for listener in self.listeners:
                listener(touched)
        return changed

    def record_levels(
        self, connection: Connection, levels: Mapping[StockKey, StockLevels]
    ) -> set[SkuWarehouse]:
        """Feed stock rows written elsewhere (a count, an order batch) to the core and record
        the changed sellable pairs in the outbox, inside the caller's transaction."""
        changed = self.feed(levels)
        if changed:
            now = db_time(connection, utcnow())
            copy_rows(
                connection,
                "sellable_changes",
                ("sku_id", "warehouse_id", "at"),
                [
                    (self.catalog.sku_id(sku), self.warehouse_ids[wh], now)
                    for sku, wh in sorted(changed)
                ],
            )
            # This process already holds these changes: do not read them back at refresh.
            self._changes_seen = max(self._changes_seen, max_change_id(connection))
        return changed
