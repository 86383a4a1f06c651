"""The order book: applies orders and builds to stock through the movement ledger.

Every stock change is a movement; a stock row always equals the sum of its movements.
Orders are applied in batches, one database transaction per batch, so a crash leaves
each order with all of its movements or none. The stock rows an order touches are
locked (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite serialises writers with
``BEGIN IMMEDIATE``) before it is planned, so concurrent importers never allocate the
same last units twice.

After each batch the calculation core says which (SKU, warehouse) sellable values
changed; they are written to ``sellable_changes`` for the sync layer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, Table, bindparam, func, select, tuple_
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from tenacity import (
    Retrying,
    before_sleep_log,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from sellable.config import Settings
from sellable.core import StockEngine, StockLevels
from sellable.core.allocation import AllocationPlanner, BuildStep, Plan, Shortage
from sellable.errors import InputError
from sellable.orders.model import (
    UNKNOWN_SKU,
    LineStatus,
    OrderImportResult,
    OrderIn,
    OrderLineIn,
    OrderStatus,
)
from sellable.store import schema
from sellable.store.db import sync_warehouses, writing
from sellable.store.loader import StoredCatalog, load_catalog, load_engine
from sellable.store.sql import (
    chunked,
    copy_rows,
    db_time,
    driver_executemany,
    one_of,
    reserve_ids,
    utcnow,
)

log = logging.getLogger(__name__)

Pair = tuple[int, int]  # (sku id, warehouse id)
T = TypeVar("T")

#: During a bulk import, PostgreSQL statistics are refreshed after this many batches, then
#: each time the number of batches doubles (the tables' sizes stay within a factor of two
#: of what the planner believes, with a handful of ANALYZE runs however long the import).
ANALYZE_FIRST_AFTER_BATCHES = 25

#: How many outbox rows before the last one seen are read again at each refresh.
OUTBOX_LOOKBACK = 1000


def _analyze_after(batches: int) -> bool:
    """True after 25, 50, 100, 200 ... batches."""
    doublings, rest = divmod(batches, ANALYZE_FIRST_AFTER_BATCHES)
    return rest == 0 and doublings > 0 and doublings & (doublings - 1) == 0


def _is_transient(error: BaseException) -> bool:
    """Conflicts another writer caused: a deadlock, a serialisation failure, a lock
    timeout, or two importers creating the same order at once. Retrying is safe."""
    if isinstance(error, IntegrityError):
        return "uq_orders_channel_external_id" in str(error.orig) or "UNIQUE" in str(error.orig)
    if isinstance(error, OperationalError | DBAPIError):
        code = getattr(error.orig, "sqlstate", None)
        return code in {"40001", "40P01", "55P03"} or "database is locked" in str(error.orig)
    return False


@dataclass(slots=True)
class _Allocation:
    id: int | None
    sku_id: int
    warehouse_id: int
    quantity: int
    deleted: bool = False


@dataclass(slots=True)
class _Line:
    id: int | None
    key: str
    sku: str
    sku_id: int | None
    quantity: int
    status: str
    reason: str | None
    allocations: list[_Allocation] = field(default_factory=list)
    dirty: bool = False


@dataclass(slots=True)
class _Order:
    id: int | None
    channel: str
    external_id: str
    warehouse_id: int
    status: str
    created_at: datetime | None
    lines: dict[str, _Line] = field(default_factory=dict)
    dirty: bool = False


@dataclass(slots=True)
class _Build:
    step: BuildStep
    warehouse_id: int
    origin: str
    reference: str | None
    id: int | None = None


@dataclass(slots=True)
class _Movement:
    sku_id: int
    warehouse_id: int
    type: str
    quantity: int
    on_hand_change: int
    allocated_change: int
    reference: str | None
    build: _Build | None = None


class _Batch:
    """Working state of one transaction: locked stock levels, planners, what to write."""

    def __init__(
        self,
        book: OrderBook,
        connection: Connection,
        pairs: set[Pair],
    ) -> None:
        self.book = book
        self.connection = connection
        self.levels = _lock_stock(connection, pairs, book.known_stock)
        self.deltas: dict[Pair, list[int]] = {}
        self.movements: list[_Movement] = []
        self.builds: list[_Build] = []
        self.planners: dict[int, AllocationPlanner] = {}
        self.now = utcnow()

    def planner(self, warehouse_id: int) -> AllocationPlanner:
        planner = self.planners.get(warehouse_id)
        if planner is None:
            book = self.book
            code = book.warehouse_codes[warehouse_id]
            settings = book.settings.warehouse(code)
            stored = book.stored
            available = {
                stored.code(sku_id): oh - lk - al
                for (sku_id, wid), (oh, lk, al) in self.levels.items()
                if wid == warehouse_id
            }
            planner = AllocationPlanner(
                stored.catalog,
                code,
                settings.uses_components,
                available,
                lambda sku: stored.policy(sku, settings.assembly_on_demand),
            )
            self.planners[warehouse_id] = planner
        return planner

    def move(
        self,
        sku_id: int,
        warehouse_id: int,
        kind: str,
        quantity: int,
        on_hand: int,
        allocated: int,
        reference: str | None,
        *,
        planned: bool = False,
        build: _Build | None = None,
    ) -> None:
        """Record one movement and its effect on the locked stock row."""
        self.movements.append(
            _Movement(sku_id, warehouse_id, kind, quantity, on_hand, allocated, reference, build)
        )
        pair = (sku_id, warehouse_id)
        delta = self.deltas.setdefault(pair, [0, 0])
        delta[0] += on_hand
        delta[1] += allocated
        level = self.levels.setdefault(pair, (0, 0, 0))
        self.levels[pair] = (level[0] + on_hand, level[1], level[2] + allocated)
        if not planned and warehouse_id in self.planners:
            # Plans already moved the planner's working stock; other movements must too.
            planner = self.planners[warehouse_id]
            code = self.book.stored.code(sku_id)
            planner.available[code] = planner.available.get(code, 0) + on_hand - allocated

    def apply_plan(
        self, plan: Plan, warehouse_id: int, reference: str, origin: str
    ) -> list[_Allocation]:
        """Movements for a plan: builds first (AssemblyBuild), then Allocations."""
        stored = self.book.stored
        for step in plan.builds:
            build = _Build(step, warehouse_id, origin, reference if origin != "manual" else None)
            self.builds.append(build)
            for sku, quantity in step.consumed:
                self.move(
                    stored.sku_id(sku),
                    warehouse_id,
                    "AssemblyBuild",
                    -quantity,
                    -quantity,
                    0,
                    None,
                    planned=True,
                    build=build,
                )
            self.move(
                stored.sku_id(step.sku),
                warehouse_id,
                "AssemblyBuild",
                step.quantity,
                step.quantity,
                0,
                None,
                planned=True,
                build=build,
            )
        merged: dict[int, int] = {}
        for sku, quantity in plan.allocations:
            sku_id = stored.sku_id(sku)
            merged[sku_id] = merged.get(sku_id, 0) + quantity
        allocations = []
        for sku_id, quantity in merged.items():
            self.move(
                sku_id, warehouse_id, "Allocation", -quantity, 0, quantity, reference, planned=True
            )
            allocations.append(_Allocation(None, sku_id, warehouse_id, quantity))
        return allocations


def _utc(moment: datetime | None) -> datetime | None:
    """Times are stored in UTC (SQLite keeps no offset, so it must be UTC already)."""
    if moment is None or moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC)


def _max_change_id(connection: Connection) -> int:
    return int(connection.execute(select(func.max(schema.sellable_changes.c.id))).scalar() or 0)


def _catalog_version(connection: Connection) -> str:
    value = connection.execute(
        select(schema.meta.c.value).where(schema.meta.c.key == "catalog_version")
    ).scalar()
    return str(value or "")


def _lock_stock(
    connection: Connection, pairs: set[Pair], known: set[Pair]
) -> dict[Pair, tuple[int, int, int]]:
    """Make sure the stock rows exist, lock them in a fixed order, and read them.

    ``known`` holds pairs whose stock row was seen to exist (stock rows are never deleted):
    on PostgreSQL only the others are created (``ON CONFLICT DO NOTHING``), without first
    reading which exist."""
    if not pairs:
        return {}
    if connection.dialect.name == "postgresql":
        return _lock_stock_postgres(connection, pairs, known)
    st = schema.stock.c
    by_warehouse: dict[int, list[int]] = {}
    for sku_id, warehouse_id in pairs:
        by_warehouse.setdefault(warehouse_id, []).append(sku_id)

    def rows(*columns: Any) -> Iterator[tuple[Any, ...]]:
        # One `warehouse = w AND sku IN (...)` query per warehouse and chunk: both columns
        # of the primary key are used (a list of (sku, warehouse) tuples plans as an OR).
        for warehouse_id in sorted(by_warehouse):
            for chunk in chunked(sorted(by_warehouse[warehouse_id]), 5000):
                query = (
                    select(*columns)
                    .where((st.warehouse_id == warehouse_id) & st.sku_id.in_(chunk))
                    .order_by(st.warehouse_id, st.sku_id)
                )
                yield from connection.execute(query)

    existing = {(s, w) for s, w in rows(st.sku_id, st.warehouse_id)}
    missing = sorted(pairs - existing, key=lambda p: (p[1], p[0]))
    driver_executemany(
        connection,
        "INSERT INTO stock (sku_id, warehouse_id, on_hand, locked, allocated) "
        "VALUES (?, ?, 0, 0, 0) ON CONFLICT (sku_id, warehouse_id) DO NOTHING",
        missing,
    )
    return {
        (s, w): (oh, lk, al)
        for s, w, oh, lk, al in rows(
            st.sku_id, st.warehouse_id, st.on_hand, st.locked, st.allocated
        )
    }


#: The most stock pairs an order book remembers as existing (then it starts afresh).
KNOWN_STOCK_LIMIT = 500_000


def _lock_stock_postgres(
    connection: Connection, pairs: set[Pair], known: set[Pair]
) -> dict[Pair, tuple[int, int, int]]:
    ordered = sorted(pairs, key=lambda p: (p[1], p[0]))
    _create_stock_rows(connection, [p for p in ordered if p not in known])
    levels = _select_stock_for_update(connection, ordered)
    if len(levels) != len(ordered):
        # A row believed to exist is not there (cannot happen while stock rows are never
        # deleted): create and lock it too.
        gone = [p for p in ordered if p not in levels]
        _create_stock_rows(connection, gone)
        levels.update(_select_stock_for_update(connection, gone))
    if len(known) > KNOWN_STOCK_LIMIT:
        known.clear()
    known.update(levels)
    return levels


def _create_stock_rows(connection: Connection, ordered: list[Pair]) -> None:
    """Create the missing stock rows among ``ordered`` (sorted by warehouse, SKU), in one
    statement (existing rows are left alone)."""
    if not ordered:
        return
    connection.exec_driver_sql(
        "INSERT INTO stock (sku_id, warehouse_id, on_hand, locked, allocated) "
        "SELECT s, w, 0, 0, 0 FROM unnest(%(s)s::bigint[], %(w)s::bigint[]) AS p(s, w) "
        "ORDER BY w, s ON CONFLICT (sku_id, warehouse_id) DO NOTHING",
        {"s": [p[0] for p in ordered], "w": [p[1] for p in ordered]},
    )


def _select_stock_for_update(
    connection: Connection, ordered: list[Pair]
) -> dict[Pair, tuple[int, int, int]]:
    """Lock and read the stock rows of ``ordered`` in (warehouse, SKU) order: one
    ``warehouse_id = w AND sku_id = ANY(...)`` query per warehouse (both columns of the
    primary key are used, whatever the planner thinks of the list's length)."""
    by_warehouse: dict[int, list[int]] = {}
    for sku_id, warehouse_id in ordered:
        by_warehouse.setdefault(warehouse_id, []).append(sku_id)
    levels: dict[Pair, tuple[int, int, int]] = {}
    for warehouse_id in sorted(by_warehouse):
        for s, w, oh, lk, al in connection.exec_driver_sql(
            "SELECT sku_id, warehouse_id, on_hand, locked, allocated FROM stock "
            "WHERE warehouse_id = %(w)s AND sku_id = ANY(%(s)s::bigint[]) "
            "ORDER BY warehouse_id, sku_id FOR UPDATE",
            {"w": warehouse_id, "s": by_warehouse[warehouse_id]},
        ):
            levels[(s, w)] = (oh, lk, al)
    return levels


class OrderBook:
    """Applies orders and builds. Holds the catalog and an incremental core in memory.

    Usage::

        book = OrderBook(engine, settings)
        result = book.apply([OrderIn(...)])
        result.changed_pairs      # {(sku, warehouse)} whose sellable changed
    """

    def __init__(self, engine: Engine, settings: Settings, batch_size: int = 200) -> None:
        self.engine = engine
        self.settings = settings
        self.batch_size = batch_size
        warehouse_ids = sync_warehouses(engine, settings.warehouses)
        self.warehouse_ids = warehouse_ids
        self.warehouse_codes = {wid: code for code, wid in warehouse_ids.items()}
        #: (SKU id, warehouse id) pairs whose stock row was seen to exist.
        self.known_stock: set[Pair] = set()
        self.reload()

    def reload(self) -> None:
        """Load the catalog and every stock row afresh (the daily reconcile does this, so the
        in-memory core can never drift for long whatever happened in the store)."""
        with self.engine.connect() as connection:
            # Read the outbox position and catalog version first: whatever changes while
            # the catalog loads is caught up by the next refresh().
            self._changes_seen = _max_change_id(connection)
            self._catalog_version = _catalog_version(connection)
            self.stored: StoredCatalog = load_catalog(connection)
            self.core: StockEngine = load_engine(connection, self.settings, self.stored)
            #: The levels last given to the core per (SKU id, warehouse id) pair.
            self._core_levels: dict[Pair, tuple[int, int, int]] = {}

    def refresh(self) -> None:
        """Catch the in-memory catalog and core up with what other writers changed (CLI
        imports, other processes): reload the catalog if it changed, else re-read the stock
        rows named in the ``sellable_changes`` outbox since the last look."""
        change, st = schema.sellable_changes.c, schema.stock.c
        with self.engine.connect() as connection:
            if _catalog_version(connection) != self._catalog_version:
                reload = True
            else:
                reload = False
                newest = _max_change_id(connection)
                if newest <= self._changes_seen:
                    return
                # Re-read a window before the last id seen: on PostgreSQL a transaction that
                # took a lower id may commit after a higher one was already read.
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
                levels: dict[Pair, tuple[int, int, int]] = {}
                for chunk in chunked(pairs, 2000):
                    for s, w, oh, lk, al in connection.execute(
                        select(
                            st.sku_id, st.warehouse_id, st.on_hand, st.locked, st.allocated
                        ).where(tuple_(st.sku_id, st.warehouse_id).in_(chunk))
                    ):
                        levels[(s, w)] = (oh, lk, al)
        if reload:
            self.reload()
            return
        self._sync_core(levels)
        self._changes_seen = newest

    # -- orders ---------------------------------------------------------------------------------

    def apply(self, orders: Iterable[OrderIn]) -> OrderImportResult:
        """Create or update orders; one transaction per batch of whole orders."""
        self.refresh()
        total = OrderImportResult()
        batch: list[OrderIn] = []
        batches = 0
        for order in orders:
            batch.append(order)
            if len(batch) >= self.batch_size:
                total.merge(self._retrying(self._apply_batch, batch))
                batch = []
                batches += 1
                if _analyze_after(batches):
                    self._analyze()
        if batch:
            total.merge(self._retrying(self._apply_batch, batch))
        return total

    def _analyze(self) -> None:
        """Refresh PostgreSQL's planner statistics during a bulk import: tables that started
        empty would otherwise be planned as empty (sequential scans) until autovacuum runs,
        if it runs at all."""
        if self.engine.dialect.name != "postgresql":
            return
        with self.engine.connect() as connection:
            connection.exec_driver_sql("ANALYZE orders, order_lines, line_allocations, stock")
            connection.commit()

    def _retrying(self, func: Callable[..., T], *args: Any) -> T:
        """Run one transaction, again when another writer's conflict made it fail."""
        for attempt in Retrying(
            retry=retry_if_exception(_is_transient),
            stop=stop_after_attempt(10),
            wait=wait_random_exponential(multiplier=0.05, max=2),
            before_sleep=before_sleep_log(log, logging.INFO),
            reraise=True,
        ):
            with attempt:
                result = func(*args)
        return result

    def _apply_batch(self, batch_orders: Sequence[OrderIn]) -> OrderImportResult:
        result = OrderImportResult()
        with writing(self.engine) as connection:
            existing = self._load_orders(connection, [o.key for o in batch_orders])
            # An order that cannot be applied is reported and skipped; it never sinks the
            # other orders of its batch.
            orders = []
            for order in batch_orders:
                problem = self._refusal(existing.get(order.key), order)
                if problem is None:
                    orders.append(order)
                else:
                    result.rejected.append((order.reference, problem))
            pairs: set[Pair] = set()
            for order in orders:
                warehouse_id = self._warehouse_id(order.warehouse)
                for line in order.lines:
                    if line.sku in self.stored.catalog:
                        pairs.update((s, warehouse_id) for s in self.stored.subtree_ids(line.sku))
            for known in existing.values():
                for known_line in known.lines.values():
                    pairs.update((a.sku_id, a.warehouse_id) for a in known_line.allocations)
            batch = _Batch(self, connection, pairs)
            self._sync_core(batch.levels)
            for order in orders:
                stored_order = existing.get(order.key)
                if stored_order is None:
                    stored_order = _Order(
                        None,
                        order.channel,
                        order.order_id,
                        self._warehouse_id(order.warehouse),
                        "new",
                        _utc(order.created_at),
                        dirty=True,
                    )
                    existing[order.key] = stored_order
                    result.orders_created += 1
                elif self._process_is_noop(stored_order, order):
                    result.orders_unchanged += 1
                    continue
                else:
                    result.orders_updated += 1
                self._process(batch, stored_order, order, result)
            touched = {id(existing[o.key]): existing[o.key] for o in orders}
            self._write(batch, list(touched.values()), result)
        return result

    def _refusal(self, stored: _Order | None, order: OrderIn) -> str | None:
        """Why ``order`` cannot be applied, or None."""
        ids = [line.line_id for line in order.lines]
        if len(ids) != len(set(ids)):
            twice = sorted({i for i in ids if ids.count(i) > 1})
            return f"line id(s) {', '.join(map(repr, twice))} appear more than once"
        if order.warehouse not in self.warehouse_ids:
            return f"unknown warehouse {order.warehouse!r} (known: {', '.join(self.warehouse_ids)})"
        if (
            stored is not None
            and self.warehouse_ids[order.warehouse] != stored.warehouse_id
            and stored.status != OrderStatus.SHIPPED
            and any(not a.deleted for line in stored.lines.values() for a in line.allocations)
        ):
            return (
                f"cannot move from warehouse {self.warehouse_codes[stored.warehouse_id]!r} "
                f"to {order.warehouse!r} after its stock was allocated"
            )
        return None

    def _warehouse_id(self, code: str) -> int:
        try:
            return self.warehouse_ids[code]
        except KeyError:
            raise InputError(
                f"unknown warehouse {code!r} (known: {', '.join(self.warehouse_ids)})"
            ) from None

    def _process_is_noop(self, stored: _Order, order: OrderIn) -> bool:
        if stored.status == OrderStatus.SHIPPED:
            return True  # shipped is final; later changes (refunds) are not stock moves here
        if stored.status != order.status:
            return False
        if self.warehouse_codes.get(stored.warehouse_id) != order.warehouse:
            return False  # _process refuses the move if stock is allocated
        if stored.status == OrderStatus.CANCELLED:
            return True
        if any(line.status == LineStatus.HELD for line in stored.lines.values()):
            return False  # retry held lines on every re-import
        wanted = {
            (line.line_id, line.sku, line.quantity)
            for line in order.lines
            if line.status != OrderStatus.CANCELLED
        }
        have = {
            (line.key, line.sku, line.quantity)
            for line in stored.lines.values()
            if line.status != LineStatus.CANCELLED
        }
        if wanted != have:
            return False
        # A line the channel now says is shipped, and that is not shipped here yet.
        return all(
            stored.lines[line.line_id].status == LineStatus.SHIPPED
            for line in order.lines
            if line.status == OrderStatus.SHIPPED
        )

    def _process(
        self, batch: _Batch, stored: _Order, order: OrderIn, result: OrderImportResult
    ) -> None:
        reference = order.reference
        stored.warehouse_id = self._warehouse_id(order.warehouse)  # _refusal checked the move
        reopened = stored.status == OrderStatus.CANCELLED
        stored.status = order.status
        stored.dirty = True
        if order.created_at is not None:
            stored.created_at = _utc(order.created_at)
        open_order = order.status == OrderStatus.OPEN
        incoming: dict[str, OrderLineIn] = {}
        for sent in order.lines:
            if sent.quantity <= 0:
                # A channel line with nothing left to send (refunded, removed) holds nothing.
                result.notes.append(
                    f"{reference} line {sent.line_id}: quantity {sent.quantity} ignored "
                    "(the line holds no stock)"
                )
                continue
            if open_order and sent.status == OrderStatus.CANCELLED:
                continue  # a line cancelled on its own holds nothing, like a dropped line
            incoming[sent.line_id] = sent
        # A shipped line is final, like a shipped order: its stock is gone, whatever the
        # channel says of it later (refunds and returns are not stock moves here).
        for key, dropped in stored.lines.items():
            if key not in incoming and dropped.status not in (
                LineStatus.CANCELLED,
                LineStatus.SHIPPED,
            ):
                self._release(batch, dropped, reference)
                dropped.status = LineStatus.CANCELLED
                result.lines_cancelled += 1
        for key, wanted in incoming.items():
            line = stored.lines.get(key)
            sku_id = self.stored.sku_id(wanted.sku) if wanted.sku in self.stored.catalog else None
            if line is None:
                line = _Line(
                    None, key, wanted.sku, sku_id, wanted.quantity, "new", None, dirty=True
                )
                stored.lines[key] = line
            elif line.status == LineStatus.SHIPPED:
                continue
            elif (
                line.sku != wanted.sku
                or line.quantity != wanted.quantity
                or reopened
                or line.status == LineStatus.CANCELLED
            ):
                self._release(batch, line, reference)
                line.sku, line.sku_id, line.quantity = wanted.sku, sku_id, wanted.quantity
                line.status, line.reason, line.dirty = "new", None, True
        for line in stored.lines.values():
            if line.status in (LineStatus.CANCELLED, LineStatus.SHIPPED):
                continue
            sent_line = incoming.get(line.key)
            # The order's shipped or cancelled applies to all its lines; an open order's
            # line may be shipped on its own.
            ships = order.status == OrderStatus.SHIPPED or (
                open_order and sent_line is not None and sent_line.status == OrderStatus.SHIPPED
            )
            if order.status == OrderStatus.CANCELLED:
                self._release(batch, line, reference)
                line.status, line.reason, line.dirty = LineStatus.CANCELLED, None, True
                result.lines_cancelled += 1
                continue
            if line.status in ("new", LineStatus.HELD):
                self._allocate(
                    batch,
                    stored,
                    line,
                    reference,
                    result,
                    force=ships,
                )
            if ships and line.status == LineStatus.ALLOCATED:
                for allocation in line.allocations:
                    if not allocation.deleted:
                        batch.move(
                            allocation.sku_id,
                            allocation.warehouse_id,
                            "Sale",
                            -allocation.quantity,
                            -allocation.quantity,
                            -allocation.quantity,
                            reference,
                        )
                        allocation.deleted = True
                line.status, line.dirty = LineStatus.SHIPPED, True
                result.lines_shipped += 1

    def _allocate(
        self,
        batch: _Batch,
        order: _Order,
        line: _Line,
        reference: str,
        result: OrderImportResult,
        *,
        force: bool,
    ) -> None:
        line.dirty = True
        if line.sku_id is None:
            line.status, line.reason = LineStatus.HELD, UNKNOWN_SKU
            result.lines_held += 1
            result.held.append((reference, line.key, UNKNOWN_SKU))
            return
        planner = batch.planner(order.warehouse_id)
        outcome = planner.plan_line(line.sku, line.quantity, force=force)
        if isinstance(outcome, Shortage):
            line.status, line.reason = LineStatus.HELD, outcome.reason
            result.lines_held += 1
            result.held.append((reference, line.key, outcome.reason))
            return
        line.allocations.extend(
            batch.apply_plan(outcome, order.warehouse_id, reference, "on-demand")
        )
        result.assembly_orders += len(outcome.builds)
        line.status, line.reason = LineStatus.ALLOCATED, None
        result.lines_allocated += 1

    def _release(self, batch: _Batch, line: _Line, reference: str) -> None:
        for allocation in line.allocations:
            if not allocation.deleted:
                batch.move(
                    allocation.sku_id,
                    allocation.warehouse_id,
                    "Release",
                    allocation.quantity,
                    0,
                    -allocation.quantity,
                    reference,
                )
                allocation.deleted = True
        line.dirty = True

    def retry_held(self) -> OrderImportResult:
        """Try the held lines of open orders again (after stock arrived), oldest first."""
        self.refresh()
        o, ol = schema.orders.c, schema.order_lines.c
        with self.engine.connect() as connection:
            held = connection.execute(
                select(func.count()).select_from(schema.order_lines).where(ol.status == "held")
            ).scalar()
            if not held:
                return OrderImportResult()
            keys = [
                (channel, external_id)
                for channel, external_id in connection.execute(
                    select(o.channel, o.external_id)
                    .where(o.status == OrderStatus.OPEN.value)
                    .where(
                        select(ol.id).where((ol.order_id == o.id) & (ol.status == "held")).exists()
                    )
                    .order_by(o.created_at.is_(None), o.created_at, o.id)
                )
            ]
            stored = self._load_orders(connection, keys) if keys else {}
        snapshots = [
            OrderIn(
                channel=x.channel,
                order_id=x.external_id,
                warehouse=self.warehouse_codes[x.warehouse_id],
                status=OrderStatus(x.status),
                lines=tuple(
                    OrderLineIn(line.key, line.sku, line.quantity)
                    for line in x.lines.values()
                    if line.status != LineStatus.CANCELLED
                ),
                created_at=x.created_at,
            )
            for x in (stored[key] for key in keys)
        ]
        return self.apply(snapshots)

    def record_levels(
        self, connection: Connection, levels: dict[Pair, tuple[int, int, int]]
    ) -> set[tuple[str, str]]:
        """Feed stock rows written elsewhere (a count) to the core and record the changed
        sellable pairs, inside the caller's transaction."""
        changed = self._sync_core(levels)
        if changed:
            now = db_time(connection, utcnow())
            copy_rows(
                connection,
                "sellable_changes",
                ("sku_id", "warehouse_id", "at"),
                [
                    (self.stored.sku_id(sku), self.warehouse_ids[wh], now)
                    for sku, wh in sorted(changed)
                ],
            )
            # This book already holds these changes: do not read them back at refresh.
            self._changes_seen = max(self._changes_seen, _max_change_id(connection))
        return changed

    # -- builds ---------------------------------------------------------------------------------

    def build(
        self, sku: str, quantity: int, warehouse: str
    ) -> tuple[list[dict[str, Any]], set[tuple[str, str]]]:
        """Build ``quantity`` of ``sku`` in ``warehouse`` by hand, all or nothing.

        Returns the assembly orders made (nested sub-assemblies first) and the changed
        (SKU, warehouse) pairs. Raises :class:`InputError` naming the shortage.
        """
        if quantity <= 0:
            raise InputError(f"quantity must be a positive integer, got {quantity}")
        warehouse_id = self._warehouse_id(warehouse)
        if sku not in self.stored.catalog:
            raise InputError(f"unknown SKU {sku!r}")
        if not self.stored.catalog.kind_of(sku).is_composite:
            raise InputError(f"{sku!r} is a simple SKU: it has no components to build it from")
        if not self.settings.warehouse(warehouse).uses_components:
            raise InputError(
                f"warehouse {warehouse!r} does not use component inventory: it cannot assemble"
            )

        self.refresh()

        def run() -> tuple[list[dict[str, Any]], set[tuple[str, str]]]:
            with writing(self.engine) as connection:
                pairs = {(s, warehouse_id) for s in self.stored.subtree_ids(sku)}
                batch = _Batch(self, connection, pairs)
                self._sync_core(batch.levels)
                outcome = batch.planner(warehouse_id).plan_build(sku, quantity)
                if isinstance(outcome, Shortage):
                    raise InputError(f"cannot build {quantity} × {sku}: {outcome.reason}")
                batch.apply_plan(outcome, warehouse_id, "", "manual")
                result = OrderImportResult()
                self._write(batch, [], result)
                made = [self._describe_build(b, batch.now) for b in batch.builds]
                return made, result.changed_pairs

        return self._retrying(run)

    def _describe_build(self, build: _Build, at: datetime) -> dict[str, Any]:
        return {
            "id": f"AO-{build.id}",
            "sku": build.step.sku,
            "quantity": build.step.quantity,
            "warehouse": self.warehouse_codes[build.warehouse_id],
            "at": at.isoformat(),
            "origin": build.origin,
            "reference": build.reference,
            "components": [{"sku": s, "quantity": q} for s, q in build.step.consumed],
        }

    # -- store ----------------------------------------------------------------------------------

    def _sync_core(self, levels: dict[Pair, tuple[int, int, int]]) -> set[tuple[str, str]]:
        """Bring the in-memory core up to the locked rows (another process may have moved
        them); returns what changed."""
        fed = self._core_levels
        if len(fed) > KNOWN_STOCK_LIMIT:
            fed.clear()
        codes = self.warehouse_codes
        changes = {}
        for pair, level in levels.items():
            # Rows the core already holds at these levels (this book wrote or read them
            # last) cannot change anything: skip them.
            if fed.get(pair) != level and pair[1] in codes:
                changes[(self.stored.code(pair[0]), codes[pair[1]])] = StockLevels(*level)
                fed[pair] = level
        return self.core.apply(changes) if changes else set()

    def _load_orders(
        self, connection: Connection, keys: list[tuple[str, str]]
    ) -> dict[tuple[str, str], _Order]:
        found: dict[tuple[str, str], _Order] = {}
        o = schema.orders.c
        by_channel: dict[str, set[str]] = {}
        for channel_code, external in keys:
            by_channel.setdefault(channel_code, set()).add(external)
        for channel_code in sorted(by_channel):
            # `channel = c AND external_id IN (...)` uses both columns of the unique index.
            for chunk in chunked(sorted(by_channel[channel_code]), 2000):
                query = select(
                    o.id, o.channel, o.external_id, o.warehouse_id, o.status, o.created_at
                ).where((o.channel == channel_code) & one_of(connection, o.external_id, chunk))
                if connection.dialect.name == "postgresql":
                    query = query.with_for_update()
                for oid, channel, external_id, wid, status, created in connection.execute(query):
                    found[(channel, external_id)] = _Order(
                        oid, channel, external_id, wid, status, created
                    )
        by_id = {order.id: order for order in found.values()}
        lines: dict[int, _Line] = {}
        ol = schema.order_lines.c
        for id_chunk in chunked(list(by_id), 2000):
            for lid, oid, key, sku, sku_id, qty, status, reason in connection.execute(
                select(
                    ol.id,
                    ol.order_id,
                    ol.line_key,
                    ol.sku,
                    ol.sku_id,
                    ol.quantity,
                    ol.status,
                    ol.hold_reason,
                ).where(one_of(connection, ol.order_id, id_chunk))
            ):
                line = _Line(lid, key, sku, sku_id, qty, status, reason)
                by_id[oid].lines[key] = line
                lines[lid] = line
        la = schema.line_allocations.c
        for line_chunk in chunked(list(lines), 2000):
            for aid, lid, sku_id, wid, qty in connection.execute(
                select(la.id, la.line_id, la.sku_id, la.warehouse_id, la.quantity).where(
                    one_of(connection, la.line_id, line_chunk)
                )
            ):
                lines[lid].allocations.append(_Allocation(aid, sku_id, wid, qty))
        return found

    def _write(self, batch: _Batch, orders: list[_Order], result: OrderImportResult) -> None:
        """Write a batch: each table in one bulk statement (COPY on PostgreSQL, with the new
        rows' ids drawn from their sequences first, so that nothing is read back)."""
        connection, now = batch.connection, batch.now
        o, ol, la = schema.orders, schema.order_lines, schema.line_allocations
        new_orders = [order for order in orders if order.id is None]
        changed_orders = [x for x in orders if x.id is not None and x.dirty]
        all_lines = [line for order in orders for line in order.lines.values()]
        dirty_lines = [line for line in all_lines if line.id is not None and line.dirty]
        new_lines = [
            (order, line) for order in orders for line in order.lines.values() if line.id is None
        ]
        # PostgreSQL: the ids of every new row of the batch in one round trip.
        order_ids, line_ids, build_ids = (
            reserve_ids(
                connection,
                [
                    ("orders", len(new_orders)),
                    ("order_lines", len(new_lines)),
                    ("assembly_orders", len(batch.builds)),
                ],
            )
            if connection.dialect.name == "postgresql"
            else (None, None, None)
        )
        if new_orders:
            ids = _insert_rows(
                connection,
                order_ids,
                o,
                ("channel", "external_id", "warehouse_id", "status", "created_at"),
                [
                    (x.channel, x.external_id, x.warehouse_id, str(x.status), x.created_at)
                    for x in new_orders
                ],
                {"imported_at": now, "updated_at": now},
            )
            for order, oid in zip(new_orders, ids, strict=True):
                order.id = oid
        if changed_orders:
            connection.execute(
                o.update()
                .where(o.c.id == bindparam("oid"))
                .values(
                    status=bindparam("s"),
                    warehouse_id=bindparam("w"),
                    created_at=bindparam("c"),
                    updated_at=now,
                ),
                [
                    {"oid": x.id, "s": x.status, "w": x.warehouse_id, "c": x.created_at}
                    for x in changed_orders
                ],
            )
        if new_lines:
            ids = _insert_rows(
                connection,
                line_ids,
                ol,
                ("order_id", "line_key", "sku", "sku_id", "quantity", "status", "hold_reason"),
                [
                    (
                        order.id,
                        line.key,
                        line.sku,
                        line.sku_id,
                        line.quantity,
                        str(line.status),
                        line.reason,
                    )
                    for order, line in new_lines
                ],
            )
            for (_, line), lid in zip(new_lines, ids, strict=True):
                line.id = lid
        if dirty_lines:
            connection.execute(
                ol.update()
                .where(ol.c.id == bindparam("lid"))
                .values(
                    sku=bindparam("k"),
                    sku_id=bindparam("sid"),
                    quantity=bindparam("q"),
                    status=bindparam("s"),
                    hold_reason=bindparam("r"),
                ),
                [
                    {
                        "lid": x.id,
                        "k": x.sku,
                        "sid": x.sku_id,
                        "q": x.quantity,
                        "s": x.status,
                        "r": x.reason,
                    }
                    for x in dirty_lines
                ],
            )
        gone = [
            a.id for line in all_lines for a in line.allocations if a.deleted and a.id is not None
        ]
        for chunk in chunked(gone):
            connection.execute(la.delete().where(la.c.id.in_(chunk)))
        copy_rows(
            connection,
            "line_allocations",
            ("line_id", "sku_id", "warehouse_id", "quantity"),
            [
                (line.id, a.sku_id, a.warehouse_id, a.quantity)
                for line in all_lines
                for a in line.allocations
                if a.id is None and not a.deleted
            ],
        )
        self._write_builds(batch, build_ids)
        at = db_time(connection, now)
        copy_rows(
            connection,
            "movements",
            (
                "sku_id",
                "warehouse_id",
                "type",
                "quantity",
                "on_hand_change",
                "locked_change",
                "allocated_change",
                "reference",
                "at",
            ),
            [
                (
                    m.sku_id,
                    m.warehouse_id,
                    m.type,
                    m.quantity,
                    m.on_hand_change,
                    0,
                    m.allocated_change,
                    m.reference if m.build is None else _build_reference(m.build),
                    at,
                )
                for m in batch.movements
            ],
        )
        result.movements += len(batch.movements)
        # Deltas, not absolute values: correct whatever else holds the row (we hold the lock).
        _add_to_stock(
            connection,
            [(d[0], d[1], s, w) for (s, w), d in sorted(batch.deltas.items()) if d[0] or d[1]],
        )
        result.changed_pairs |= self.record_levels(
            connection, {pair: batch.levels[pair] for pair in batch.deltas}
        )

    def _write_builds(self, batch: _Batch, reserved: list[int] | None = None) -> None:
        if not batch.builds:
            return
        ids = _insert_rows(
            batch.connection,
            reserved,
            schema.assembly_orders,
            ("warehouse_id", "sku_id", "quantity", "origin", "reference"),
            [
                (
                    b.warehouse_id,
                    self.stored.sku_id(b.step.sku),
                    b.step.quantity,
                    b.origin,
                    b.reference,
                )
                for b in batch.builds
            ],
            {"created_at": batch.now},
        )
        for build, bid in zip(batch.builds, ids, strict=True):
            build.id = bid
        copy_rows(
            batch.connection,
            "assembly_order_components",
            ("assembly_order_id", "sku_id", "quantity"),
            [
                (b.id, self.stored.sku_id(sku), q)
                for b in batch.builds
                for sku, q in b.step.consumed
            ],
        )


def _insert_rows(
    connection: Connection,
    ids: list[int] | None,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    same: dict[str, Any] | None = None,
) -> list[int]:
    """Insert ``rows`` (values of ``columns``, plus the ``same`` values in each) and return
    their new ids in order. PostgreSQL: ids from the sequence (``ids`` if reserved already),
    then one COPY; elsewhere an INSERT ... RETURNING for all rows."""
    same = same or {}
    if connection.dialect.name == "postgresql":
        if ids is None:
            [ids] = reserve_ids(connection, [(table.name, len(rows))])
        extra = tuple(same.values())
        copy_rows(
            connection,
            table.name,
            ("id", *columns, *same),
            [(i, *row, *extra) for i, row in zip(ids, rows, strict=True)],
        )
        return ids
    id_column = table.c.id
    return list(
        connection.execute(
            table.insert().returning(id_column, sort_by_parameter_order=True),
            [dict(zip(columns, row, strict=True)) | same for row in rows],
        )
        .scalars()
        .all()
    )


def _add_to_stock(connection: Connection, deltas: list[tuple[int, int, int, int]]) -> None:
    """``(on hand delta, allocated delta, sku id, warehouse id)`` added to the (locked) stock
    rows: one UPDATE joined to the arrays on PostgreSQL, one per row elsewhere."""
    if not deltas:
        return
    if connection.dialect.name != "postgresql":
        driver_executemany(
            connection,
            "UPDATE stock SET on_hand = on_hand + ?, allocated = allocated + ? "
            "WHERE sku_id = ? AND warehouse_id = ?",
            deltas,
        )
        return
    # A few hundred rows of a table of any size, each found on the primary key: the planner
    # would rather hash the whole stock table (several times slower on a catalog of tens of
    # thousands of SKUs). For the rest of this transaction (nothing else is planned after
    # this but the outbox's max(id)), joins are nested loops.
    connection.exec_driver_sql(
        "SELECT set_config('enable_hashjoin', 'off', true), "
        "set_config('enable_mergejoin', 'off', true)"
    )
    connection.exec_driver_sql(
        "UPDATE stock SET on_hand = stock.on_hand + d.oh, allocated = stock.allocated + d.al "
        "FROM unnest(%(oh)s::bigint[], %(al)s::bigint[], %(s)s::bigint[], %(w)s::bigint[]) "
        "AS d(oh, al, s, w) WHERE stock.sku_id = d.s AND stock.warehouse_id = d.w",
        {
            "oh": [d[0] for d in deltas],
            "al": [d[1] for d in deltas],
            "s": [d[2] for d in deltas],
            "w": [d[3] for d in deltas],
        },
    )


def _build_reference(build: _Build) -> str:
    text = f"assembly order AO-{build.id}"
    if build.reference:
        text += f" for {build.reference}"
    return text
