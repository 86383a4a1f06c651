"""The order book: the order rules, applying orders and builds to stock.

Orders are applied in batches, one database transaction per batch, so a crash leaves
each order with all of its movements or none. The stock rows an order touches are
locked (:mod:`sellable.store.ledger`) before it is planned, so concurrent importers never
allocate the same last units twice. Orders are read and written by
:mod:`sellable.orders.persistence`; the catalog and the calculation core live in a
:class:`~sellable.store.live.LiveStock`, which after each batch says which (SKU, warehouse)
sellable values changed and writes them to ``sellable_changes`` for the sync layer.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine

from sellable.config import Settings
from sellable.core import SkuWarehouse, StockKey, StockLevels
from sellable.core.allocation import AllocationPlanner, Plan, Shortage, forced_options
from sellable.costing.hooks import CostedMove, cost_movements
from sellable.costing.money import cents_text, unit_text
from sellable.errors import CatalogError, InputError
from sellable.orders.model import (
    UNKNOWN_SKU,
    LineStatus,
    OrderImportResult,
    OrderIn,
    OrderKey,
    OrderLineIn,
    OrderStatus,
)
from sellable.orders.persistence import (
    StoredAllocation,
    StoredBuild,
    StoredLine,
    StoredOrder,
    address_text,
    build_reference,
    held_order_keys,
    load_orders,
    utc,
    write_orders,
)
from sellable.store import ledger
from sellable.store.db import writing
from sellable.store.live import LiveStock
from sellable.store.schema import micros
from sellable.store.sql import db_time, utcnow

log = logging.getLogger(__name__)


def options_text(options: Sequence[tuple[str, str]]) -> str | None:
    """The customer's choice of options as stored: ``slot=SKU;slot=SKU`` (None: none)."""
    return ";".join(f"{slot}={sku}" for slot, sku in options) or None


def options_pairs(text: str | None) -> tuple[tuple[str, str], ...]:
    """:func:`options_text` read back."""
    if not text:
        return ()
    return tuple((slot, sku) for slot, _, sku in (part.partition("=") for part in text.split(";")))


#: During a bulk import, PostgreSQL statistics are refreshed after this many batches, then
#: each time the number of batches doubles (the tables' sizes stay within a factor of two
#: of what the planner believes, with a handful of ANALYZE runs however long the import).
ANALYZE_FIRST_AFTER_BATCHES = 25


def _analyze_after(batches: int) -> bool:
    """True after 25, 50, 100, 200 ... batches."""
    doublings, rest = divmod(batches, ANALYZE_FIRST_AFTER_BATCHES)
    return rest == 0 and doublings > 0 and doublings & (doublings - 1) == 0


@dataclass(slots=True)
class _Movement:
    sku_id: int
    warehouse_id: int
    type: str
    quantity: int
    on_hand_change: int
    allocated_change: int
    reference: str | None
    build: StoredBuild | None = None
    held_change: int = 0
    #: The shipped line (a Sale), for its cost.
    line: StoredLine | None = None
    #: Set by costing: the lot(s) and value of the units moved, expired units taken.
    lot: str | None = None
    value: Decimal | None = None
    expired_change: int = 0


