"""Costing the order book's movements: a shipped line consumes layers (its cost of goods,
split per component with its share of the revenue), a build consumes its components'
layers and opens one on the assembly (components + labour + packaging, with a lot whose
expiry is the earliest of what went in)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, select

from sellable.config import CostingSettings
from sellable.costing.layers import CostBook, Taken, lots_text, total
from sellable.costing.money import ZERO, exact, split_cents
from sellable.costing.rates import Rates
from sellable.store import schema
from sellable.store.ledger import update_rows
from sellable.store.schema import micros
from sellable.store.sql import chunked, copy_rows, db_time, one_of


@dataclass(slots=True)
class CostedMove:
    """One on-hand movement of an order batch: a Sale (of ``line``) or an AssemblyBuild
    (of ``build``). Costing fills the movement's ``lot`` and ``value`` (and a Sale's
    ``expired_change``)."""

    move: Any
    line: Any = None
    build: Any = None


@dataclass(slots=True)
class _BuildCost:
    components: Decimal = ZERO
    expires_on: date | None = None
    uncosted: bool = True  # every consumed unit uncosted (so far)
    consumed: list[Taken] = field(default_factory=list)


@dataclass(slots=True)
class _LinePart:
    sku_id: int
    warehouse_id: int
    quantity: int = 0
    cost: Decimal = ZERO
    estimated: int = 0
    uncosted: int = 0


def cost_movements(
    connection: Connection,
    settings: CostingSettings,
    now: datetime,
    moves: Sequence[CostedMove],
    costs: CostBook | None = None,
) -> CostBook | None:
    """Cost ``moves`` (in the order they happened) inside the caller's transaction."""
    if not moves:
        return None
    today = settings.today()
    book = costs or CostBook(connection, now, today)
    # What the batch takes per (SKU, warehouse): only the layers that can reach are read.
    # A pair that also receives (a build's output) is read whole.
    demand: dict[tuple[int, int], int] = {}
    arriving: set[tuple[int, int]] = set()
    for c in moves:
        pair = (c.move.sku_id, c.move.warehouse_id)
        if c.move.on_hand_change < 0:
            demand[pair] = demand.get(pair, 0) - c.move.on_hand_change
        else:
            arriving.add(pair)
    book.load(
        {(c.move.sku_id, c.move.warehouse_id) for c in moves},
        {p: n for p, n in demand.items() if p not in arriving},
    )
    builds: dict[int, _BuildCost] = {}
    lines: dict[int, tuple[Any, dict[tuple[int, int], _LinePart]]] = {}
    built_orders: list[tuple[Any, ...]] = []  # assembly orders' cost: one UPDATE at the end
    build_skus = {c.move.sku_id for c in moves if c.build is not None and c.move.on_hand_change > 0}
    extras = _labour_and_packaging(connection, build_skus)
    for costed in moves:
        m = costed.move
        units = abs(m.on_hand_change)
        if m.type == "Sale":
            line = costed.line
            taken = book.take(
                m.sku_id,
                m.warehouse_id,
                units,
                "sale",
                line_id=line.id,
                reference=m.reference,
                expired_last=True,
            )
            m.lot, m.value = lots_text(taken), -total(taken)
            # Units allocated before their lot expired, shipped after: they leave expired.
            m.expired_change = -sum(t.quantity for t in taken if t.expired)
            parts = lines.setdefault(line.id, (line, {}))[1]
            part = parts.setdefault((m.sku_id, m.warehouse_id), _LinePart(m.sku_id, m.warehouse_id))
            part.quantity += units
            for t in taken:
                part.cost += t.value
                if t.layer.estimated:
                    part.estimated += t.quantity
                if t.layer.unit_cost is None:
                    part.uncosted += t.quantity
            continue
        build = costed.build
        state = builds.setdefault(build.id, _BuildCost())
        reference = f"AO-{build.id}"
        if m.on_hand_change < 0:
            taken = book.take(
                m.sku_id,
                m.warehouse_id,
                units,
                "build_out",
                assembly_order_id=build.id,
                reference=reference,
            )
            m.lot, m.value = lots_text(taken), -total(taken)
            state.components += total(taken)
            state.consumed.extend(taken)
            for t in taken:
                if t.layer.unit_cost is not None:
                    state.uncosted = False
                expiry = t.layer.expires_on
                if expiry is not None and (state.expires_on is None or expiry < state.expires_on):
                    state.expires_on = expiry
            continue
        labour_each, packaging_each = extras.get(m.sku_id, (ZERO, ZERO))
        labour, packaging = exact(labour_each * units), exact(packaging_each * units)
        expires_on = state.expires_on
        if build.expires_on is not None and (expires_on is None or build.expires_on < expires_on):
            expires_on = build.expires_on
        lot = build.lot or reference
        uncosted = state.uncosted and not labour and not packaging
        value = state.components + labour + packaging
        built = book.open(
            m.sku_id,
            m.warehouse_id,
            units,
            None if uncosted else value,
            "build_in",
            source="build",
            reference=reference,
            lot=lot,
            expires_on=expires_on,
            assembly_order_id=build.id,
        )
        m.lot, m.value = lot, value
        if built.expired:
            # Built with an expiry date already past (--expires-on): on hand, not sellable.
            m.expired_change = units
        build.lot, build.expires_on = lot, expires_on
        build.cost = (state.components, labour, packaging)
        build.consumed = [
            (t.layer.sku_id, t.layer.lot, t.quantity, t.value) for t in state.consumed
        ]
        built_orders.append((build.id, lot, expires_on, state.components, labour, packaging))
    update_rows(
        connection,
        schema.assembly_orders,
        ("lot", "expires_on", "components_cost", "labour_cost", "packaging_cost"),
        built_orders,
    )
    if lines:
        # Before the layers are flushed: a settlement in this batch adjusts these rows.
        _write_line_costs(connection, settings, now, today, lines)
    book.flush()
    return book


