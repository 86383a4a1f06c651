"""The stock-calculation core: sellable quantity per (SKU, warehouse). Pure, no I/O.

``sellable(s, w)`` is the largest ``n`` such that an order line of ``n`` units of ``s`` in
``w``, placed now, would be allocated in full by the order book (ARCHITECTURE.md,
:mod:`sellable.core.demand`): prepackaged units first at every level, components only where
``s`` may be made from them in ``w``, a slot's options substituting for each other, and what
open and held lines already claim not available.

The engine keeps per-warehouse lists indexed by SKU position and recomputes everything in
one topological sweep. A composite whose BOM is a tree (no SKU reached twice) takes the fast
formula, ``prepackaged + min over slots of sum over options of floor(sellable / qty)``;
one that shares components is solved exactly by :class:`~sellable.core.demand.Demand`.
After a change only the composites that depend on the changed SKUs are re-derived, in rank
order, each at most once.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from sellable.core.allocation import AllocationPlanner, forced_options
from sellable.core.catalog import Catalog, SkuKind
from sellable.core.demand import Demand, Plan, Shortage, Structure, WarehouseFlags
from sellable.errors import CatalogError


@dataclass(frozen=True, slots=True)
class WarehouseRules:
    """What the core needs to know about a warehouse."""

    code: str
    use_component_inventory: bool = True
    assembly_on_demand: bool = False


@dataclass(frozen=True, slots=True)
class SkuRules:
    """What one SKU allows, whatever the warehouse: orders exceeding stock, and overrides of
    the warehouse's assembly-on-demand and component-inventory settings (None: follow it)."""

    allow_backorder: bool = False
    assembly_on_demand: bool | None = None
    use_component_inventory: bool | None = None


class SkuPolicies(NamedTuple):
    """:class:`SkuRules` for every SKU, by position (the loader's bulk form)."""

    allow_backorder: Sequence[bool]
    assembly_on_demand: Sequence[bool | None]
    use_component_inventory: Sequence[bool | None]

    @classmethod
    def default(cls, size: int) -> SkuPolicies:
        return cls([False] * size, [None] * size, [None] * size)

    @classmethod
    def from_rules(cls, catalog: Catalog, rules: Mapping[str, SkuRules]) -> SkuPolicies:
        policies = cls.default(len(catalog))
        backorder = list(policies.allow_backorder)
        on_demand = list(policies.assembly_on_demand)
        components = list(policies.use_component_inventory)
        for sku, rule in rules.items():
            pos = catalog.position(sku)
            backorder[pos] = rule.allow_backorder
            on_demand[pos] = rule.assembly_on_demand
            components[pos] = rule.use_component_inventory
        return cls(backorder, on_demand, components)


