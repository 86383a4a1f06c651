"""Loading the catalog and stock from the store into the calculation core."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Connection, select

from sellable.config import Settings
from sellable.core import Catalog, SkuPolicies, StockEngine, WarehouseRules
from sellable.store import schema
from sellable.store.sql import fetch_tuples


@dataclass(frozen=True, slots=True)
class StoredCatalog:
    """The catalog with the store's ids and the per-SKU order policies."""

    catalog: Catalog
    ids: list[int]  # position -> sku id
    position: dict[int, int]  # sku id -> position
    allow_backorder: list[bool]
    assembly_on_demand: list[bool | None]  # None: follow the warehouse
    use_component_inventory: list[bool | None]  # None: follow the warehouse
    subtrees: dict[str, tuple[int, ...]] = field(default_factory=dict)

    def sku_id(self, code: str) -> int:
        return self.ids[self.catalog.position(code)]

    def code(self, sku_id: int) -> str:
        return self.catalog.codes[self.position[sku_id]]

    @property
    def policies(self) -> SkuPolicies:
        return SkuPolicies(
            self.allow_backorder, self.assembly_on_demand, self.use_component_inventory
        )

    def subtree_ids(self, code: str) -> tuple[int, ...]:
        """The SKU and everything in its BOM, recursively, as ids (cached)."""
        found = self.subtrees.get(code)
        if found is None:
            catalog = self.catalog
            start = catalog.position(code)
            seen = {start}
            todo = [start]
            while todo:
                for options in catalog.slots[todo.pop()] or ():
                    for child, _qty in options:
                        if child not in seen:
                            seen.add(child)
                            todo.append(child)
            found = self.subtrees[code] = tuple(sorted(self.ids[p] for p in seen))
        return found


def load_catalog(connection: Connection) -> StoredCatalog:
    """The whole catalog with its ids and order policies."""
    codes: list[str] = []
    kinds: list[str] = []
    ids: list[int] = []
    backorder: list[bool] = []
    on_demand: list[bool | None] = []
    components: list[bool | None] = []
    sku = schema.skus.c
    for sku_id, code, kind, allow, aod, uci in fetch_tuples(
        connection,
        select(
            sku.id,
            sku.sku,
            sku.kind,
            sku.allow_backorder,
            sku.assembly_on_demand,
            sku.use_component_inventory,
        ).order_by(sku.id),
    ):
        ids.append(sku_id)
        codes.append(code)
        kinds.append(kind)
        backorder.append(bool(allow))
        on_demand.append(None if aod is None else bool(aod))
        components.append(None if uci is None else bool(uci))
    position = {sku_id: pos for pos, sku_id in enumerate(ids)}
    bom = schema.bom_lines.c
    rows = [
        (
            position[parent],
            slot if slot is not None else f"#{codes[position[child]]}",
            position[child],
            qty,
        )
        for parent, slot, child, qty in fetch_tuples(
            connection,
            select(bom.parent_id, bom.slot, bom.component_id, bom.quantity).order_by(bom.id),
        )
    ]
    catalog = Catalog.from_rows(codes, kinds, rows)
    return StoredCatalog(catalog, ids, position, backorder, on_demand, components)


def load_engine(
    connection: Connection, settings: Settings, stored: StoredCatalog | None = None
) -> StockEngine:
    """A :class:`StockEngine` with every SKU's stock in the configured warehouses, computed."""
    if stored is None:
        stored = load_catalog(connection)
    position = stored.position
    rules = [
        WarehouseRules(w.code, w.uses_components, w.assembly_on_demand) for w in settings.warehouses
    ]
    engine = StockEngine(stored.catalog, rules, policies=stored.policies)
    wh = schema.warehouses.c
    configured = {r.code for r in rules}
    warehouse_position = {
        wid: engine.warehouse_position(code)
        for wid, code in connection.execute(select(wh.id, wh.code))
        if code in configured
    }
    st = schema.stock.c
    result = fetch_tuples(
        connection,
        select(
            st.sku_id, st.warehouse_id, st.on_hand, st.locked, st.allocated, st.held, st.expired
        ),
    )
    engine.load_stock_rows(
        (position[s], warehouse_position[w], oh, lk, al, hd, ex)
        for s, w, oh, lk, al, hd, ex in result
        if w in warehouse_position
    )
    engine.recompute_all()
    return engine