class _Batch:
    """Working state of one transaction: locked stock levels, planners, what to write."""

    def __init__(
        self,
        book: OrderBook,
        connection: Connection,
        pairs: set[StockKey],
    ) -> None:
        self.book = book
        self.connection = connection
        self.levels = ledger.lock_stock(connection, pairs, book.live.known_stock)
        self.deltas: dict[StockKey, list[int]] = {}  # on hand, allocated, held, expired
        self.movements: list[_Movement] = []
        self.builds: list[StoredBuild] = []
        self.planners: dict[int, AllocationPlanner] = {}
        self.now = utcnow()

    def planner(self, warehouse_id: int) -> AllocationPlanner:
        planner = self.planners.get(warehouse_id)
        if planner is None:
            live = self.book.live
            code = live.warehouse_codes[warehouse_id]
            core = live.core
            position = live.catalog.position
            available = {
                position[sku_id]: level.available
                for (sku_id, wid), level in self.levels.items()
                if wid == warehouse_id
            }
            planner = AllocationPlanner(
                core.structure, core.flags[core.warehouse_position(code)], code, available
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
        build: StoredBuild | None = None,
        held: int = 0,
        line: StoredLine | None = None,
    ) -> None:
        """Record one movement and its effect on the locked stock row."""
        self.movements.append(
            _Movement(
                sku_id,
                warehouse_id,
                kind,
                quantity,
                on_hand,
                allocated,
                reference,
                build,
                held,
                line,
            )
        )
        key = StockKey(sku_id, warehouse_id)
        delta = self.deltas.setdefault(key, [0, 0, 0, 0])
        delta[0] += on_hand
        delta[1] += allocated
        delta[2] += held
        level = self.levels.get(key) or StockLevels()
        self.levels[key] = StockLevels(
            level.on_hand + on_hand,
            level.locked,
            level.allocated + allocated,
            level.held + held,
            level.expired,
        )
        if not planned and warehouse_id in self.planners:
            # Plans already moved the planner's working stock; other movements must too.
            planner = self.planners[warehouse_id]
            pos = self.book.live.catalog.position[sku_id]
            planner.available[pos] = planner.available.get(pos, 0) + on_hand - allocated - held

    def apply_plan(
        self, plan: Plan, warehouse_id: int, reference: str, origin: str
    ) -> list[StoredAllocation]:
        """Movements for a plan: builds first (AssemblyBuild), then Allocations."""
        stored = self.book.live.catalog
        for step in plan.builds:
            build = StoredBuild(
                step, warehouse_id, origin, reference if origin != "manual" else None
            )
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
            allocations.append(StoredAllocation(None, sku_id, warehouse_id, quantity))
        return allocations


