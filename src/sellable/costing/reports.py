"""What the costing ledger tells: open layers, the cost of goods sold per shipped line,
the valuation (and the proof that it reconciles), and a lot's trace both ways.

Every figure is read from the layers and their flows; money is Decimal throughout and
printed to the cent (totals) or to 4 places (unit costs).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Connection, and_, case, func, select, type_coerce

from sellable.costing.money import ZERO, cents_text, unit_text
from sellable.errors import InputError
from sellable.store import schema
from sellable.store.sql import iso_utc


def _codes(connection: Connection) -> tuple[dict[int, str], dict[int, str]]:
    sk, wh = schema.skus.c, schema.warehouses.c
    skus = {i: c for i, c in connection.execute(select(sk.id, sk.sku))}
    warehouses = {i: c for i, c in connection.execute(select(wh.id, wh.code))}
    return skus, warehouses


def _sku_id(connection: Connection, sku: str) -> int:
    found = connection.execute(select(schema.skus.c.id).where(schema.skus.c.sku == sku)).scalar()
    if found is None:
        raise InputError(f"unknown SKU {sku!r}")
    return int(found)


def _warehouse_id(connection: Connection, code: str) -> int:
    wh = schema.warehouses.c
    found = connection.execute(select(wh.id).where(wh.code == code)).scalar()
    if found is None:
        known = ", ".join(connection.execute(select(wh.code).order_by(wh.code)).scalars())
        raise InputError(f"unknown warehouse {code!r} (known: {known})")
    return int(found)


def _raw(column: Any) -> Any:
    """A money column as the integer millionths it stores (no Decimal conversion)."""
    return type_coerce(column, BigInteger())


def _raw_sum(column: Any) -> Any:
    """The exact sum of a money column, in millionths (an int, or a Decimal on PostgreSQL:
    :func:`~sellable.store.schema.from_micros` takes both)."""
    return type_coerce(func.sum(type_coerce(column, BigInteger())), BigInteger())


def _day(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


# -- layers ---------------------------------------------------------------------------------


def open_layers(
    connection: Connection, sku: str, warehouse: str | None = None
) -> list[dict[str, Any]]:
    """The open layers of ``sku`` (in one warehouse, or all), in the order units leave
    them; a deficit (units sold past stock, awaiting the next arrival) has a negative
    quantity and ``estimated`` true."""
    sku_id = _sku_id(connection, sku)
    _, warehouses = _codes(connection)
    cl = schema.cost_layers.c
    query = select(schema.cost_layers).where((cl.sku_id == sku_id) & (cl.remaining != 0))
    if warehouse is not None:
        query = query.where(cl.warehouse_id == _warehouse_id(connection, warehouse))
    rows = list(connection.execute(query).mappings())
    rows.sort(
        key=lambda r: (
            warehouses.get(r["warehouse_id"], ""),
            r["remaining"] < 0,
            r["expires_on"] is None,
            r["expires_on"] or date.max,
            iso_utc(r["received_at"]) or "",
            r["id"],
        )
    )
    return [
        {
            "warehouse": warehouses[r["warehouse_id"]],
            "quantity": r["remaining"],
            "unit_cost": unit_text(r["unit_cost"]),
            "value": cents_text(r["value"]),
            "currency": r["currency"],
            "original_unit_cost": unit_text(r["original_unit_cost"]),
            "rate": None if r["rate"] is None else str(Decimal(r["rate"]).normalize()),
            "lot": r["lot"],
            "expires_on": _day(r["expires_on"]),
            "expired": bool(r["expired"]),
            "received_at": iso_utc(r["received_at"]),
            "source": r["source"],
            "reference": r["reference"],
            "estimated": bool(r["estimated"]),
            "uncosted": r["unit_cost"] is None,
        }
        for r in rows
    ]


# -- cost of goods sold ---------------------------------------------------------------------


def _bound(value: date | None, end: bool) -> datetime | None:
    if value is None:
        return None
    moment = datetime.combine(value, time.max if end else time.min)
    return moment


def cogs(
    connection: Connection,
    *,
    channel: str | None = None,
    order: str | None = None,
    since: date | None = None,
    until: date | None = None,
) -> list[dict[str, Any]]:
    """One object per shipped line: its revenue (base currency), what its units cost (a
    kit: per component, with each component's share of the revenue), the margin, and
    whether part of the cost is still an estimate (sold past stock, not yet settled)."""
    lc, ol, o = schema.line_costs.c, schema.order_lines.c, schema.orders.c
    query = (
        select(
            lc.line_id,
            lc.sku_id,
            lc.quantity,
            lc.cost,
            lc.adjustment,
            lc.estimated,
            lc.uncosted,
            lc.revenue,
            lc.shipped_at,
            ol.line_key,
            ol.sku,
            ol.quantity.label("line_quantity"),
            ol.revenue.label("line_revenue"),
            ol.currency,
            o.channel,
            o.external_id,
        )
        .join(schema.order_lines, ol.id == lc.line_id)
        .join(schema.orders, o.id == ol.order_id)
        .order_by(lc.shipped_at, o.channel, o.external_id, ol.line_key, lc.id)
    )
    if channel is not None:
        query = query.where(o.channel == channel)
    if order is not None:
        query = query.where(o.external_id == order)
    if since is not None:
        query = query.where(lc.shipped_at >= _bound(since, False))
    if until is not None:
        query = query.where(lc.shipped_at <= _bound(until, True))
    skus, _ = _codes(connection)
    lines: dict[int, dict[str, Any]] = {}
    for r in connection.execute(query).mappings():
        line = lines.get(r["line_id"])
        if line is None:
            line = lines[r["line_id"]] = {
                "channel": r["channel"],
                "order_id": r["external_id"],
                "line_id": r["line_key"],
                "sku": r["sku"],
                "quantity": r["line_quantity"],
                "shipped_at": iso_utc(r["shipped_at"]),
                "_revenue": ZERO,
                "_revenue_known": r["line_revenue"] is not None,
                "_cost": ZERO,
                "_parts": [],
                "estimated": False,
                "uncosted": False,
                "original_revenue": cents_text(r["line_revenue"]),
                "original_currency": r["currency"],
            }
        cost = Decimal(r["cost"]) + Decimal(r["adjustment"])
        line["_cost"] += cost
        if r["revenue"] is None:
            line["_revenue_known"] = False
        else:
            line["_revenue"] += Decimal(r["revenue"])
        line["estimated"] = line["estimated"] or r["estimated"] > 0
        line["uncosted"] = line["uncosted"] or r["uncosted"] > 0
        line["_parts"].append(
            {
                "sku": skus.get(r["sku_id"], str(r["sku_id"])),
                "quantity": r["quantity"],
                "cost": cents_text(cost),
                "revenue": cents_text(r["revenue"]),
            }
        )
    out = []
    for line in lines.values():
        parts = line.pop("_parts")
        known, revenue = line.pop("_revenue_known"), line.pop("_revenue")
        if not known:
            revenue = None
        cost = line.pop("_cost")
        line["revenue"] = cents_text(revenue)
        line["cost"] = cents_text(cost)
        line["margin"] = None if revenue is None else cents_text(revenue - cost)
        if len(parts) > 1 or parts[0]["sku"] != line["sku"]:
            line["components"] = parts
        out.append(line)
    return out


def cogs_totals(lines: Iterable[dict[str, Any]]) -> dict[str, Any]:
    revenue = cost = ZERO
    unknown = 0
    count = 0
    for line in lines:
        count += 1
        cost += Decimal(line["cost"])
        if line["revenue"] is None:
            unknown += 1
        else:
            revenue += Decimal(line["revenue"])
    return {
        "lines": count,
        "revenue": cents_text(revenue),
        "cost": cents_text(cost),
        "margin": cents_text(revenue - cost),
        "lines_without_revenue": unknown,
    }


# -- valuation ------------------------------------------------------------------------------


def valuation(connection: Connection, warehouse: str | None = None) -> dict[str, Any]:
    """Per SKU and warehouse: units in layers, their value and average unit cost, uncosted
    and expired units; and the totals."""
    cl = schema.cost_layers.c
    skus, warehouses = _codes(connection)
    positive = cl.remaining > 0
    query = (
        select(
            cl.sku_id,
            cl.warehouse_id,
            func.sum(cl.remaining),
            _raw_sum(cl.value),
            func.sum(case((positive & cl.unit_cost.is_(None), cl.remaining), else_=0)),
            func.sum(case((cl.expired, cl.remaining), else_=0)),
        )
        .where(cl.remaining != 0)
        .group_by(cl.sku_id, cl.warehouse_id)
    )
    if warehouse is not None:
        query = query.where(cl.warehouse_id == _warehouse_id(connection, warehouse))
    rows = []
    total_units = 0
    total_value = ZERO
    total_uncosted = 0
    for sku_id, warehouse_id, units, value_micros, uncosted, expired in connection.execute(query):
        value = schema.from_micros(value_micros or 0)
        units = int(units or 0)
        rows.append(
            {
                "sku": skus[sku_id],
                "warehouse": warehouses[warehouse_id],
                "quantity": units,
                "value": cents_text(value),
                "unit_cost": unit_text(value / units) if units > 0 else None,
                "uncosted": int(uncosted or 0),
                "expired": int(expired or 0),
            }
        )
        total_units += units
        total_value += value
        total_uncosted += int(uncosted or 0)
    rows.sort(key=lambda r: (r["sku"], r["warehouse"]))
    return {
        "rows": rows,
        "totals": {
            "quantity": total_units,
            "value": cents_text(total_value),
            "uncosted": total_uncosted,
        },
    }


@dataclass
class Reconciliation:
    """receipts + counts + labour and packaging - COGS - write-offs + adjustments
    (+ transfers, which net to zero) against the layers' value, and the checks that
    prove every layer is the sum of its flows."""

    figures: dict[str, Decimal]
    valuation: Decimal
    problems: list[str] = field(default_factory=list)

    @property
    def expected(self) -> Decimal:
        f = self.figures
        return (
            f["receipts"]
            + f["counts"]
            + f["labour_and_packaging"]
            - f["cogs"]
            - f["write_offs"]
            + f["adjustments"]
            + f["transfers"]
        )

    @property
    def difference(self) -> Decimal:
        return self.valuation - self.expected

    @property
    def ok(self) -> bool:
        return not self.problems and self.difference == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            **{k: cents_text(v) for k, v in self.figures.items()},
            "expected": cents_text(self.expected),
            "valuation": cents_text(self.valuation),
            "difference": str(self.difference),
            "problems": self.problems,
        }


def reconcile(connection: Connection, limit: int = 20) -> Reconciliation:
    """Prove the valuation from the flows, independently of the layers' stored values."""
    lf, cl, lc = schema.layer_flows.c, schema.cost_layers.c, schema.line_costs.c
    by_kind = {
        kind: schema.from_micros(v or 0)
        for kind, v in connection.execute(select(lf.kind, _raw_sum(lf.value)).group_by(lf.kind))
    }

    def kind(*names: str) -> Decimal:
        return sum((by_kind.get(n, ZERO) for n in names), ZERO)

    figures = {
        "receipts": kind("receipt"),
        "counts": kind("count", "opening"),
        "labour_and_packaging": kind("build_in", "build_out"),
        "cogs": -kind("sale"),
        "write_offs": -kind("writeoff"),
        "adjustments": kind("settle"),
        "transfers": kind("transfer_in", "transfer_out"),
    }
    stored = schema.from_micros(connection.execute(select(_raw_sum(cl.value))).scalar() or 0)
    result = Reconciliation(figures, stored)
    skus, warehouses = _codes(connection)
    problems = result.problems
    if figures["transfers"] != 0:
        problems.append(f"transfers do not net to zero: {figures['transfers']}")
    # Labour and packaging the builds recorded against what their layers gained.
    ao = schema.assembly_orders.c
    recorded = schema.from_micros(
        connection.execute(
            select(
                _raw_sum(
                    func.coalesce(_raw(ao.labour_cost), 0)
                    + func.coalesce(_raw(ao.packaging_cost), 0)
                )
            )
        ).scalar()
        or 0
    )
    if recorded != figures["labour_and_packaging"]:
        problems.append(
            f"builds recorded {recorded} of labour and packaging, their layers gained "
            f"{figures['labour_and_packaging']}"
        )
    # What shipped lines cost against what left layers for them.
    line_cost = schema.from_micros(connection.execute(select(_raw_sum(lc.cost))).scalar() or 0)
    line_adjustments = schema.from_micros(
        connection.execute(select(_raw_sum(lc.adjustment))).scalar() or 0
    )
    if line_cost != figures["cogs"]:
        problems.append(f"shipped lines cost {line_cost}, sales took {figures['cogs']} from layers")
    settled_for_lines = schema.from_micros(
        connection.execute(
            select(_raw_sum(lf.value)).where((lf.kind == "settle") & lf.line_id.is_not(None))
        ).scalar()
        or 0
    )
    if -settled_for_lines != line_adjustments:
        problems.append(
            f"lines were adjusted by {line_adjustments}, settlements moved {-settled_for_lines}"
        )
    # Every layer is the sum of its flows.
    flows = (
        select(
            lf.layer_id.label("layer_id"),
            func.sum(lf.quantity).label("q"),
            _raw_sum(lf.value).label("v"),
        )
        .group_by(lf.layer_id)
        .subquery()
    )
    for layer_id, sku_id, warehouse_id, remaining, value, q, v in connection.execute(
        select(
            cl.id,
            cl.sku_id,
            cl.warehouse_id,
            cl.remaining,
            _raw(cl.value),
            flows.c.q,
            flows.c.v,
        )
        .select_from(schema.cost_layers.outerjoin(flows, flows.c.layer_id == cl.id))
        .where((flows.c.q.is_(None)) | (flows.c.q != cl.remaining) | (flows.c.v != _raw(cl.value)))
        .limit(limit)
    ):
        problems.append(
            f"layer {layer_id} of {skus.get(sku_id)}@{warehouses.get(warehouse_id)} holds "
            f"{remaining} unit(s) worth {schema.from_micros(value)}, its flows add up to "
            f"{q} worth {schema.from_micros(v or 0)}"
        )
    # The layers add up to on hand, and their expired units to expired.
    st = schema.stock.c
    sums = (
        select(
            cl.sku_id.label("s"),
            cl.warehouse_id.label("w"),
            func.sum(cl.remaining).label("units"),
            func.sum(case((cl.expired, cl.remaining), else_=0)).label("expired"),
        )
        .group_by(cl.sku_id, cl.warehouse_id)
        .subquery()
    )
    for sku_id, warehouse_id, on_hand, expired, units, layer_expired in connection.execute(
        select(st.sku_id, st.warehouse_id, st.on_hand, st.expired, sums.c.units, sums.c.expired)
        .select_from(
            schema.stock.outerjoin(sums, and_(sums.c.s == st.sku_id, sums.c.w == st.warehouse_id))
        )
        .where(
            (func.coalesce(sums.c.units, 0) != st.on_hand)
            | (func.coalesce(sums.c.expired, 0) != st.expired)
        )
        .limit(limit)
    ):
        problems.append(
            f"{skus.get(sku_id)}@{warehouses.get(warehouse_id)}: on hand {on_hand} "
            f"({expired} expired), its layers hold {units or 0} ({layer_expired or 0} expired)"
        )
    return result


# -- trace ----------------------------------------------------------------------------------


@dataclass
class _Tracer:
    connection: Connection
    skus: dict[int, str]
    warehouses: dict[int, str]
    seen_back: set[tuple[int, str]] = field(default_factory=set)
    seen_forward: set[tuple[int, str]] = field(default_factory=set)

    def layer_ids(self, lot: str, sku_id: int | None) -> list[tuple[int, int]]:
        cl = schema.cost_layers.c
        query = select(cl.id, cl.sku_id).where(cl.lot == lot)
        if sku_id is not None:
            query = query.where(cl.sku_id == sku_id)
        return [(i, s) for i, s in self.connection.execute(query)]

    def backward(self, lot: str, sku_id: int) -> list[dict[str, Any]]:
        """The component lots inside ``lot`` of ``sku_id`` (recursively)."""
        if (sku_id, lot) in self.seen_back:
            return []
        self.seen_back.add((sku_id, lot))
        lf, cl = schema.layer_flows.c, schema.cost_layers.c
        builds = sorted(
            {
                ao
                for (ao,) in self.connection.execute(
                    select(lf.assembly_order_id)
                    .join(schema.cost_layers, cl.id == lf.layer_id)
                    .where(
                        (lf.kind == "build_in")
                        & (cl.lot == lot)
                        & (cl.sku_id == sku_id)
                        & lf.assembly_order_id.is_not(None)
                    )
                )
            }
        )
        parts: dict[tuple[int, str | None], int] = {}
        for ao in builds:
            for component, component_lot, units in self.connection.execute(
                select(cl.sku_id, cl.lot, lf.quantity)
                .join(schema.cost_layers, cl.id == lf.layer_id)
                .where((lf.kind == "build_out") & (lf.assembly_order_id == ao))
            ):
                key = (component, component_lot)
                parts[key] = parts.get(key, 0) - units
        return [
            {
                "sku": self.skus[component],
                "lot": component_lot,
                "quantity": units,
                "assembly_orders": [f"AO-{a}" for a in builds],
                "components": []
                if component_lot is None
                else self.backward(component_lot, component),
            }
            for (component, component_lot), units in sorted(
                parts.items(), key=lambda kv: (self.skus[kv[0][0]], kv[0][1] or "")
            )
        ]

    def forward(self, lot: str, sku_id: int) -> dict[str, Any]:
        """Where units of ``lot`` of ``sku_id`` went: orders, builds (and on, recursively),
        transfers, write-offs."""
        out: dict[str, Any] = {"orders": [], "builds": [], "transfers": [], "write_offs": []}
        if (sku_id, lot) in self.seen_forward:
            return out
        self.seen_forward.add((sku_id, lot))
        lf, cl = schema.layer_flows.c, schema.cost_layers.c
        ol, o = schema.order_lines.c, schema.orders.c
        rows = self.connection.execute(
            select(
                lf.kind,
                lf.quantity,
                lf.line_id,
                lf.assembly_order_id,
                lf.reference,
                cl.warehouse_id,
                lf.at,
            )
            .join(schema.cost_layers, cl.id == lf.layer_id)
            .where((cl.lot == lot) & (cl.sku_id == sku_id) & (lf.quantity < 0))
            .order_by(lf.id)
        ).all()
        sold: dict[int, int] = {}
        built: dict[int, int] = {}
        for kind, units, line_id, ao, reference, warehouse_id, at in rows:
            if kind == "sale" and line_id is not None:
                sold[line_id] = sold.get(line_id, 0) - units
            elif kind == "build_out" and ao is not None:
                built[ao] = built.get(ao, 0) - units
            elif kind == "transfer_out":
                out["transfers"].append(
                    {
                        "reference": reference,
                        "from": self.warehouses[warehouse_id],
                        "quantity": -units,
                        "at": iso_utc(at),
                    }
                )
            elif kind == "writeoff":
                out["write_offs"].append(
                    {
                        "reference": reference,
                        "warehouse": self.warehouses[warehouse_id],
                        "quantity": -units,
                        "at": iso_utc(at),
                    }
                )
        if sold:
            for line_id, key, order_id, channel in self.connection.execute(
                select(ol.id, ol.line_key, o.external_id, o.channel)
                .join(schema.orders, o.id == ol.order_id)
                .where(ol.id.in_(sorted(sold)))
            ):
                out["orders"].append(
                    {
                        "channel": channel,
                        "order_id": order_id,
                        "line_id": key,
                        "quantity": sold[line_id],
                    }
                )
            out["orders"].sort(key=lambda x: (x["channel"], x["order_id"], x["line_id"]))
        for ao, units in sorted(built.items()):
            for made_sku, made_lot, made in self.connection.execute(
                select(cl.sku_id, cl.lot, lf.quantity)
                .join(schema.cost_layers, cl.id == lf.layer_id)
                .where((lf.kind == "build_in") & (lf.assembly_order_id == ao))
            ):
                out["builds"].append(
                    {
                        "assembly_order": f"AO-{ao}",
                        "quantity": units,
                        "sku": self.skus[made_sku],
                        "lot": made_lot,
                        "built": made,
                        "then": self.forward(made_lot, made_sku) if made_lot else None,
                    }
                )
        return out

    def on_hand(self, lot: str, sku_id: int) -> list[dict[str, Any]]:
        cl = schema.cost_layers.c
        rows = self.connection.execute(
            select(cl.warehouse_id, func.sum(cl.remaining), func.max(cl.expires_on))
            .where((cl.lot == lot) & (cl.sku_id == sku_id) & (cl.remaining > 0))
            .group_by(cl.warehouse_id)
        ).all()
        return sorted(
            ({"warehouse": self.warehouses[w], "quantity": int(q)} for w, q, _ in rows),
            key=lambda x: x["warehouse"],
        )


def trace(connection: Connection, lot: str, sku: str | None = None) -> dict[str, Any]:
    """A recall in one call: per SKU holding ``lot``, what is inside it (backward) and
    where its units went and are (forward)."""
    skus, warehouses = _codes(connection)
    tracer = _Tracer(connection, skus, warehouses)
    sku_id = _sku_id(connection, sku) if sku is not None else None
    holders = sorted({s for _, s in tracer.layer_ids(lot, sku_id)}, key=lambda s: skus[s])
    if not holders:
        where = f" of {sku}" if sku is not None else ""
        raise InputError(f"no units{where} were ever in lot {lot!r}")
    return {
        "lot": lot,
        "skus": [
            {
                "sku": skus[s],
                "backward": tracer.backward(lot, s),
                "forward": tracer.forward(lot, s),
                "on_hand": tracer.on_hand(lot, s),
            }
            for s in holders
        ],
    }


__all__ = [
    "Reconciliation",
    "cogs",
    "cogs_totals",
    "open_layers",
    "reconcile",
    "trace",
    "valuation",
]


# -- the dashboard's money page ---------------------------------------------------------------


def valuation_by_warehouse(data: dict[str, Any]) -> list[dict[str, Any]]:
    """:func:`valuation`'s rows summed per warehouse: units, value, uncosted and expired."""
    found: dict[str, dict[str, Any]] = {}
    for row in data["rows"]:
        entry = found.setdefault(
            row["warehouse"],
            {
                "warehouse": row["warehouse"],
                "quantity": 0,
                "_value": ZERO,
                "uncosted": 0,
                "expired": 0,
            },
        )
        entry["quantity"] += row["quantity"]
        entry["_value"] += Decimal(row["value"])
        entry["uncosted"] += row["uncosted"]
        entry["expired"] += row["expired"]
    out = []
    for code in sorted(found):
        entry = found[code]
        entry["value"] = cents_text(entry.pop("_value"))
        out.append(entry)
    return out


def margins(lines: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """:func:`cogs` lines totalled (:func:`cogs_totals`) per channel, and per kit (a line
    whose cost came from its components)."""
    by_channel: dict[str, list[dict[str, Any]]] = {}
    by_kit: dict[str, list[dict[str, Any]]] = {}
    for line in lines:
        by_channel.setdefault(line["channel"], []).append(line)
        if "components" in line:
            by_kit.setdefault(line["sku"], []).append(line)
    return {
        "by_channel": [
            {"channel": code, **cogs_totals(group)} for code, group in sorted(by_channel.items())
        ],
        "by_kit": [{"sku": sku, **cogs_totals(group)} for sku, group in sorted(by_kit.items())],
    }