def _labour_and_packaging(
    connection: Connection, sku_ids: set[int]
) -> dict[int, tuple[Decimal, Decimal]]:
    if not sku_ids:
        return {}
    sk = schema.skus.c
    found: dict[int, tuple[Decimal, Decimal]] = {}
    for chunk in chunked(sorted(sku_ids), 2000):
        for sku_id, labour, packaging in connection.execute(
            select(sk.id, sk.labour_cost, sk.packaging_cost).where(one_of(connection, sk.id, chunk))
        ):
            found[sku_id] = (labour or ZERO, packaging or ZERO)
    return found


def _write_line_costs(
    connection: Connection,
    settings: CostingSettings,
    now: datetime,
    today: date,
    lines: dict[int, tuple[Any, dict[tuple[int, int], _LinePart]]],
) -> None:
    """One line_costs row per shipped line and SKU consumed, with its share of the line's
    revenue: in proportion to list price (every part priced), else to cost, to the cent
    by largest remainder."""
    wanted = {
        part.sku_id
        for line, parts in lines.values()
        if line.revenue is not None
        for part in parts.values()
    }
    prices: dict[int, Decimal | None] = {}
    sk = schema.skus.c
    for chunk in chunked(sorted(wanted), 2000):
        for sku_id, price in connection.execute(
            select(sk.id, sk.price).where(one_of(connection, sk.id, chunk))
        ):
            prices[sku_id] = None if price is None else Decimal(price)
    rates = Rates(connection, settings.currency)
    at = db_time(connection, now)
    rows = []
    for line, parts in lines.values():
        ordered = list(parts.values())
        revenue: Decimal | None = None
        if line.revenue is not None:
            rate = rates.on(line.currency or settings.currency, today)
            revenue = None if rate is None else line.revenue * rate
        shares: list[Decimal | None] = [None] * len(ordered)
        if revenue is not None:
            listed = [prices.get(p.sku_id) for p in ordered]
            if all(price is not None for price in listed):
                weights = [
                    (price or ZERO) * p.quantity for price, p in zip(listed, ordered, strict=True)
                ]
            else:
                weights = [p.cost for p in ordered]
            shares = list(split_cents(revenue, weights))
        for part, part_revenue in zip(ordered, shares, strict=True):
            rows.append(
                (
                    line.id,
                    part.sku_id,
                    part.warehouse_id,
                    part.quantity,
                    micros(part.cost),
                    0,
                    part.estimated,
                    part.uncosted,
                    None if part_revenue is None else micros(part_revenue),
                    at,
                )
            )
    copy_rows(
        connection,
        "line_costs",
        (
            "line_id",
            "sku_id",
            "warehouse_id",
            "quantity",
            "cost",
            "adjustment",
            "estimated",
            "uncosted",
            "revenue",
            "shipped_at",
        ),
        rows,
    )


__all__ = ["CostedMove", "cost_movements"]
