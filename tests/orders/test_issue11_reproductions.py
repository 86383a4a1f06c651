"""Issue 11's four reproductions through the order book, with exact numbers: what the core
says is sellable (and what a channel is pushed) is what the book then allocates.

1. a component reached by two paths is counted once per path;
2. a held line reserves its whole demand, and arriving stock serves it first;
3. a channel over several warehouses routes its orders across them;
4. a SKU allowing orders exceeding stock is accepted for any quantity.

SQLite throughout; the first also on PostgreSQL. Each test ends with the ledger invariant.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sellable.imports.stock import import_stock_counts
from sellable.orders import OrderBook, OrderImportResult, OrderIn, OrderLineIn, OrderStatus
from tests.orders.test_order_book import Store

CHANNEL = "woo"

#: ``main`` assembles on demand; ``tpl`` is a second own warehouse; channel ``woo`` sells
#: from both, ``main`` first (issue 11's WooCommerce on ["main", "tpl"]).
CONFIG = """[database]
url = "{url}"

[[warehouses]]
code = "main"
kind = "own"
assembly_on_demand = true

[[warehouses]]
code = "tpl"
kind = "own"

[[channels]]
code = "woo"
connector = "manual"
warehouses = ["main", "tpl"]
"""


def open_store(url: str, folder: Path) -> Store:
    config = folder / "sellable.toml"
    config.write_text(CONFIG.format(url=url))
    return Store(config, folder)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'sellable.db'}", tmp_path)
    yield opened
    opened.assert_ledger()
    opened.engine.dispose()


@pytest.fixture
def pg_store(postgres_url: str, tmp_path: Path) -> Iterator[Store]:
    """The same store on PostgreSQL."""
    opened = open_store(postgres_url, tmp_path)
    yield opened
    opened.assert_ledger()
    opened.engine.dispose()


def line_order(
    order_id: str,
    sku: str,
    quantity: int,
    *,
    status: OrderStatus = OrderStatus.OPEN,
    route: tuple[str, ...] = (),
    created_at: datetime | None = None,
) -> OrderIn:
    """A one-line order (line id ``L``) in ``main``, or routed along ``route``."""
    warehouse = route[0] if route else "main"
    lines = (OrderLineIn("L", sku, quantity),)
    return OrderIn(CHANNEL, order_id, warehouse, status, lines, created_at, route)


def place(book: OrderBook, order: OrderIn) -> OrderImportResult:
    return book.apply([order])


def cancel(book: OrderBook, order: OrderIn) -> OrderImportResult:
    cancelled = OrderIn(
        order.channel,
        order.order_id,
        order.warehouse,
        OrderStatus.CANCELLED,
        order.lines,
        order.created_at,
        order.route,
    )
    result = book.apply([cancelled])
    assert result.lines_cancelled == 1
    return result


def line_of(store: Store, order_id: str) -> dict[str, Any]:
    (found,) = [o for o in store.orders() if o["order_id"] == order_id]
    (line,) = found["lines"]
    return dict(line)


# -- 1: a component reached twice is counted twice ---------------------------------------------

SHARED = {"A": "simple", "K": "kit", "X": "kit"}
SHARED_BOM = [("X", "A", 1), ("X", "K", 1), ("K", "A", 1)]


def check_shared_component(store: Store) -> None:
    store.load(SHARED, SHARED_BOM, {"A": 10})
    book = store.book()

    assert book.live.core.sellable("X", "main") == 5

    five = line_order("five", "X", 5)
    result = place(book, five)
    assert (result.lines_allocated, result.lines_held) == (1, 0)
    assert store.levels("A") == (10, 10, 0)
    cancel(book, five)
    assert book.live.core.sellable("X", "main") == 5

    six = line_order("six", "X", 6)
    result = place(book, six)
    assert (result.lines_allocated, result.lines_held) == (0, 1)
    ((_order, _line, reason),) = result.held
    assert reason.startswith("short 2 × A"), reason
    cancel(book, six)
    assert book.live.core.sellable("X", "main") == 5


def test_issue11_1_shared_component_x_sells_5_an_order_of_5_is_allocated_6_held(
    store: Store,
) -> None:
    check_shared_component(store)


@pytest.mark.postgres
def test_issue11_1_shared_component_on_postgresql(pg_store: Store) -> None:
    check_shared_component(pg_store)


# -- 2: a held line reserves what it needs ------------------------------------------------------

GIFT_BOM = [("SET", "BEANS", 1), ("SET", "MUG", 1), ("SET", "SCOOP", 1), ("PAIR", "MUG", 2)]


@pytest.mark.parametrize("kind", ["kit", "assembly"])
def test_issue11_2_a_held_line_reserves_its_mugs_and_gets_the_next_one_first(
    store: Store, kind: str
) -> None:
    store.load(
        {"BEANS": "simple", "MUG": "simple", "SCOOP": "simple", "SET": kind, "PAIR": "kit"},
        GIFT_BOM,
        {"BEANS": 50, "MUG": 29, "SCOOP": 100},
    )
    book = store.book()
    core = book.live.core
    assert core.sellable("SET", "main") == 29

    thirty = line_order("thirty", "SET", 30, created_at=datetime(2026, 12, 1, tzinfo=UTC))
    result = place(book, thirty)
    assert (result.lines_allocated, result.lines_held) == (0, 1)

    # The 29 mugs are the waiting customer's: nobody else is offered one.
    assert {sku: core.sellable(sku, "main") for sku in ("MUG", "SET", "PAIR")} == {
        "MUG": 0,
        "SET": 0,
        "PAIR": 0,
    }
    assert (core.sellable("BEANS", "main"), core.sellable("SCOOP", "main")) == (20, 70)
    assert core.levels("MUG", "main").held == 30
    assert book.live.sellable_in("MUG", ["main", "tpl"]) == 0

    # ... nor does an order for a mug get one.
    later = line_order("later", "MUG", 1, created_at=datetime(2026, 12, 2, tzinfo=UTC))
    assert place(book, later).lines_held == 1
    # Nothing allocated; 31 claimed (30 + 1) of the 29 there: available -2, offered 0.
    assert store.levels("MUG") == (29, 0, -2)
    assert store.held("MUG") == 31

    # One more mug arrives: the older held line is served first, the mug order stays held.
    _summary, _outcome = import_stock_counts(
        book, store.file("sku,warehouse,on_hand\nMUG,main,30\n", name="count.csv")
    )
    assert line_of(store, "thirty")["status"] == "allocated"
    assert line_of(store, "later")["status"] == "held"
    assert core.levels("MUG", "main").held == 1
    assert {sku: core.sellable(sku, "main") for sku in ("MUG", "SET", "PAIR", "BEANS")} == {
        "MUG": 0,
        "SET": 0,
        "PAIR": 0,
        "BEANS": 20,
    }


# -- 3: a channel over two warehouses -----------------------------------------------------------

ROUTE = ("main", "tpl")


def pushed(store: Store, book: OrderBook, sku: str) -> int:
    """What channel ``woo`` is pushed for ``sku``: its rules over the sum of its warehouses."""
    channel = store.settings.channel(CHANNEL)
    return channel.rules().quantity(book.live.sellable_in(sku, channel.warehouses))


def allocations(store: Store, order_id: str) -> list[tuple[str, int]]:
    return [(a["warehouse"], a["quantity"]) for a in line_of(store, order_id)["allocations"]]


def test_issue11_3_a_channel_on_main_and_tpl_is_pushed_12_and_gets_12(store: Store) -> None:
    store.load({"MUG": "simple"}, (), {"MUG": 2, "MUG@tpl": 10})
    book = store.book()
    assert pushed(store, book, "MUG") == 12

    # The first warehouse that can take all of it: tpl.
    five = line_order("five", "MUG", 5, route=ROUTE)
    assert place(book, five).lines_allocated == 1
    assert allocations(store, "five") == [("tpl", 5)]
    assert (store.levels("MUG", "main"), store.levels("MUG", "tpl")) == ((2, 0, 2), (10, 5, 5))
    cancel(book, five)
    assert pushed(store, book, "MUG") == 12

    # None can: split across them in order.
    twelve = line_order("twelve", "MUG", 12, route=ROUTE)
    assert place(book, twelve).lines_allocated == 1
    assert allocations(store, "twelve") == [("main", 2), ("tpl", 10)]
    assert pushed(store, book, "MUG") == 0
    cancel(book, twelve)
    assert (store.levels("MUG", "main"), store.levels("MUG", "tpl")) == ((2, 0, 2), (10, 0, 10))
    assert pushed(store, book, "MUG") == 12

    # Even that cannot: the whole line is held in the first warehouse.
    thirteen = line_order("thirteen", "MUG", 13, route=ROUTE)
    result = place(book, thirteen)
    assert (result.lines_allocated, result.lines_held) == (0, 1)
    assert allocations(store, "thirteen") == []
    assert book.live.core.levels("MUG", "main").held == 13
    assert book.live.core.levels("MUG", "tpl").held == 0
    cancel(book, thirteen)
    assert pushed(store, book, "MUG") == 12


def test_issue11_3_a_channel_chosen_warehouse_still_wins(store: Store) -> None:
    """An order without a route is booked where the channel said (Amazon AFN, Shopify)."""
    store.load({"MUG": "simple"}, (), {"MUG": 2, "MUG@tpl": 10})
    book = store.book()

    chosen = OrderIn(
        CHANNEL, "afn", "tpl", OrderStatus.OPEN, (OrderLineIn("L", "MUG", 5),), None, ()
    )
    assert place(book, chosen).lines_allocated == 1
    assert allocations(store, "afn") == [("tpl", 5)]


# -- 4: orders exceeding stock -----------------------------------------------------------------


def test_issue11_4_a_backorder_sku_with_nothing_on_hand_takes_any_quantity(store: Store) -> None:
    store.load(
        {"BO": "simple", "A": "simple", "ONLY-BO": "kit", "A-ONLY": "kit"},
        [("ONLY-BO", "BO", 2), ("A-ONLY", "A", 1)],
        {"BO": 0, "A": 3},
        backorder=("BO",),
    )
    book = store.book()
    core = book.live.core

    assert (core.sellable("BO", "main"), core.unbounded("BO", "main")) == (0, True)
    assert (core.sellable("ONLY-BO", "main"), core.unbounded("ONLY-BO", "main")) == (0, True)
    assert (core.sellable("A-ONLY", "main"), core.unbounded("A-ONLY", "main")) == (3, False)
    assert book.live.backorderable("BO", ["main", "tpl"])

    assert place(book, line_order("many", "BO", 1000)).lines_allocated == 1
    assert place(book, line_order("kits", "ONLY-BO", 7)).lines_allocated == 1
    assert store.levels("BO") == (0, 1014, -1014)
    assert place(book, line_order("four", "A-ONLY", 4)).lines_held == 1
    assert (core.sellable("BO", "main"), core.unbounded("BO", "main")) == (0, True)


def test_the_ledger_explains_a_held_claim_and_its_release(store: Store) -> None:
    from sellable.orders.queries import ledger

    store.load({"A": "simple"}, (), {"A": 1})
    book = store.book()
    three = line_order("three", "A", 3)
    place(book, three)
    cancel(book, three)
    with store.engine.connect() as connection:
        rows = ledger(connection, "A", "main")
    assert [(r["type"], r["quantity"], r["held_change"], r["available"]) for r in rows] == [
        ("Adjustment", 1, 0, 1),
        ("Hold", -3, 3, -2),  # the held line claims all 3 it wants, 2 more than there are
        ("HoldRelease", 3, -3, 1),
    ]
