"""Property test: random sequences of order imports, shipments, cancellations, re-deliveries,
edits, builds and stock counts keep the ledger and the allocations consistent.

The catalog has simple SKUs (one allowing backorder), a kit, assemblies that follow the
warehouse's assembly-on-demand setting or override it (on, off), nested composites and a
package with an option slot; warehouses ``main`` (own, assembly on demand) and ``fba-us``
(FBA: no component inventory). Every step is checked against the store (see
:func:`tests.orders.workers.store_problems`) and against the stock before it:

* no SKU without backorder loses availability below zero, except where the channel says
  an order already shipped (the shipped line's SKU may go short; nothing more gets
  allocated) or a count lowered on hand (the counted row; nothing more gets allocated);
* orders keep the status the channel last sent (shipped is final), their lines match;
* a failed build changes nothing; a build adds exactly its quantity and allocates nothing.

After every step the order book's incremental core equals a fresh load of the store.
One database per backend; its orders, movements and stock are cleared between examples.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from sellable.errors import InputError
from sellable.imports import import_stock
from sellable.orders import OrderBook, OrderIn, OrderLineIn, OrderStatus
from sellable.store.loader import load_engine
from tests.orders.workers import (
    Levels,
    backorder_skus,
    clear_orders_and_stock,
    movement_totals,
    open_store,
    order_lines,
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
"""
SIMPLE = ["A", "B", "C", "BO"]
COMPOSITES = ["KIT", "ASM", "ASM-ON", "ASM-OFF", "NEST", "NEST-ASM", "PKG", "BO-KIT"]
SKUS = SIMPLE + COMPOSITES
WAREHOUSES = ["main", "fba-us"]
CHANNEL = "shop"

