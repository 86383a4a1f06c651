"""``sellable import orders FILE.csv``: channel,order_id,sku,quantity,warehouse
[,line_id][,status][,created_at][,options]. Rows of one order are its lines.

An empty ``warehouse`` routes the order's lines among the warehouses of the channel, in
their listed order (``OrderIn.route``); a named one books them there only. ``options`` is
``slot=SKU;slot=SKU``: the options the customer chose (whether the slot and SKU belong to
the line's BOM is the order book's check)."""

from __future__ import annotations

import os
from datetime import UTC, datetime

from sqlalchemy import Engine, select

from sellable.config import Settings
from sellable.imports.csvfile import (
    CsvFile,
    Progress,
    RowRejected,
    currency_cell,
    identifier,
    optional_decimal,
    positive_int,
    required_text,
)
from sellable.orders.model import OrderIn, OrderLineIn, OrderStatus
from sellable.store import schema
from sellable.store.loader import StoredCatalog
from sellable.store.sql import chunked, one_of

STATUSES = tuple(s.value for s in OrderStatus)


def _status(column: str, value: str) -> OrderStatus:
    if not value:
        return OrderStatus.OPEN
    try:
        return OrderStatus(value.lower())
    except ValueError:
        raise RowRejected(
            column, value, f"unknown status (expected one of: {', '.join(STATUSES)})"
        ) from None


