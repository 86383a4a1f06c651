"""Order persistence: load and write orders, their lines, allocations and assembly orders.

The order book works on these records in memory inside one transaction; this module reads
them (locking the orders on PostgreSQL) and writes each table back in one bulk statement.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Connection,
    Table,
    func,
    select,
)

from sellable.core.demand import BuildStep
from sellable.orders.model import OrderKey, OrderStatus
from sellable.sdk._fulfilment import ShippingAddress
from sellable.store import schema
from sellable.store.ledger import update_rows
from sellable.store.schema import Money, micros
from sellable.store.sql import chunked, copy_rows, one_of, reserve_ids


@dataclass(slots=True)
class StoredAllocation:
    id: int | None
    sku_id: int
    warehouse_id: int
    quantity: int
    deleted: bool = False


@dataclass(slots=True)
class StoredLine:
    id: int | None
    key: str
    sku: str
    sku_id: int | None
    quantity: int
    status: str
    reason: str | None
    allocations: list[StoredAllocation] = field(default_factory=list)
    dirty: bool = False
    #: The customer's choice of options, "slot=SKU;slot=SKU" (None: the planner chooses).
    options: str | None = None
    #: Line units per warehouse where it is allocated, "main=3;tpl=2".
    allocated_in: str | None = None
    #: What the line claims while it is held (same shape as allocations).
    holds: list[StoredAllocation] = field(default_factory=list)
    #: What the line earned (after discounts, excluding tax) in ``currency``.
    revenue: Decimal | None = None
    currency: str | None = None


@dataclass(slots=True)
class StoredOrder:
    id: int | None
    channel: str
    external_id: str
    warehouse_id: int
    status: str
    created_at: datetime | None
    lines: dict[str, StoredLine] = field(default_factory=dict)
    dirty: bool = False
    #: The warehouses its lines are routed among, comma-separated (None: its own only).
    route: str | None = None
    #: Where it ships to, as stored (JSON, see :func:`address_text`); None: not given.
    #: Personal data: left out of the repr, like ShippingAddress's.
    shipping_address: str | None = field(default=None, repr=False)


@dataclass(slots=True)
class StoredBuild:
    step: BuildStep
    warehouse_id: int
    origin: str
    reference: str | None
    id: int | None = None
    #: The lot the build makes and its expiry (by hand: ``build --lot/--expires-on``).
    lot: str | None = None
    expires_on: date | None = None
    #: Set by costing: (components, labour, packaging) totals, and what was consumed as
    #: (SKU id, lot, units, value).
    cost: tuple[Decimal, Decimal, Decimal] | None = None
    consumed: list[tuple[int, str | None, int, Decimal]] = field(default_factory=list)


#: The columns of an order line that the order book writes, in :func:`_line_values` order.
_LINE_COLUMNS = (
    "sku",
    "sku_id",
    "quantity",
    "status",
    "hold_reason",
    "options",
    "allocated_in",
    "revenue",
    "currency",
)


def _line_values(line: StoredLine) -> tuple[Any, ...]:
    """A line's values for :data:`_LINE_COLUMNS`."""
    return (
        line.sku,
        line.sku_id,
        line.quantity,
        str(line.status),
        line.reason,
        line.options,
        line.allocated_in,
        line.revenue,
        line.currency,
    )


