"""Stock that arrives, moves between warehouses, or expires: written on the ledger with its
cost layers, in one transaction each, the stock rows locked in (warehouse, SKU) order as
the order book locks them.

- :func:`receive`: receipts (``sellable import receipts``). Each opens a layer at its unit
  cost converted to the base currency, with its lot and expiry.
- :func:`transfer`: units moved between warehouses with their layers (cost, lot, expiry
  and age kept), all or nothing, never more than is available.
- :func:`expire_lots`: units of lots past their expiry date stop being sellable (still on
  hand until a count or write-off takes them). Run at each date change.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, select
from sqlalchemy.exc import DBAPIError

from sellable.core import SkuWarehouse, StockKey, StockLevels
from sellable.costing.layers import CostBook, lots_text, total
from sellable.costing.money import exact
from sellable.errors import InputError
from sellable.store import ledger, schema
from sellable.store.db import writing
from sellable.store.schema import micros
from sellable.store.sql import chunked, db_time, utcnow

if TYPE_CHECKING:
    from sellable.orders.book import OrderBook
    from sellable.orders.model import OrderImportResult

log = logging.getLogger(__name__)

#: Records stock rows written (feeds the core and the outbox) inside the transaction.
Recorder = Callable[[Connection, dict[StockKey, StockLevels]], set[SkuWarehouse]]


@dataclass(frozen=True, slots=True)
class ReceiptIn:
    """Units received into a warehouse: ``unit_cost`` in ``currency``, converted at ``rate``
    (base units one unit of the currency buys on ``received_at``)."""

    sku: str
    warehouse: str
    quantity: int
    unit_cost: Decimal
    currency: str
    rate: Decimal
    received_at: datetime
    lot: str | None = None
    expires_on: date | None = None
    reference: str | None = None


@dataclass
class MoveOutcome:
    movements: int = 0
    changed: set[SkuWarehouse] = field(default_factory=set)
    retried: OrderImportResult | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def _add_to_stock(connection: Connection, deltas: Mapping[StockKey, tuple[int, int]]) -> None:
    """(on hand, expired) deltas added to locked stock rows, by the ledger's one UPDATE."""
    ledger.add_to_stock(
        connection,
        [(oh, 0, 0, ex, s, w) for (s, w), (oh, ex) in sorted(deltas.items()) if oh or ex],
    )


def _moved(
    levels: dict[StockKey, StockLevels], deltas: Mapping[StockKey, tuple[int, int]]
) -> dict[StockKey, StockLevels]:
    out = {}
    for key, (oh, ex) in deltas.items():
        old = levels.get(key) or StockLevels()
        out[key] = old._replace(on_hand=old.on_hand + oh, expired=old.expired + ex)
    return out


def receive(book: OrderBook, receipts: Sequence[ReceiptIn], today: date) -> MoveOutcome:
    """Write ``receipts`` (a Receipt movement and a layer each; one transaction), record the
    changed sellable pairs, then retry held lines, oldest first (arriving stock serves them
    first)."""
    live = book.live
    outcome = MoveOutcome()
    with live.lock:
        live.refresh()

        def run() -> None:
            with writing(book.engine) as connection:
                keys = [
                    StockKey(live.sku_id(r.sku), live.warehouse_ids[r.warehouse]) for r in receipts
                ]
                levels = ledger.lock_stock(connection, set(keys), live.known_stock)
                now = utcnow()
                at = db_time(connection, now)
                costs = CostBook(connection, now, today)
                costs.load(keys)
                movements: list[tuple[Any, ...]] = []
                deltas: dict[StockKey, tuple[int, int]] = {}
                for key, r in zip(keys, receipts, strict=True):
                    value = exact(r.unit_cost * r.rate * r.quantity)
                    layer = costs.open(
                        key[0],
                        key[1],
                        r.quantity,
                        value,
                        "receipt",
                        source="receipt",
                        reference=r.reference,
                        lot=r.lot,
                        expires_on=r.expires_on,
                        received_at=r.received_at,
                        currency=r.currency,
                        original_unit_cost=r.unit_cost,
                        rate=r.rate,
                        unit_cost=exact(r.unit_cost * r.rate),
                    )
                    expired = r.quantity if layer.expired else 0
                    movements.append(
                        (
                            *key,
                            "Receipt",
                            r.quantity,
                            r.quantity,
                            0,
                            0,
                            0,
                            expired,
                            r.reference,
                            at,
                            r.lot,
                            micros(value),
                        )
                    )
                    oh, ex = deltas.get(key, (0, 0))
                    deltas[key] = (oh + r.quantity, ex + expired)
                costs.flush()
                ledger.write_movements(connection, movements)
                _add_to_stock(connection, deltas)
                outcome.changed = live.record_levels(connection, _moved(levels, deltas))
                outcome.movements = len(movements)

        ledger.retrying(run)
        outcome.retried = book.retry_held()
    return outcome


