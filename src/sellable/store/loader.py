"""Loading the catalog and stock from the store into the calculation core."""

from __future__ import annotations

from sqlalchemy import Connection, select

from sellable.config import Settings
from sellable.core import Catalog, StockEngine, WarehouseRules
from sellable.store import schema


def load_catalog(connection: Connection) -> tuple[Catalog, dict[int, int]]:
    """The whole catalog, and the map from SKU id to its position in the catalog."""
    codes: list[str] = []
    kinds: list[str] = []
    position: dict[int, int] = {}
    sku = schema.skus.c
    for pos, (sku_id, code, kind) in enumerate(
        connection.execute(select(sku.id, sku.sku, sku.kind).order_by(sku.id))
    ):
        codes.append(code)
        kinds.append(kind)
        position[sku_id] = pos
    bom = schema.bom_lines.c
    rows = [
        (
            position[parent],
            slot if slot is not None else f"#{codes[position[child]]}",
            position[child],
            qty,
        )
        for parent, slot, child, qty in connection.execute(
            select(bom.parent_id, bom.slot, bom.component_id, bom.quantity).order_by(bom.id)
        )
    ]
    return Catalog.from_rows(codes, kinds, rows), position


def load_engine(connection: Connection, settings: Settings) -> StockEngine:
    """A :class:`StockEngine` with every SKU's stock in the configured warehouses, computed."""
    catalog, position = load_catalog(connection)
    rules = [WarehouseRules(w.code, w.uses_components) for w in settings.warehouses]
    engine = StockEngine(catalog, rules)
    wh = schema.warehouses.c
    warehouse_position = {
        wid: engine.warehouse_position(code)
        for wid, code in connection.execute(select(wh.id, wh.code))
        if code in {r.code for r in rules}
    }
    st = schema.stock.c
    result = connection.execute(
        select(st.sku_id, st.warehouse_id, st.on_hand, st.locked, st.allocated)
    )
    engine.load_stock_rows(
        (position[s], warehouse_position[w], oh, lk, al)
        for s, w, oh, lk, al in result
        if w in warehouse_position
    )
    engine.recompute_all()
    return engine
