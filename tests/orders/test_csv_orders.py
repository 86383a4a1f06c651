"""The orders CSV's routing and options: an empty ``warehouse`` routes an order among its
channel's warehouses, ``options`` carries the customer's choice (``slot=SKU;slot=SKU``).

What the file becomes is checked as the exact :class:`OrderIn` values handed to the order
book (where a routed line is then booked is the order book's business); refusals through
the command line, exit 3 naming file, line, column and value, with nothing written.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sellable.orders import OrderBook, OrderIn, OrderLineIn, OrderStatus, read_orders_csv
from tests.orders.test_order_book import Store, invoke

HEADER = "channel,order_id,sku,quantity,warehouse,line_id,status,created_at,options\n"
CHANNELS = """
[[warehouses]]
code = "tpl"
kind = "3pl"

[[channels]]
code = "shop"
connector = "manual"
warehouses = ["main", "tpl"]

[[channels]]
code = "counter"
connector = "manual"
warehouses = ["fba-us"]
"""
OPEN = OrderStatus.OPEN


@pytest.fixture
def store(config_file: Path, tmp_path: Path) -> Iterator[Store]:
    with config_file.open("a") as handle:
        handle.write(CHANNELS)
    opened = Store(config_file, tmp_path)
    opened.load({"MUG": "simple", "MUG-RED": "simple", "BEANS": "simple", "SET": "kit"})
    yield opened
    opened.assert_ledger()
    opened.engine.dispose()


def read(store: Store, *rows: str) -> list[OrderIn]:
    path = store.file(HEADER + "".join(row + "\n" for row in rows), name="orders.csv")
    book = OrderBook(store.engine, store.settings)
    return read_orders_csv(path, store.settings, book.live.catalog, store.engine)


def refused(store: Store, *rows: str) -> tuple[Path, str]:
    """Import rows that must be refused: (the file, stderr). Nothing is written."""
    path = store.file(HEADER + "".join(row + "\n" for row in rows), name="orders.csv")
    before = store.snapshot()
    result = invoke(store.config, "import", "orders", str(path))
    assert (result.exit_code, result.stdout) == (3, ""), result.output
    assert store.snapshot() == before
    return path, result.stderr


# -- routing -------------------------------------------------------------------------------------


def test_an_empty_warehouse_routes_the_order_among_its_channels_warehouses(store: Store) -> None:
    orders = read(
        store,
        "shop,1,MUG,2,,a,,,",
        "shop,1,BEANS,1,,b,,,",
        "counter,2,MUG,1,,,,,",
    )

    assert orders == [
        OrderIn(
            "shop",
            "1",
            "main",
            OPEN,
            (OrderLineIn("a", "MUG", 2), OrderLineIn("b", "BEANS", 1)),
            route=("main", "tpl"),
        ),
        OrderIn("counter", "2", "fba-us", OPEN, (OrderLineIn("MUG", "MUG", 1),), route=("fba-us",)),
    ]
    assert orders[0].warehouses == ("main", "tpl")


def test_a_named_warehouse_books_the_order_there_only(store: Store) -> None:
    orders = read(store, "shop,1,MUG,2,tpl,,,,")

    assert orders == [OrderIn("shop", "1", "tpl", OPEN, (OrderLineIn("MUG", "MUG", 2),))]
    assert (orders[0].route, orders[0].warehouses) == ((), ("tpl",))


def test_a_routed_order_is_imported_through_the_command_line(store: Store) -> None:
    store.count({"MUG": 5})
    path = store.file(HEADER + "shop,1,MUG,2,,,,,\n", name="orders.csv")

    result = invoke(store.config, "import", "orders", str(path))

    assert result.exit_code == 0, result.output
    assert [(o["order_id"], o["warehouse"]) for o in store.orders()] == [("1", "main")]
    assert store.levels("MUG") == (5, 2, 3)


def test_an_empty_warehouse_of_an_unconfigured_channel_is_refused(store: Store) -> None:
    path, stderr = refused(store, "shop,1,MUG,1,,,,,", "web,2,MUG,1,,,,,")

    assert stderr == (
        f"error: {path} line 3, column 'channel': unknown channel (known: shop, counter); "
        "declare a channel that takes orders by CSV only as [[channels]] with connector = "
        '"manual"; an empty warehouse routes the line among that channel\'s warehouses '
        f"(value 'web')\n{path}: rejected (1 problem(s)); nothing was written\n"
    )


@pytest.mark.parametrize(
    ("rows", "problem"),
    [
        pytest.param(
            ("shop,1,MUG,1,,a,,,", "shop,1,BEANS,1,main,b,,,"),
            "line 3, column 'warehouse': order shop:1 has an empty warehouse (routed among "
            "the channel's warehouses) on line 2 (value 'main')",
            id="empty-then-named",
        ),
        pytest.param(
            ("shop,1,MUG,1,main,a,,,", "shop,1,BEANS,1,,b,,,"),
            "line 3, column 'warehouse': order shop:1 has warehouse 'main' on line 2 (value '')",
            id="named-then-empty",
        ),
    ],
)
def test_one_order_cannot_mix_a_routed_and_a_named_warehouse(
    store: Store, rows: tuple[str, ...], problem: str
) -> None:
    path, stderr = refused(store, *rows)

    assert stderr == (
        f"error: {path} {problem}\n{path}: rejected (1 problem(s)); nothing was written\n"
    )


def test_a_routed_reimport_of_an_order_allocated_off_its_route_is_refused(
    store: Store,
) -> None:
    store.count({"MUG@fba-us": 5})
    first = store.file(HEADER + "shop,1,MUG,1,fba-us,,,,\n", name="first.csv")
    assert invoke(store.config, "import", "orders", str(first)).exit_code == 0

    path, stderr = refused(store, "shop,1,MUG,1,,,,,")

    assert stderr == (
        f"error: {path} line 2, column 'warehouse': order shop:1 is already allocated in "
        "warehouse 'fba-us' and cannot change warehouse (routed among main, tpl) "
        f"(value '')\n{path}: rejected (1 problem(s)); nothing was written\n"
    )


def test_a_routed_reimport_of_an_order_allocated_on_its_route_is_accepted(
    store: Store,
) -> None:
    store.count({"MUG@tpl": 5})
    first = store.file(HEADER + "shop,1,MUG,1,tpl,,,,\n", name="first.csv")
    assert invoke(store.config, "import", "orders", str(first)).exit_code == 0

    assert read(store, "shop,1,MUG,1,,,,,") == [
        OrderIn("shop", "1", "main", OPEN, (OrderLineIn("MUG", "MUG", 1),), route=("main", "tpl"))
    ]


# -- options -------------------------------------------------------------------------------------


def test_options_become_the_lines_chosen_options_in_their_order(store: Store) -> None:
    orders = read(
        store,
        "shop,1,SET,2,main,a,,,mug=MUG-RED;beans=BEANS",
        "shop,1,SET,1,main,b,,, mug = MUG ",
        "shop,1,MUG,1,main,c,,,",
    )

    assert [line.options for line in orders[0].lines] == [
        (("mug", "MUG-RED"), ("beans", "BEANS")),
        (("mug", "MUG"),),
        (),
    ]


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        pytest.param("mug", "'mug' is not slot=SKU (write slot=SKU;slot=SKU)", id="no-equals"),
        pytest.param("=MUG", "'=MUG' has an empty slot (write slot=SKU;slot=SKU)", id="no-slot"),
        pytest.param("mug=", "'mug=' has an empty SKU (write slot=SKU;slot=SKU)", id="no-sku"),
        pytest.param("mug=MUG;mug=MUG-RED", "slot 'mug' is given twice", id="slot-twice"),
        pytest.param(
            "mug=MUG;;beans=BEANS", "'' is not slot=SKU (write slot=SKU;slot=SKU)", id="empty-pair"
        ),
    ],
)
def test_malformed_options_are_refused_naming_file_line_and_field(
    store: Store, options: str, reason: str
) -> None:
    path, stderr = refused(store, "shop,1,MUG,1,main,a,,,", f"shop,1,SET,1,main,b,,,{options}")

    assert stderr == (
        f"error: {path} line 3, column 'options': {reason} (value {options!r})\n"
        f"{path}: rejected (1 problem(s)); nothing was written\n"
    )


def test_the_options_column_is_optional(store: Store) -> None:
    path = store.file("channel,order_id,sku,quantity,warehouse\nshop,1,MUG,1,\n", name="orders.csv")
    book = OrderBook(store.engine, store.settings)

    assert read_orders_csv(path, store.settings, book.live.catalog, store.engine) == [
        OrderIn("shop", "1", "main", OPEN, (OrderLineIn("MUG", "MUG", 1),), route=("main", "tpl"))
    ]