def transfer(
    book: OrderBook,
    sku: str,
    quantity: int,
    source: str,
    destination: str,
    lot: str | None,
    today: date,
) -> MoveOutcome:
    """Move ``quantity`` units of ``sku`` (of ``lot``, else earliest expiry first, then
    oldest) from ``source`` to ``destination`` with their layers; all or nothing."""
    live = book.live
    if quantity <= 0:
        raise InputError(f"quantity must be a positive integer, got {quantity}")
    for code in (source, destination):
        if code not in live.warehouse_ids:
            raise InputError(f"unknown warehouse {code!r} (known: {', '.join(live.warehouse_ids)})")
    if source == destination:
        raise InputError(f"--from and --to are the same warehouse ({source!r})")
    outcome = MoveOutcome()
    with live.lock:
        live.refresh()
        if not live.knows(sku):
            raise InputError(f"unknown SKU {sku!r}")
        sku_id = live.sku_id(sku)
        out_key = StockKey(sku_id, live.warehouse_ids[source])
        in_key = StockKey(sku_id, live.warehouse_ids[destination])

        def run() -> None:
            with writing(book.engine) as connection:
                levels = ledger.lock_stock(connection, {out_key, in_key}, live.known_stock)
                available = levels[out_key].available
                if quantity > available:
                    raise InputError(
                        f"cannot transfer {quantity} × {sku} from {source}: only {available} "
                        "available there (on hand less locked, allocated, held and expired)"
                    )
                now = utcnow()
                costs = CostBook(connection, now, today)
                if lot is not None:
                    in_lot = sum(
                        x.remaining
                        for x in costs.layers(*out_key)
                        if x.lot == lot and x.remaining > 0 and not x.expired
                    )
                    if quantity > in_lot:
                        raise InputError(
                            f"cannot transfer {quantity} × {sku} of lot {lot!r} from {source}: "
                            f"only {in_lot} unexpired unit(s) of that lot are there"
                        )
                tr = schema.transfers
                transfer_id = connection.execute(
                    tr.insert()
                    .values(
                        sku_id=sku_id,
                        from_warehouse_id=out_key[1],
                        to_warehouse_id=in_key[1],
                        quantity=quantity,
                        lot=lot,
                        at=now,
                    )
                    .returning(tr.c.id)
                ).scalar_one()
                reference = f"TR-{transfer_id} {source}->{destination}"
                taken = costs.take(*out_key, quantity, "transfer_out", reference=reference, lot=lot)
                for t in taken:
                    layer = t.layer
                    costs.open(
                        *in_key,
                        t.quantity,
                        None if layer.unit_cost is None else t.value,
                        "transfer_in",
                        source="transfer",
                        reference=reference,
                        lot=layer.lot,
                        expires_on=layer.expires_on,
                        received_at=layer.received_at,
                        currency=layer.currency,
                        original_unit_cost=layer.original_unit_cost,
                        rate=layer.rate,
                        unit_cost=layer.unit_cost,
                    )
                costs.flush()
                at = db_time(connection, now)
                lots, value = lots_text(taken), total(taken)
                ledger.write_movements(
                    connection,
                    [
                        (
                            *out_key,
                            "Transfer",
                            -quantity,
                            -quantity,
                            0,
                            0,
                            0,
                            0,
                            reference,
                            at,
                            lots,
                            micros(-value),
                        ),
                        (
                            *in_key,
                            "Transfer",
                            quantity,
                            quantity,
                            0,
                            0,
                            0,
                            0,
                            reference,
                            at,
                            lots,
                            micros(value),
                        ),
                    ],
                )
                deltas = {out_key: (-quantity, 0), in_key: (quantity, 0)}
                _add_to_stock(connection, deltas)
                outcome.changed = live.record_levels(connection, _moved(levels, deltas))
                outcome.movements = 2
                outcome.detail = {
                    "id": f"TR-{transfer_id}",
                    "sku": sku,
                    "quantity": quantity,
                    "from": source,
                    "to": destination,
                    "lot": lot,
                    "value": value,
                    "layers": [
                        {
                            "lot": t.layer.lot,
                            "expires_on": t.layer.expires_on,
                            "quantity": t.quantity,
                            "unit_cost": t.layer.unit_cost,
                            "value": t.value,
                        }
                        for t in taken
                    ],
                }

        ledger.retrying(run)
        outcome.retried = book.retry_held()
    return outcome


