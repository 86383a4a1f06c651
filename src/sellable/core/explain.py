"""Why a sellable number is what it is: the BOM tree walked with each node's figures."""

from __future__ import annotations

from dataclasses import dataclass, field

from sellable.core.catalog import SkuKind
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