class StockLevels(NamedTuple):
    """Prepackaged stock of one SKU in one warehouse. A named tuple rather than a frozen
    dataclass: the order book builds one per locked stock row, on the import's hot path.

    ``held``: units claimed by held lines, not offered to anyone else. ``expired``: units
    of lots past their expiry date, still on hand until counted out, never sellable."""

    on_hand: int = 0
    locked: int = 0
    allocated: int = 0
    held: int = 0
    expired: int = 0

    @property
    def available(self) -> int:
        return self.on_hand - self.locked - self.allocated - self.held - self.expired


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
                "held": p.held,
                "expired": p.expired,
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
        engine.recompute_all()
        engine.sellable("GIFT-SET", "main")
        changed = engine.apply({("MUG", "main"): StockLevels(on_hand=29)})
    """

    def __init__(
        self,
        catalog: Catalog,
        warehouses: Sequence[WarehouseRules],
        sku_rules: Mapping[str, SkuRules] | None = None,
        *,
        policies: SkuPolicies | None = None,
    ) -> None:
        self.catalog = catalog
        self.warehouses = tuple(warehouses)
        self._wh_index = {w.code: i for i, w in enumerate(self.warehouses)}
        if policies is None:
            policies = SkuPolicies.from_rules(catalog, sku_rules or {})
        self.policies = policies
        self.structure = Structure(catalog)
        self.flags = [
            WarehouseFlags(
                catalog,
                uses_components=w.use_component_inventory,
                assembly_on_demand=w.assembly_on_demand,
                allow_backorder=policies.allow_backorder,
                sku_assembly_on_demand=policies.assembly_on_demand,
                sku_use_component_inventory=policies.use_component_inventory,
            )
            for w in self.warehouses
        ]
        n = len(catalog)
        self._on_hand = [[0] * n for _ in self.warehouses]
        self._locked = [[0] * n for _ in self.warehouses]
        self._allocated = [[0] * n for _ in self.warehouses]
        self._held = [[0] * n for _ in self.warehouses]
        # Sparse: few rows hold expired units.
        self._expired: list[dict[int, int]] = [{} for _ in self.warehouses]
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

    def load_stock_rows(self, rows: Iterable[tuple[int, int, int, int, int, int, int]]) -> None:
        """Bulk form of :meth:`load_stock`: ``(sku position, warehouse position, on_hand,
        locked, allocated, held, expired)``. Used by the store loader; no recompute."""
        on_hand, locked, allocated, held, expired, available = (
            self._on_hand,
            self._locked,
            self._allocated,
            self._held,
            self._expired,
            self._available,
        )
        for pos, w, oh, lk, al, hd, ex in rows:
            on_hand[w][pos] = oh
            locked[w][pos] = lk
            allocated[w][pos] = al
            held[w][pos] = hd
            if ex:
                expired[w][pos] = ex
            available[w][pos] = oh - lk - al - hd - ex

    def _set_levels(self, pos: int, w: int, levels: StockLevels) -> None:
        self._on_hand[w][pos] = levels.on_hand
        self._locked[w][pos] = levels.locked
        self._allocated[w][pos] = levels.allocated
        self._held[w][pos] = levels.held
        if levels.expired:
            self._expired[w][pos] = levels.expired
        else:
            self._expired[w].pop(pos, None)
        self._available[w][pos] = levels.available

    # -- full recompute -----------------------------------------------------------------------

    def recompute_all(self) -> None:
        """Derive every (SKU, warehouse) sellable from scratch."""
        order = self.catalog.composite_order
        all_slots = self.catalog.slots
        tree = self.structure.tree
        for w in range(len(self.warehouses)):
            sellable = [a if a > 0 else 0 for a in self._available[w]]
            component = self._component[w]
            explodable = self.flags[w].explodable
            demand = self._demand(w, sellable)
            for pos in order:
                if not explodable[pos]:
                    component[pos] = 0
                    continue
                if tree[pos]:
                    units = _component_units(all_slots[pos], sellable)  # type: ignore[arg-type]
                else:
                    units = demand.capacity(pos) - sellable[pos]
                component[pos] = units
                sellable[pos] += units
            self._sellable[w] = sellable

    def _demand(self, w: int, sellable: list[int]) -> Demand:
        """The exact solver on warehouse ``w``'s stock; ``sellable`` bounds its searches."""
        return Demand(
            self.structure,
            self.flags[w],
            self._available[w].__getitem__,
            self.warehouses[w].code,
            known=sellable.__getitem__,
        )

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
        explodable = self.flags[w].explodable
        parents = self.catalog.parents
        rank = self.catalog.rank
        all_slots = self.catalog.slots
        tree = self.structure.tree
        shared = self.structure.shared_ancestors
        changed: list[int] = []
        heap: list[tuple[int, int]] = []
        queued: set[int] = set()
        for pos in touched:
            # A composite that shares components depends on every SKU in its BOM, even when
            # nothing in between changes: queue it for any change below it.
            for ancestor in shared.get(pos, ()):
                if ancestor not in queued:
                    queued.add(ancestor)
                    heapq.heappush(heap, (rank[ancestor], ancestor))
            if explodable[pos]:
                # A composite's own value also depends on its components: recompute it in
                # the rank-ordered pass below, compared against its value before the change.
                if pos not in queued:
                    queued.add(pos)
                    heapq.heappush(heap, (rank[pos], pos))
                continue
            a = available[pos]
            new = a if a > 0 else 0
            component[pos] = 0
            if new != sellable[pos]:
                sellable[pos] = new
                changed.append(pos)
                for parent in parents[pos]:
                    if parent not in queued:
                        queued.add(parent)
                        heapq.heappush(heap, (rank[parent], parent))
        demand: Demand | None = None
        while heap:
            _, pos = heapq.heappop(heap)
            a = available[pos]
            own = a if a > 0 else 0
            if not explodable[pos]:
                units = 0
            elif tree[pos]:
                units = _component_units(all_slots[pos], sellable)  # type: ignore[arg-type]
            else:
                if demand is None:
                    demand = self._demand(w, sellable)
                units = demand.capacity(pos) - own
            component[pos] = units
            new = own + units
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

    def available_list(self, warehouse: str) -> list[int]:
        """Prepackaged available stock of every SKU in ``warehouse``, by SKU position (the
        engine's own list: read it, do not change it)."""
        return self._available[self.warehouse_position(warehouse)]

    def unbounded(self, sku: str, warehouse: str) -> bool:
        """True when the order book accepts any quantity of ``sku`` in ``warehouse`` (orders
        exceeding stock are allowed for it, or for an option of every slot it is made of)."""
        w = self.warehouse_position(warehouse)
        return self.flags[w].unbounded[self.catalog.position(sku)]

    def levels(self, sku: str, warehouse: str) -> StockLevels:
        pos = self.catalog.position(sku)
        w = self.warehouse_position(warehouse)
        return StockLevels(
            self._on_hand[w][pos],
            self._locked[w][pos],
            self._allocated[w][pos],
            self._held[w][pos],
            self._expired[w].get(pos, 0),
        )

    def planner(self, warehouse: str, root: str | None = None) -> AllocationPlanner:
        """The order book's planner on a copy of ``warehouse``'s current stock (all of it, or
        the BOM of ``root``)."""
        w = self.warehouse_position(warehouse)
        available = self._available[w]
        if root is None:
            working = {p: a for p, a in enumerate(available) if a}
        else:
            working = {p: available[p] for p in self.structure.order(self.catalog.position(root))}
        return AllocationPlanner(self.structure, self.flags[w], warehouse, working)

    def plan_line(
        self, sku: str, quantity: int, warehouse: str, options: Sequence[tuple[str, str]] = ()
    ) -> Plan | Shortage:
        """What an order line of ``quantity`` of ``sku`` would take in ``warehouse`` now, by
        the order book's own rule (nothing is changed)."""
        pos = self.catalog.position(sku)
        forced = forced_options(self.structure, pos, options) if options else None
        return self.planner(warehouse, sku).plan_line(pos, quantity, forced=forced)

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
            if self.flags[w].explodable[pos]:
                component = ComponentStock(
                    on_hand=self._component_on_hand(pos, w, {}),
                    available=self._component[w][pos],
                    bottleneck=self.bottleneck(sku, warehouse),
                )
            else:
                # Not made from components here (an FBA-style warehouse, a SKU sold only as
                # assembled units, an assembly without assembly-on-demand).
                component = ComponentStock(on_hand=0, available=0, bottleneck=None)
        return StockPosition(
            sku=sku,
            warehouse=warehouse,
            kind=kind,
            prepackaged=self.levels(sku, warehouse),
            component=component,
            sellable=self._sellable[w][pos],
        )

    def bottleneck(self, sku: str, warehouse: str) -> str | None:
        """What stops one more unit of composite ``sku`` being made in ``warehouse``: a
        component SKU, or the name of a slot with options (None for an empty BOM)."""
        pos = self.catalog.position(sku)
        w = self.warehouse_position(warehouse)
        slots = self.catalog.slots[pos]
        if not slots or not self.flags[w].explodable[pos]:
            return None
        if self.structure.tree[pos]:
            limiting = _limiting_slot(slots, self._sellable[w])
            return None if limiting is None else self.catalog.slot_label(pos, limiting)
        demand = self._demand(w, self._sellable[w])
        outcome = demand.plan(pos, self._sellable[w][pos] + 1)
        return outcome.sku if isinstance(outcome, Shortage) else None

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
        if not self.structure.tree[pos]:
            on_hand = self._on_hand[w]
            exact = Demand(self.structure, self.flags[w], on_hand.__getitem__, "")
            memo[pos] = result = exact.capacity(pos) - max(0, on_hand[pos])
            return result
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
        if self.catalog.slots[pos] is None or not self.flags[w].explodable[pos]:
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
