"""Seed 004's reorder dashboard: what is at or below its reorder point, how many days the
stock lasts at the last 30 days' pace, and which assemblies to build.

``sellable reorder --json`` prints :func:`reorder_report`; the dashboard's ``/reorder``
page and ``/api/reorder`` show the same object.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import Connection, func, select

from sellable.core import SkuKind
from sellable.core.explain import unit_demand
from sellable.store import schema
from sellable.store.live import LiveStock
from sellable.store.sql import utcnow

#: The window whose consumption sets the daily pace.
WINDOW_DAYS = 30


def _bound(connection: Connection, moment: datetime) -> datetime:
    # SQLite stores naive UTC text; PostgreSQL compares timestamptz.
    if connection.dialect.name == "sqlite":
        return moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def consumed_since(
    connection: Connection, live: LiveStock, since: datetime
) -> dict[tuple[int, int], int]:
    """Units consumed per (SKU id, warehouse id) since ``since``: the units of order lines
    (orders created since then, or imported when the channel gave no time; not cancelled),
    a kit's, bundle's or package's lines counted as the units of every component
    they take (over every path through the BOM);
    and the components built into assemblies (AssemblyBuild movements since then, by hand
    or on demand)."""
    o, ol, m = schema.orders.c, schema.order_lines.c, schema.movements.c
    catalog = live.catalog
    consumed: dict[tuple[int, int], int] = {}

    def add(sku: str, warehouse_id: int, units: int) -> None:
        if sku in catalog.catalog:
            key = (catalog.sku_id(sku), warehouse_id)
            consumed[key] = consumed.get(key, 0) + units

    lines = connection.execute(
        select(ol.sku, o.warehouse_id, func.sum(ol.quantity))
        .join(schema.orders, o.id == ol.order_id)
        .where(
            (func.coalesce(o.created_at, o.imported_at) >= _bound(connection, since))
            & (o.status != "cancelled")
            & (ol.status != "cancelled")
        )
        .group_by(ol.sku, o.warehouse_id)
    )
    for sku, warehouse_id, total in lines:
        units = int(total or 0)
        add(sku, warehouse_id, units)
        if sku in catalog.catalog:
            kind = catalog.catalog.kind_of(sku)
            if kind.is_composite and kind is not SkuKind.ASSEMBLY:
                for part in unit_demand(catalog.catalog, sku).components:
                    add(part.sku, warehouse_id, part.per_unit * units)
    builds = connection.execute(
        select(m.sku_id, m.warehouse_id, func.sum(m.on_hand_change))
        .where(
            (m.type == "AssemblyBuild")
            & (m.on_hand_change < 0)
            & (m.at >= _bound(connection, since))
        )
        .group_by(m.sku_id, m.warehouse_id)
    )
    for sku_id, warehouse_id, total in builds:
        key = (sku_id, warehouse_id)
        consumed[key] = consumed.get(key, 0) - int(total or 0)
    return consumed


def days_of_cover(available: int, consumed: int, days: int = WINDOW_DAYS) -> str | None:
    """``available`` over the daily pace ``consumed / days``, to one decimal (a string, so
    JSON keeps it exact); None when nothing was consumed (the stock lasts indefinitely)."""
    if consumed <= 0:
        return None
    cover = Decimal(max(available, 0)) * days / consumed
    return str(cover.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def reorder_report(
    connection: Connection, live: LiveStock, now: datetime | None = None
) -> dict[str, Any]:
    """``items``: every stock row of a SKU with a reorder point whose available quantity is
    at or below it, lowest cover first; ``to_build``: per assembly and warehouse that can
    assemble, how many its components allow now (``buildable``, the core's component stock)
    and how many would bring it back to its reorder point (``to_reorder_point``)."""
    now = now or utcnow()
    s, st = schema.skus.c, schema.stock.c
    watched = {
        sku_id: (point, quantity)
        for sku_id, point, quantity in connection.execute(
            select(s.id, s.reorder_point, s.reorder_quantity).where(s.reorder_point.is_not(None))
        )
    }
    consumed = consumed_since(connection, live, now - timedelta(days=WINDOW_DAYS))
    core = live.core
    codes = live.warehouse_codes
    items: list[dict[str, Any]] = []
    if watched:
        rows = connection.execute(
            select(st.sku_id, st.warehouse_id).where(st.sku_id.in_(list(watched)))
        ).all()
        for sku_id, warehouse_id in sorted(rows):
            if warehouse_id not in codes or sku_id not in live.catalog.position:
                continue
            sku, warehouse = live.code(sku_id), codes[warehouse_id]
            point, quantity = watched[sku_id]
            position = core.position(sku, warehouse)
            available = position.prepackaged.available
            if available > point:
                continue
            used = consumed.get((sku_id, warehouse_id), 0)
            items.append(
                {
                    "sku": sku,
                    "warehouse": warehouse,
                    "kind": position.kind.value,
                    "available": available,
                    "sellable": position.sellable,
                    "reorder_point": point,
                    "reorder_quantity": quantity,
                    "consumed_30_days": used,
                    "days_of_cover": days_of_cover(available, used),
                }
            )
    items.sort(
        key=lambda i: (
            i["days_of_cover"] is None,
            Decimal(i["days_of_cover"] or 0),
            i["sku"],
            i["warehouse"],
        )
    )
    to_build: list[dict[str, Any]] = []
    catalog = live.catalog.catalog
    building = [w.code for w in live.settings.warehouses if w.uses_components]
    for sku in catalog.codes:
        if catalog.kind_of(sku) is not SkuKind.ASSEMBLY:
            continue
        point, quantity = watched.get(live.sku_id(sku), (None, None))
        for warehouse in building:
            position = core.position(sku, warehouse)
            buildable = position.component.available if position.component else 0
            available = position.prepackaged.available
            if point is None and buildable <= 0:
                continue
            to_build.append(
                {
                    "sku": sku,
                    "warehouse": warehouse,
                    "available": available,
                    "reorder_point": point,
                    "reorder_quantity": quantity,
                    "buildable": buildable,
                    "to_reorder_point": 0 if point is None else max(0, point - available),
                    "bottleneck": position.component.bottleneck if position.component else None,
                }
            )
    return {"window_days": WINDOW_DAYS, "items": items, "to_build": to_build}


__all__ = ["consumed_since", "days_of_cover", "reorder_report"]
