"""Reading orders and the movement ledger back for people and scripts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, select

from sellable.costing.money import cents_text
from sellable.errors import InputError
from sellable.orders.fulfilment import fulfilments_by_order
from sellable.store import schema
from sellable.store.schema import FLAGGED_FULFILMENTS
from sellable.store.sql import iso_utc, one_of


def _pairs(text: str | None, where: str, column: str) -> list[tuple[str, str]]:
    """``a=x;b=y`` as [(a, x), (b, y)]; NULL or empty: []."""
    pairs: list[tuple[str, str]] = []
    for part in (text or "").split(";"):
        if not part:
            continue
        name, equals, value = part.partition("=")
        if not equals or not name or not value:
            raise InputError(f"{where}: unreadable {column} {text!r} (expected name=value;...)")
        pairs.append((name, value))
    return pairs


def allocations_of(text: str | None, where: str = "order line") -> list[dict[str, Any]]:
    """``order_lines.allocated_in`` ("main=3;tpl=2": the line's units allocated per
    warehouse) as ``[{"warehouse": "main", "quantity": 3}, ...]``; NULL or empty: []."""
    found = []
    for warehouse, quantity in _pairs(text, where, "allocated_in"):
        try:
            units = int(quantity)
        except ValueError:
            raise InputError(
                f"{where}: unreadable allocated_in {text!r} ({quantity!r} is not a number)"
            ) from None
        found.append({"warehouse": warehouse, "quantity": units})
    return found


def options_of(text: str | None, where: str = "order line") -> dict[str, str]:
    """``order_lines.options`` ("slot=SKU;slot=SKU") as ``{"slot": "SKU"}``; NULL: {}."""
    return dict(_pairs(text, where, "options"))


def describe_allocations(allocations: list[dict[str, Any]]) -> str:
    """The compact text form: "main 3 + tpl 2" ("" when none)."""
    return " + ".join(f"{a['warehouse']} {a['quantity']}" for a in allocations)


def list_orders(
    connection: Connection,
    *,
    held_only: bool = False,
    no_address: Mapping[int, Sequence[str]] | None = None,
) -> list[dict[str, Any]]:
    """Orders with their lines; with ``held_only``, only held lines (and their orders).

    Each line carries ``allocations`` (``[{"warehouse", "quantity"}]``, the line's units
    allocated per warehouse: a routed line may be split) and ``options`` (``{slot: SKU}``,
    the options the customer chose). Each order carries ``fulfilments``: what was sent to a
    fulfilment channel (``[{"channel", "remote_id", "reference", "status", "tracking",
    "reason"}]``). With ``held_only``, an order whose fulfilment is flagged (exception, on
    hold, cancel refused, refused) is listed too, with all its lines, and so is an order in
    ``no_address`` (order id -> the fulfilment channels it cannot be sent to for want of a
    shipping address: :meth:`Fulfilments.without_address`), which shows a fulfilment of
    status ``no_address`` per channel."""
    o, ol, w = schema.orders.c, schema.order_lines.c, schema.warehouses.c
    query = (
        select(
            o.id,
            o.channel,
            o.external_id,
            w.code,
            o.status,
            o.created_at,
            o.updated_at,
            ol.line_key,
            ol.sku,
            ol.quantity,
            ol.status,
            ol.hold_reason,
            ol.options,
            ol.allocated_in,
            ol.revenue,
            ol.currency,
        )
        .join(schema.warehouses, w.id == o.warehouse_id)
        .join(schema.order_lines, ol.order_id == o.id)
        .order_by(o.id, ol.id)
    )
    if held_only:
        f = schema.fulfilments.c
        shown = (ol.status == "held") | o.id.in_(
            select(f.order_id).where(f.status.in_(FLAGGED_FULFILMENTS))
        )
        if no_address:
            shown |= one_of(connection, o.id, sorted(no_address))
        query = query.where(shown)
    orders: dict[int, dict[str, Any]] = {}
    for (
        oid,
        channel,
        external_id,
        warehouse,
        status,
        created,
        updated,
        key,
        sku,
        qty,
        line_status,
        reason,
        options,
        allocated_in,
        revenue,
        currency,
    ) in connection.execute(query):
        order = orders.get(oid)
        if order is None:
            order = orders[oid] = {
                "channel": channel,
                "order_id": external_id,
                "warehouse": warehouse,
                "status": status,
                "created_at": iso_utc(created),
                "updated_at": iso_utc(updated),
                "lines": [],
                "fulfilments": [],
            }
        order["lines"].append(
            {
                "line_id": key,
                "sku": sku,
                "quantity": qty,
                "status": line_status,
                "hold_reason": reason,
                "allocations": allocations_of(
                    allocated_in, f"order {channel}:{external_id} line {key}"
                ),
                "options": options_of(options, f"order {channel}:{external_id} line {key}"),
                "revenue": cents_text(revenue),
                "currency": currency,
            }
        )
    for oid, sent in fulfilments_by_order(connection, list(orders), no_address).items():
        orders[oid]["fulfilments"] = sent
    return list(orders.values())


def describe_fulfilments(fulfilments: list[dict[str, Any]]) -> str:
    """The compact text form: "sb sent 12345" per fulfilment, tracking numbers after."""
    parts = []
    for sent in fulfilments:
        text = f"{sent['channel']} {sent['status']}"
        if sent["remote_id"]:
            text += f" {sent['remote_id']}"
        if sent["tracking"]:
            text += f" ({', '.join(sent['tracking'])})"
        parts.append(text)
    return "; ".join(parts)


def ledger(connection: Connection, sku: str, warehouse: str | None = None) -> list[dict[str, Any]]:
    """The movement history of ``sku`` with running balances per warehouse, oldest first.

    ``balance`` is the running on-hand quantity (the History tab's figure); ``available``
    the running on hand - locked - allocated - held - expired (held: what held lines
    claim; expired: units of lots past their date). ``lot`` and ``value`` say which lots
    the units came from or went into and what they cost (base currency, to the cent).
    """
    s, m, w = schema.skus.c, schema.movements.c, schema.warehouses.c
    sku_id = connection.execute(select(s.id).where(s.sku == sku)).scalar()
    if sku_id is None:
        raise InputError(f"unknown SKU {sku!r}")
    query = (
        select(
            m.id,
            m.at,
            m.type,
            m.quantity,
            w.code,
            m.on_hand_change,
            m.locked_change,
            m.allocated_change,
            m.held_change,
            m.expired_change,
            m.reference,
            m.lot,
            m.value,
        )
        .join(schema.warehouses, w.id == m.warehouse_id)
        .where(m.sku_id == sku_id)
        .order_by(m.id)
    )
    if warehouse is not None:
        query = query.where(w.code == warehouse)
    balances: dict[str, list[int]] = {}
    rows = []
    for row in connection.execute(query):
        (
            mid,
            at,
            kind,
            quantity,
            code,
            on_hand,
            locked,
            allocated,
            held,
            expired,
            reference,
            lot,
            value,
        ) = row
        balance = balances.setdefault(code, [0, 0, 0, 0, 0])
        balance[0] += on_hand
        balance[1] += locked
        balance[2] += allocated
        balance[3] += held
        balance[4] += expired
        rows.append(
            {
                "id": mid,
                "at": iso_utc(at),
                "sku": sku,
                "warehouse": code,
                "type": kind,
                "quantity": quantity,
                "on_hand_change": on_hand,
                "locked_change": locked,
                "allocated_change": allocated,
                "held_change": held,
                "expired_change": expired,
                "balance": balance[0],
                "available": balance[0] - balance[1] - balance[2] - balance[3] - balance[4],
                "reference": reference,
                "lot": lot,
                "value": cents_text(value),
            }
        )
    return rows
