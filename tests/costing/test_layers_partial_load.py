"""``CostBook.load(pairs, demand)`` reads only the layers a batch's takes can reach (the
FEFO/FIFO prefix covering the demand; a pair it cannot cover is read whole, expired
layers and deficits included); whatever goes beyond it (a larger take, a lot, a count,
an arrival) reads the rest first. On SQLite and
PostgreSQL, each scenario runs twice on the same stored layers, once on a book loaded
whole and once on a book loaded for a small demand (rolled back in between), and must
take exactly the same units: the same layers, lots, quantities and values, the same
deficits, flows and stored layers afterwards.

The layers of ``A`` in ``main``, in consumption order (``today`` is the merchant's today):

======  =====  =========  ============  ===========  ==========
lot     units  unit cost  expires       received     order
======  =====  =========  ============  ===========  ==========
L-SOON      4       3.00  today + 10    2026-02-10   1 (FEFO)
L-JAN       5       2.00  today + 100   2026-01-10   2
L-ODD       7     1.3333  today + 100   2026-01-20   3
L-OLD       6       4.00  -             2026-01-05   4 (FIFO)
L-D         3       5.00  -             2026-03-01   5
L-GONE      2       7.00  today - 5     2026-01-01   expired
======  =====  =========  ============  ===========  ==========
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, func, select

from sellable.costing.layers import CostBook, Taken
from sellable.store import schema
from tests.costing.test_costing_cli import Books

USABLE = 4 + 5 + 7 + 6 + 3  # unexpired units of A in main
OPEN_LAYERS = 6

Scenario = Callable[[CostBook, tuple[int, int]], list[list[Taken]]]


@pytest.fixture
def stocked(tmp_path: Path, database_url: str) -> Any:
    books = Books(tmp_path, database_url)
    books.products("A,Widget,simple,10,,,")
    today = datetime.now(UTC).date()

    def day(days: int) -> str:
        return (today + timedelta(days=days)).isoformat()

    books.receipts(
        f"A,main,4,3.00,,L-SOON,{day(10)},2026-02-10T09:00:00Z,r1",
        f"A,main,5,2.00,,L-JAN,{day(100)},2026-01-10T09:00:00Z,r2",
        f"A,main,7,1.3333,,L-ODD,{day(100)},2026-01-20T09:00:00Z,r3",
        "A,main,6,4.00,,L-OLD,,2026-01-05T09:00:00Z,r4",
        "A,main,3,5.00,,L-D,,2026-03-01T09:00:00Z,r5",
        f"A,main,2,7.00,,L-GONE,{day(-5)},2026-01-01T09:00:00Z,r6",
    )
    engine = books.engine()
    with engine.connect() as connection:
        sku = connection.execute(select(schema.skus.c.id).where(schema.skus.c.sku == "A")).one()
        warehouse = connection.execute(
            select(schema.warehouses.c.id).where(schema.warehouses.c.code == "main")
        ).one()
    yield engine, (sku[0], warehouse[0]), today
    engine.dispose()


def _run(
    engine: Engine,
    pair: tuple[int, int],
    today: date,
    scenario: Scenario,
    demand: int | None,
) -> tuple[list[list[tuple[Any, ...]]], list[tuple[Any, ...]], list[tuple[Any, ...]], int]:
    """Run ``scenario`` on a book loaded whole (``demand`` None) or for ``demand`` units;
    return what each take took, the stored layers and the flows written, and how many
    layers the first load read. Rolled back afterwards."""
    with engine.connect() as connection, connection.begin() as transaction:
        stored_before = connection.execute(select(func.max(schema.cost_layers.c.id))).scalar()
        book = CostBook(connection, datetime.now(UTC), today)
        book.load([pair], None if demand is None else {pair: demand})
        first_read = len(book.open_layers[pair])
        takes = scenario(book, pair)
        taken = [[_taken(t) for t in take] for take in takes]
        book.flush()
        layers, flows = _stored(connection, stored_before)
        transaction.rollback()
    return taken, layers, flows, first_read


def _taken(t: Taken) -> tuple[Any, ...]:
    x = t.layer
    # A deficit has no id yet; the stored layers are compared by id.
    return (x.id, x.lot, t.quantity, t.value, x.unit_cost, x.expired, x.estimated, x.source)


def _stored(
    connection: Connection, stored_before: int
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    cl, lf = schema.cost_layers.c, schema.layer_flows.c
    layers = [
        # New layers' ids differ between runs on PostgreSQL (sequences do not roll back).
        (x.id if x.id <= stored_before else None, *x[1:])
        for x in connection.execute(
            select(
                cl.id, cl.source, cl.lot, cl.quantity, cl.remaining, cl.value, cl.unit_cost
            ).order_by(cl.id)
        )
    ]
    flows = [
        tuple(f)
        for f in connection.execute(
            select(cl.source, cl.lot, lf.kind, lf.quantity, lf.value)
            .join(schema.cost_layers, cl.id == lf.layer_id)
            .where(lf.kind != "receipt")
            .order_by(lf.id)
        )
    ]
    return layers, flows


def _beyond_the_prefix(book: CostBook, pair: tuple[int, int]) -> list[list[Taken]]:
    sku, warehouse = pair
    return [
        book.take(sku, warehouse, 3, "sale", expired_last=True),  # inside the prefix
        book.take(sku, warehouse, 10, "sale", expired_last=True),  # beyond it
    ]


def _by_lot(book: CostBook, pair: tuple[int, int]) -> list[list[Taken]]:
    sku, warehouse = pair
    return [
        book.take(sku, warehouse, 2, "sale", expired_last=True),
        book.take(sku, warehouse, 2, "transfer_out", lot="L-D", past_stock=False),
    ]


def _count_lowers_on_hand(book: CostBook, pair: tuple[int, int]) -> list[list[Taken]]:
    sku, warehouse = pair
    return [
        book.take(sku, warehouse, 1, "sale", expired_last=True),
        # A count takes expired units first, then FEFO/FIFO.
        book.take(sku, warehouse, 5, "writeoff", expired_first=True),
    ]


def _arrival(book: CostBook, pair: tuple[int, int]) -> list[list[Taken]]:
    sku, warehouse = pair
    first = book.take(sku, warehouse, 2, "sale", expired_last=True)
    book.open(
        sku,
        warehouse,
        5,
        Decimal("12.50"),
        "receipt",
        source="receipt",
        lot="L-NEW",
        received_at=datetime(2026, 1, 2, tzinfo=UTC),  # older than every FIFO layer
    )
    return [first, book.take(sku, warehouse, 30, "sale", expired_last=True)]


def _past_every_layer(book: CostBook, pair: tuple[int, int]) -> list[list[Taken]]:
    sku, warehouse = pair
    # Every unexpired unit, then the expired ones (allocated before they expired), then
    # a deficit at the last known unit cost.
    return [book.take(sku, warehouse, USABLE + 4, "sale", expired_last=True)]


SCENARIOS = {
    "take-beyond-prefix": (_beyond_the_prefix, 3),
    "take-by-lot": (_by_lot, 2),
    "count-lowers-on-hand": (_count_lowers_on_hand, 1),
    "arrival-on-partial-pair": (_arrival, 2),
    "expired-and-deficit": (_past_every_layer, 1),
}


@pytest.mark.parametrize("name", list(SCENARIOS), ids=list(SCENARIOS))
def test_partial_load_takes_what_a_full_load_takes(stocked: Any, name: str) -> None:
    engine, pair, today = stocked
    scenario, demand = SCENARIOS[name]
    full = _run(engine, pair, today, scenario, None)
    partial = _run(engine, pair, today, scenario, demand)
    assert full[3] == OPEN_LAYERS
    # Only the prefix covering the demand was read at first.
    assert partial[3] < OPEN_LAYERS
    assert partial[:3] == full[:3]


def _units(taken: list[tuple[Any, ...]]) -> list[tuple[str | None, int, Decimal]]:
    return [(lot, quantity, value) for _, lot, quantity, value, *_ in taken]


def test_partial_load_take_beyond_prefix_goes_on_fefo_then_fifo(stocked: Any) -> None:
    engine, pair, today = stocked
    taken, _, _, read = _run(engine, pair, today, _beyond_the_prefix, 3)
    assert read == 2  # L-GONE (expired, and first by expiry), then L-SOON covers the demand
    assert _units(taken[0]) == [("L-SOON", 3, Decimal("9.00"))]
    assert _units(taken[1]) == [
        ("L-SOON", 1, Decimal("3.00")),
        ("L-JAN", 5, Decimal("10.00")),
        ("L-ODD", 4, Decimal("5.3332")),
    ]


def test_partial_load_take_by_lot_and_count(stocked: Any) -> None:
    engine, pair, today = stocked
    taken, _, _, _ = _run(engine, pair, today, _by_lot, 2)
    assert _units(taken[1]) == [("L-D", 2, Decimal("10.00"))]
    taken, layers, _, _ = _run(engine, pair, today, _count_lowers_on_hand, 1)
    assert _units(taken[1]) == [
        ("L-GONE", 2, Decimal("14.00")),
        ("L-SOON", 3, Decimal("9.00")),
    ]
    assert [t[5] for t in taken[1]] == [True, False]  # the expired units first
    remaining = {lot: left for _, source, lot, _, left, *_ in layers if source == "receipt"}
    assert remaining == {"L-SOON": 0, "L-JAN": 5, "L-ODD": 7, "L-OLD": 6, "L-D": 3, "L-GONE": 0}


def test_partial_load_arrival_joins_fifo_in_received_order(stocked: Any) -> None:
    engine, pair, today = stocked
    taken, layers, _, _ = _run(engine, pair, today, _arrival, 2)
    assert _units(taken[0]) == [("L-SOON", 2, Decimal("6.00"))]
    # FEFO lots, then FIFO: the new lot was received before L-OLD and L-D.
    assert [lot for _, lot, *_ in taken[1]] == [
        "L-SOON",
        "L-JAN",
        "L-ODD",
        "L-NEW",
        "L-OLD",
        "L-D",
        "L-GONE",  # 28 unexpired units, then 2 expired ones
    ]
    assert sum(q for _, _, q, *_ in taken[1]) == 30
    assert _units(taken[1])[3] == ("L-NEW", 5, Decimal("12.50"))
    new = [x for x in layers if x[2] == "L-NEW"]
    assert new == [(None, "receipt", "L-NEW", 5, 0, Decimal("0"), Decimal("2.50"))]


def test_partial_load_past_every_layer_takes_expired_then_a_deficit(stocked: Any) -> None:
    engine, pair, today = stocked
    taken, layers, _, _ = _run(engine, pair, today, _past_every_layer, 1)
    units = _units(taken[0])
    assert [lot for lot, _, _ in units] == [
        "L-SOON",
        "L-JAN",
        "L-ODD",
        "L-OLD",
        "L-D",
        "L-GONE",
        None,
    ]
    assert units[5] == ("L-GONE", 2, Decimal("14.00"))
    # 2 units no layer holds: a deficit at the last known unit cost (L-D's, the newest).
    assert units[6] == (None, 2, Decimal("10.00"))
    assert taken[0][6][6] is True and taken[0][6][7] == "deficit"
    deficits = [x for x in layers if x[1] == "deficit"]
    assert deficits == [(None, "deficit", None, -2, -2, Decimal("-10.00"), Decimal("5.00"))]


def test_a_demand_beyond_every_usable_unit_reads_the_pair_whole(stocked: Any) -> None:
    """The prefix covering more units than the pair holds is every layer: the pair is
    whole, and the take past every layer gives what a full load gives."""
    engine, pair, today = stocked
    full = _run(engine, pair, today, _past_every_layer, None)
    beyond = _run(engine, pair, today, _past_every_layer, USABLE + 4)
    assert beyond[3] == OPEN_LAYERS
    assert beyond[:3] == full[:3]
