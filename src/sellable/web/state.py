"""What the dashboard reads: the live stock kept in memory, a cheap change token, and the
stock positions computed once per change and then paged, filtered and sorted in Python.

Every figure is the CLI's: a row of the stock table is ``StockEngine.position(...)``
(``sellable stock --json`` prints its ``to_dict()``); the other pages call the functions
the CLI commands call.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select, tuple_

from sellable.config import Settings
from sellable.core import SkuKind, StockPosition
from sellable.store import schema
from sellable.store.live import OUTBOX_LOOKBACK, LiveStock, catalog_version, max_change_id
from sellable.store.sql import utcnow
from sellable.sync.engine import SyncEngine

#: The stock table's columns, in order: what each row shows and what a sort may name.
STOCK_COLUMNS = (
    "sku",
    "warehouse",
    "kind",
    "on_hand",
    "available",
    "held",
    "expired",
    "assemblable",
    "sellable",
    "bottleneck",
)
NUMERIC_COLUMNS = ("on_hand", "available", "held", "expired", "assemblable", "sellable")
#: The most rows one page may ask for.
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 50


class BadRequest(ValueError):
    """A query parameter the dashboard refuses (HTTP 400 with this message)."""


class NotFound(LookupError):
    """A thing named in a URL that does not exist (HTTP 404 with this message)."""


class Forbidden(PermissionError):
    """An action refused: no CSRF token, or a read-only dashboard (HTTP 403)."""


class Conflict(ValueError):
    """An action the stock does not allow, such as a build larger than possible (409)."""


@dataclass(frozen=True, slots=True)
class StockRow:
    """One (SKU, warehouse) of the stock table: the position and the figures shown."""

    position: StockPosition
    sku_lower: str
    on_hand: int
    available: int
    held: int
    expired: int
    assemblable: int | None
    sellable: int
    bottleneck: str

    @classmethod
    def of(cls, position: StockPosition) -> StockRow:
        levels, component = position.prepackaged, position.component
        return cls(
            position=position,
            sku_lower=position.sku.lower(),
            on_hand=levels.on_hand,
            available=levels.available,
            held=levels.held,
            expired=levels.expired,
            assemblable=None if component is None else component.available,
            sellable=position.sellable,
            bottleneck="" if component is None else component.bottleneck or "",
        )

    def value(self, column: str) -> Any:
        if column == "sku":
            return self.position.sku
        if column == "warehouse":
            return self.position.warehouse
        if column == "kind":
            return self.position.kind.value
        return getattr(self, column)


@dataclass(frozen=True, slots=True)
class StockQuery:
    page: int = 1
    page_size: int = DEFAULT_PAGE_SIZE
    warehouse: str | None = None
    kind: str | None = None
    q: str | None = None
    sort: str = "sku"
    order: str = "asc"


@dataclass(frozen=True, slots=True)
class StockPage:
    rows: list[StockRow]
    total: int
    page: int
    page_size: int
    pages: int
    totals: dict[str, int]
    query: StockQuery

    def to_dict(self) -> dict[str, Any]:
        """``/api/stock``: ``items`` are ``sellable stock --json``'s objects."""
        return {
            "items": [row.position.to_dict() for row in self.rows],
            "page": self.page,
            "page_size": self.page_size,
            "pages": self.pages,
            "total": self.total,
            "totals": self.totals,
        }