class OrderBook:
    """Applies orders and builds. Holds the catalog and an incremental core in memory.

    Usage::

        book = OrderBook(engine, settings)
        result = book.apply([OrderIn(...)])
        result.changed_pairs      # {(sku, warehouse)} whose sellable changed
    """

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        batch_size: int = 200,
        *,
        live: LiveStock | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.batch_size = batch_size
        #: The catalog and the calculation core in memory (shared with the sync engine).
        self.live = live if live is not None else LiveStock(engine, settings)

    def refresh(self) -> None:
        """Catch the live stock up with what other writers changed."""
        self.live.refresh()

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
                total.merge(ledger.retrying(self._apply_batch, batch))
                batch = []
                batches += 1
                if _analyze_after(batches):
                    self._analyze()
        if batch:
            total.merge(ledger.retrying(self._apply_batch, batch))
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

    def _apply_batch(self, batch_orders: Sequence[OrderIn]) -> OrderImportResult:
        result = OrderImportResult()
        with writing(self.engine) as connection:
            existing = load_orders(connection, [o.key for o in batch_orders])
            # An order that cannot be applied is reported and skipped; it never sinks the
            # other orders of its batch.
            orders = []
            for order in batch_orders:
                problem = self._refusal(existing.get(order.key), order)
                if problem is None:
                    orders.append(order)
                else:
                    result.rejected.append((order.reference, problem))
            stored_catalog = self.live.catalog
            pairs: set[StockKey] = set()
            for order in orders:
                for code in order.warehouses:
                    warehouse_id = self._warehouse_id(code)
                    for line in order.lines:
                        if line.sku in stored_catalog.catalog:
                            pairs.update(
                                StockKey(s, warehouse_id)
                                for s in stored_catalog.subtree_ids(line.sku)
                            )
            for known in existing.values():
                for known_line in known.lines.values():
                    pairs.update(StockKey(a.sku_id, a.warehouse_id) for a in known_line.allocations)
                    pairs.update(StockKey(h.sku_id, h.warehouse_id) for h in known_line.holds)
            batch = _Batch(self, connection, pairs)
            self.live.feed(batch.levels)
            # Held lines claim stock oldest first: give back the claims of every line of the
            # batch before any is planned again (retry_held sends the oldest orders first).
            # Whether a stored order is unchanged is worked out once, here, for the first
            # occurrence of each order (a later one is compared with what the first made).
            unchanged: dict[int, bool] = {}
            firsts: set[OrderKey] = set()
            for index, order in enumerate(orders):
                earlier = existing.get(order.key)
                if earlier is None or order.key in firsts:
                    continue
                firsts.add(order.key)
                unchanged[index] = self._process_is_noop(earlier, order)
                if not unchanged[index]:
                    for earlier_line in earlier.lines.values():
                        self._unhold(batch, earlier_line, order.reference)
            for index, order in enumerate(orders):
                stored_order = existing.get(order.key)
                if stored_order is None:
                    stored_order = StoredOrder(
                        None,
                        order.channel,
                        order.order_id,
                        self._warehouse_id(order.warehouse),
                        "new",
                        utc(order.created_at),
                        dirty=True,
                        route=",".join(order.route) if order.route else None,
                        shipping_address=address_text(order.shipping_address),
                    )
                    existing[order.key] = stored_order
                    result.orders_created += 1
                elif (
                    unchanged[index]
                    if index in unchanged
                    else self._process_is_noop(stored_order, order)
                ):
                    result.orders_unchanged += 1
                    continue
                else:
                    result.orders_updated += 1
                self._process(batch, stored_order, order, result)
            touched = {id(existing[o.key]): existing[o.key] for o in orders}
            self._write(batch, list(touched.values()), result)
        return result

    def _refusal(self, stored: StoredOrder | None, order: OrderIn) -> str | None:
        """Why ``order`` cannot be applied, or None."""
        ids = [line.line_id for line in order.lines]
        if len(ids) != len(set(ids)):
            twice = sorted({i for i in ids if ids.count(i) > 1})
            return f"line id(s) {', '.join(map(repr, twice))} appear more than once"
        for code in (order.warehouse, *order.route):
            if code not in self.live.warehouse_ids:
                known = ", ".join(self.live.warehouse_ids)
                return f"unknown warehouse {code!r} (known: {known})"
        if order.route and order.route[0] != order.warehouse:
            return f"its warehouse {order.warehouse!r} is not the first of its route {order.route}"
        for line in order.lines:
            if line.options and self.live.knows(line.sku):
                try:
                    forced_options(
                        self.live.core.structure,
                        self.live.catalog.catalog.position(line.sku),
                        line.options,
                    )
                except CatalogError as error:
                    return f"line {line.line_id!r}: {error}"
        if (
            stored is not None
            and self.live.warehouse_ids[order.warehouse] != stored.warehouse_id
            and stored.status != OrderStatus.SHIPPED
            and any(not a.deleted for line in stored.lines.values() for a in line.allocations)
        ):
            return (
                f"cannot move from warehouse {self.live.warehouse_codes[stored.warehouse_id]!r} "
                f"to {order.warehouse!r} after its stock was allocated"
            )
        return None

    def _warehouse_id(self, code: str) -> int:
        try:
            return self.live.warehouse_ids[code]
        except KeyError:
            raise InputError(
                f"unknown warehouse {code!r} (known: {', '.join(self.live.warehouse_ids)})"
            ) from None

    def _process_is_noop(self, stored: StoredOrder, order: OrderIn) -> bool:
        if stored.status == OrderStatus.SHIPPED:
            return True  # shipped is final; later changes (refunds) are not stock moves here
        if stored.status != order.status:
            return False
        if self.live.warehouse_codes.get(stored.warehouse_id) != order.warehouse:
            return False  # a move (_refusal has refused it already if stock is allocated)
        if order.shipping_address is not None and stored.shipping_address != address_text(
            order.shipping_address
        ):
            return False  # kept for a fulfilment provider (the order may still be sent)
        if stored.status == OrderStatus.CANCELLED:
            return True
        if any(line.status == LineStatus.HELD for line in stored.lines.values()):
            return False  # retry held lines on every re-import
        # A line of quantity 0 or less holds nothing and is never stored (_process skips
        # it): it cannot make the order differ.
        if stored.route != (",".join(order.route) if order.route else None):
            return False
        wanted = {
            (
                line.line_id,
                line.sku,
                line.quantity,
                options_text(line.options),
                line.revenue,
                line.currency,
            )
            for line in order.lines
            if line.status != OrderStatus.CANCELLED and line.quantity > 0
        }
        have = {
            (line.key, line.sku, line.quantity, line.options, line.revenue, line.currency)
            for line in stored.lines.values()
            if line.status != LineStatus.CANCELLED
        }
        if wanted != have:
            return False
        # A line the channel now says is shipped, and that is not shipped here yet.
        return all(
            stored.lines[line.line_id].status == LineStatus.SHIPPED
            for line in order.lines
            if line.status == OrderStatus.SHIPPED and line.quantity > 0
        )

    def _process(
        self, batch: _Batch, stored: StoredOrder, order: OrderIn, result: OrderImportResult
    ) -> None:
        reference = order.reference
        stored.warehouse_id = self._warehouse_id(order.warehouse)  # _refusal checked the move
        reopened = stored.status == OrderStatus.CANCELLED
        stored.status = order.status
        stored.route = ",".join(order.route) if order.route else None
        if order.shipping_address is not None:
            stored.shipping_address = address_text(order.shipping_address)
        stored.dirty = True
        if order.created_at is not None:
            stored.created_at = utc(order.created_at)
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
            sku_id = self.live.sku_id(wanted.sku) if self.live.knows(wanted.sku) else None
            options = options_text(wanted.options)
            if line is None:
                line = StoredLine(
                    None,
                    key,
                    wanted.sku,
                    sku_id,
                    wanted.quantity,
                    "new",
                    None,
                    dirty=True,
                    options=options,
                    revenue=wanted.revenue,
                    currency=wanted.currency,
                )
                stored.lines[key] = line
            elif line.status == LineStatus.SHIPPED:
                continue
            if (line.revenue, line.currency) != (wanted.revenue, wanted.currency):
                line.revenue, line.currency, line.dirty = wanted.revenue, wanted.currency, True
            if (
                line.sku != wanted.sku
                or line.quantity != wanted.quantity
                or line.options != options
                or reopened
                or line.status == LineStatus.CANCELLED
            ):
                self._release(batch, line, reference)
                line.sku, line.sku_id, line.quantity = wanted.sku, sku_id, wanted.quantity
                line.options = options
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
                            line=line,
                        )
                        allocation.deleted = True
                line.status, line.dirty = LineStatus.SHIPPED, True
                result.lines_shipped += 1

    def _allocate(
        self,
        batch: _Batch,
        order: StoredOrder,
        line: StoredLine,
        reference: str,
        result: OrderImportResult,
        *,
        force: bool,
    ) -> None:
        line.dirty = True
        self._unhold(batch, line, reference)
        line.allocated_in = None
        if line.sku_id is None:
            line.status, line.reason = LineStatus.HELD, UNKNOWN_SKU
            result.lines_held += 1
            result.held.append((reference, line.key, UNKNOWN_SKU))
            return
        live = self.live
        pos = live.catalog.position[line.sku_id]
        route = self._route_ids(order)
        forced = (
            forced_options(live.core.structure, pos, options_pairs(line.options))
            if line.options
            else None
        )
        parts = self._route(batch, route, pos, line.quantity, forced, force)
        if isinstance(parts, Shortage):
            # Held in the first warehouse, claiming its whole demand there: not offered to
            # anyone else while it waits.
            line.status, line.reason = LineStatus.HELD, parts.reason
            result.lines_held += 1
            result.held.append((reference, line.key, parts.reason))
            home = route[0]
            ids = live.catalog.ids
            for p, quantity in batch.planner(home).claims(pos, line.quantity, forced).items():
                batch.move(ids[p], home, "Hold", -quantity, 0, 0, reference, held=quantity)
                line.holds.append(StoredAllocation(None, ids[p], home, quantity))
            return
        where = []
        for warehouse_id, plan, units in parts:
            line.allocations.extend(batch.apply_plan(plan, warehouse_id, reference, "on-demand"))
            result.assembly_orders += len(plan.builds)
            where.append(f"{live.warehouse_codes[warehouse_id]}={units}")
        line.allocated_in = ";".join(where)
        line.status, line.reason = LineStatus.ALLOCATED, None
        result.lines_allocated += 1

    def _route_ids(self, order: StoredOrder) -> list[int]:
        """The warehouses a line of ``order`` may be booked in, in order."""
        if not order.route:
            return [order.warehouse_id]
        return [self.live.warehouse_ids[code] for code in order.route.split(",")]

    def _route(
        self,
        batch: _Batch,
        route: list[int],
        pos: int,
        quantity: int,
        forced: dict[tuple[int, int], int] | None,
        force: bool,
    ) -> list[tuple[int, Plan, int]] | Shortage:
        """Where a line of ``quantity`` goes: the first warehouse of ``route`` that can take
        all of it; else split across them in order; else the first where orders exceeding
        stock are allowed for what falls short; else, with ``force``, the first. Returns
        (warehouse id, plan, line units) parts, or the first warehouse's shortage."""
        first: Shortage | None = None
        for warehouse_id in route:
            outcome = batch.planner(warehouse_id).plan_line(
                pos, quantity, forced=forced, backorders=False
            )
            if isinstance(outcome, Plan):
                return [(warehouse_id, outcome, quantity)]
            if first is None:
                first = outcome
        if len(route) > 1:
            planners = [batch.planner(w) for w in route]
            saved = [dict(p.available) for p in planners]
            parts: list[tuple[int, Plan, int]] = []
            remaining = quantity
            for warehouse_id, planner in zip(route, planners, strict=True):
                take = min(remaining, planner.capacity(pos, forced))
                if take <= 0:
                    continue
                outcome = planner.plan_line(pos, take, forced=forced, backorders=False)
                if isinstance(outcome, Plan):
                    parts.append((warehouse_id, outcome, take))
                    remaining -= take
                if not remaining:
                    return parts
            for planner, available in zip(planners, saved, strict=True):
                planner.available = available
        # Orders exceeding stock: the first warehouse where what falls short may go
        # negative (the channel is told to keep selling when any of them allows it).
        for warehouse_id in route:
            outcome = batch.planner(warehouse_id).plan_line(pos, quantity, forced=forced)
            if isinstance(outcome, Plan):
                return [(warehouse_id, outcome, quantity)]
        if force:
            outcome = batch.planner(route[0]).plan_line(pos, quantity, force=True, forced=forced)
            if isinstance(outcome, Plan):
                return [(route[0], outcome, quantity)]
        assert first is not None
        return first

    def _release(self, batch: _Batch, line: StoredLine, reference: str) -> None:
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
        self._unhold(batch, line, reference)
        line.allocated_in = None
        line.dirty = True

    def _unhold(self, batch: _Batch, line: StoredLine, reference: str) -> None:
        """Give back what a held line claimed (it is planned again, or cancelled)."""
        for hold in line.holds:
            if not hold.deleted:
                batch.move(
                    hold.sku_id,
                    hold.warehouse_id,
                    "HoldRelease",
                    hold.quantity,
                    0,
                    0,
                    reference,
                    held=-hold.quantity,
                )
                hold.deleted = True

    def retry_held(self) -> OrderImportResult:
        """Try the held lines of open orders again (after stock arrived), oldest first."""
        self.refresh()
        with self.engine.connect() as connection:
            keys = held_order_keys(connection)
            if not keys:
                return OrderImportResult()
            stored = load_orders(connection, keys) if keys else {}
        snapshots = [
            OrderIn(
                channel=x.channel,
                order_id=x.external_id,
                warehouse=self.live.warehouse_codes[x.warehouse_id],
                status=OrderStatus(x.status),
                lines=tuple(
                    OrderLineIn(
                        line.key, line.sku, line.quantity, options=options_pairs(line.options)
                    )
                    for line in x.lines.values()
                    if line.status != LineStatus.CANCELLED
                ),
                created_at=x.created_at,
                route=tuple(x.route.split(",")) if x.route else (),
            )
            for x in (stored[key] for key in keys)
        ]
        return self.apply(snapshots)

    # -- a fulfilment provider's outcome ----------------------------------------------------------

    def settle_lines(
        self,
        connection: Connection,
        order: OrderKey,
        warehouse: str,
        *,
        ship: Sequence[str] = (),
        release: Sequence[str] = (),
        reason: str | None = None,
        reference: str | None = None,
    ) -> OrderImportResult:
        """Inside the caller's transaction: the lines ``ship`` of ``order`` left
        ``warehouse`` (a fulfilment provider shipped them): their allocations there become a
        Sale, costed like any other; the lines ``release`` will not ship from there (the
        provider cancelled): their allocations there are released, with ``reason``.

        A line with nothing else allocated becomes shipped (final) or cancelled; a line
        split across warehouses keeps its other allocations. The order is shipped once every
        line is shipped or cancelled and one shipped. The caller holds the live stock's lock
        and has refreshed it."""
        result = OrderImportResult()
        stored = load_orders(connection, [order]).get(order)
        if stored is None:
            result.notes.append(f"order {order.channel}:{order.external_id} is not stored")
            return result
        warehouse_id = self._warehouse_id(warehouse)
        moves = [stored.lines[key] for key in (*ship, *release) if key in stored.lines]
        pairs = {
            StockKey(a.sku_id, a.warehouse_id)
            for line in moves
            for a in line.allocations
            if a.warehouse_id == warehouse_id
        }
        batch = _Batch(self, connection, pairs)
        self.live.feed(batch.levels)
        text = reference or f"order {order.channel}:{order.external_id}"
        shipping = set(ship)
        for line in moves:
            if line.status != LineStatus.ALLOCATED:
                continue  # shipped already, or cancelled on its channel: nothing held here
            sells = line.key in shipping
            for allocation in line.allocations:
                if allocation.deleted or allocation.warehouse_id != warehouse_id:
                    continue
                if sells:
                    batch.move(
                        allocation.sku_id,
                        warehouse_id,
                        "Sale",
                        -allocation.quantity,
                        -allocation.quantity,
                        -allocation.quantity,
                        text,
                        line=line,
                    )
                else:
                    batch.move(
                        allocation.sku_id,
                        warehouse_id,
                        "Release",
                        allocation.quantity,
                        0,
                        -allocation.quantity,
                        text,
                    )
                allocation.deleted = True
            line.dirty = True
            line.allocated_in = (
                ";".join(
                    part
                    for part in (line.allocated_in or "").split(";")
                    if part and part.partition("=")[0] != warehouse
                )
                or None
            )
            if any(not a.deleted for a in line.allocations):
                continue  # the rest of a split line is allocated elsewhere
            if sells:
                line.status = LineStatus.SHIPPED
                result.lines_shipped += 1
            else:
                line.status, line.reason = LineStatus.CANCELLED, reason
                result.lines_cancelled += 1
        statuses = {line.status for line in stored.lines.values()}
        if LineStatus.SHIPPED in statuses and statuses <= {
            LineStatus.SHIPPED,
            LineStatus.CANCELLED,
        }:
            stored.status = OrderStatus.SHIPPED
        stored.dirty = True
        self._write(batch, [stored], result)
        return result

    # -- builds ---------------------------------------------------------------------------------

    def build(
        self,
        sku: str,
        quantity: int,
        warehouse: str,
        *,
        lot: str | None = None,
        expires_on: date | None = None,
    ) -> tuple[list[dict[str, Any]], set[SkuWarehouse]]:
        """Build ``quantity`` of ``sku`` in ``warehouse`` by hand, all or nothing. The built
        units make lot ``lot`` (default: the assembly order's id), expiring at the earliest
        of their components' expiry and ``expires_on``.

        Returns the assembly orders made (nested sub-assemblies first) and the changed
        (SKU, warehouse) pairs. Raises :class:`InputError` naming the shortage.
        """
        if quantity <= 0:
            raise InputError(f"quantity must be a positive integer, got {quantity}")
        warehouse_id = self._warehouse_id(warehouse)
        if not self.live.knows(sku):
            raise InputError(f"unknown SKU {sku!r}")
        if not self.live.catalog.catalog.kind_of(sku).is_composite:
            raise InputError(f"{sku!r} is a simple SKU: it has no components to build it from")
        if not self.settings.warehouse(warehouse).uses_components:
            raise InputError(
                f"warehouse {warehouse!r} does not use component inventory: it cannot assemble"
            )

        self.refresh()

        def run() -> tuple[list[dict[str, Any]], set[SkuWarehouse]]:
            with writing(self.engine) as connection:
                pairs = {StockKey(s, warehouse_id) for s in self.live.catalog.subtree_ids(sku)}
                batch = _Batch(self, connection, pairs)
                self.live.feed(batch.levels)
                outcome = batch.planner(warehouse_id).plan_build(
                    self.live.catalog.catalog.position(sku), quantity
                )
                if isinstance(outcome, Shortage):
                    raise InputError(f"cannot build {quantity} × {sku}: {outcome.reason}")
                batch.apply_plan(outcome, warehouse_id, "", "manual")
                # The last step builds the SKU asked for (sub-assemblies come first).
                batch.builds[-1].lot, batch.builds[-1].expires_on = lot, expires_on
                result = OrderImportResult()
                self._write(batch, [], result)
                made = [self._describe_build(b, batch.now) for b in batch.builds]
                return made, result.changed_pairs

        return ledger.retrying(run)

    def _describe_build(self, build: StoredBuild, at: datetime) -> dict[str, Any]:
        components, labour, packaging = build.cost or (Decimal(0), Decimal(0), Decimal(0))
        whole = components + labour + packaging
        code = self.live.code
        return {
            "id": f"AO-{build.id}",
            "sku": build.step.sku,
            "quantity": build.step.quantity,
            "warehouse": self.live.warehouse_codes[build.warehouse_id],
            "at": at.isoformat(),
            "origin": build.origin,
            "reference": build.reference,
            "components": [{"sku": s, "quantity": q} for s, q in build.step.consumed],
            "lot": build.lot,
            "expires_on": None if build.expires_on is None else build.expires_on.isoformat(),
            "cost": {
                "components": cents_text(components),
                "labour": cents_text(labour),
                "packaging": cents_text(packaging),
                "unit_cost": unit_text(whole / build.step.quantity),
                "total": cents_text(whole),
            },
            "consumed": [
                {
                    "sku": code(sku_id),
                    "lot": lot,
                    "quantity": units,
                    "unit_cost": unit_text(value / units),
                }
                for sku_id, lot, units, value in build.consumed
            ],
        }

    # -- writing ----------------------------------------------------------------------------------

    def _write(self, batch: _Batch, orders: list[StoredOrder], result: OrderImportResult) -> None:
        """Write a batch: the orders (:func:`write_orders`), then the movements and the stock
        rows (:mod:`sellable.store.ledger`), then record what changed."""
        connection, now = batch.connection, batch.now
        live = self.live
        _keep_unchanged_holds(orders)
        write_orders(connection, orders, batch.builds, now, live.sku_id)
        # Costing needs the ids of the lines and assembly orders just written.
        cost_movements(
            connection,
            self.settings.costing,
            now,
            [
                CostedMove(m, m.line, m.build)
                for m in batch.movements
                if m.on_hand_change and m.type in ("Sale", "AssemblyBuild")
            ],
        )
        for m in batch.movements:
            if m.expired_change:
                # A Sale of units whose lot expired after they were allocated.
                key = StockKey(m.sku_id, m.warehouse_id)
                batch.deltas[key][3] += m.expired_change
                level = batch.levels[key]
                batch.levels[key] = level._replace(expired=level.expired + m.expired_change)
        at = db_time(connection, now)
        ledger.write_movements(
            connection,
            [
                (
                    m.sku_id,
                    m.warehouse_id,
                    m.type,
                    m.quantity,
                    m.on_hand_change,
                    0,
                    m.allocated_change,
                    m.held_change,
                    m.expired_change,
                    m.reference if m.build is None else build_reference(m.build),
                    at,
                    m.lot,
                    None if m.value is None else micros(m.value),
                )
                for m in _net_holds(batch.movements)
            ],
        )
        result.movements += len(_net_holds(batch.movements))
        # Deltas, not absolute values: correct whatever else holds the row (we hold the lock).
        ledger.add_to_stock(
            connection,
            [
                (d[0], d[1], d[2], d[3], s, w)
                for (s, w), d in sorted(batch.deltas.items())
                if d[0] or d[1] or d[2] or d[3]
            ],
        )
        result.changed_pairs |= live.record_levels(
            connection, {key: batch.levels[key] for key in batch.deltas}
        )


