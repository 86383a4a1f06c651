"""Why a sellable number is what it is: the BOM tree walked with each node's figures."""

from __future__ import annotations

from dataclasses import dataclass, field

from sellable.core.catalog import Catalog, SkuKind
from sellable.core.engine import StockEngine


@dataclass(frozen=True, slots=True)
class Explanation:
    """One node of the tree. ``per_unit`` and ``makes`` are relative to the parent."""

    sku: str
    kind: SkuKind
    available: int
    component: int
    sellable: int
    per_unit: int | None = None
    makes: int | None = None
    slot: str | None = None
    limiting: bool = False
    uses_components: bool = True
    children: tuple[Explanation, ...] = field(default=())

    def to_dict(self) -> dict[str, object]:
        # The keys of the stock JSON (StockPosition.to_dict), for the figures a node has.
        return {
            "sku": self.sku,
            "kind": self.kind.value,
            "prepackaged": {"available": self.available},
            "component": {"available": self.component} if self.kind.is_composite else None,
            "sellable": self.sellable,
            "per_unit": self.per_unit,
            "makes": self.makes,
            "slot": self.slot,
            "limiting": self.limiting,
            "children": [c.to_dict() for c in self.children],
        }


def explain(engine: StockEngine, sku: str, warehouse: str) -> Explanation:
    """Walk the BOM of ``sku`` in ``warehouse`` and say what each part contributes."""
    w = engine.warehouse_position(warehouse)
    return _node(engine, engine.catalog.position(sku), w, None, None, False)


