"""Property test: random sequences of order imports, shipments, cancellations, re-deliveries,
edits, builds and stock counts keep the ledger and the allocations consistent.

The catalog has simple SKUs (one allowing backorder), kits (one allowing backorder),
assemblies that follow the warehouse's assembly-on-demand setting or override it (on,
off), nested composites and a package with an option slot; warehouses ``main`` (own,
assembly on demand) and ``fba-us`` (FBA: no component inventory). Every step is checked
against the store (see :func:`tests.orders.workers.store_problems`) and against the stock
before it:

* no SKU without backorder loses availability below zero, except: where the channel says
  an order already shipped (what its lines take, see :meth:`Run.may_go_short`; nothing
  more gets allocated there), where a count lowered on hand (the counted row; nothing
  more gets allocated there), and what a backorder line takes;
* orders keep the status the channel last sent (shipped is final), their lines match;
* a failed build changes nothing; a build adds exactly its quantity and allocates nothing.

After every step the order book's incremental core equals a fresh load of the store.
One database per backend; its orders, movements and stock are cleared between examples.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine

from sellable.config import Settings
from sellable.core import SkuKind
from sellable.errors import InputError
from sellable.imports import import_stock
from sellable.orders import OrderBook, OrderIn, OrderLineIn, OrderStatus
from sellable.store.loader import load_engine
from tests.conftest import property_settings
from tests.orders.workers import (
    Levels,
    backorder_skus,
    clear_orders_and_stock,
    movement_totals,
    open_store,
    order_lines,
    outbox_since,
    stock_levels,
    store_problems,
    write_csv,
)

PRODUCTS = """sku,name,kind,allow_backorder,assembly_on_demand
A,Part A,simple,false,
B,Part B,simple,false,
C,Part C,simple,false,
BO,Part that may be backordered,simple,true,
KIT,Kit of A and 2 B,kit,false,
ASM,Assembly of A and C (warehouse decides on-demand),assembly,false,
ASM-ON,Assembly of ASM and B (on demand by SKU),assembly,false,true
ASM-OFF,Assembly of B and 2 C (never on demand),assembly,false,false
NEST,Kit of KIT and ASM,kit,false,
NEST-ASM,Assembly of ASM-OFF and A,assembly,false,
PKG,Package: A or B and C,package,false,
BO-KIT,Kit of BO and A,kit,false,
KIT-BO,Kit of A and C that may be backordered,kit,true,
"""
COMPONENTS = """parent_sku,component_sku,quantity,slot
KIT,A,1,
KIT,B,2,
ASM,A,1,
ASM,C,1,
ASM-ON,ASM,1,
ASM-ON,B,1,
ASM-OFF,B,1,
ASM-OFF,C,2,
NEST,KIT,1,
NEST,ASM,1,
NEST-ASM,ASM-OFF,1,
NEST-ASM,A,1,
PKG,A,1,base
PKG,B,1,base
PKG,C,1,
BO-KIT,BO,1,
BO-KIT,A,1,
KIT-BO,A,1,
KIT-BO,C,1,
"""
SIMPLE = ["A", "B", "C", "BO"]
COMPOSITES = ["KIT", "ASM", "ASM-ON", "ASM-OFF", "NEST", "NEST-ASM", "PKG", "BO-KIT", "KIT-BO"]
SKUS = SIMPLE + COMPOSITES
WAREHOUSES = ["main", "fba-us"]
CHANNEL = "shop"

# Pairs a step may take below zero; True: it may also allocate more of them (backorder).
Allowed = dict[tuple[str, str], bool]

# -- steps ----------------------------------------------------------------------------------------

warehouse = st.sampled_from(["main", "main", "fba-us"])
new_order = st.tuples(
    st.just("import"),
    warehouse,
    st.sampled_from([OrderStatus.OPEN] * 4 + [OrderStatus.SHIPPED]),
    st.lists(
        st.tuples(st.sampled_from(SKUS), st.integers(1, 4)),
        min_size=1,
        max_size=3,
        unique_by=lambda line: line[0],
    ),
)
resend = st.tuples(st.sampled_from(["ship", "cancel", "redeliver", "reopen"]), st.integers(0, 99))
edit = st.tuples(st.just("edit"), st.integers(0, 99), st.integers(1, 5))
build = st.tuples(
    st.just("build"),
    st.sampled_from(COMPOSITES),
    st.integers(1, 3),
    st.sampled_from(["main", "main", "main", "fba-us"]),
)
count = st.tuples(
    st.just("count"),
    st.lists(
        st.tuples(st.sampled_from(SKUS), warehouse, st.integers(0, 12), st.integers(0, 2)),
        min_size=1,
        max_size=5,
        unique_by=lambda row: (row[0], row[1]),
    ),
    st.booleans(),  # by another process (the outbox tells the book) or through the book
)
steps = st.lists(
    st.one_of(new_order, new_order, new_order, resend, resend, edit, build, count),
    min_size=10,
    max_size=30,
)
initial_stock = st.tuples(
    st.lists(st.integers(0, 15), min_size=len(SIMPLE), max_size=len(SIMPLE)),
    st.lists(st.integers(0, 3), min_size=3, max_size=3),
)


@dataclass
class SentOrder:
    """What the channel last said about one order, and whether it ever said shipped."""

    order_id: str
    warehouse: str
    lines: tuple[OrderLineIn, ...]
    status: OrderStatus
    shipped: bool = False

    def message(self) -> OrderIn:
        return OrderIn(CHANNEL, self.order_id, self.warehouse, self.status, self.lines)


class Run:
    """One example: applies steps through one order book and checks after each."""

    def __init__(self, engine: Engine, app_settings: Settings, folder: Path) -> None:
        self.engine = engine
        self.settings = app_settings
        self.folder = folder
        self.book = OrderBook(engine, app_settings)
        self.catalog = self.book.live.catalog.catalog
        self.orders: list[SentOrder] = []
        self.counts = 0
        with engine.connect() as connection:
            self.backorder = backorder_skus(connection)
            self.outbox_seen = max(outbox_since(connection, 0), default=0)
            empty = load_engine(connection, app_settings)
        self.sellable = {(sku, wh): empty.sellable(sku, wh) for wh in WAREHOUSES for sku in SKUS}

    def may_go_short(self, sku: str, warehouse: str) -> set[str]:
        """What a line of ``sku`` taken regardless of stock (backorder, or the channel says
        it shipped) may take below zero: a virtual composite, where components are used,
        takes its components (a slot's first option), recursively; anything else itself."""
        kind = self.catalog.kind_of(sku)
        if kind in (SkuKind.SIMPLE, SkuKind.ASSEMBLY) or warehouse == "fba-us":
            return {sku}
        found: set[str] = set()
        for slot in self.catalog.bom(sku):
            found |= self.may_go_short(slot.options[0].sku, warehouse)
        return found

    # -- steps

    def count(self, rows: list[tuple[str, str, int, int]], elsewhere: bool) -> Allowed:
        """A stock count. Through the book, as ``sellable import stock`` runs it: the core
        is told in the count's transaction. ``elsewhere``: by a process without the book,
        which names the rows in the outbox and the book catches up from there. Then held
        lines are tried again. A count may lower on hand below what is allocated; nothing
        more of such a row may be allocated."""
        self.counts += 1
        path = write_csv(
            self.folder / f"count-{self.counts}.csv",
            "sku,warehouse,on_hand,locked",
            [(sku, wh, on_hand, min(locked, on_hand)) for sku, wh, on_hand, locked in rows],
        )
        if elsewhere:
            import_stock(self.engine, self.settings, path)
        else:
            import_stock(
                self.engine,
                self.settings,
                path,
                on_written=lambda connection, levels: self.book.live.record_levels(
                    connection, levels
                ),
            )
        self.book.retry_held()
        return {(sku, wh): False for sku, wh, _, _ in rows}

    def send(self, order: SentOrder, status: OrderStatus) -> tuple[Allowed, Any]:
        """Send ``order`` with ``status``. A line the channel says shipped is taken even if
        short (no more gets allocated); a backorder line is allocated even if short."""
        allowed: Allowed = {}
        if not order.shipped:
            for line in order.lines:
                if status is OrderStatus.SHIPPED:
                    for sku in self.may_go_short(line.sku, order.warehouse):
                        allowed.setdefault((sku, order.warehouse), False)
                if line.sku in self.backorder and status is not OrderStatus.CANCELLED:
                    for sku in self.may_go_short(line.sku, order.warehouse):
                        allowed[(sku, order.warehouse)] = True
        order.status = status
        order.shipped = order.shipped or status is OrderStatus.SHIPPED
        return allowed, self.book.apply([order.message()])

    def step(self, step: tuple[Any, ...]) -> None:
        with self.engine.connect() as connection:
            before = stock_levels(connection)
            moved_before = movement_totals(connection)
            lines_before = order_lines(connection)
        allowed: Allowed = {}
        derived_elsewhere = False
        kind = step[0]
        if kind == "import":
            _, wh, status, lines = step
            order = SentOrder(
                f"o{len(self.orders)}",
                wh,
                tuple(OrderLineIn(f"L{i}", sku, qty) for i, (sku, qty) in enumerate(lines)),
                OrderStatus.OPEN,
            )
            self.orders.append(order)
            allowed, result = self.send(order, status)
            assert (result.orders_created, result.orders_updated) == (1, 0)
        elif kind == "count":
            allowed = self.count(*step[1:])
            derived_elsewhere = step[2]
        elif kind == "build":
            self.build(*step[1:], before=before, moved_before=moved_before)
        elif self.orders:
            order = self.orders[step[1] % len(self.orders)]
            was_held = any(
                v[2] == "held" for k, v in lines_before[(CHANNEL, order.order_id)].items() if k
            )
            if kind == "ship":
                allowed, result = self.send(order, OrderStatus.SHIPPED)
            elif kind == "cancel":
                allowed, result = self.send(order, OrderStatus.CANCELLED)
            elif kind == "reopen":
                allowed, result = self.send(order, OrderStatus.OPEN)
            elif kind == "edit":
                if not order.shipped:  # a shipped order is final: its lines stay
                    first = order.lines[0]
                    order.lines = (OrderLineIn(first.line_id, first.sku, step[2]), *order.lines[1:])
                allowed, result = self.send(order, OrderStatus.OPEN)
            else:  # redeliver: the very same message again
                allowed, result = self.send(order, order.status)
                if not was_held:
                    assert (result.orders_unchanged, result.movements) == (1, 0)
            assert result.orders_created == 0
        self.check(before, allowed)
        self.check_core(derived_elsewhere)

    def build(self, sku: str, quantity: int, wh: str, *, before: Levels, moved_before: Any) -> None:
        """A manual build: all or nothing, adds exactly ``quantity``, allocates nothing."""
        try:
            made, _changed = self.book.build(sku, quantity, wh)
        except InputError:
            with self.engine.connect() as connection:
                assert stock_levels(connection) == before
                assert movement_totals(connection) == moved_before
            return
        assert wh == "main", "only a warehouse with component inventory can assemble"
        top = made[-1]
        assert (top["sku"], top["quantity"], top["origin"]) == (sku, quantity, "manual")
        with self.engine.connect() as connection:
            after = stock_levels(connection)
        assert after[(sku, wh)][0] == before.get((sku, wh), (0, 0, 0, 0))[0] + quantity
        assert {p: v[2] for p, v in after.items() if v[2]} == {
            p: v[2] for p, v in before.items() if v[2]
        }
        # Nor does it claim anything, or give back what held lines claim.
        assert {p: v[3] for p, v in after.items() if v[3]} == {
            p: v[3] for p, v in before.items() if v[3]
        }

    # -- checks

    def check(self, before: Levels, allowed: Allowed) -> None:
        assert store_problems(self.engine) == []
        with self.engine.connect() as connection:
            after = stock_levels(connection)
            stored = order_lines(connection)
        for pair, (on_hand, locked, allocated, _held) in sorted(after.items()):
            if pair[0] in self.backorder:
                continue
            # Held claims may exceed stock on purpose (a held line claims all it wants):
            # overselling is about what is allocated.
            old_on_hand, old_locked, old_allocated, _old_held = before.get(pair, (0, 0, 0, 0))
            if on_hand - locked - allocated >= min(0, old_on_hand - old_locked - old_allocated):
                continue
            # Availability fell below zero: only a count, a shipment the channel reports or
            # a backorder may do that; only a backorder may allocate more of what is short.
            assert pair in allowed, f"oversold {pair}: {before.get(pair)} -> {after[pair]}"
            assert allowed[pair] or allocated <= old_allocated, f"allocated short {pair}"
        assert set(stored) == {(CHANNEL, o.order_id) for o in self.orders}
        for order in self.orders:
            lines = stored[(CHANNEL, order.order_id)]
            status = OrderStatus.SHIPPED if order.shipped else order.status
            assert lines.pop("")[0] == status
            wanted = {line.line_id: (line.sku, line.quantity) for line in order.lines}
            assert {k: v[:2] for k, v in lines.items()} == wanted
            line_statuses = {
                OrderStatus.OPEN: {"allocated", "held"},
                OrderStatus.SHIPPED: {"shipped"},
                OrderStatus.CANCELLED: {"cancelled"},
            }[status]
            assert {v[2] for v in lines.values()} <= line_statuses, (order, lines)

    def check_core(self, derived_elsewhere: bool) -> None:
        """The book's incremental core equals the core loaded afresh from the store, and
        every sellable value that changed is in the outbox. After a count by another
        process the outbox names the counted rows; their composites are for the reader of
        the outbox to work out."""
        with self.engine.connect() as connection:
            fresh = load_engine(connection, self.settings)
            recorded = outbox_since(connection, self.outbox_seen)
        sellable = {(sku, wh): fresh.sellable(sku, wh) for wh in WAREHOUSES for sku in SKUS}
        for wh in WAREHOUSES:
            for sku in SKUS:
                assert self.book.live.core.levels(sku, wh) == fresh.levels(sku, wh), (sku, wh)
            assert self.book.live.core.sellable_by_warehouse(wh) == fresh.sellable_by_warehouse(wh)
        changed = {pair for pair, value in sellable.items() if value != self.sellable[pair]}
        named = set(recorded.values())
        if derived_elsewhere:
            named |= {(c, wh) for sku, wh in named for c in self.catalog.dependents(sku)}
        assert changed <= named, f"changed sellable missing from the outbox: {changed - named}"
        self.sellable = sellable
        self.outbox_seen = max(recorded, default=self.outbox_seen)


def test_ledger_random_orders_builds_and_counts_keep_invariants(
    config_file: Path, tmp_path: Path
) -> None:
    app_settings, engine = open_store(config_file, PRODUCTS, COMPONENTS, tmp_path)

    # 30 derandomized examples in CI (10 on PostgreSQL, see property_settings); the deep
    # profile (SELLABLE_HYPOTHESIS_PROFILE=deep) runs 300 on both with a fresh seed.
    @property_settings(
        examples=30,
        deep_examples=300,
        postgresql_examples=10,
        backend=engine.dialect.name,
    )
    @given(initial=initial_stock, sequence=steps)
    def example(initial: tuple[list[int], list[int]], sequence: list[tuple[Any, ...]]) -> None:
        clear_orders_and_stock(engine)
        run = Run(engine, app_settings, tmp_path)
        simple, prepacked = initial
        rows = [(sku, "main", n, 0) for sku, n in zip(SIMPLE, simple, strict=True)]
        rows += [
            (sku, "fba-us", n, 0) for sku, n in zip(["KIT", "ASM", "PKG"], prepacked, strict=True)
        ]
        run.step(("count", rows, False))
        for step in sequence:
            run.step(step)

    try:
        example()
    finally:
        engine.dispose()
