"""A stock count arrived (``sellable.orders.counts``), from a CSV or the daemon's stock pull:
the counts are written, the changed sellable values recorded and held lines retried before
anything is offered. Also the order book's smaller rules this issue fixed: a zero-quantity
line leaves an order unchanged, and only the order-uniqueness constraint is retried."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from sellable.orders import OrderIn, OrderLineIn, OrderStatus
from sellable.orders.counts import CountIn, receive_stock_counts
from sellable.store.db import writing
from sellable.store.ledger import is_transient, retrying
from tests.connectors.amazon.test_e2e import FBA, OpenAmazon, open_amazon  # noqa: F401
from tests.orders.test_order_book import Store

OPEN = OrderStatus.OPEN


@pytest.fixture
def store(config_file: Path, tmp_path: Path) -> Iterator[Store]:
    opened = Store(config_file, tmp_path)
    yield opened
    opened.assert_ledger()
    opened.engine.dispose()


def held_order(warehouse: str = "main", quantity: int = 2) -> OrderIn:
    return OrderIn(
        "amazon", "HELD-1", warehouse, OPEN, (OrderLineIn("1", "ALPHABET-BUNDLE", quantity),)
    )


# -- defect 1: the daemon's stock pull retries held lines ------------------------------------


def test_a_pulled_stock_count_allocates_a_held_line_before_anything_is_offered(
    open_amazon: OpenAmazon,  # noqa: F811
) -> None:
    amazon = open_amazon(fba={"ALPHABET-BUNDLE": 0})
    amazon.run("stock")
    book = amazon.engine.book
    assert book.apply([held_order(FBA)]).lines_held == 1

    amazon.emulator.add_fba_listing("ALPHABET-BUNDLE", 10)
    result = amazon.run("stock")

    assert result.counts["skus"] == 1
    # The held line took 2 of the 10 pulled: 8 are offered, not 10.
    assert amazon.sellable("ALPHABET-BUNDLE", FBA) == 8
    retried = book.apply([held_order(FBA)])
    assert retried.orders_unchanged == 1  # allocated already: nothing held any more


def test_receive_stock_counts_writes_records_and_retries_oldest_first(store: Store) -> None:
    store.load({"A": "simple"}, stock={"A": 0})
    book = store.book()
    older = OrderIn("shop", "1", "main", OPEN, (OrderLineIn("1", "A", 3),))
    newer = OrderIn("shop", "2", "main", OPEN, (OrderLineIn("1", "A", 3),))
    assert book.apply([older]).lines_held == 1
    assert book.apply([newer]).lines_held == 1

    outcome = receive_stock_counts(
        book, [CountIn("A", "main", 4), CountIn("NOPE", "main", 1)], "test count"
    )

    assert (outcome.created, outcome.updated, outcome.movements) == (0, 1, 1)
    assert outcome.unknown_skus == ["NOPE"]
    # The two held lines claim all 6 of A they want: the 4 counted are spoken for before and
    # after the retry, so A's sellable stays 0 and no sellable value changed.
    assert outcome.changed == set()
    assert (outcome.retried.lines_allocated, outcome.retried.lines_held) == (1, 1)
    assert [ref for ref, _line, _why in outcome.retried.held] == ["order shop:2"]
    # Order 1 is allocated 3; order 2 stays held, claiming the 3 it wants (1 is there):
    # nothing of A is offered to anyone else.
    assert store.row("A") == (4, 0, 3, 3)
    assert store.levels("A") == (4, 3, -2)
    assert book.live.core.sellable("A", "main") == 0


def test_reserved_units_count_as_ours_only_up_to_what_we_allocated(store: Store) -> None:
    store.load({"A": "simple"}, stock={"A": 5})
    book = store.book()
    book.apply([OrderIn("shop", "1", "main", OPEN, (OrderLineIn("1", "A", 2),))])

    receive_stock_counts(book, [CountIn("A", "main", 3, reserved=5)], "pull")

    assert store.levels("A") == (5, 2, 3)  # 3 fulfillable + 2 of the 5 reserved are ours


# -- defect 2: a zero-quantity line leaves the order unchanged --------------------------------


def test_an_order_with_a_zero_quantity_line_is_unchanged_on_re_pull(store: Store) -> None:
    store.load({"A": "simple", "B": "simple"}, stock={"A": 10, "B": 10})
    book = store.book()
    order = OrderIn("shop", "1", "main", OPEN, (OrderLineIn("1", "A", 2), OrderLineIn("2", "B", 0)))
    first = book.apply([order])
    assert first.orders_created == 1 and len(first.notes) == 1

    again = book.apply([order])

    assert (again.orders_unchanged, again.orders_updated, again.notes) == (1, 0, [])
    assert again.movements == 0
    assert store.levels("A") == (10, 2, 8)


# -- defect 3: only the order-uniqueness constraint is a transient conflict -------------------


def _integrity_error(store: Store, statement: str) -> IntegrityError:
    with pytest.raises(IntegrityError) as caught, writing(store.engine) as connection:
        connection.execute(text(statement))
        connection.execute(text(statement))
    return caught.value


def test_only_the_order_uniqueness_conflict_is_retried(store: Store) -> None:
    store.load({"A": "simple"})
    order = (
        "INSERT INTO orders (channel, external_id, warehouse_id, status, imported_at, updated_at)"
        " SELECT 'shop', 'X', id, 'open', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP FROM warehouses"
        " WHERE code = 'main'"
    )
    assert is_transient(_integrity_error(store, order))

    other = (
        "INSERT INTO skus (sku, name, kind, allow_backorder)"
        " SELECT sku, name, kind, allow_backorder FROM skus WHERE sku = 'A'"
    )
    error = _integrity_error(store, other)
    assert "UNIQUE" in str(error.orig).upper()
    assert not is_transient(error)
    calls: list[int] = []

    def fails() -> None:
        calls.append(1)
        raise error

    with pytest.raises(IntegrityError):
        retrying(fails)
    assert len(calls) == 1