def expire_lots(
    engine: Engine,
    today: date,
    record: Recorder | None = None,
    known: set[StockKey] | None = None,
) -> set[SkuWarehouse] | set[StockKey]:
    """Units of lots whose expiry date is before ``today`` stop being sellable: an Expiry
    movement per (SKU, warehouse) moves them into the stock row's ``expired``. Returns the
    changed pairs (``record``'s, else the stock keys, named in the outbox)."""
    cl = schema.cost_layers.c

    def due(connection: Connection, pairs: Iterable[StockKey] | None = None) -> list[Any]:
        query = select(cl.id, cl.sku_id, cl.warehouse_id, cl.remaining, cl.lot).where(
            cl.expired.is_(False) & (cl.expires_on < today) & (cl.remaining > 0)
        )
        rows = list(connection.execute(query))
        if pairs is not None:
            wanted = set(pairs)
            rows = [r for r in rows if (r.sku_id, r.warehouse_id) in wanted]
        return rows

    with engine.connect() as connection:
        candidates = {StockKey(r.sku_id, r.warehouse_id) for r in due(connection)}
    if not candidates:
        return set()

    def run() -> set[Any]:
        with writing(engine) as connection:
            levels = ledger.lock_stock(
                connection, candidates, known if known is not None else set()
            )
            rows = due(connection, candidates)  # again, under the locks
            if not rows:
                return set()
            for chunk in chunked([r.id for r in rows], 2000):
                connection.execute(
                    schema.cost_layers.update().where(cl.id.in_(chunk)).values(expired=True)
                )
            units: dict[StockKey, int] = {}
            lots: dict[StockKey, list[str]] = {}
            for r in rows:
                key = StockKey(r.sku_id, r.warehouse_id)
                units[key] = units.get(key, 0) + r.remaining
                if r.lot and r.lot not in lots.setdefault(key, []):
                    lots[key].append(r.lot)
            at = db_time(connection, utcnow())
            ledger.write_movements(
                connection,
                [
                    (
                        *key,
                        "Expiry",
                        n,
                        0,
                        0,
                        0,
                        0,
                        n,
                        f"expired before {today}",
                        at,
                        ",".join(lots.get(key, []))[:500] or None,
                        None,
                    )
                    for key, n in sorted(units.items())
                ],
            )
            deltas = {key: (0, n) for key, n in units.items()}
            _add_to_stock(connection, deltas)
            moved = _moved(levels, deltas)
            log.info(
                "expired lots: %d unit(s) in %d stock row(s) are no longer sellable",
                sum(units.values()),
                len(units),
            )
            if record is not None:
                return record(connection, moved)
            ledger.note_changes(connection, moved, at)
            return set(moved)

    result: set[Any] = ledger.retrying(run)
    return result


def expire_lots_if_writable(
    engine: Engine,
    today: date,
    record: Recorder | None = None,
    known: set[StockKey] | None = None,
) -> set[Any] | None:
    """:func:`expire_lots`, for readers: a database that cannot be written (read-only file
    or replica, locked too long) is logged and left as it is, so that reading still works;
    returns None then (the sweep has not happened)."""
    try:
        return expire_lots(engine, today, record, known)
    except DBAPIError as error:
        log.warning(
            "lots past their date on %s could not be marked expired (read-only database?): %s",
            today,
            str(getattr(error, "orig", error)).strip().splitlines()[0],
        )
        return None


__all__ = [
    "MoveOutcome",
    "ReceiptIn",
    "expire_lots",
    "expire_lots_if_writable",
    "receive",
    "transfer",
]
