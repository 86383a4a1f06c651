"""Per-line status from channels (partly shipped orders): on an open order a line whose own
status is shipped is sold, one whose own status is cancelled holds nothing; the order's own
shipped or cancelled applies to all its lines. A shipped line is final.

Every test runs on SQLite and PostgreSQL (``config_file``) and ends by checking the ledger
invariant: each stock row equals the sum of its movements.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sellable.orders import OrderIn, OrderLineIn, OrderStatus
from sellable.sdk import ChannelOrder, ChannelOrderLine
from tests.orders.test_order_book import FAQ_KIT, FAQ_KIT_BOM, Store

OPEN, SHIPPED, CANCELLED = OrderStatus.OPEN, OrderStatus.SHIPPED, OrderStatus.CANCELLED


@pytest.fixture
def store(config_file: Path, tmp_path: Path) -> Iterator[Store]:
    opened = Store(config_file, tmp_path)
    yield opened
    opened.assert_ledger()
    opened.engine.dispose()


def order(
    order_id: str,
    *lines: tuple[str, int] | tuple[str, int, OrderStatus | None],
    status: OrderStatus = OPEN,
) -> OrderIn:
    """An order on channel ``shop`` in ``main``; a line is (sku, qty[, line status]), its
    line id the SKU."""
    return OrderIn(
        "shop",
        order_id,
        "main",
        status,
        tuple(
            OrderLineIn(line[0], line[0], line[1], line[2] if len(line) == 3 else None)
            for line in lines
        ),
    )


def test_the_line_status_is_optional_and_last() -> None:
    assert OrderLineIn("1", "A", 2) == OrderLineIn("1", "A", 2, None)
    assert ChannelOrderLine("1", "A", 2).status is None
    assert ChannelOrderLine("1", "A", 2, SHIPPED).status == SHIPPED


def test_a_shipped_line_of_an_open_order_is_sold_the_others_stay_allocated(
    store: Store,
) -> None:
    store.load({"A": "simple", "B": "simple"}, [], {"A": 10, "B": 10})
    book = store.book()
    book.apply([order("1", ("A", 3), ("B", 4))])
    assert store.levels("A") == (10, 3, 7)
    assert store.levels("B") == (10, 4, 6)

    result = book.apply([order("1", ("A", 3, SHIPPED), ("B", 4, OPEN))])
    assert (result.orders_updated, result.lines_shipped, result.movements) == (1, 1, 1)
    assert store.levels("A") == (7, 0, 7)
    assert store.levels("B") == (10, 4, 6)
    assert store.moves("A") == [("Adjustment", 10), ("Allocation", -3), ("Sale", -3)]
    assert store.moves("B") == [("Adjustment", 10), ("Allocation", -4)]
    sale = store.ledger("A")[-1]
    assert (sale["on_hand_change"], sale["allocated_change"], sale["reference"]) == (
        -3,
        -3,
        "order shop:1",
    )
    assert store.order_status("1") == "open"
    assert store.line_states() == {
        ("1", "A"): ("shipped", None),
        ("1", "B"): ("allocated", None),
    }

    # The same partly shipped view again changes nothing.
    before = store.snapshot()
    again = book.apply([order("1", ("A", 3, SHIPPED), ("B", 4, OPEN))])
    assert (again.orders_unchanged, again.movements) == (1, 0)
    assert store.snapshot() == before

    # Then the whole order ships: only B is sold now, A is not sold twice.
    done = book.apply([order("1", ("A", 3), ("B", 4), status=SHIPPED)])
    assert (done.lines_shipped, done.movements) == (1, 1)
    assert store.levels("A") == (7, 0, 7)
    assert store.levels("B") == (6, 0, 6)
    assert store.moves("A") == [("Adjustment", 10), ("Allocation", -3), ("Sale", -3)]
    assert store.moves("B") == [("Adjustment", 10), ("Allocation", -4), ("Sale", -4)]
    assert store.line_states() == {("1", "A"): ("shipped", None), ("1", "B"): ("shipped", None)}


def test_an_open_order_first_seen_with_a_shipped_line_allocates_and_sells_it(
    store: Store,
) -> None:
    store.load(FAQ_KIT, FAQ_KIT_BOM, {"A": 50, "B": 30})
    result = store.book().apply([order("1", ("KIT", 2, SHIPPED), ("A", 5))])
    assert (result.orders_created, result.lines_allocated, result.lines_shipped) == (1, 2, 1)
    # The kit's components are sold (A and B minus 2 on hand), A's own line is allocated.
    assert store.levels("A") == (48, 5, 43)
    assert store.levels("B") == (28, 0, 28)
    assert store.moves("A") == [
        ("Adjustment", 50),
        ("Allocation", -2),
        ("Sale", -2),
        ("Allocation", -5),
    ]
    assert store.moves("B") == [("Adjustment", 30), ("Allocation", -2), ("Sale", -2)]
    assert store.moves("KIT") == []
    assert store.line_states() == {
        ("1", "KIT"): ("shipped", None),
        ("1", "A"): ("allocated", None),
    }


def test_a_shipped_line_is_sold_even_when_short_like_a_shipped_order(store: Store) -> None:
    store.load({"A": "simple", "B": "simple"}, [], {"A": 2, "B": 1})
    result = store.book().apply([order("1", ("A", 3, SHIPPED), ("B", 4))])
    assert (result.lines_shipped, result.lines_held) == (1, 1)
    # The goods left: A is sold whatever the count said; B waits for stock, claiming the 4
    # it wants (1 is there), so none of B is offered to anyone else.
    assert store.levels("A") == (-1, 0, -1)
    assert store.moves("A") == [("Adjustment", 2), ("Allocation", -3), ("Sale", -3)]
    assert store.row("B") == (1, 0, 0, 4)
    assert store.levels("B") == (1, 0, -3)
    assert store.moves("B") == [("Adjustment", 1), ("Hold", -4)]
    assert store.sellable("B") == 0
    states = store.line_states()
    assert states[("1", "A")] == ("shipped", None)
    assert states[("1", "B")][0] == "held"


def test_a_cancelled_line_of_an_open_order_is_released_and_can_come_back(
    store: Store,
) -> None:
    store.load({"A": "simple", "B": "simple"}, [], {"A": 10, "B": 10})
    book = store.book()
    book.apply([order("1", ("A", 3), ("B", 4))])
    result = book.apply([order("1", ("A", 3), ("B", 4, CANCELLED))])
    assert (result.lines_cancelled, result.movements) == (1, 1)
    assert store.levels("A") == (10, 3, 7)
    assert store.levels("B") == (10, 0, 10)
    assert store.moves("B") == [("Adjustment", 10), ("Allocation", -4), ("Release", 4)]
    assert store.order_status("1") == "open"

    again = book.apply([order("1", ("A", 3), ("B", 4, CANCELLED))])
    assert (again.orders_unchanged, again.movements) == (1, 0)

    back = book.apply([order("1", ("A", 3), ("B", 4))])
    assert (back.lines_allocated, back.movements) == (1, 1)
    assert store.levels("B") == (10, 4, 6)
    assert store.line_states() == {
        ("1", "A"): ("allocated", None),
        ("1", "B"): ("allocated", None),
    }


def test_the_order_status_wins_over_the_line_status(store: Store) -> None:
    store.load({"A": "simple", "B": "simple"}, [], {"A": 10, "B": 10})
    book = store.book()
    # Cancelled order: the line said shipped is released, not sold.
    book.apply([order("1", ("A", 3), ("B", 4))])
    cancelled = book.apply([order("1", ("A", 3, SHIPPED), ("B", 4), status=CANCELLED)])
    assert (cancelled.lines_cancelled, cancelled.lines_shipped) == (2, 0)
    assert store.levels("A") == (10, 0, 10)
    assert store.levels("B") == (10, 0, 10)
    # Shipped order: the line said open, or even cancelled, is sold with the others.
    book.apply([order("2", ("A", 1), ("B", 2))])
    shipped = book.apply([order("2", ("A", 1, OPEN), ("B", 2, CANCELLED), status=SHIPPED)])
    assert (shipped.lines_shipped, shipped.lines_cancelled) == (2, 0)
    assert store.levels("A") == (9, 0, 9)
    assert store.levels("B") == (8, 0, 8)
    assert store.moves("A") == [
        ("Adjustment", 10),
        ("Allocation", -3),
        ("Release", 3),
        ("Allocation", -1),
        ("Sale", -1),
    ]
    assert store.moves("B") == [
        ("Adjustment", 10),
        ("Allocation", -4),
        ("Release", 4),
        ("Allocation", -2),
        ("Sale", -2),
    ]


def test_a_shipped_line_is_final(store: Store) -> None:
    store.load({"A": "simple", "B": "simple"}, [], {"A": 10, "B": 10})
    book = store.book()
    book.apply([order("1", ("A", 3, SHIPPED), ("B", 4))])
    assert store.levels("A") == (7, 0, 7)
    # Later views that drop the line, change its quantity, reopen it or cancel the order
    # move none of its stock: only B is released.
    book.apply([order("1", ("B", 4))])
    book.apply([order("1", ("A", 9, OPEN), ("B", 4))])
    cancelled = book.apply([order("1", ("A", 3), ("B", 4), status=CANCELLED)])
    assert (cancelled.lines_cancelled, cancelled.movements) == (1, 1)
    assert store.levels("A") == (7, 0, 7)
    assert store.levels("B") == (10, 0, 10)
    assert store.moves("A") == [("Adjustment", 10), ("Allocation", -3), ("Sale", -3)]
    assert store.moves("B") == [("Adjustment", 10), ("Allocation", -4), ("Release", 4)]
    assert store.line_states() == {
        ("1", "A"): ("shipped", None),
        ("1", "B"): ("cancelled", None),
    }


def test_held_lines_retried_keep_a_shipped_line_sold_once(store: Store) -> None:
    store.load({"A": "simple", "B": "simple"}, [], {"A": 10, "B": 0})
    book = store.book()
    book.apply([order("1", ("A", 3, SHIPPED), ("B", 2))])
    assert store.line_states()[("1", "B")][0] == "held"
    store.count({"B": 5})
    retried = book.retry_held()
    assert (retried.lines_allocated, retried.lines_shipped) == (1, 0)
    assert store.levels("A") == (7, 0, 7)
    assert store.levels("B") == (5, 2, 3)
    assert store.moves("A") == [("Adjustment", 10), ("Allocation", -3), ("Sale", -3)]


def test_channel_orders_carry_the_line_status_to_the_book(store: Store) -> None:
    """What the sync engine hands the book for a channel order keeps each line's status."""
    from sellable.sync.jobs.orders import order_in_for

    store.load({"A": "simple", "B": "simple"}, [], {"A": 10, "B": 10})
    channel_order = ChannelOrder(
        "7",
        OPEN,
        datetime(2026, 11, 23, tzinfo=UTC),
        (ChannelOrderLine("l1", "A", 2, SHIPPED), ChannelOrderLine("l2", "B", 1)),
    )
    settings = type("ChannelSettingsStub", (), {"code": "shop", "warehouses": ["main"]})()
    converted = order_in_for(settings, channel_order)  # type: ignore[arg-type]
    assert converted.lines == (
        OrderLineIn("l1", "A", 2, SHIPPED),
        OrderLineIn("l2", "B", 1, None),
    )
    store.book().apply([converted])
    assert store.levels("A") == (8, 0, 8)
    assert store.levels("B") == (10, 1, 9)