def _node(
    engine: StockEngine,
    pos: int,
    w: int,
    per_unit: int | None,
    slot: str | None,
    limiting: bool,
) -> Explanation:
    catalog = engine.catalog
    sellable = engine._sellable[w]
    uses = engine.warehouses[w].use_component_inventory
    packed = catalog.slots[pos]
    children: list[Explanation] = []
    if packed is not None and uses:
        slot_units = [sum(sellable[c] // q for c, q in s) for s in packed]
        lowest = min(slot_units) if slot_units else None
        first_lowest = slot_units.index(lowest) if lowest is not None else -1
        for index, options in enumerate(packed):
            name = catalog.slot_label(pos, index) if len(options) > 1 else None
            for child, qty in options:
                children.append(_node(engine, child, w, qty, name, index == first_lowest))
    makes = None if per_unit is None else sellable[pos] // per_unit
    return Explanation(
        sku=catalog.codes[pos],
        kind=catalog.kinds[pos],
        available=engine._available[w][pos],
        component=engine._component[w][pos],
        sellable=sellable[pos],
        per_unit=per_unit,
        makes=makes,
        slot=slot,
        limiting=limiting,
        uses_components=uses,
        children=tuple(children),
    )


def render(node: Explanation, warehouse: str) -> str:
    """Human text for ``sellable explain``."""
    lines: list[str] = []
    head = f"{node.sku} ({node.kind.value}) in {warehouse}: sellable {node.sellable}"
    if node.kind.is_composite:
        head += f" = prepackaged available {max(0, node.available)}"
        if node.uses_components:
            head += f" + from components {node.component}"
        else:
            head += f" (warehouse {warehouse} does not use component inventory)"
    lines.append(head)
    _render_children(node, lines, "  ")
    return "\n".join(lines)


def _render_children(node: Explanation, lines: list[str], indent: str) -> None:
    for child in node.children:
        text = f"{indent}{child.per_unit} × {child.sku}"
        if child.slot:
            text += f" [option of slot {child.slot}]"
        text += f": sellable {child.sellable}"
        if child.kind.is_composite:
            text += f" (prepackaged {max(0, child.available)} + from components {child.component})"
        text += f" → enough for {child.makes}"
        if child.limiting:
            text += "  ← bottleneck"
        lines.append(text)
        _render_children(child, lines, indent + "  ")


# -- demand per unit ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DemandPath:
    """Units of a SKU one unit of the explained composite takes along one way down its BOM:
    ``via`` the composites in between (empty: a direct component)."""

    via: tuple[str, ...]
    quantity: int

    def to_dict(self) -> dict[str, object]:
        return {"via": " > ".join(self.via) if self.via else None, "quantity": self.quantity}

    def describe(self) -> str:
        return (
            f"{self.quantity} via {' > '.join(self.via)}" if self.via else f"{self.quantity} direct"
        )


@dataclass(frozen=True, slots=True)
class Demand:
    """What one unit of the explained composite takes of ``sku``, summed over ``paths``."""

    sku: str
    per_unit: int
    paths: tuple[DemandPath, ...]

    def to_dict(self) -> dict[str, object]:
        return {
            "sku": self.sku,
            "per_unit": self.per_unit,
            "paths": [path.to_dict() for path in self.paths],
        }

    def describe(self) -> str:
        ways = ", ".join(path.describe() for path in self.paths)
        return f"{self.sku}: {self.per_unit} per unit ({ways})"


@dataclass(frozen=True, slots=True)
class SlotDemand:
    """A slot with several options, reached ``via`` those composites: one unit takes one of
    the ``options`` (each with what it would take); its options' own BOMs are not exploded,
    since which one is used is the planner's choice."""

    slot: str
    via: tuple[str, ...]
    options: tuple[Demand, ...]

    def to_dict(self) -> dict[str, object]:
        return {
            "slot": self.slot,
            "via": " > ".join(self.via) if self.via else None,
            "one_of": [option.to_dict() for option in self.options],
        }

    def describe(self) -> str:
        where = f", via {' > '.join(self.via)}" if self.via else ""
        options = ", ".join(f"{o.sku} {o.per_unit} per unit" for o in self.options)
        return f"slot {self.slot}{where}: one of {options}"


@dataclass(frozen=True, slots=True)
class UnitDemand:
    """Everything one unit of ``sku`` takes, every SKU summed over every path through its BOM
    (a component reached twice, directly and inside a sub-assembly, counts twice), in the
    order first reached; and its slots with several options."""

    sku: str
    components: tuple[Demand, ...]
    slots: tuple[SlotDemand, ...]

    def to_dict(self) -> dict[str, object]:
        return {
            "demand_per_unit": [demand.to_dict() for demand in self.components],
            "one_of": [slot.to_dict() for slot in self.slots],
        }


def unit_demand(catalog: Catalog, sku: str) -> UnitDemand:
    """What one unit of ``sku`` takes of each SKU below it, over every path (pure)."""
    paths: dict[int, dict[tuple[str, ...], int]] = {}
    slots: list[SlotDemand] = []

    def walk(pos: int, multiplier: int, via: tuple[str, ...]) -> None:
        for index, options in enumerate(catalog.slots[pos] or ()):
            if len(options) == 1:
                child, qty = options[0]
                ways = paths.setdefault(child, {})
                ways[via] = ways.get(via, 0) + multiplier * qty
                if catalog.slots[child] is not None:
                    walk(child, multiplier * qty, (*via, catalog.codes[child]))
            else:
                slots.append(
                    SlotDemand(
                        catalog.slot_label(pos, index),
                        via,
                        tuple(
                            Demand(
                                catalog.codes[child],
                                multiplier * qty,
                                (DemandPath(via, multiplier * qty),),
                            )
                            for child, qty in options
                        ),
                    )
                )

    walk(catalog.position(sku), 1, ())
    components = tuple(
        Demand(
            catalog.codes[child],
            sum(ways.values()),
            # direct first, then in the order first reached
            tuple(
                DemandPath(via, quantity)
                for via, quantity in sorted(ways.items(), key=lambda way: bool(way[0]))
            ),
        )
        for child, ways in paths.items()
    )
    return UnitDemand(sku, components, tuple(slots))


def render_demand(demand: UnitDemand, binds: str | None) -> list[str]:
    """The ``explain --warehouse`` lines of :func:`unit_demand` and what binds."""
    if not demand.components and not demand.slots:
        return []
    lines = [f"demand per unit of {demand.sku}, over every path:"]
    lines.extend(f"  {component.describe()}" for component in demand.components)
    lines.extend(f"  {slot.describe()}" for slot in demand.slots)
    if binds is not None:
        lines.append(f"binds: {binds}")
    return lines


def explain_report(engine: StockEngine, sku: str, warehouse: str) -> dict[str, object]:
    """What ``sellable explain SKU --warehouse W --json`` prints (without ``meta``): the
    tree, the per-unit demand and the component that binds (the dashboard's SKU page shows
    the same object)."""
    tree = explain(engine, sku, warehouse)
    demand = unit_demand(engine.catalog, sku)
    component = engine.position(sku, warehouse).component
    binds = None if component is None else component.bottleneck
    return {**tree.to_dict(), **demand.to_dict(), "binds": binds}