def _timestamp(column: str, value: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise RowRejected(
            column, value, "must be an ISO 8601 time, e.g. 2026-11-23T10:00:00Z"
        ) from None
    try:
        return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except OverflowError:  # 9999-12-31T23:59:59-14:00 is in the year 10000 in UTC
        raise RowRejected(
            column, value, "is out of range (in UTC it falls outside the years 1 to 9999)"
        ) from None


def _options(column: str, value: str) -> tuple[tuple[str, str], ...]:
    """``slot=SKU;slot=SKU`` as (slot, SKU) pairs in the given order; empty: none."""
    if not value:
        return ()
    pairs: list[tuple[str, str]] = []
    for part in value.split(";"):
        slot, equals, sku = (x.strip() for x in part.partition("="))
        if not equals:
            raise RowRejected(
                column, value, f"{part.strip()!r} is not slot=SKU (write slot=SKU;slot=SKU)"
            )
        if not slot or not sku:
            missing = "slot" if not slot else "SKU"
            raise RowRejected(
                column, value, f"{part.strip()!r} has an empty {missing} (write slot=SKU;slot=SKU)"
            )
        if any(slot == seen for seen, _sku in pairs):
            raise RowRejected(column, value, f"slot {slot!r} is given twice")
        for name, code in (("slot", slot), ("SKU", sku)):
            try:
                identifier(column, code)
            except RowRejected as err:
                raise RowRejected(column, value, f"{name} {code!r} {err.reason}") from None
        pairs.append((slot, sku))
    return tuple(pairs)


def read_orders_csv(
    path: str | os.PathLike[str],
    settings: Settings,
    stored: StoredCatalog,
    engine: Engine,
    progress: Progress | None = None,
) -> list[OrderIn]:
    """Parse and check the whole file; raise :class:`InputError` listing every bad row."""
    csv_file = CsvFile(
        path,
        ("channel", "order_id", "sku", "quantity", "warehouse"),
        ("line_id", "status", "created_at", "options", "unit_price", "currency"),
        progress,
    )
    warehouses = {w.code for w in settings.warehouses}
    known = ", ".join(sorted(warehouses))
    # Stock is allocated for what is imported: a mistyped channel would sell it for nobody.
    channels = set(settings.channel_codes())
    routes = {c.code: tuple(c.warehouses) for c in settings.channels}
    unknown_channel = (
        f"unknown channel (known: {settings.known_channels()}); declare a channel that "
        'takes orders by CSV only as [[channels]] with connector = "manual"'
    )
    orders: dict[tuple[str, str], dict[str, object]] = {}
    first_line: dict[tuple[str, str], int] = {}
    for line, row in csv_file:
        channel = csv_file.field(line, required_text, "channel", row["channel"])
        order_id = csv_file.field(line, required_text, "order_id", row["order_id"])
        sku = csv_file.field(line, required_text, "sku", row["sku"])
        quantity = csv_file.field(line, positive_int, "quantity", row["quantity"])
        status = csv_file.field(line, _status, "status", row["status"])
        created = csv_file.field(line, _timestamp, "created_at", row["created_at"])
        options = csv_file.field(line, _options, "options", row["options"])
        # Revenue per unit, after discounts, excluding tax; in the base currency if none.
        unit_price = csv_file.field(line, optional_decimal, "unit_price", row["unit_price"])
        if unit_price is not None and unit_price < 0:
            csv_file.reject(line, "unit_price", row["unit_price"], "must not be negative")
        currency = row["currency"] and csv_file.field(
            line, currency_cell, "currency", row["currency"]
        )
        line_id = row["line_id"] and csv_file.field(line, required_text, "line_id", row["line_id"])
        warehouse = row["warehouse"]
        if channel is not None and channel not in channels:
            reason = unknown_channel
            if not warehouse:
                reason += "; an empty warehouse routes the line among that channel's warehouses"
            csv_file.reject(line, "channel", channel, reason)
            continue
        if warehouse and warehouse not in warehouses:
            csv_file.reject(line, "warehouse", warehouse, f"unknown warehouse (known: {known})")
            continue
        if sku is not None and sku not in stored.catalog:
            csv_file.reject(
                line, "sku", sku, "unknown SKU (import it with 'sellable import products' first)"
            )
            continue
        if None in (channel, order_id, sku, quantity, status, options, line_id):
            continue
        assert channel is not None and order_id is not None and sku is not None
        assert quantity is not None and status is not None and options is not None
        key = (channel, order_id)
        # Empty: routed among the channel's warehouses, booked first in the first of them.
        route = () if warehouse else routes[channel]
        order = orders.get(key)
        if order is None:
            order = orders[key] = {
                "warehouse": warehouse or route[0],
                "route": route,
                "cell": warehouse,
                "status": status,
                "created_at": created,
                "lines": {},
            }
            first_line[key] = line
        elif order["cell"] != warehouse:
            had = (
                f"warehouse {order['cell']!r}"
                if order["cell"]
                else "an empty warehouse (routed among the channel's warehouses)"
            )
            csv_file.reject(
                line,
                "warehouse",
                warehouse,
                f"order {channel}:{order_id} has {had} on line {first_line[key]}",
            )
            continue
        elif order["status"] != status:
            csv_file.reject(
                line,
                "status",
                row["status"],
                f"order {channel}:{order_id} has status {order['status']!s} "
                f"on line {first_line[key]}",
            )
            continue
        lines = order["lines"]
        assert isinstance(lines, dict)
        line_id = line_id or sku
        if line_id in lines:
            csv_file.reject(
                line,
                "line_id" if row["line_id"] else "sku",
                line_id,
                f"duplicate line in order {channel}:{order_id} (line "
                f"{lines[line_id][0]}); give each line its own line_id",
            )
            continue
        revenue = None if unit_price is None or quantity is None else unit_price * quantity
        lines[line_id] = (
            line,
            OrderLineIn(
                line_id,
                sku,
                quantity,
                options=options,
                revenue=revenue,
                currency=(currency or settings.costing.currency) if revenue is not None else None,
            ),
        )
    _refuse_warehouse_moves(engine, orders, first_line, csv_file)
    csv_file.raise_errors()
    result = []
    for (channel, order_id), order in orders.items():
        lines = order["lines"]
        assert isinstance(lines, dict)
        result.append(
            OrderIn(
                channel=channel,
                order_id=order_id,
                warehouse=str(order["warehouse"]),
                status=OrderStatus(str(order["status"])),
                lines=tuple(entry[1] for entry in lines.values()),
                created_at=order["created_at"]
                if isinstance(order["created_at"], datetime)
                else None,
                route=tuple(order["route"]) if isinstance(order["route"], tuple) else (),
            )
        )
    return result


def _refuse_warehouse_moves(
    engine: Engine,
    orders: dict[tuple[str, str], dict[str, object]],
    first_line: dict[tuple[str, str], int],
    csv_file: CsvFile,
) -> None:
    """An order whose stock is allocated (or shipped) cannot change warehouse."""
    o, w = schema.orders.c, schema.warehouses.c
    ol, la = schema.order_lines.c, schema.line_allocations.c
    by_channel: dict[str, list[str]] = {}
    for channel_code, external in sorted(orders):
        by_channel.setdefault(channel_code, []).append(external)
    chunks = [
        (channel_code, chunk)
        for channel_code, externals in by_channel.items()
        for chunk in chunked(externals, 2000)
    ]
    with engine.connect() as connection:
        for channel_code, chunk in chunks:
            # `channel = c AND external_id = ANY(...)` uses both columns of the unique index
            # (a list of (channel, id) tuples plans as an OR). Which of the orders hold
            # allocations is asked in two more index lookups: as an `OR EXISTS (...)` here,
            # PostgreSQL hashed every allocated line of every order (0.2-0.5 s a chunk).
            found = list(
                connection.execute(
                    select(o.id, o.channel, o.external_id, w.code, o.status)
                    .join(schema.warehouses, w.id == o.warehouse_id)
                    .where((o.channel == channel_code) & one_of(connection, o.external_id, chunk))
                )
            )
            pending = [row.id for row in found if row.status != "shipped"]
            lines: dict[int, int] = {}  # line id: order id
            for ids in chunked(pending, 2000):
                for line_id, order_id in connection.execute(
                    select(ol.id, ol.order_id).where(one_of(connection, ol.order_id, ids))
                ):
                    lines[line_id] = order_id
            allocated: set[int] = set()
            for ids in chunked(list(lines), 5000):
                allocated.update(
                    lines[line_id]
                    for line_id in connection.execute(
                        select(la.line_id).where(one_of(connection, la.line_id, ids)).distinct()
                    ).scalars()
                )
            for _order_id, channel, external_id, code, _status_now in (
                row for row in found if row.status == "shipped" or row.id in allocated
            ):
                key = (channel, external_id)
                order = orders[key]
                # A routed order may stay where its stock is, if that is on its route.
                allowed = order["route"] or (order["warehouse"],)
                assert isinstance(allowed, tuple)
                if code not in allowed:
                    routed = (
                        "" if order["cell"] else f" (routed among {', '.join(map(str, allowed))})"
                    )
                    csv_file.reject(
                        first_line[key],
                        "warehouse",
                        str(order["cell"]),
                        f"order {channel}:{external_id} is already allocated in warehouse "
                        f"{code!r} and cannot change warehouse{routed}",
                    )
