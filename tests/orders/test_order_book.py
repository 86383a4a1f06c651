"""The order book: import, re-import, ship, cancel, holds, backorders, FBA, nested composites.

Every test runs on SQLite and PostgreSQL (``config_file``) and ends by checking the ledger
invariant: each stock row equals the sum of its movements.

The helpers at the top (:class:`Store`, :func:`order`) are shared with the seed and CLI tests.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine, func, select

from sellable.cli import app as cli_app
from sellable.cli import cli
from sellable.config import Settings, load_settings
from sellable.errors import InputError
from sellable.imports import import_components, import_products, import_stock
from sellable.orders import OrderBook, OrderIn, OrderLineIn, OrderStatus, list_orders
from sellable.orders import ledger as read_ledger
from sellable.store import schema
from sellable.store.db import create_db_engine, sync_warehouses, upgrade_schema
from sellable.store.loader import load_engine
from tests.conftest import assert_ledger_balanced

TABLES = tuple(schema.metadata.sorted_tables)

# -- helpers -------------------------------------------------------------------------------------


class Store:
    """An initialised test database with warehouses from a config file, and a work folder."""

    def __init__(self, config: Path, folder: Path) -> None:
        self.config = config
        self.dir = folder
        self.settings: Settings = load_settings(config)
        self.engine = create_db_engine(self.settings)
        upgrade_schema(self.engine)
        sync_warehouses(self.engine, self.settings.warehouses)
        self._files = 0

    def file(self, text: str, name: str | None = None) -> Path:
        self._files += 1
        path = self.dir / (name or f"file{self._files}.csv")
        path.write_text(text, encoding="utf-8")
        return path

    def load(
        self,
        kinds: dict[str, str],
        boms: Sequence[tuple[Any, ...]] = (),
        stock: dict[str, int] | None = None,
        *,
        backorder: tuple[str, ...] = (),
        on_demand: dict[str, bool] | None = None,
    ) -> None:
        """Import products (``sku -> kind``), BOM rows (parent, component, qty[, slot]) and
        a stock count (``"SKU"`` or ``"SKU@warehouse"`` -> on hand)."""
        on_demand = on_demand or {}
        rows = "".join(
            f"{sku},{sku} name,{kind},{str(sku in backorder).lower()},"
            f"{'' if sku not in on_demand else str(on_demand[sku]).lower()}\n"
            for sku, kind in kinds.items()
        )
        import_products(
            self.engine,
            self.file("sku,name,kind,allow_backorder,assembly_on_demand\n" + rows),
        )
        if boms:
            text = "parent_sku,component_sku,quantity,slot\n" + "".join(
                f"{b[0]},{b[1]},{b[2]},{b[3] if len(b) > 3 else ''}\n" for b in boms
            )
            import_components(self.engine, self.file(text))
        if stock:
            self.count(stock)

    def count(self, stock: dict[str, int]) -> None:
        """A stock count: ``"SKU"`` (main) or ``"SKU@warehouse"`` -> on hand."""
        text = "sku,warehouse,on_hand\n"
        for key, on_hand in stock.items():
            sku, _, warehouse = key.partition("@")
            text += f"{sku},{warehouse or 'main'},{on_hand}\n"
        import_stock(self.engine, self.settings, self.file(text))

    def book(self, **kwargs: Any) -> OrderBook:
        return OrderBook(self.engine, self.settings, **kwargs)

    def levels(self, sku: str, warehouse: str = "main") -> tuple[int, int, int]:
        """(on hand, allocated, available) of the stock row; (0, 0, 0) when there is none.
        Available is on hand less locked, allocated and held (what held lines claim)."""
        on_hand, locked, allocated, held = self.row(sku, warehouse)
        return (on_hand, allocated, on_hand - locked - allocated - held)

    def held(self, sku: str, warehouse: str = "main") -> int:
        """What held lines claim of ``sku`` in ``warehouse`` (the stock row's ``held``)."""
        return self.row(sku, warehouse)[3]

    def row(self, sku: str, warehouse: str = "main") -> tuple[int, int, int, int]:
        """(on hand, locked, allocated, held) of the stock row; zeros when there is none."""
        s, st, w = schema.skus.c, schema.stock.c, schema.warehouses.c
        with self.engine.connect() as connection:
            row = connection.execute(
                select(st.on_hand, st.locked, st.allocated, st.held)
                .join(schema.skus, s.id == st.sku_id)
                .join(schema.warehouses, w.id == st.warehouse_id)
                .where(s.sku == sku, w.code == warehouse)
            ).first()
        if row is None:
            return (0, 0, 0, 0)
        on_hand, locked, allocated, held = row
        return (on_hand, locked, allocated, held)

    def on_hand(self, *skus: str, warehouse: str = "main") -> tuple[int, ...]:
        return tuple(self.levels(sku, warehouse)[0] for sku in skus)

    def moves(self, sku: str, warehouse: str | None = "main") -> list[tuple[str, int]]:
        """The ledger of ``sku``: (type, quantity), oldest first."""
        return [(r["type"], r["quantity"]) for r in self.ledger(sku, warehouse)]

    def ledger(self, sku: str, warehouse: str | None = "main") -> list[dict[str, Any]]:
        with self.engine.connect() as connection:
            return read_ledger(connection, sku, warehouse)

    def orders(self, *, held_only: bool = False) -> list[dict[str, Any]]:
        with self.engine.connect() as connection:
            return list_orders(connection, held_only=held_only)

    def line_states(self) -> dict[tuple[str, str], tuple[str, str | None]]:
        """(order id, line id) -> (line status, hold reason)."""
        return {
            (o["order_id"], line["line_id"]): (line["status"], line["hold_reason"])
            for o in self.orders()
            for line in o["lines"]
        }

    def order_status(self, order_id: str) -> str:
        (status,) = [o["status"] for o in self.orders() if o["order_id"] == order_id]
        return str(status)

    def sellable(self, sku: str, warehouse: str = "main") -> int:
        with self.engine.connect() as connection:
            return load_engine(connection, self.settings).sellable(sku, warehouse)

    def counts(self) -> dict[str, int]:
        with self.engine.connect() as connection:
            return {
                table.name: connection.execute(select(func.count()).select_from(table)).scalar_one()
                for table in TABLES
            }

    def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        with self.engine.connect() as connection:
            return {
                table.name: sorted(
                    (tuple(row) for row in connection.execute(select(table))), key=repr
                )
                for table in TABLES
            }

    def assembly_orders(self) -> list[tuple[str, int, str, str | None, list[tuple[str, int]]]]:
        """(sku, quantity, origin, reference, [(component, quantity)]) by id."""
        ao, aoc, s = schema.assembly_orders.c, schema.assembly_order_components.c, schema.skus.c
        with self.engine.connect() as connection:
            codes = {sku_id: sku for sku_id, sku in connection.execute(select(s.id, s.sku))}
            found = []
            for aid, sku_id, qty, origin, reference in connection.execute(
                select(ao.id, ao.sku_id, ao.quantity, ao.origin, ao.reference).order_by(ao.id)
            ):
                used = [
                    (codes[c], q)
                    for c, q in connection.execute(
                        select(aoc.sku_id, aoc.quantity)
                        .where(aoc.assembly_order_id == aid)
                        .order_by(aoc.id)
                    )
                ]
                found.append((codes[sku_id], qty, origin, reference, used))
        return found

    def sellable_changes(self) -> list[tuple[str, str]]:
        sc, s, w = schema.sellable_changes.c, schema.skus.c, schema.warehouses.c
        with self.engine.connect() as connection:
            return [
                (sku, code)
                for sku, code in connection.execute(
                    select(s.sku, w.code)
                    .select_from(schema.sellable_changes)
                    .join(schema.skus, s.id == sc.sku_id)
                    .join(schema.warehouses, w.id == sc.warehouse_id)
                    .order_by(sc.id)
                )
            ]

    def assert_ledger(self) -> None:
        """Every stock row equals the sum of its movements (and no movement lacks a row)."""
        assert_ledger_balanced(self.engine)


def invoke(config: Path, *args: str) -> Result:
    """``sellable --config CONFIG ARGS...`` through click's runner.

    The commands never dispose of the engines they open (a process exit does that); here
    they are disposed after each command, else psycopg warns about open connections.
    """
    engines: list[Engine] = []
    real = create_db_engine

    def tracked(settings: Settings) -> Engine:
        engine = real(settings)
        engines.append(engine)
        return engine

    try:
        with mock.patch.object(cli_app, "create_db_engine", tracked):
            return CliRunner().invoke(cli, ["--config", str(config), *args], catch_exceptions=False)
    finally:
        for engine in engines:
            engine.dispose()


def order(
    order_id: str,
    *lines: tuple[str, int] | tuple[str, str, int],
    status: str = "open",
    warehouse: str = "main",
    channel: str = "shop",
) -> OrderIn:
    """An order; a line is (sku, qty) with line id = sku, or (line id, sku, qty)."""
    built = []
    for line in lines:
        if len(line) == 2:
            built.append(OrderLineIn(line[0], line[0], line[1]))
        else:
            built.append(OrderLineIn(line[0], line[1], line[2]))
    return OrderIn(channel, order_id, warehouse, OrderStatus(status), tuple(built))


@pytest.fixture
def store(config_file: Path, tmp_path: Path) -> Iterator[Store]:
    opened = Store(config_file, tmp_path)
    yield opened
    opened.assert_ledger()
    opened.engine.dispose()


FAQ_KIT = {"A": "simple", "B": "simple", "KIT": "kit"}
FAQ_KIT_BOM = [("KIT", "A", 1), ("KIT", "B", 1)]

# -- re-import: idempotent, updates in place -------------------------------------------------------


def test_reimport_of_the_same_order_changes_nothing(store: Store) -> None:
    store.load(FAQ_KIT, FAQ_KIT_BOM, {"A": 50, "B": 30})
    first = store.book().apply([order("1", ("KIT", 2), ("A", 3))])
    assert (first.orders_created, first.lines_allocated, first.movements) == (1, 2, 3)
    before = store.snapshot()
    again = store.book().apply([order("1", ("KIT", 2), ("A", 3))])
    assert (again.orders_created, again.orders_updated, again.orders_unchanged) == (0, 0, 1)
    assert (again.movements, again.lines_allocated, again.changed_pairs) == (0, 0, set())
    assert store.snapshot() == before
    assert store.levels("A") == (50, 5, 45)
    assert store.levels("B") == (30, 2, 28)
    assert store.counts()["orders"] == 1
    assert store.counts()["order_lines"] == 2


def test_reimport_with_a_changed_quantity_reallocates(store: Store) -> None:
    store.load({"A": "simple"}, [], {"A": 10})
    book = store.book()
    book.apply([order("1", ("A", 3))])
    assert store.levels("A") == (10, 3, 7)
    up = book.apply([order("1", ("A", 5))])
    assert (up.orders_updated, up.lines_allocated, up.movements) == (1, 1, 2)
    assert store.levels("A") == (10, 5, 5)
    down = book.apply([order("1", ("A", 2))])
    assert down.orders_updated == 1
    assert store.levels("A") == (10, 2, 8)
    assert store.moves("A") == [
        ("Adjustment", 10),
        ("Allocation", -3),
        ("Release", 3),
        ("Allocation", -5),
        ("Release", 5),
        ("Allocation", -2),
    ]
    assert store.counts()["orders"] == 1
    assert store.line_states() == {("1", "A"): ("allocated", None)}


def test_a_line_left_out_of_a_reimport_is_cancelled_and_released(store: Store) -> None:
    store.load({"A": "simple", "B": "simple"}, [], {"A": 10, "B": 10})
    book = store.book()
    book.apply([order("1", ("A", 3), ("B", 4))])
    result = book.apply([order("1", ("A", 3))])
    assert (result.lines_cancelled, result.movements) == (1, 1)
    assert store.levels("A") == (10, 3, 7)
    assert store.levels("B") == (10, 0, 10)
    assert store.moves("B")[-1] == ("Release", 4)
    assert store.line_states() == {
        ("1", "A"): ("allocated", None),
        ("1", "B"): ("cancelled", None),
    }


def test_a_line_sent_again_after_being_dropped_is_allocated_again(store: Store) -> None:
    store.load({"A": "simple", "B": "simple"}, [], {"A": 10, "B": 10})
    book = store.book()
    book.apply([order("1", ("A", 1), ("B", 2))])
    book.apply([order("1", ("A", 1))])
    assert store.levels("B") == (10, 0, 10)
    result = book.apply([order("1", ("A", 1), ("B", 2))])
    assert result.lines_allocated == 1
    assert store.line_states()[("1", "B")] == ("allocated", None)
    assert store.levels("B") == (10, 2, 8)
    again = book.apply([order("1", ("A", 1), ("B", 2))])
    assert (again.orders_unchanged, again.movements) == (1, 0)


def test_shipped_with_another_quantity_sells_what_the_channel_says(store: Store) -> None:
    store.load({"A": "simple"}, [], {"A": 10})
    book = store.book()
    book.apply([order("1", ("A", 3))])
    book.apply([order("1", ("A", 2), status="shipped")])
    assert store.levels("A") == (8, 0, 8)
    assert store.moves("A") == [
        ("Adjustment", 10),
        ("Allocation", -3),
        ("Release", 3),
        ("Allocation", -2),
        ("Sale", -2),
    ]


def test_one_order_id_on_two_channels_is_two_orders(store: Store) -> None:
    store.load({"A": "simple"}, [], {"A": 10})
    result = store.book().apply([order("1", ("A", 1)), order("1", ("A", 2), channel="other")])
    assert result.orders_created == 2
    assert store.levels("A") == (10, 3, 7)


# -- cancel and ship ------------------------------------------------------------------------------


def test_cancel_releases_everything_whatever_the_cancelled_lines_say(store: Store) -> None:
    store.load(FAQ_KIT, FAQ_KIT_BOM, {"A": 50, "B": 30})
    book = store.book()
    book.apply([order("1", ("KIT", 2), ("A", 3))])
    assert store.levels("A") == (50, 5, 45)
    assert store.levels("B") == (30, 2, 28)
    # The channel's cancellation lists one line, with another quantity.
    result = book.apply([order("1", ("A", 1), status="cancelled")])
    assert (result.orders_updated, result.lines_cancelled) == (1, 2)
    assert store.levels("A") == (50, 0, 50)
    assert store.levels("B") == (30, 0, 30)
    # One movement per line's allocation: the kit's A, then the A line; released likewise.
    assert store.moves("A") == [
        ("Adjustment", 50),
        ("Allocation", -2),
        ("Allocation", -3),
        ("Release", 2),
        ("Release", 3),
    ]
    assert store.moves("B") == [("Adjustment", 30), ("Allocation", -2), ("Release", 2)]
    assert store.moves("KIT") == []
    assert store.order_status("1") == "cancelled"
    assert store.line_states() == {
        ("1", "KIT"): ("cancelled", None),
        ("1", "A"): ("cancelled", None),
    }
    assert store.counts()["line_allocations"] == 0
    # Cancelling again is a no-op.
    again = book.apply([order("1", ("A", 1), status="cancelled")])
    assert (again.orders_unchanged, again.movements) == (1, 0)


def test_a_held_order_cancelled_releases_its_claim_and_allocates_nothing(store: Store) -> None:
    store.load({"A": "simple"}, [], {"A": 1})
    book = store.book()
    held = book.apply([order("1", ("A", 3))])
    # The held line claims its whole demand, even beyond stock: 3 of A.
    assert (held.lines_held, held.movements) == (1, 1)
    assert store.row("A") == (1, 0, 0, 3)
    result = book.apply([order("1", ("A", 3), status="cancelled")])
    assert (result.lines_cancelled, result.movements) == (1, 1)
    assert store.line_states() == {("1", "A"): ("cancelled", None)}
    assert store.moves("A") == [("Adjustment", 1), ("Hold", -3), ("HoldRelease", 3)]
    assert store.row("A") == (1, 0, 0, 0)
    assert store.sellable("A") == 1


def test_ship_turns_the_allocation_into_a_sale(store: Store) -> None:
    store.load({"A": "simple"}, [], {"A": 10})
    book = store.book()
    book.apply([order("1", ("A", 4))])
    result = book.apply([order("1", ("A", 4), status="shipped")])
    assert (result.lines_shipped, result.movements) == (1, 1)
    assert store.levels("A") == (6, 0, 6)
    assert store.moves("A") == [("Adjustment", 10), ("Allocation", -4), ("Sale", -4)]
    sale = store.ledger("A")[-1]
    assert (sale["on_hand_change"], sale["allocated_change"], sale["reference"]) == (
        -4,
        -4,
        "order shop:1",
    )
    # Shipped is final: a re-import, even a cancellation, changes nothing.
    before = store.snapshot()
    for status in ("shipped", "open", "cancelled"):
        again = book.apply([order("1", ("A", 9), status=status)])
        assert (again.orders_unchanged, again.movements) == (1, 0)
    assert store.snapshot() == before


def test_an_order_first_seen_shipped_allocates_and_sells_at_once(store: Store) -> None:
    store.load({"A": "simple"}, [], {"A": 10})
    result = store.book().apply([order("1", ("A", 4), status="shipped")])
    assert (result.orders_created, result.lines_allocated, result.lines_shipped) == (1, 1, 1)
    assert store.levels("A") == (6, 0, 6)
    assert store.moves("A") == [("Adjustment", 10), ("Allocation", -4), ("Sale", -4)]


def test_an_order_first_seen_shipped_is_sold_even_beyond_stock(store: Store) -> None:
    """What the code does: the goods have left, so the shortfall is taken as a backorder
    (on hand goes negative) instead of holding a line that can no longer be held."""
    store.load({"A": "simple"}, [], {"A": 2})
    result = store.book().apply([order("1", ("A", 5), status="shipped")])
    assert (result.lines_held, result.lines_shipped) == (0, 1)
    assert store.levels("A") == (-3, 0, -3)
    assert store.sellable("A") == 0


def test_shipped_after_cancel_reopens_the_order_and_sells_it(store: Store) -> None:
    """Documents the code's behaviour: a channel that says "shipped" after "cancelled" is
    believed; the cancelled lines are allocated again and sold."""
    store.load({"A": "simple", "B": "simple"}, [], {"A": 10, "B": 10})
    book = store.book()
    book.apply([order("1", ("A", 3), ("B", 2))])
    book.apply([order("1", ("A", 3), ("B", 2), status="cancelled")])
    assert store.levels("A") == (10, 0, 10)
    result = book.apply([order("1", ("A", 3), status="shipped")])
    assert (result.orders_updated, result.lines_allocated, result.lines_shipped) == (1, 1, 1)
    assert store.order_status("1") == "shipped"
    assert store.levels("A") == (7, 0, 7)
    # A line that the shipped order no longer lists stays cancelled.
    assert store.levels("B") == (10, 0, 10)
    assert store.line_states() == {
        ("1", "A"): ("shipped", None),
        ("1", "B"): ("cancelled", None),
    }
    assert store.moves("A") == [
        ("Adjustment", 10),
        ("Allocation", -3),
        ("Release", 3),
        ("Allocation", -3),
        ("Sale", -3),
    ]


def test_reopening_a_cancelled_order_allocates_again(store: Store) -> None:
    store.load({"A": "simple"}, [], {"A": 10})
    book = store.book()
    book.apply([order("1", ("A", 3))])
    book.apply([order("1", ("A", 3), status="cancelled")])
    result = book.apply([order("1", ("A", 3))])
    assert (result.orders_updated, result.lines_allocated) == (1, 1)
    assert store.levels("A") == (10, 3, 7)
    assert store.order_status("1") == "open"


# -- holds ----------------------------------------------------------------------------------------


def test_held_line_is_retried_on_reimport_after_stock_arrives(store: Store) -> None:
    store.load({"A": "simple", "B": "simple"}, [], {"A": 2, "B": 5})
    book = store.book()
    first = book.apply([order("1", ("A", 3), ("B", 1))])
    assert (first.lines_allocated, first.lines_held) == (1, 1)
    assert first.held == [("order shop:1", "A", "short 1 × A in main (have 2, need 3)")]
    # Nothing of a held line is allocated; it claims all it wants (3 of A, beyond stock).
    assert first.movements == 2  # B's allocation, A's hold
    assert store.row("A") == (2, 0, 0, 3)
    assert store.levels("A") == (2, 0, -1)
    assert store.sellable("A") == 0  # never below 0
    assert store.moves("A") == [("Adjustment", 2), ("Hold", -3)]
    assert store.line_states()[("1", "A")] == ("held", "short 1 × A in main (have 2, need 3)")
    # Still short: still held with the same claim, no movement.
    still = book.apply([order("1", ("A", 3), ("B", 1))])
    assert (still.lines_held, still.movements) == (1, 0)
    store.count({"A": 3})
    retried = book.apply([order("1", ("A", 3), ("B", 1))])
    # The claim is released and the line allocated: two movements.
    assert (retried.lines_allocated, retried.lines_held, retried.movements) == (1, 0, 2)
    assert store.row("A") == (3, 0, 3, 0)
    assert store.levels("A") == (3, 3, 0)
    assert store.moves("A") == [
        ("Adjustment", 2),
        ("Hold", -3),
        ("Adjustment", 1),
        ("Allocation", -3),
        ("HoldRelease", 3),
    ]
    assert store.levels("B") == (5, 1, 4)  # the allocated line was not allocated twice
    assert store.line_states() == {("1", "A"): ("allocated", None), ("1", "B"): ("allocated", None)}
    assert store.orders(held_only=True) == []


def test_two_orders_in_one_batch_do_not_share_the_last_units(store: Store) -> None:
    store.load({"A": "simple"}, [], {"A": 4})
    result = store.book().apply([order("1", ("A", 3)), order("2", ("A", 2))])
    assert (result.lines_allocated, result.lines_held) == (1, 1)
    assert result.held == [("order shop:2", "A", "short 1 × A in main (have 1, need 2)")]
    # Order 1 is allocated 3; held order 2 claims all it wants, 2: available 4 - 3 - 2.
    assert store.row("A") == (4, 0, 3, 2)
    assert store.levels("A") == (4, 3, -1)
    assert store.sellable("A") == 0


def test_assembly_short_of_components_is_held_naming_the_bottleneck(store: Store) -> None:
    store.load(
        {"BEANS": "simple", "MUG": "simple", "SCOOP": "simple", "SET": "assembly"},
        [("SET", "BEANS", 1), ("SET", "MUG", 1), ("SET", "SCOOP", 1)],
        {"BEANS": 10, "MUG": 1, "SCOOP": 10},
    )
    before = store.counts()
    result = store.book().apply([order("1", ("SET", 4))])
    assert result.held == [("order shop:1", "SET", "short 3 × MUG in main (have 1, need 4)")]
    # Nothing is built; the held line claims its exploded demand: 4 of each component
    # (all 4 of MUG, beyond its stock), one Hold movement each.
    assert (result.assembly_orders, result.movements) == (0, 3)
    after = store.counts()
    assert after["assembly_orders"] == before["assembly_orders"] == 0
    assert after["movements"] == before["movements"] + 3
    assert store.on_hand("SET", "BEANS", "MUG", "SCOOP") == (0, 10, 1, 10)
    assert store.levels("MUG") == (1, 0, -3)
    assert [store.held(sku) for sku in ("SET", "BEANS", "MUG", "SCOOP")] == [0, 4, 4, 4]
    assert store.moves("BEANS") == [("Adjustment", 10), ("Hold", -4)]
    assert store.sellable("SET") == 0


def test_kit_short_of_a_component_is_held_and_takes_nothing(store: Store) -> None:
    store.load(FAQ_KIT, FAQ_KIT_BOM, {"A": 5, "B": 2})
    result = store.book().apply([order("1", ("KIT", 3))])
    assert result.held == [("order shop:1", "KIT", "short 1 × B in main (have 2, need 3)")]
    # Nothing is allocated; the line claims 3 of A and all 3 of B it wants.
    assert store.row("A") == (5, 0, 0, 3)
    assert store.row("B") == (2, 0, 0, 3)
    assert store.levels("A") == (5, 0, 2)
    assert store.levels("B") == (2, 0, -1)
    assert result.movements == 2
    assert (store.sellable("A"), store.sellable("B"), store.sellable("KIT")) == (2, 0, 0)


def test_locked_units_are_never_allocated(store: Store) -> None:
    store.load({"A": "simple"})
    import_stock(
        store.engine, store.settings, store.file("sku,warehouse,on_hand,locked\nA,main,5,2\n")
    )
    result = store.book().apply([order("1", ("A", 4))])
    assert result.held == [("order shop:1", "A", "short 1 × A in main (have 3, need 4)")]
    assert store.row("A") == (5, 2, 0, 4)
    store.book().apply([order("1", ("A", 3))])
    assert store.row("A") == (5, 2, 3, 0)
    assert store.levels("A") == (5, 3, 0)


def test_an_order_first_seen_cancelled_is_stored_and_moves_nothing(store: Store) -> None:
    store.load({"A": "simple"}, [], {"A": 5})
    result = store.book().apply([order("1", ("A", 2), status="cancelled")])
    assert (result.orders_created, result.lines_cancelled, result.movements) == (1, 1, 0)
    assert store.order_status("1") == "cancelled"
    assert store.levels("A") == (5, 0, 5)


# -- backorder ------------------------------------------------------------------------------------


def test_backorder_sku_is_allocated_beyond_stock_and_sellable_is_zero(store: Store) -> None:
    store.load({"A": "simple"}, [], {"A": 2}, backorder=("A",))
    book = store.book()
    result = book.apply([order("1", ("A", 5))])
    assert (result.lines_allocated, result.lines_held) == (1, 0)
    assert store.levels("A") == (2, 5, -3)
    assert store.sellable("A") == 0
    book.apply([order("1", ("A", 5), status="shipped")])
    assert store.levels("A") == (-3, 0, -3)
    assert store.sellable("A") == 0


def test_kit_component_that_allows_backorder_goes_negative(store: Store) -> None:
    """FAQ: a kit cannot be sold when a component is at zero unless that component allows
    orders exceeding stock."""
    store.load(FAQ_KIT, FAQ_KIT_BOM, {"A": 5, "B": 0}, backorder=("B",))
    result = store.book().apply([order("1", ("KIT", 2))])
    assert result.lines_held == 0
    assert store.levels("A") == (5, 2, 3)
    assert store.levels("B") == (0, 2, -2)
    assert store.levels("KIT") == (0, 0, 0)
    assert (store.sellable("B"), store.sellable("KIT")) == (0, 0)


def test_backordered_kit_reserves_and_sells_its_components(store: Store) -> None:
    store.load(FAQ_KIT, FAQ_KIT_BOM, {"A": 5, "B": 0}, backorder=("KIT",))
    book = store.book()
    book.apply([order("1", ("KIT", 2))])
    assert store.levels("A") == (5, 2, 3)
    assert store.levels("B") == (0, 2, -2)
    book.apply([order("1", ("KIT", 2), status="shipped")])
    assert store.on_hand("KIT", "A", "B") == (0, 3, -2)
    assert store.moves("KIT") == []


def test_kit_reported_shipped_beyond_stock_sells_its_components(store: Store) -> None:
    store.load(FAQ_KIT, FAQ_KIT_BOM, {"A": 5, "B": 1})
    store.book().apply([order("1", ("KIT", 2), status="shipped")])
    assert store.on_hand("KIT", "A", "B") == (0, 3, -1)
    assert store.moves("KIT") == []


# -- FBA-style warehouses -------------------------------------------------------------------------


def test_fba_kit_without_prepackaged_units_is_held_and_never_split(store: Store) -> None:
    store.load(FAQ_KIT, FAQ_KIT_BOM, {"A@fba-us": 10, "B@fba-us": 10})
    result = store.book().apply([order("1", ("KIT", 1), warehouse="fba-us")])
    assert result.held == [("order shop:1", "KIT", "short 1 × KIT in fba-us (have 0, need 1)")]
    # It claims the kit's own unit (the components are never touched there).
    assert (result.movements, result.assembly_orders) == (1, 0)
    assert store.moves("KIT", "fba-us") == [("Hold", -1)]
    assert store.levels("KIT", "fba-us") == (0, 0, -1)
    assert store.levels("A", "fba-us") == (10, 0, 10)
    assert store.levels("B", "fba-us") == (10, 0, 10)


def test_fba_assembly_is_never_built_on_demand(store: Store) -> None:
    store.load(
        {"A": "simple", "ASM": "assembly"},
        [("ASM", "A", 1)],
        {"A@fba-us": 10, "ASM@fba-us": 1},
        on_demand={"ASM": True},
    )
    result = store.book().apply([order("1", ("ASM", 2), warehouse="fba-us")])
    assert result.held == [("order shop:1", "ASM", "short 1 × ASM in fba-us (have 1, need 2)")]
    assert store.counts()["assembly_orders"] == 0
    assert store.row("ASM", "fba-us") == (1, 0, 0, 2)  # claims the 2 it wants
    assert store.levels("ASM", "fba-us") == (1, 0, -1)
    assert store.levels("A", "fba-us") == (10, 0, 10)


def test_fba_prepackaged_kit_units_are_allocated_and_sold(store: Store) -> None:
    store.load(FAQ_KIT, FAQ_KIT_BOM, {"KIT@fba-us": 8, "A@fba-us": 10, "B@fba-us": 10})
    book = store.book()
    book.apply([order("1", ("KIT", 3), warehouse="fba-us")])
    assert store.levels("KIT", "fba-us") == (8, 3, 5)
    assert store.sellable("KIT", "fba-us") == 5
    short = book.apply([order("2", ("KIT", 6), warehouse="fba-us")])
    assert short.held == [("order shop:2", "KIT", "short 1 × KIT in fba-us (have 5, need 6)")]
    assert store.row("KIT", "fba-us") == (8, 0, 3, 6)
    assert store.sellable("KIT", "fba-us") == 0
    book.apply([order("1", ("KIT", 3), status="shipped", warehouse="fba-us")])
    assert store.levels("KIT", "fba-us") == (5, 0, -1)  # held order 2 still claims 6
    assert store.moves("KIT", "fba-us") == [
        ("Adjustment", 8),
        ("Allocation", -3),
        ("Hold", -6),
        ("Sale", -3),
    ]
    assert store.moves("A", "fba-us") == [("Adjustment", 10)]
    assert store.moves("B", "fba-us") == [("Adjustment", 10)]


def test_an_allocated_order_cannot_move_to_another_warehouse(store: Store) -> None:
    store.load({"A": "simple"}, [], {"A": 10, "A@fba-us": 10})
    book = store.book()
    book.apply([order("1", ("A", 2))])
    before = store.snapshot()
    result = book.apply([order("1", ("A", 3), warehouse="fba-us")])
    assert result.rejected == [
        (
            "order shop:1",
            "cannot move from warehouse 'main' to 'fba-us' after its stock was allocated",
        )
    ]
    assert store.snapshot() == before


def test_an_allocated_order_moved_with_the_same_lines_is_refused(store: Store) -> None:
    store.load({"A": "simple"}, [], {"A": 10, "A@fba-us": 10})
    book = store.book()
    book.apply([order("1", ("A", 2))])
    before = store.counts()
    # A channel's bad order is refused and reported; the others of its batch go through.
    result = book.apply([order("2", ("A", 1)), order("1", ("A", 2), warehouse="fba-us")])
    assert result.rejected == [
        (
            "order shop:1",
            "cannot move from warehouse 'main' to 'fba-us' after its stock was allocated",
        )
    ]
    assert result.orders_created == 1
    assert store.levels("A", "main") == (10, 3, 7)
    assert [o["warehouse"] for o in store.orders()] == ["main", "main"]
    assert store.counts()["orders"] == before["orders"] + 1


def test_a_held_order_may_move_to_another_warehouse(store: Store) -> None:
    store.load({"A": "simple"}, [], {"A@fba-us": 10})
    book = store.book()
    book.apply([order("1", ("A", 2))])
    assert store.row("A", "main") == (0, 0, 0, 2)  # held in main, claiming 2
    result = book.apply([order("1", ("A", 2), warehouse="fba-us")])
    assert result.lines_allocated == 1
    assert store.levels("A", "fba-us") == (10, 2, 8)
    assert store.row("A", "main") == (0, 0, 0, 0)  # the claim in main is released
    assert store.moves("A", "main") == [("Hold", -2), ("HoldRelease", 2)]
    assert [o["warehouse"] for o in store.orders()] == ["fba-us"]


# -- assembly on demand: per-SKU override ----------------------------------------------------------


def test_per_sku_assembly_on_demand_false_holds_the_line_in_main(store: Store) -> None:
    store.load(
        {"A": "simple", "ASM": "assembly"},
        [("ASM", "A", 2)],
        {"A": 100, "ASM": 1},
        on_demand={"ASM": False},
    )
    # Without assembly on demand an assembly sells its assembled units only.
    assert store.sellable("ASM") == 1
    result = store.book().apply([order("1", ("ASM", 3))])
    assert result.held == [("order shop:1", "ASM", "short 2 × ASM in main (have 1, need 3)")]
    # Nothing is built; the line claims the 3 ASM it wants (never the components).
    assert (result.assembly_orders, result.movements) == (0, 1)
    assert store.on_hand("ASM", "A") == (1, 100)
    assert (store.held("ASM"), store.held("A")) == (3, 0)
    assert (store.sellable("ASM"), store.sellable("A")) == (0, 100)


def test_per_sku_assembly_on_demand_true_builds_where_the_warehouse_does_not(
    database_url: str, tmp_path: Path
) -> None:
    config = tmp_path / "east.toml"
    config.write_text(
        f'[database]\nurl = "{database_url}"\n'
        '[[warehouses]]\ncode = "east"\nkind = "own"\n'  # assembly_on_demand: default false
    )
    east = Store(config, tmp_path)
    try:
        east.load(
            {"A": "simple", "ASM": "assembly", "PLAIN": "assembly"},
            [("ASM", "A", 2), ("PLAIN", "A", 1)],
            {"A@east": 10},
            on_demand={"ASM": True},
        )
        result = east.book().apply([order("1", ("ASM", 2), ("PLAIN", 1), warehouse="east")])
        assert result.assembly_orders == 1
        assert result.held == [
            ("order shop:1", "PLAIN", "short 1 × PLAIN in east (have 0, need 1)")
        ]
        assert east.levels("ASM", "east") == (2, 2, 0)
        assert east.levels("A", "east") == (6, 0, 6)
        east.assert_ledger()
    finally:
        east.engine.dispose()


def test_assembly_takes_prepackaged_first_and_builds_only_the_shortfall(store: Store) -> None:
    store.load(
        {"A": "simple", "B": "simple", "ASM": "assembly"},
        [("ASM", "A", 2), ("ASM", "B", 1)],
        {"A": 20, "B": 20, "ASM": 2},
    )
    result = store.book().apply([order("1", ("ASM", 5))])
    assert result.assembly_orders == 1
    assert store.assembly_orders() == [
        ("ASM", 3, "on-demand", "order shop:1", [("A", 6), ("B", 3)])
    ]
    assert store.levels("ASM") == (5, 5, 0)
    assert store.on_hand("A", "B") == (14, 17)
    assert store.moves("ASM") == [("Adjustment", 2), ("AssemblyBuild", 3), ("Allocation", -5)]
    assert store.moves("A") == [("Adjustment", 20), ("AssemblyBuild", -6)]
    assert store.ledger("A")[-1]["reference"] == "assembly order AO-1 for order shop:1"
    # Cancelling releases the assembly, it never takes the build back (builds are one-way).
    store.book().apply([order("1", ("ASM", 5), status="cancelled")])
    assert store.levels("ASM") == (5, 0, 5)
    assert store.on_hand("A", "B") == (14, 17)


# -- composites: prepackaged first, nested, slots with options ------------------------------------


def test_kit_takes_prepackaged_units_first_then_components(store: Store) -> None:
    store.load(FAQ_KIT, FAQ_KIT_BOM, {"KIT": 2, "A": 10, "B": 10})
    book = store.book()
    book.apply([order("1", ("KIT", 5))])
    assert store.levels("KIT") == (2, 2, 0)
    assert store.levels("A") == (10, 3, 7)
    assert store.levels("B") == (10, 3, 7)
    book.apply([order("1", ("KIT", 5), status="shipped")])
    assert store.on_hand("KIT", "A", "B") == (0, 7, 7)
    assert store.moves("KIT") == [("Adjustment", 2), ("Allocation", -2), ("Sale", -2)]
    assert store.moves("A") == [("Adjustment", 10), ("Allocation", -3), ("Sale", -3)]


def test_nested_kit_containing_an_assembly(store: Store) -> None:
    store.load(
        {"A": "simple", "X": "simple", "ASM": "assembly", "BOX": "kit"},
        [("ASM", "A", 2), ("BOX", "ASM", 1), ("BOX", "X", 1)],
        {"A": 10, "X": 5, "ASM": 1},
    )
    assert store.sellable("BOX") == 5  # min(X 5, ASM 1 + 10 // 2)
    book = store.book()
    result = book.apply([order("1", ("BOX", 3))])
    assert (result.lines_allocated, result.assembly_orders) == (1, 1)
    assert store.assembly_orders() == [("ASM", 2, "on-demand", "order shop:1", [("A", 4)])]
    assert store.levels("ASM") == (3, 3, 0)
    assert store.levels("X") == (5, 3, 2)
    assert store.levels("A") == (6, 0, 6)
    assert store.levels("BOX") == (0, 0, 0)
    book.apply([order("1", ("BOX", 3), status="shipped")])
    assert store.on_hand("BOX", "ASM", "X", "A") == (0, 0, 2, 6)
    assert store.moves("BOX") == []
    assert store.moves("ASM") == [
        ("Adjustment", 1),
        ("AssemblyBuild", 2),
        ("Allocation", -3),
        ("Sale", -3),
    ]
    assert store.moves("A") == [("Adjustment", 10), ("AssemblyBuild", -4)]
    # Next: X 2 left, A 6 makes 3 ASM: two boxes can still be had, a third is short of X.
    held = book.apply([order("2", ("BOX", 3))])
    assert held.held == [("order shop:2", "BOX", "short 1 × X in main (have 2, need 3)")]
    assert store.counts()["assembly_orders"] == 1


def test_slot_with_options_prefers_the_option_with_the_most_available(store: Store) -> None:
    store.load(
        {"CAM": "simple", "L1": "simple", "L2": "simple", "PKG": "package"},
        [("PKG", "CAM", 1, "camera"), ("PKG", "L1", 1, "lens"), ("PKG", "L2", 1, "lens")],
        {"CAM": 20, "L1": 3, "L2": 4},
    )
    assert store.sellable("PKG") == 7
    book = store.book()
    # L2 has the most available (4 against 3): it serves all 2.
    book.apply([order("1", ("PKG", 2))])
    assert store.levels("L1") == (3, 0, 3)
    assert store.levels("L2") == (4, 2, 2)
    # Now L1 has the most (3 against 2): it serves all 3.
    book.apply([order("2", ("PKG", 3))])
    assert store.levels("L1") == (3, 3, 0)
    assert store.levels("L2") == (4, 2, 2)
    assert store.levels("CAM") == (20, 5, 15)
    assert store.sellable("PKG") == 2
    # 3 more: L2's 2 are not enough, L1 has none. The short option SKU is named, and the
    # held line claims 3 of CAM and all 3 of L2 it would take.
    short = book.apply([order("3", ("PKG", 3))])
    assert short.held == [("order shop:3", "PKG", "short 1 × L2 in main (have 2, need 3)")]
    assert store.row("L2") == (4, 0, 2, 3)
    assert store.levels("L2") == (4, 2, -1)
    assert store.row("L1") == (3, 0, 3, 0)
    assert store.levels("CAM") == (20, 5, 12)
    assert store.sellable("PKG") == 0


def test_slot_options_with_quantities_take_whole_units_of_each(store: Store) -> None:
    store.load(
        {"L1": "simple", "L2": "simple", "PKG": "bundle"},
        [("PKG", "L1", 2, "lens"), ("PKG", "L2", 1, "lens")],
        {"L1": 5, "L2": 10},
    )
    assert store.sellable("PKG") == 12  # 5 // 2 + 10
    # L2 (10 units' worth) is preferred over L1 (2 units' worth): 3 take 3 of L2.
    book = store.book()
    book.apply([order("1", ("PKG", 3))])
    assert store.levels("L1") == (5, 0, 5)
    assert store.levels("L2") == (10, 3, 7)
    assert store.sellable("PKG") == 9  # 5 // 2 + 7
    # All 9 left: L2's 7, then 2 whole units of L1 (4 of it; the fifth is left over).
    book.apply([order("2", ("PKG", 9))])
    assert store.levels("L1") == (5, 4, 1)
    assert store.levels("L2") == (10, 10, 0)
    assert store.sellable("PKG") == 0


def test_fba_kit_shipped_beyond_its_prepackaged_units_is_never_split(store: Store) -> None:
    """A channel that says it shipped is believed (the shortfall is a backorder of the kit's
    own units); the components in the FBA warehouse are never touched."""
    store.load(FAQ_KIT, FAQ_KIT_BOM, {"KIT@fba-us": 1, "A@fba-us": 10, "B@fba-us": 10})
    store.book().apply([order("1", ("KIT", 2), status="shipped", warehouse="fba-us")])
    assert store.levels("KIT", "fba-us") == (-1, 0, -1)
    assert store.levels("A", "fba-us") == (10, 0, 10)
    assert store.levels("B", "fba-us") == (10, 0, 10)


NESTED = {"A": "simple", "C": "simple", "SUB": "assembly", "TOP": "assembly"}
NESTED_BOM = [("SUB", "A", 2), ("TOP", "SUB", 1), ("TOP", "C", 1)]


def _used(made: dict[str, Any]) -> dict[str, int]:
    total: dict[str, int] = {}
    for component in made["components"]:
        total[component["sku"]] = total.get(component["sku"], 0) + component["quantity"]
    return total


def test_build_of_an_assembly_builds_its_sub_assembly_first(store: Store) -> None:
    store.load(NESTED, NESTED_BOM, {"A": 10, "C": 10, "SUB": 1})
    made, _changed = store.book().build("TOP", 3, "main")
    assert [(m["id"], m["sku"], m["quantity"], m["origin"]) for m in made] == [
        ("AO-1", "SUB", 2, "manual"),
        ("AO-2", "TOP", 3, "manual"),
    ]
    assert [_used(m) for m in made] == [{"A": 4}, {"SUB": 3, "C": 3}]
    assert store.on_hand("TOP", "SUB", "A", "C") == (3, 0, 6, 7)
    assert sum(q for kind, q in store.moves("SUB") if kind == "AssemblyBuild") == 2 - 3
    # All or nothing: 4 more would need 4 SUB from 6 A (3) -- nothing is built.
    before = store.snapshot()
    with pytest.raises(InputError) as caught:
        store.book().build("TOP", 4, "main")
    assert str(caught.value) == "cannot build 4 × TOP: short 2 × A in main (have 6, need 8)"
    assert store.snapshot() == before


def test_an_assembly_order_lists_each_component_once(store: Store) -> None:
    store.load(NESTED, NESTED_BOM, {"A": 10, "C": 10, "SUB": 1})
    made, _changed = store.book().build("TOP", 3, "main")
    assert made[1]["components"] == [{"sku": "SUB", "quantity": 3}, {"sku": "C", "quantity": 3}]


# -- changed pairs --------------------------------------------------------------------------------


def test_changed_pairs_are_exactly_the_sellable_values_that_moved(store: Store) -> None:
    store.load(
        {"A": "simple", "B": "simple", "PAIR": "kit", "TRIO": "kit"},
        [("PAIR", "A", 2), ("TRIO", "A", 3), ("TRIO", "B", 1)],
        {"A": 10, "B": 1, "A@fba-us": 10},
    )
    assert (store.sellable("PAIR"), store.sellable("TRIO")) == (5, 1)
    book = store.book()
    store_changes_before = len(store.sellable_changes())
    result = book.apply([order("1", ("A", 2))])
    # A 10 -> 8, PAIR 5 -> 4; TRIO stays 1 (B limits it); fba-us untouched.
    assert result.changed_pairs == {("A", "main"), ("PAIR", "main")}
    assert sorted(store.sellable_changes()[store_changes_before:]) == [
        ("A", "main"),
        ("PAIR", "main"),
    ]
    # Shipping moves on hand and allocation together: no sellable value changes.
    shipped = book.apply([order("1", ("A", 2), status="shipped")])
    assert shipped.movements == 1
    assert shipped.changed_pairs == set()
    # A held line claims what it wants (5 of B, beyond the 1 there): B 1 -> 0, TRIO 1 -> 0.
    held = book.apply([order("2", ("B", 5))])
    assert (held.lines_held, held.changed_pairs) == (1, {("B", "main"), ("TRIO", "main")})
    assert (store.sellable("B"), store.sellable("TRIO"), store.sellable("PAIR")) == (0, 0, 4)
    assert result.to_dict()["changed_sellable"] == [
        {"sku": "A", "warehouse": "main"},
        {"sku": "PAIR", "warehouse": "main"},
    ]


def test_changed_pairs_of_a_long_lived_book_see_stock_counted_meanwhile(store: Store) -> None:
    store.load(FAQ_KIT, FAQ_KIT_BOM, {"A": 10, "B": 0})
    book = store.book()
    store.count({"B": 10})  # KIT sellable 0 -> 10, outside the book
    result = book.apply([order("1", ("A", 2))])
    assert store.sellable("KIT") == 8
    assert result.changed_pairs == {("A", "main"), ("KIT", "main")}


@pytest.mark.parametrize("quantity", [0, -3])
def test_order_book_ignores_a_line_without_a_positive_quantity(store: Store, quantity: int) -> None:
    # Channels send lines whose quantity dropped to 0 (removed, refunded): they hold nothing.
    store.load({"A": "simple", "B": "simple"}, [], {"A": 10, "B": 10})
    result = store.book().apply([order("1", ("A", quantity), ("B", 2))])
    assert result.lines_allocated == 1
    assert result.notes == [
        f"order shop:1 line A: quantity {quantity} ignored (the line holds no stock)"
    ]
    assert store.sellable("A") == 10
    assert store.sellable("B") == 8


def test_build_reports_its_changed_pairs(store: Store) -> None:
    store.load(
        {"A": "simple", "B": "simple", "ASM": "assembly", "OTHER": "kit"},
        [("ASM", "A", 2), ("OTHER", "B", 1)],
        {"A": 10, "B": 3},
    )
    made, changed = store.book().build("ASM", 2, "main")
    assert [(m["id"], m["sku"], m["quantity"], m["components"]) for m in made] == [
        ("AO-1", "ASM", 2, [{"sku": "A", "quantity": 4}])
    ]
    # ASM sellable stays 5 (2 built + 6 // 2); only A moved.
    assert changed == {("A", "main")}
    assert store.on_hand("ASM", "A") == (2, 6)
