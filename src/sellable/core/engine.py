"""The stock-calculation core: sellable quantity per (SKU, warehouse). Pure, no I/O.

For SKU ``s`` in warehouse ``w`` (ARCHITECTURE.md):

* simple: ``sellable = max(0, available)``;
* composite: ``component(s, w) = min over slots of units(slot)``, where a slot with
  one option gives ``floor(sellable(c, w) / qty)`` and a slot with options the sum of
  that over its options; ``sellable = max(0, prepackaged available) + component(s, w)``
  when ``w`` uses component inventory, else just the prepackaged part.

The engine keeps per-warehouse lists indexed by SKU position, recomputes everything
in one topological sweep, and after a change re-derives only the composites that
depend on the changed SKUs, in rank order, each at most once.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from sellable.core.catalog import Catalog, SkuKind
from sellable.errors import CatalogError


@dataclass(frozen=True, slots=True)
class WarehouseRules:
    """What the core needs to know about a warehouse."""

    code: str
    use_component_inventory: bool = True


class StockLevels(NamedTuple):
    """Prepackaged stock of one SKU in one warehouse. A named tuple rather than a frozen
    dataclass: the order book builds one per locked stock row, on the import's hot path."""

    on_hand: int = 0
    locked: int = 0
    allocated: int = 0

    @property
    def available(self) -> int:
        return self.on_hand - self.locked - self.allocated


@dataclass(frozen=True, slots=True)
class ComponentStock:
    """How many units of a composite its components can still make, and what limits it."""

    on_hand: int
    available: int
    bottleneck: str | None


@dataclass(frozen=True, slots=True)
class StockPosition:
    """Everything the core knows about one (SKU, warehouse)."""

    sku: str
    warehouse: str
    kind: SkuKind
    prepackaged: StockLevels
    component: ComponentStock | None
    sellable: int

    def to_dict(self) -> dict[str, object]:
        p = self.prepackaged
        return {
            "sku": self.sku,
            "warehouse": self.warehouse,
            "kind": self.kind.value,
            "prepackaged": {
                "on_hand": p.on_hand,
                "locked": p.locked,
                "allocated": p.allocated,
                "available": p.available,
            },
            "component": None
            if self.component is None
            else {
                "on_hand": self.component.on_hand,
                "available": self.component.available,
                "bottleneck": self.component.bottleneck,
            },
            "sellable": self.sellable,
        }


class SkuWarehouse(NamedTuple):
    """A (SKU code, warehouse code) pair; equal to the plain tuple."""

    sku: str
    warehouse: str


class StockKey(NamedTuple):
    """A stock row's key in the store: (SKU id, warehouse id)."""

    sku_id: int
    warehouse_id: int


