"""A stand-in for the live-stock contract (C2, C3 of issue 10) over today's ``OrderBook``.

The engine codes against ``LiveStock`` (``sellable.store.live``) and
``receive_stock_counts`` (``sellable.orders.counts``). Until those land, this module gives
the same names over the current order book; at the merge it is deleted and the imports in
``sellable.sync.engine`` and ``sellable.sync.jobs.stock`` point at the real ones.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from sellable.imports.stock import write_stock_counts
from sellable.orders import OrderBook
from sellable.orders.model import OrderImportResult
from sellable.store import schema
from sellable.store.db import writing


class LiveStock:
    """The order book's in-memory stock, seen through the C2 names."""

    def __init__(self, book: OrderBook) -> None:
        self._book = book
        self.lock = threading.RLock()

    @property
    def warehouse_ids(self) -> dict[str, int]:
        return self._book.warehouse_ids

    def reload(self) -> None:
        self._book.reload()

    def refresh(self) -> None:
        self._book.refresh()

    def knows(self, sku: str) -> bool:
        return sku in self._book.stored.catalog

    def sku_id(self, sku: str) -> int:
        return self._book.stored.sku_id(sku)

    def code(self, sku_id: int) -> str:
        return self._book.stored.code(sku_id)

    def codes_and_ids(self) -> Iterable[tuple[str, int]]:
        stored = self._book.stored
        return zip(stored.catalog.codes, stored.ids, strict=True)

    def sellable_in(self, sku: str, warehouses: Iterable[str]) -> int:
        """The sum of sellable over ``warehouses`` (unknown warehouses ignored)."""
        core = self._book.core
        known = self._book.warehouse_ids
        return sum(core.sellable(sku, w) for w in warehouses if w in known)


@dataclass(frozen=True)
class CountIn:
    sku: str
    warehouse: str
    on_hand: int
    locked: int | None = None
    reserved: int = 0


@dataclass
class CountOutcome:
    created: int = 0
    updated: int = 0
    movements: int = 0
    unknown_skus: list[str] = field(default_factory=list)
    changed: set[tuple[str, str]] = field(default_factory=set)
    retried: OrderImportResult = field(default_factory=OrderImportResult)


def receive_stock_counts(
    book: OrderBook, live: LiveStock, counts: Sequence[CountIn], source: str
) -> CountOutcome:
    """Write the counts (Adjustment movements), record the changed sellable pairs, then
    retry held lines. Unknown SKUs are skipped and listed."""
    outcome = CountOutcome()
    outcome.unknown_skus = sorted({c.sku for c in counts if not live.knows(c.sku)})
    known = [c for c in counts if live.knows(c.sku)]
    st = schema.stock.c
    with live.lock:
        book.refresh()
        with writing(book.engine) as connection:
            warehouse_ids = {live.warehouse_ids[w] for w in {c.warehouse for c in known}}
            allocated = {
                (sku_id, wid): al
                for sku_id, wid, al in connection.execute(
                    select(st.sku_id, st.warehouse_id, st.allocated).where(
                        st.warehouse_id.in_(sorted(warehouse_ids))
                    )
                )
            }
            by_id: dict[tuple[int, int], tuple[int, int | None]] = {}
            for count in known:
                key = (live.sku_id(count.sku), live.warehouse_ids[count.warehouse])
                # Units the warehouse reserved for orders we already allocated are ours on
                # hand (our allocation subtracts them); reservations for orders we have not
                # pulled yet are left out, so they are never sold twice.
                ours = min(count.reserved, max(0, allocated.get(key, 0)))
                by_id[key] = (count.on_hand + ours, count.locked)

            def record(conn: Any, levels: dict[tuple[int, int], tuple[int, int, int]]) -> None:
                outcome.changed.update(book.record_levels(conn, levels))

            outcome.created, outcome.updated, outcome.movements = write_stock_counts(
                connection, by_id, source, record
            )
    outcome.retried = book.retry_held()
    return outcome


__all__ = ["CountIn", "CountOutcome", "LiveStock", "receive_stock_counts"]
