"""The use case "a stock count arrived": write the counts, record what changed, retry held
lines.

Both ``sellable import stock`` and the daemon's stock pull call
:func:`receive_stock_counts`, so that a count, wherever it comes from, allocates the held
lines it makes possible before anything is offered on a channel.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import Connection, select, tuple_

from sellable.core import SkuWarehouse, StockKey, StockLevels
from sellable.errors import InputError
from sellable.orders.book import OrderBook
from sellable.orders.model import OrderImportResult
from sellable.store import schema
from sellable.store.db import writing
from sellable.store.ledger import write_stock_counts
from sellable.store.sql import chunked


@dataclass(frozen=True)
class CountIn:
    """An absolute count of one SKU in one warehouse.

    ``locked`` None keeps the stored locked quantity. ``reserved``: units the warehouse
    reserved for the channel's own orders; counted as ours on hand only up to what we
    already allocated there (our allocation subtracts them), so reservations for orders
    not pulled yet are never sold twice.
    """

    sku: str
    warehouse: str
    on_hand: int
    locked: int | None = None
    reserved: int = 0
    #: The unit cost (base currency) of units the count adds; None: the last known.
    unit_cost: Decimal | None = None
    #: Units of ``on_hand`` the warehouse has committed to orders, ours included (a 3PL):
    #: what exceeds our own allocation of the SKU there is locked (orders that reached the
    #: warehouse some other way). None: ``locked`` as given.
    committed: int | None = None


@dataclass
class CountOutcome:
    created: int = 0
    updated: int = 0
    movements: int = 0
    unknown_skus: list[str] = field(default_factory=list)
    #: "SKU@warehouse" of the counts whose rise of on hand was not written (``no_raise``).
    not_raised: list[str] = field(default_factory=list)
    changed: set[SkuWarehouse] = field(default_factory=set)
    retried: OrderImportResult = field(default_factory=OrderImportResult)


def receive_stock_counts(
    book: OrderBook,
    counts: Sequence[CountIn],
    source: str,
    *,
    problem: Callable[[CountIn, str], None] | None = None,
    check: Callable[[], None] | None = None,
    no_raise: Collection[tuple[str, str]] = (),
) -> CountOutcome:
    """Write ``counts`` (an Adjustment movement per difference, one transaction), record
    the changed sellable pairs, then retry the held lines of open orders, oldest first.

    A count of a (SKU, warehouse code) pair in ``no_raise`` keeps the stored on hand where
    it would raise it (listed in :attr:`CountOutcome.not_raised`; its locked units are still
    written); one that lowers on hand is written. Unknown SKUs are skipped and listed.
    ``problem(count, reason)`` is told of a count that cannot be applied (else
    :class:`InputError`); ``check()`` runs inside the transaction after the counts are
    written (raising rolls them back).
    """
    live = book.live
    outcome = CountOutcome()
    with live.lock:
        live.refresh()
        outcome.unknown_skus = sorted({c.sku for c in counts if not live.knows(c.sku)})
        by_key: dict[StockKey, CountIn] = {}
        for count in counts:
            if not live.knows(count.sku):
                continue
            warehouse_id = live.warehouse_ids.get(count.warehouse)
            if warehouse_id is None:
                known = ", ".join(live.warehouse_ids)
                raise InputError(f"unknown warehouse {count.warehouse!r} (known: {known})")
            by_key[StockKey(live.sku_id(count.sku), warehouse_id)] = count

        def record(connection: Connection, levels: dict[StockKey, StockLevels]) -> None:
            outcome.changed.update(live.record_levels(connection, levels))

        with writing(book.engine) as connection:
            allocated = (
                _allocated(connection, by_key)
                if any(c.reserved or c.committed is not None for c in counts)
                else {}
            )
            values = {
                key: (
                    count.on_hand + min(count.reserved, max(0, allocated.get(key, 0))),
                    count.locked
                    if count.committed is None
                    else max(0, count.committed - max(0, allocated.get(key, 0))),
                )
                for key, count in by_key.items()
            }
            guarded = {
                key: count
                for key, count in by_key.items()
                if (count.sku, count.warehouse) in no_raise
            }
            if guarded:
                stored = _on_hand(connection, guarded)
                for key, count in guarded.items():
                    on_hand, locked = values[key]
                    if key in stored and on_hand > stored[key]:
                        values[key] = (stored[key], locked)
                        outcome.not_raised.append(f"{count.sku}@{count.warehouse}")
                outcome.not_raised.sort()
            outcome.created, outcome.updated, outcome.movements = write_stock_counts(
                connection,
                values,
                source,
                record,
                problem=None
                if problem is None
                else lambda key, reason: problem(by_key[key], reason),
                unit_costs={
                    key: count.unit_cost
                    for key, count in by_key.items()
                    if count.unit_cost is not None
                },
            )
            if check is not None:
                check()
        outcome.retried = book.retry_held()
    return outcome


def _on_hand(connection: Connection, keys: dict[StockKey, CountIn]) -> dict[StockKey, int]:
    """The stored on hand of the rows ``keys`` (a few: the guarded counts)."""
    st = schema.stock.c
    found: dict[StockKey, int] = {}
    for chunk in chunked(sorted(keys), 500):
        for sku_id, warehouse_id, on_hand in connection.execute(
            select(st.sku_id, st.warehouse_id, st.on_hand).where(
                tuple_(st.sku_id, st.warehouse_id).in_(chunk)
            )
        ):
            found[StockKey(sku_id, warehouse_id)] = on_hand
    return found


def _allocated(connection: Connection, keys: dict[StockKey, CountIn]) -> dict[StockKey, int]:
    """What is allocated now in the counted rows' warehouses."""
    st = schema.stock.c
    found: dict[StockKey, int] = {}
    for warehouse_id in sorted({k.warehouse_id for k in keys}):
        for sku_id, al in connection.execute(
            select(st.sku_id, st.allocated).where(st.warehouse_id == warehouse_id)
        ):
            found[StockKey(sku_id, warehouse_id)] = al
    return found