class StockEngine:
    """Sellable quantities for a catalog across warehouses, kept up to date incrementally.

    Usage::

        engine = StockEngine(catalog, [WarehouseRules("main"), WarehouseRules("fba", False)])
        engine.load_stock({("MUG", "main"): StockLevels(on_hand=30)})
        engine.sellable("GIFT-SET", "main")
        changed = engine.apply({("MUG", "main"): StockLevels(on_hand=29)})
    """

    def __init__(self, catalog: Catalog, warehouses: Sequence[WarehouseRules]) -> None:
        self.catalog = catalog
        #: Per SKU position: orders exceeding stock allowed (set by the store's loader).
        self.allow_backorder: list[bool] = [False] * len(catalog)
        self.warehouses = tuple(warehouses)
        self._wh_index = {w.code: i for i, w in enumerate(self.warehouses)}
        n = len(catalog)
        self._on_hand = [[0] * n for _ in self.warehouses]
        self._locked = [[0] * n for _ in self.warehouses]
        self._allocated = [[0] * n for _ in self.warehouses]
        self._available = [[0] * n for _ in self.warehouses]
        self._component = [[0] * n for _ in self.warehouses]
        self._sellable = [[0] * n for _ in self.warehouses]

    # -- loading ------------------------------------------------------------------------------

    def warehouse_position(self, code: str) -> int:
        try:
            return self._wh_index[code]
        except KeyError:
            known = ", ".join(self._wh_index) or "none"
            raise CatalogError(f"unknown warehouse {code!r} (known: {known})") from None

    def load_stock(self, stock: Mapping[SkuWarehouse, StockLevels]) -> None:
        """Set prepackaged stock without recomputing; call :meth:`recompute_all` after."""
        for (sku, warehouse), levels in stock.items():
            self._set_levels(self.catalog.position(sku), self.warehouse_position(warehouse), levels)

    def load_stock_rows(self, rows: Iterable[tuple[int, int, int, int, int]]) -> None:
        """Bulk form of :meth:`load_stock`: ``(sku position, warehouse position, on_hand,
        locked, allocated)``. Used by the store loader; no recompute."""
        on_hand, locked, allocated, available = (
            self._on_hand,
            self._locked,
            self._allocated,
            self._available,
        )
        for pos, w, oh, lk, al in rows:
            on_hand[w][pos] = oh
            locked[w][pos] = lk
            allocated[w][pos] = al
            available[w][pos] = oh - lk - al

    def _set_levels(self, pos: int, w: int, levels: StockLevels) -> None:
        self._on_hand[w][pos] = levels.on_hand
        self._locked[w][pos] = levels.locked
        self._allocated[w][pos] = levels.allocated
        self._available[w][pos] = levels.available

    # -- full recompute -----------------------------------------------------------------------

    def recompute_all(self) -> None:
        """Derive every (SKU, warehouse) sellable from scratch."""
        order = self.catalog.composite_order
        all_slots = self.catalog.slots
        for w, rules in enumerate(self.warehouses):
            sellable = [a if a > 0 else 0 for a in self._available[w]]
            component = self._component[w]
            if rules.use_component_inventory:
                for pos in order:
                    units = _component_units(all_slots[pos], sellable)  # type: ignore[arg-type]
                    component[pos] = units
                    sellable[pos] += units
            else:
                for pos in order:
                    component[pos] = 0
            self._sellable[w] = sellable

    # -- incremental --------------------------------------------------------------------------

    def apply(self, changes: Mapping[SkuWarehouse, StockLevels]) -> set[SkuWarehouse]:
        """Set new prepackaged stock for some (SKU, warehouse) pairs and re-derive only
        what depends on them. Returns the pairs whose sellable changed."""
        by_warehouse: dict[int, list[tuple[int, StockLevels]]] = {}
        for (sku, warehouse), levels in changes.items():
            by_warehouse.setdefault(self.warehouse_position(warehouse), []).append(
                (self.catalog.position(sku), levels)
            )
        changed: set[SkuWarehouse] = set()
        codes = self.catalog.codes
        for w, items in by_warehouse.items():
            for pos, levels in items:
                self._set_levels(pos, w, levels)
            code = self.warehouses[w].code
            changed.update(
                SkuWarehouse(codes[p], code) for p in self._propagate(w, [p for p, _ in items])
            )
        return changed

    def apply_one(self, sku: str, warehouse: str, levels: StockLevels) -> list[SkuWarehouse]:
        """:meth:`apply` for a single pair, without building a mapping (the hot path)."""
        pos = self.catalog.position(sku)
        w = self.warehouse_position(warehouse)
        self._set_levels(pos, w, levels)
        codes = self.catalog.codes
        return [SkuWarehouse(codes[p], warehouse) for p in self._propagate(w, (pos,))]

    def _propagate(self, w: int, touched: Iterable[int]) -> list[int]:
        """Recompute ``touched`` and, in rank order, every composite above them whose
        inputs changed. Returns the positions whose sellable changed."""
        available = self._available[w]
        sellable = self._sellable[w]
        component = self._component[w]
        use_components = self.warehouses[w].use_component_inventory
        parents = self.catalog.parents
        rank = self.catalog.rank
        all_slots = self.catalog.slots
        changed: list[int] = []
        heap: list[tuple[int, int]] = []
        queued: set[int] = set()
        slots_of = self.catalog.slots
        for pos in touched:
            if use_components and slots_of[pos] is not None:
                # A composite's own value also depends on its components: recompute it in
                # the rank-ordered pass below, compared against its value before the change.
                if pos not in queued:
                    queued.add(pos)
                    heapq.heappush(heap, (rank[pos], pos))
                continue
            a = available[pos]
            new = (a if a > 0 else 0) + component[pos]
            if new != sellable[pos]:
                sellable[pos] = new
                changed.append(pos)
                if use_components:
                    for parent in parents[pos]:
                        if parent not in queued:
                            queued.add(parent)
                            heapq.heappush(heap, (rank[parent], parent))
        while heap:
            _, pos = heapq.heappop(heap)
            units = _component_units(all_slots[pos], sellable)  # type: ignore[arg-type]
            component[pos] = units
            a = available[pos]
            new = (a if a > 0 else 0) + units
            if new != sellable[pos]:
                sellable[pos] = new
                changed.append(pos)
                for parent in parents[pos]:
                    if parent not in queued:
                        queued.add(parent)
                        heapq.heappush(heap, (rank[parent], parent))
        return changed

    # -- reading ------------------------------------------------------------------------------

    def sellable(self, sku: str, warehouse: str) -> int:
        return self._sellable[self.warehouse_position(warehouse)][self.catalog.position(sku)]

    def unbounded(self, sku: str, warehouse: str) -> bool:
        """True when the order book accepts any quantity of ``sku`` in ``warehouse`` (orders
        exceeding stock are allowed for it, or for what binds it)."""
        self.warehouse_position(warehouse)
        return bool(self.allow_backorder[self.catalog.position(sku)])

    def levels(self, sku: str, warehouse: str) -> StockLevels:
        pos = self.catalog.position(sku)
        w = self.warehouse_position(warehouse)
        return StockLevels(self._on_hand[w][pos], self._locked[w][pos], self._allocated[w][pos])

    def sellable_by_warehouse(self, warehouse: str) -> dict[str, int]:
        """Every SKU's sellable in one warehouse."""
        return dict(
            zip(self.catalog.codes, self._sellable[self.warehouse_position(warehouse)], strict=True)
        )

    def position(self, sku: str, warehouse: str) -> StockPosition:
        """The full picture of one (SKU, warehouse), as ``sellable stock --json`` shows it."""
        pos = self.catalog.position(sku)
        w = self.warehouse_position(warehouse)
        kind = self.catalog.kinds[pos]
        component: ComponentStock | None = None
        if kind.is_composite:
            if self.warehouses[w].use_component_inventory:
                slots = self.catalog.slots[pos]
                assert slots is not None
                limiting = _limiting_slot(slots, self._sellable[w])
                component = ComponentStock(
                    on_hand=self._component_on_hand(pos, w, {}),
                    available=self._component[w][pos],
                    bottleneck=None if limiting is None else self.catalog.slot_label(pos, limiting),
                )
            else:
                # FBA-style warehouses cannot assemble: component stock does not count there.
                component = ComponentStock(on_hand=0, available=0, bottleneck=None)
        return StockPosition(
            sku=sku,
            warehouse=warehouse,
            kind=kind,
            prepackaged=StockLevels(
                self._on_hand[w][pos], self._locked[w][pos], self._allocated[w][pos]
            ),
            component=component,
            sellable=self._sellable[w][pos],
        )

    def positions(
        self, skus: Iterable[str] | None = None, warehouses: Iterable[str] | None = None
    ) -> list[StockPosition]:
        codes = list(skus) if skus is not None else self.catalog.codes
        whs = list(warehouses) if warehouses is not None else [w.code for w in self.warehouses]
        return [self.position(sku, wh) for sku in codes for wh in whs]

    def _component_on_hand(self, pos: int, w: int, memo: dict[int, int]) -> int:
        """Units the components' on-hand stock could make (locked and allocated ignored)."""
        if pos in memo:
            return memo[pos]
        slots = self.catalog.slots[pos]
        assert slots is not None
        best: int | None = None
        for slot in slots:
            units = 0
            for child, qty in slot:
                units += self._total_on_hand(child, w, memo) // qty
            if best is None or units < best:
                best = units
        memo[pos] = result = best or 0
        return result

    def _total_on_hand(self, pos: int, w: int, memo: dict[int, int]) -> int:
        own = max(0, self._on_hand[w][pos])
        if self.catalog.slots[pos] is None:
            return own
        return own + self._component_on_hand(pos, w, memo)


def _component_units(slots: tuple[tuple[tuple[int, int], ...], ...], sellable: list[int]) -> int:
    """Units of a composite its slots can make from ``sellable``; 0 for an empty BOM."""
    best = -1
    for slot in slots:
        if len(slot) == 1:
            child, qty = slot[0]
            units = sellable[child] // qty
        else:
            units = 0
            for child, qty in slot:
                units += sellable[child] // qty
        if units < best or best < 0:
            best = units
            if best == 0:
                return 0
    return best if best > 0 else 0


def _limiting_slot(
    slots: tuple[tuple[tuple[int, int], ...], ...], sellable: list[int]
) -> int | None:
    """Index of the first slot giving the fewest units, or None for an empty BOM."""
    best: int | None = None
    best_index: int | None = None
    for index, slot in enumerate(slots):
        units = sum(sellable[child] // qty for child, qty in slot)
        if best is None or units < best:
            best, best_index = units, index
    return best_index