class Dashboard:
    """The data behind the pages: one :class:`SyncEngine` (the daemon's own, or one that
    never runs a job under ``sellable dashboard``) and its live stock.

    Usage::

        board = Dashboard(db, settings)
        board.stock_page(StockQuery(q="gift"))
    """

    def __init__(
        self,
        db: Engine,
        settings: Settings,
        *,
        sync: SyncEngine | None = None,
        sync_now: Callable[[str], None] | None = None,
        next_runs: Callable[[], dict[tuple[str, str], datetime]] | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.owns_sync = sync is None
        self.sync = sync if sync is not None else SyncEngine(db, settings)
        #: Runs a channel's jobs now (the daemon's scheduler); None under ``sellable dashboard``.
        self.sync_now = sync_now
        #: When each (channel, job) runs next (the daemon's scheduler); None: no schedule.
        self.next_runs = next_runs
        self.read_only = settings.daemon.dashboard_read_only
        self._lock = threading.Lock()
        self._token: str | None = None
        self._marks_seen: tuple[int, int, str] | None = None
        self._rows: list[StockRow] = []
        self._index: dict[tuple[str, str], int] = {}
        self._sorted: dict[tuple[str, str], list[StockRow]] = {}

    @property
    def warehouses(self) -> list[str]:
        return [w.code for w in self.settings.warehouses]

    @property
    def live(self) -> LiveStock:
        return self.sync.live

    def close(self) -> None:
        if self.owns_sync:
            self.sync.close()

    # -- change token -----------------------------------------------------------------------

    def _marks(self) -> tuple[int, int, str]:
        with self.db.connect() as connection:
            movement = connection.execute(select(func.max(schema.movements.c.id))).scalar()
            return int(movement or 0), max_change_id(connection), catalog_version(connection)

    def change_token(self) -> str:
        """Changes whenever a figure may have: the newest movement, the newest outbox row
        and the catalog version (three indexed reads)."""
        movement, change, version = self._marks()
        return f"{movement}.{change}.{version}"

    def current(self) -> str:
        """Catch the live stock and the stock table up with the store when the token moved;
        returns the token. Only the rows of the SKUs that moved (and of the composites
        containing them) are computed again, unless the catalog changed."""
        marks = self._marks()
        token = f"{marks[0]}.{marks[1]}.{marks[2]}"
        with self._lock:
            if token == self._token:
                return token
            with self.live.lock:
                self.live.refresh()
                touched = None if self._marks_seen is None else self._touched(marks)
                core = self.live.core
                if touched is None or len(touched) * 4 > len(self._rows):
                    rows = [StockRow.of(p) for p in core.positions()]
                    rows.sort(key=lambda r: (r.position.sku, r.position.warehouse))
                    self._index = {
                        (r.position.sku, r.position.warehouse): i for i, r in enumerate(rows)
                    }
                else:
                    rows = list(self._rows)
                    for position in core.positions(sorted(touched)):
                        at = self._index.get((position.sku, position.warehouse))
                        if at is None:  # cannot happen while the catalog is the same
                            rows = [StockRow.of(p) for p in core.positions()]
                            rows.sort(key=lambda r: (r.position.sku, r.position.warehouse))
                            self._index = {
                                (r.position.sku, r.position.warehouse): i
                                for i, r in enumerate(rows)
                            }
                            break
                        rows[at] = StockRow.of(position)
            self._rows = rows
            self._sorted = {}
            self._token = token
            self._marks_seen = marks
        return token

    def _touched(self, marks: tuple[int, int, str]) -> set[str] | None:
        """The SKUs whose rows may show other figures since the last look: those with new
        movements or outbox rows (a window before the last ids seen is read again, as
        :meth:`LiveStock.refresh` does) and every composite containing one; None when the
        catalog changed (everything is computed again)."""
        assert self._marks_seen is not None
        movement_seen, change_seen, version_seen = self._marks_seen
        if marks[2] != version_seen:
            return None
        m, c = schema.movements.c, schema.sellable_changes.c
        with self.db.connect() as connection:
            ids = {
                sku_id
                for (sku_id,) in connection.execute(
                    select(m.sku_id).where(m.id > movement_seen - OUTBOX_LOOKBACK).distinct()
                )
            }
            ids.update(
                sku_id
                for (sku_id,) in connection.execute(
                    select(c.sku_id).where(c.id > change_seen - OUTBOX_LOOKBACK).distinct()
                )
            )
        stored = self.live.catalog
        codes = {stored.code(i) for i in ids if i in stored.position}
        catalog = stored.catalog
        touched = set(codes)
        for code in codes:
            touched.update(catalog.dependents(code))
        return touched

    # -- the stock table ----------------------------------------------------------------------

    def check_query(self, query: StockQuery) -> StockQuery:
        if query.page < 1:
            raise BadRequest(f"page must be 1 or more, got {query.page}")
        if not 1 <= query.page_size <= MAX_PAGE_SIZE:
            raise BadRequest(
                f"page_size must be between 1 and {MAX_PAGE_SIZE}, got {query.page_size}"
            )
        if query.warehouse and query.warehouse not in self.warehouses:
            raise BadRequest(
                f"unknown warehouse {query.warehouse!r} (known: {', '.join(self.warehouses)})"
            )
        kinds = [k.value for k in SkuKind]
        if query.kind and query.kind not in kinds:
            raise BadRequest(f"unknown kind {query.kind!r} (known: {', '.join(kinds)})")
        if query.sort not in STOCK_COLUMNS:
            raise BadRequest(f"cannot sort by {query.sort!r} (columns: {', '.join(STOCK_COLUMNS)})")
        if query.order not in ("asc", "desc"):
            raise BadRequest(f"order must be asc or desc, got {query.order!r}")
        return query

    def _ordered(self, sort: str, order: str) -> list[StockRow]:
        key = (sort, order)
        found = self._sorted.get(key)
        if found is None:
            if sort == "sku" and order == "asc":
                found = self._rows  # kept sorted by SKU, then warehouse
            elif sort in NUMERIC_COLUMNS:
                found = sorted(
                    self._rows,
                    key=lambda r: (
                        -1 if r.value(sort) is None else r.value(sort),
                        r.position.sku,
                        r.position.warehouse,
                    ),
                    reverse=order == "desc",
                )
            else:
                found = sorted(
                    self._rows,
                    key=lambda r: (r.value(sort), r.position.sku, r.position.warehouse),
                    reverse=order == "desc",
                )
            self._sorted[key] = found
        return found

    def stock_page(self, query: StockQuery) -> StockPage:
        self.check_query(query)
        self.current()
        with self._lock:
            rows = self._ordered(query.sort, query.order)
        if query.warehouse:
            rows = [r for r in rows if r.position.warehouse == query.warehouse]
        if query.kind:
            rows = [r for r in rows if r.position.kind.value == query.kind]
        if query.q:
            text = query.q.strip().lower()
            rows = [r for r in rows if text in r.sku_lower]
        totals = {column: 0 for column in NUMERIC_COLUMNS}
        for row in rows:
            totals["on_hand"] += row.on_hand
            totals["available"] += row.available
            totals["held"] += row.held
            totals["expired"] += row.expired
            totals["assemblable"] += row.assemblable or 0
            totals["sellable"] += row.sellable
        pages = max(1, math.ceil(len(rows) / query.page_size))
        start = (query.page - 1) * query.page_size
        return StockPage(
            rows=rows[start : start + query.page_size],
            total=len(rows),
            page=query.page,
            page_size=query.page_size,
            pages=pages,
            totals=totals,
            query=query,
        )

    def trends(self, rows: list[StockRow], days: int = 30) -> dict[tuple[str, str], list[int]]:
        """Per row: its prepackaged available after each movement of the last ``days`` days,
        from the ledger (worked back from today's figure), oldest first, today last."""
        if not rows:
            return {}
        live = self.live
        keys = {}
        for row in rows:
            p = row.position
            if live.knows(p.sku) and p.warehouse in live.warehouse_ids:
                keys[(live.sku_id(p.sku), live.warehouse_ids[p.warehouse])] = row
        m = schema.movements.c
        since = utcnow() - timedelta(days=days)
        changes: dict[tuple[str, str], list[int]] = {}
        with self.db.connect() as connection:
            bound = since.replace(tzinfo=None) if connection.dialect.name == "sqlite" else since
            for (
                sku_id,
                warehouse_id,
                on_hand,
                locked,
                allocated,
                held,
                expired,
            ) in connection.execute(
                select(
                    m.sku_id,
                    m.warehouse_id,
                    m.on_hand_change,
                    m.locked_change,
                    m.allocated_change,
                    m.held_change,
                    m.expired_change,
                )
                .where(tuple_(m.sku_id, m.warehouse_id).in_(list(keys)) & (m.at >= bound))
                .order_by(m.id)
            ):
                row = keys[(sku_id, warehouse_id)]
                key = (row.position.sku, row.position.warehouse)
                changes.setdefault(key, []).append(on_hand - locked - allocated - held - expired)
        trends: dict[tuple[str, str], list[int]] = {}
        for row in rows:
            key = (row.position.sku, row.position.warehouse)
            value = row.available
            series = [value]
            for change in reversed(changes.get(key, [])):
                value -= change
                series.append(value)
            trends[key] = series[::-1]
        return trends

    def positions_of(self, sku: str) -> list[StockPosition]:
        self.current()
        if not self.live.knows(sku):
            raise NotFound(f"unknown SKU {sku!r}")
        with self.live.lock:
            return self.live.core.positions([sku])