PROPERTY_SETTINGS = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

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

    def __init__(self, engine: Any, app_settings: Any, folder: Path) -> None:
        self.engine = engine
        self.settings = app_settings
        self.folder = folder
        self.book = OrderBook(engine, app_settings)
        self.orders: list[SentOrder] = []
        self.counts = 0
        with engine.connect() as connection:
            self.backorder = backorder_skus(connection)

    # -- steps

    def count(self, rows: list[tuple[str, str, int, int]]) -> None:
        """A stock count as ``sellable import stock`` runs it: the count, the core told of
        it in the same transaction, then held lines tried again."""
        self.counts += 1
        path = write_csv(
            self.folder / f"count-{self.counts}.csv",
            "sku,warehouse,on_hand,locked",
            [(sku, wh, on_hand, min(locked, on_hand)) for sku, wh, on_hand, locked in rows],
        )
        import_stock(
            self.engine,
            self.settings,
            path,
            on_written=lambda connection, levels: self.book.record_levels(connection, levels),
        )
        self.book.retry_held()

    def send(self, order: SentOrder, status: OrderStatus) -> tuple[set[tuple[str, str]], Any]:
        """Send ``order`` with ``status``; returns the pairs a shipment may force short."""
        forced: set[tuple[str, str]] = set()
        if status is OrderStatus.SHIPPED and not order.shipped:
            forced = {(line.sku, order.warehouse) for line in order.lines}
        order.status = status
        order.shipped = order.shipped or status is OrderStatus.SHIPPED
        return forced, self.book.apply([order.message()])

    def step(self, step: tuple[Any, ...]) -> None:
        with self.engine.connect() as connection:
            before = stock_levels(connection)
            moved_before = movement_totals(connection)
            lines_before = order_lines(connection)
        forced: set[tuple[str, str]] = set()
        counted: set[tuple[str, str]] = set()
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
            forced, result = self.send(order, status)
            assert (result.orders_created, result.orders_updated) == (1, 0)
        elif kind == "count":
            counted = {(sku, wh) for sku, wh, _, _ in step[1]}
            self.count(step[1])
        elif kind == "build":
            self.build(*step[1:], before=before, moved_before=moved_before)
        elif self.orders:
            order = self.orders[step[1] % len(self.orders)]
            was_held = any(
                v[2] == "held" for k, v in lines_before[(CHANNEL, order.order_id)].items() if k
            )
            if kind == "ship":
                forced, result = self.send(order, OrderStatus.SHIPPED)
            elif kind == "cancel":
                forced, result = self.send(order, OrderStatus.CANCELLED)
            elif kind == "reopen":
                forced, result = self.send(order, OrderStatus.OPEN)
            elif kind == "edit":
                if not order.shipped:  # a shipped order is final: its lines stay
                    first = order.lines[0]
                    order.lines = (OrderLineIn(first.line_id, first.sku, step[2]), *order.lines[1:])
                forced, result = self.send(order, OrderStatus.OPEN)
            else:  # redeliver: the very same message again
                forced, result = self.send(order, order.status)
                if not was_held:
                    assert (result.orders_unchanged, result.movements) == (1, 0)
            assert result.orders_created == 0
        self.check(before, forced=forced, counted=counted)
        self.check_core()

    def build(self, sku: str, quantity: int, wh: str, *, before: Levels, moved_before: Any) -> None:
        try:
            made, _changed = self.book.build(sku, quantity, wh)
        except InputError:
            event("build refused")
            with self.engine.connect() as connection:
                assert stock_levels(connection) == before
                assert movement_totals(connection) == moved_before
            return
        assert wh == "main", "only a warehouse with component inventory can assemble"
        event("build made")
        assert (made[-1]["sku"], made[-1]["quantity"], made[-1]["origin"]) == (
            sku,
            quantity,
            "manual",
        )
        with self.engine.connect() as connection:
            after = stock_levels(connection)
        old = before.get((sku, wh), (0, 0, 0))
        assert after[(sku, wh)][0] == old[0] + quantity
        assert {p: v[2] for p, v in after.items() if v[2]} == {
            p: v[2] for p, v in before.items() if v[2]
        }

    # -- checks

    def check(
        self, before: Levels, *, forced: set[tuple[str, str]], counted: set[tuple[str, str]]
    ) -> None:
        assert store_problems(self.engine) == []
        with self.engine.connect() as connection:
            after = stock_levels(connection)
            stored = order_lines(connection)
        for pair, (on_hand, locked, allocated) in sorted(after.items()):
            if pair[0] in self.backorder:
                continue
            available = on_hand - locked - allocated
            old_on_hand, old_locked, old_allocated = before.get(pair, (0, 0, 0))
            floor = min(0, old_on_hand - old_locked - old_allocated)
            if available >= floor:
                continue
            # Availability fell below zero: only a count or a shipment the channel reports
            # may do that, and neither may allocate more of what is short.
            assert pair in forced | counted, f"oversold {pair}: {before.get(pair)} -> {after[pair]}"
            event("short after a count" if pair in counted else "short after a forced shipment")
            assert allocated <= old_allocated, f"allocated more of short {pair}"
        assert set(stored) == {(CHANNEL, o.order_id) for o in self.orders}
        for order in self.orders:
            lines = stored[(CHANNEL, order.order_id)]
            status = OrderStatus.SHIPPED if order.shipped else order.status
            assert lines.pop("")[0] == status
            wanted = {line.line_id: (line.sku, line.quantity) for line in order.lines}
            assert {k: v[:2] for k, v in lines.items()} == wanted
            allowed = {
                OrderStatus.OPEN: {"allocated", "held"},
                OrderStatus.SHIPPED: {"shipped"},
                OrderStatus.CANCELLED: {"cancelled"},
            }[status]
            assert {v[2] for v in lines.values()} <= allowed, (order, lines)
            for _sku, _qty, line_status in lines.values():
                event(f"line {line_status}")
        with self.engine.connect() as connection:
            for kind, (number, _total) in movement_totals(connection).items():
                event(f"movement {kind}", number)

    def check_core(self) -> None:
        with self.engine.connect() as connection:
            fresh = load_engine(connection, self.settings)
        for wh in WAREHOUSES:
            for sku in SKUS:
                assert self.book.core.levels(sku, wh) == fresh.levels(sku, wh), (sku, wh)
            assert self.book.core.sellable_by_warehouse(wh) == fresh.sellable_by_warehouse(wh)


def test_ledger_random_orders_builds_and_counts_keep_invariants(
    config_file: Path, tmp_path: Path
) -> None:
    app_settings, engine = open_store(config_file, PRODUCTS, COMPONENTS, tmp_path)

    @PROPERTY_SETTINGS
    @given(initial=initial_stock, sequence=steps)
    def example(initial: tuple[list[int], list[int]], sequence: list[tuple[Any, ...]]) -> None:
        clear_orders_and_stock(engine)
        run = Run(engine, app_settings, tmp_path)
        simple, prepacked = initial
        rows = [(sku, "main", n, 0) for sku, n in zip(SIMPLE, simple, strict=True)]
        rows += [
            (sku, "fba-us", n, 0) for sku, n in zip(["KIT", "ASM", "PKG"], prepacked, strict=True)
        ]
        run.step(("count", rows))
        for step in sequence:
            run.step(step)

    try:
        example()
    finally:
        engine.dispose()