def load_orders(connection: Connection, keys: Sequence[OrderKey]) -> dict[OrderKey, StoredOrder]:
    """The stored orders with these (channel, external id) keys, with their lines and
    allocations (locked FOR UPDATE on PostgreSQL)."""
    found: dict[OrderKey, StoredOrder] = {}
    o = schema.orders.c
    by_channel: dict[str, set[str]] = {}
    for channel_code, external in keys:
        by_channel.setdefault(channel_code, set()).add(external)
    for channel_code in sorted(by_channel):
        # `channel = c AND external_id IN (...)` uses both columns of the unique index.
        for chunk in chunked(sorted(by_channel[channel_code]), 2000):
            query = select(
                o.id,
                o.channel,
                o.external_id,
                o.warehouse_id,
                o.status,
                o.created_at,
                o.route,
                o.shipping_address,
            ).where((o.channel == channel_code) & one_of(connection, o.external_id, chunk))
            if connection.dialect.name == "postgresql":
                query = query.with_for_update()
            for (
                oid,
                channel,
                external_id,
                wid,
                status,
                created,
                route,
                address,
            ) in connection.execute(query):
                found[OrderKey(channel, external_id)] = StoredOrder(
                    oid,
                    channel,
                    external_id,
                    wid,
                    status,
                    created,
                    route=route,
                    shipping_address=address,
                )
    by_id = {order.id: order for order in found.values()}
    lines: dict[int, StoredLine] = {}
    ol = schema.order_lines.c
    for id_chunk in chunked(list(by_id), 2000):
        for (
            lid,
            oid,
            key,
            sku,
            sku_id,
            qty,
            status,
            reason,
            options,
            where,
            revenue,
            currency,
        ) in connection.execute(
            select(
                ol.id,
                ol.order_id,
                ol.line_key,
                ol.sku,
                ol.sku_id,
                ol.quantity,
                ol.status,
                ol.hold_reason,
                ol.options,
                ol.allocated_in,
                ol.revenue,
                ol.currency,
            ).where(one_of(connection, ol.order_id, id_chunk))
        ):
            line = StoredLine(
                lid,
                key,
                sku,
                sku_id,
                qty,
                status,
                reason,
                options=options,
                allocated_in=where,
                revenue=None if revenue is None else Decimal(revenue),
                currency=currency,
            )
            by_id[oid].lines[key] = line
            lines[lid] = line
    la = schema.line_allocations.c
    for line_chunk in chunked(list(lines), 2000):
        for aid, lid, sku_id, wid, qty in connection.execute(
            select(la.id, la.line_id, la.sku_id, la.warehouse_id, la.quantity).where(
                one_of(connection, la.line_id, line_chunk)
            )
        ):
            lines[lid].allocations.append(StoredAllocation(aid, sku_id, wid, qty))
    held = [lid for lid, line in lines.items() if line.status == "held"]
    lh = schema.line_holds.c
    for line_chunk in chunked(held, 2000):
        for hid, lid, sku_id, wid, qty in connection.execute(
            select(lh.id, lh.line_id, lh.sku_id, lh.warehouse_id, lh.quantity).where(
                one_of(connection, lh.line_id, line_chunk)
            )
        ):
            lines[lid].holds.append(StoredAllocation(hid, sku_id, wid, qty))
    return found


def held_order_keys(connection: Connection) -> list[OrderKey]:
    """The open orders with a held line, oldest first (no created time: last)."""
    o, ol = schema.orders.c, schema.order_lines.c
    held = connection.execute(
        select(func.count()).select_from(schema.order_lines).where(ol.status == "held")
    ).scalar()
    if not held:
        return []
    return [
        OrderKey(channel, external_id)
        for channel, external_id in connection.execute(
            select(o.channel, o.external_id)
            .where(o.status == OrderStatus.OPEN.value)
            .where(select(ol.id).where((ol.order_id == o.id) & (ol.status == "held")).exists())
            .order_by(o.created_at.is_(None), o.created_at, o.id)
        )
    ]


def write_orders(
    connection: Connection,
    orders: Sequence[StoredOrder],
    builds: Sequence[StoredBuild],
    now: datetime,
    sku_id: Callable[[str], int],
) -> None:
    """Write a batch's orders, lines, allocations and assembly orders: each table in one
    bulk statement (COPY on PostgreSQL, with the new rows' ids drawn from their sequences
    first, so that nothing is read back). New rows get their ids."""
    o, ol, la = schema.orders, schema.order_lines, schema.line_allocations
    new_orders = [order for order in orders if order.id is None]
    changed_orders = [x for x in orders if x.id is not None and x.dirty]
    all_lines = [line for order in orders for line in order.lines.values()]
    dirty_lines = [line for line in all_lines if line.id is not None and line.dirty]
    new_lines = [
        (order, line) for order in orders for line in order.lines.values() if line.id is None
    ]
    # PostgreSQL: the ids of every new row of the batch in one round trip.
    order_ids, line_ids, build_ids = (
        reserve_ids(
            connection,
            [
                ("orders", len(new_orders)),
                ("order_lines", len(new_lines)),
                ("assembly_orders", len(builds)),
            ],
        )
        if connection.dialect.name == "postgresql"
        else (None, None, None)
    )
    if new_orders:
        ids = _insert_rows(
            connection,
            order_ids,
            o,
            (
                "channel",
                "external_id",
                "warehouse_id",
                "status",
                "created_at",
                "route",
                "shipping_address",
            ),
            [
                (
                    x.channel,
                    x.external_id,
                    x.warehouse_id,
                    str(x.status),
                    x.created_at,
                    x.route,
                    x.shipping_address,
                )
                for x in new_orders
            ],
            {"imported_at": now, "updated_at": now},
        )
        for order, oid in zip(new_orders, ids, strict=True):
            order.id = oid
    if changed_orders:
        update_rows(
            connection,
            o,
            ("status", "warehouse_id", "created_at", "route", "shipping_address", "updated_at"),
            [
                (
                    x.id,
                    str(x.status),
                    x.warehouse_id,
                    x.created_at,
                    x.route,
                    x.shipping_address,
                    now,
                )
                for x in changed_orders
            ],
        )
    if new_lines:
        ids = _insert_rows(
            connection,
            line_ids,
            ol,
            ("order_id", "line_key", *_LINE_COLUMNS),
            [(order.id, line.key, *_line_values(line)) for order, line in new_lines],
        )
        for (_, line), lid in zip(new_lines, ids, strict=True):
            line.id = lid
    if dirty_lines:
        update_rows(
            connection,
            ol,
            _LINE_COLUMNS,
            [(x.id, *_line_values(x)) for x in dirty_lines],
        )
    gone = [a.id for line in all_lines for a in line.allocations if a.deleted and a.id is not None]
    for chunk in chunked(gone):
        connection.execute(la.delete().where(one_of(connection, la.c.id, chunk)))
    copy_rows(
        connection,
        "line_allocations",
        ("line_id", "sku_id", "warehouse_id", "quantity"),
        [
            (line.id, a.sku_id, a.warehouse_id, a.quantity)
            for line in all_lines
            for a in line.allocations
            if a.id is None and not a.deleted
        ],
    )
    lh = schema.line_holds
    gone = [h.id for line in all_lines for h in line.holds if h.deleted and h.id is not None]
    for chunk in chunked(gone):
        connection.execute(lh.delete().where(one_of(connection, lh.c.id, chunk)))
    new_holds = [
        (line.id, h.sku_id, h.warehouse_id, h.quantity)
        for line in all_lines
        for h in line.holds
        if h.id is None and not h.deleted
    ]
    if new_holds:
        copy_rows(
            connection, "line_holds", ("line_id", "sku_id", "warehouse_id", "quantity"), new_holds
        )
    _write_builds(connection, builds, now, sku_id, build_ids)


