"""A SKU's on hand, available and sellable at the end of each of the last days, from the
ledger: the stock rows of the SKU and of everything in its BOM are worked back through the
movements after each day's end (the ledger invariant makes that the running balance), and
each day's sellable is computed by the core itself (:class:`StockEngine`) on those levels,
so it follows every rule the live figure does (options, component inventory per warehouse
and per SKU, held demand, expired units).

Usage::

    with live.lock, engine.connect() as connection:
        series = daily_history(connection, live, "GIFT-SET-COFFEE", days=30)
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, select

from sellable.core import Catalog, SkuRules, SkuWarehouse, StockEngine, StockLevels
from sellable.store import schema
from sellable.store.live import LiveStock

#: The days the SKU page's chart covers, today included.
HISTORY_DAYS = 30


def sub_engine(live: LiveStock, sku: str) -> StockEngine:
    """A core over ``sku`` and everything in its BOM only, with the live core's warehouse
    rules and the SKUs' own rules (backorder, assembly on demand, component inventory)."""
    stored = live.catalog
    catalog = stored.catalog
    codes = [stored.code(i) for i in stored.subtree_ids(sku)]
    positions = {code: at for at, code in enumerate(codes)}
    rows: list[tuple[int, str, int, int]] = []
    for code in codes:
        for index, slot in enumerate(catalog.bom(code)):
            for option in slot.options:
                # The slot key only has to keep slots apart; labels are not read here.
                rows.append(
                    (
                        positions[code],
                        f"{index}:{slot.name}",
                        positions[option.sku],
                        option.quantity,
                    )
                )
    sub = Catalog.from_rows(codes, [catalog.kind_of(c) for c in codes], rows)
    rules = {}
    for code in codes:
        pos = catalog.position(code)
        rules[code] = SkuRules(
            allow_backorder=stored.allow_backorder[pos],
            assembly_on_demand=stored.assembly_on_demand[pos],
            use_component_inventory=stored.use_component_inventory[pos],
        )
    return StockEngine(sub, live.core.warehouses, rules)


def day_ends(today: date, days: int, zone: ZoneInfo) -> list[tuple[date, datetime]]:
    """The last ``days`` dates, oldest first, each with the UTC instant its day ends at in
    the merchant's time zone."""
    found = []
    for back in range(days - 1, -1, -1):
        day = today - timedelta(days=back)
        end = datetime.combine(day + timedelta(days=1), time(), tzinfo=zone).astimezone(UTC)
        found.append((day, end))
    return found


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def daily_history(
    connection: Connection, live: LiveStock, sku: str, days: int = HISTORY_DAYS
) -> dict[str, Any]:
    """Per day (``days``: ISO dates, oldest first, today last): the SKU's prepackaged
    ``on_hand`` and ``available`` and its ``sellable``, summed over the warehouses, and the
    same per warehouse in ``by_warehouse``. Today's point is the current stock, so it equals
    ``sellable stock SKU --json``. Call with ``live.lock`` held and the live stock current."""
    settings = live.settings
    zone = ZoneInfo(settings.costing.timezone)
    ends = day_ends(settings.costing.today(), days, zone)
    engine = sub_engine(live, sku)
    warehouses = [rule.code for rule in engine.warehouses]
    ids = live.catalog.subtree_ids(sku)
    wanted = {live.warehouse_ids[w]: w for w in warehouses if w in live.warehouse_ids}
    st, m = schema.stock.c, schema.movements.c
    levels: dict[tuple[str, str], list[int]] = {
        (code, w): [0, 0, 0, 0, 0] for code in engine.catalog.codes for w in warehouses
    }
    for sku_id, warehouse_id, oh, lk, al, hd, ex in connection.execute(
        select(
            st.sku_id, st.warehouse_id, st.on_hand, st.locked, st.allocated, st.held, st.expired
        ).where(st.sku_id.in_(ids))
    ):
        if warehouse_id in wanted:
            levels[(live.code(sku_id), wanted[warehouse_id])] = [oh, lk, al, hd, ex]
    first_end = ends[0][1]
    bound = first_end.replace(tzinfo=None) if connection.dialect.name == "sqlite" else first_end
    later = sorted(
        (
            (_utc(at), live.code(sku_id), wanted[warehouse_id], (oh, lk, al, hd, ex))
            for at, sku_id, warehouse_id, oh, lk, al, hd, ex in connection.execute(
                select(
                    m.at,
                    m.sku_id,
                    m.warehouse_id,
                    m.on_hand_change,
                    m.locked_change,
                    m.allocated_change,
                    m.held_change,
                    m.expired_change,
                ).where(m.sku_id.in_(ids) & (m.at >= bound))
            )
            if warehouse_id in wanted
        ),
        key=lambda movement: movement[0],
        reverse=True,
    )
    # Walk back from now: before each day's end, undo the movements made after it.
    by_day: list[dict[str, tuple[int, int, int]]] = []
    undone = 0
    for _day, end in reversed(ends):
        while undone < len(later) and later[undone][0] >= end:
            _at, code, warehouse, change = later[undone]
            row = levels[(code, warehouse)]
            for i, delta in enumerate(change):
                row[i] -= delta
            undone += 1
        engine.load_stock({SkuWarehouse(*key): StockLevels(*row) for key, row in levels.items()})
        engine.recompute_all()
        point = {}
        for w in warehouses:
            own = engine.levels(sku, w)
            point[w] = (own.on_hand, own.available, engine.sellable(sku, w))
        by_day.append(point)
    by_day.reverse()
    return {
        "days": [day.isoformat() for day, _end in ends],
        "on_hand": [sum(p[w][0] for w in warehouses) for p in by_day],
        "available": [sum(p[w][1] for w in warehouses) for p in by_day],
        "sellable": [sum(p[w][2] for w in warehouses) for p in by_day],
        "by_warehouse": {
            w: {
                "on_hand": [p[w][0] for p in by_day],
                "available": [p[w][1] for p in by_day],
                "sellable": [p[w][2] for p in by_day],
            }
            for w in warehouses
        },
    }