def _net_holds(movements: list[_Movement]) -> list[_Movement]:
    """The batch's movements with each order's claims on one stock row netted: a held line
    released and held again with the same claims (retried at every count and re-import)
    writes nothing; one whose claims changed writes one Hold or HoldRelease for the
    difference. Every stock row stays the sum of its movements."""
    if not any(m.type in _HOLD_TYPES for m in movements):
        return movements
    out: list[_Movement] = []
    net: dict[tuple[int, int, str | None], int] = {}
    for m in movements:
        if m.type in _HOLD_TYPES:
            key = (m.sku_id, m.warehouse_id, m.reference)
            net[key] = net.get(key, 0) + m.held_change
        else:
            out.append(m)
    for (sku_id, warehouse_id, reference), change in net.items():
        if change:
            kind = "Hold" if change > 0 else "HoldRelease"
            out.append(
                _Movement(sku_id, warehouse_id, kind, -change, 0, 0, reference, held_change=change)
            )
    return out


_HOLD_TYPES = frozenset({"Hold", "HoldRelease"})


def _keep_unchanged_holds(orders: list[StoredOrder]) -> None:
    """A line held again with exactly the claims it had keeps its stored claim rows."""
    for order in orders:
        for line in order.lines.values():
            if not line.holds:
                continue
            old = [h for h in line.holds if h.id is not None]
            new = [h for h in line.holds if h.id is None and not h.deleted]
            if not old or any(not h.deleted for h in old):
                continue

            def shape(holds: list[StoredAllocation]) -> list[tuple[int, int, int]]:
                return sorted((h.sku_id, h.warehouse_id, h.quantity) for h in holds)

            if shape(old) == shape(new):
                for hold in old:
                    hold.deleted = False
                line.holds = old