def _write_builds(
    connection: Connection,
    builds: Sequence[StoredBuild],
    now: datetime,
    sku_id: Callable[[str], int],
    reserved: list[int] | None = None,
) -> None:
    if not builds:
        return
    ids = _insert_rows(
        connection,
        reserved,
        schema.assembly_orders,
        ("warehouse_id", "sku_id", "quantity", "origin", "reference"),
        [
            (
                b.warehouse_id,
                sku_id(b.step.sku),
                b.step.quantity,
                b.origin,
                b.reference,
            )
            for b in builds
        ],
        {"created_at": now},
    )
    for build, bid in zip(builds, ids, strict=True):
        build.id = bid
    copy_rows(
        connection,
        "assembly_order_components",
        ("assembly_order_id", "sku_id", "quantity"),
        [(b.id, sku_id(sku), q) for b in builds for sku, q in b.step.consumed],
    )


def _insert_rows(
    connection: Connection,
    ids: list[int] | None,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    same: dict[str, Any] | None = None,
) -> list[int]:
    """Insert ``rows`` (values of ``columns``, plus the ``same`` values in each) and return
    their new ids in order. PostgreSQL: ids from the sequence (``ids`` if reserved already),
    then one COPY; elsewhere an INSERT ... RETURNING for all rows."""
    same = same or {}
    if connection.dialect.name == "postgresql":
        if ids is None:
            [ids] = reserve_ids(connection, [(table.name, len(rows))])
        extra = tuple(same.values())
        # COPY bypasses the column types: money goes in as the millionths Money stores.
        money = [i for i, c in enumerate(columns) if isinstance(table.c[c].type, Money)]
        if money:
            rows = [
                tuple(micros(v) if i in money and v is not None else v for i, v in enumerate(row))
                for row in rows
            ]
        copy_rows(
            connection,
            table.name,
            ("id", *columns, *same),
            [(i, *row, *extra) for i, row in zip(ids, rows, strict=True)],
        )
        return ids
    id_column = table.c.id
    return list(
        connection.execute(
            table.insert().returning(id_column, sort_by_parameter_order=True),
            [dict(zip(columns, row, strict=True)) | same for row in rows],
        )
        .scalars()
        .all()
    )


def address_text(address: ShippingAddress | None) -> str | None:
    """A shipping address as stored: its set fields as sorted JSON (None: none)."""
    return None if address is None else json.dumps(address.to_dict(), sort_keys=True)


def address_of(text: str | None) -> ShippingAddress | None:
    """:func:`address_text` read back."""
    return None if not text else ShippingAddress.from_dict(json.loads(text))


def build_reference(build: StoredBuild) -> str:
    text = f"assembly order AO-{build.id}"
    if build.reference:
        text += f" for {build.reference}"
    return text


def utc(moment: datetime | None) -> datetime | None:
    """Times are stored in UTC (SQLite keeps no offset, so it must be UTC already)."""
    if moment is None or moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC)
