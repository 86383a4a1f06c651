"""Planning how an order line or a build takes stock in one warehouse. Pure, no I/O.

The rule is :mod:`sellable.core.demand`'s, the same one the core's sellable is computed by:
a line takes its SKU's prepackaged available stock first; the rest is made from components
where the SKU may be exploded there (a kit, package or bundle where the warehouse — or the
SKU — uses component inventory takes its components; an assembly with assembly-on-demand is
built for the shortfall: an assembly order). Demand is added up per SKU over every path.
What cannot be served holds the line, unless orders exceeding stock are allowed where it
falls short: then that SKU's stock goes negative.

Plans are all or nothing: a short line yields a :class:`Shortage` naming the bottleneck, and
the working stock is left as it was.
"""

from __future__ import annotations

from collections.abc import Sequence

from sellable.core.catalog import Catalog
from sellable.core.demand import (
    BuildStep,
    Demand,
    Forced,
    Plan,
    Shortage,
    Structure,
    WarehouseFlags,
)
from sellable.errors import CatalogError

__all__ = [
    "AllocationPlanner",
    "BuildStep",
    "Plan",
    "Shortage",
    "forced_options",
]


def forced_options(
    structure: Structure, root: int, options: Sequence[tuple[str, str]]
) -> dict[tuple[int, int], int]:
    """The customer's choice (``slot name = option SKU``) as the slots of ``root``'s BOM, at
    every level, that it fixes. Raises :class:`CatalogError` naming what does not match."""
    catalog = structure.catalog
    forced: dict[tuple[int, int], int] = {}
    seen: set[str] = set()
    for name, sku in options:
        if name in seen:
            raise CatalogError(f"option slot {name!r} is chosen twice")
        seen.add(name)
        matched = False
        for node in structure.order(root):
            for index, slot in enumerate(catalog.slots[node] or ()):
                if len(slot) < 2 or catalog.slot_name(node, index) != name:
                    continue
                for option, (child, _qty) in enumerate(slot):
                    if catalog.codes[child] == sku:
                        forced[(node, index)] = option
                        matched = True
                        break
                else:
                    choices = ", ".join(catalog.codes[c] for c, _ in slot)
                    raise CatalogError(
                        f"{sku!r} is not an option of slot {name!r} of "
                        f"{catalog.codes[node]!r} (options: {choices})"
                    )
        if not matched:
            raise CatalogError(
                f"{catalog.codes[root]!r} has no slot {name!r} with options in its BOM"
            )
    return forced


class AllocationPlanner:
    """Plans lines and builds against a working copy of prepackaged available stock.

    Usage::

        planner = AllocationPlanner(structure, flags, "main", {position: available, ...})
        result = planner.plan_line(position, 4)   # Plan, or Shortage
        planner.available                         # working stock after the plans so far

    Successive plans see each other's effects, so one planner can plan a batch of lines.
    """

    def __init__(
        self,
        structure: Structure,
        flags: WarehouseFlags,
        warehouse: str,
        available: dict[int, int],
    ) -> None:
        self.catalog: Catalog = structure.catalog
        self.structure = structure
        self.flags = flags
        self.warehouse = warehouse
        #: Working prepackaged available stock by SKU position (missing: 0).
        self.available = available
        self.demand = Demand(structure, flags, self._avail, warehouse)

    def _avail(self, pos: int) -> int:
        return self.available.get(pos, 0)

    # -- public ---------------------------------------------------------------------------------

    def capacity(self, pos: int, forced: Forced | None = None) -> int:
        """The most units of ``pos`` a line could take now (the core's sellable)."""
        return self.demand.capacity(pos, forced)

    def plan_line(
        self,
        pos: int,
        quantity: int,
        *,
        force: bool = False,
        forced: Forced | None = None,
        backorders: bool = True,
    ) -> Plan | Shortage:
        """Allocate ``quantity`` of the SKU at ``pos``. Where stock falls short on SKUs that
        allow orders exceeding stock, they take it anyway (unless ``backorders`` is off);
        ``force`` lets the SKU itself do so (a channel says the line already shipped)."""
        outcome = self.demand.plan(pos, quantity, forced=forced)
        if isinstance(outcome, Shortage) and (force or (backorders and self._may_backorder(pos))):
            second = self.demand.plan(pos, quantity, forced=forced, backorders=True, force=force)
            if isinstance(second, Plan):
                outcome = second
        if isinstance(outcome, Plan):
            self._apply(outcome)
        return outcome

    def plan_build(self, pos: int, quantity: int) -> Plan | Shortage:
        """Build ``quantity`` of composite ``pos`` from its components, all or nothing."""
        outcome = self.demand.plan(pos, quantity, build=True)
        if isinstance(outcome, Plan):
            self._apply(outcome)
        return outcome

    def claims(self, pos: int, quantity: int, forced: Forced | None = None) -> dict[int, int]:
        """What a held line of ``quantity`` claims per SKU position (see :meth:`Demand.claims`)."""
        return {p: q for p, q in self.demand.claims(pos, quantity, forced).items() if q}

    # -- internals ------------------------------------------------------------------------------

    def _may_backorder(self, pos: int) -> bool:
        backorder = self.flags.backorder
        return any(backorder[node] for node in self.structure.order(pos))

    def _apply(self, plan: Plan) -> None:
        index = self.catalog.index
        available = self.available
        for build in plan.builds:
            for sku, quantity in build.consumed:
                p = index[sku]
                available[p] = available.get(p, 0) - quantity
            p = index[build.sku]
            available[p] = available.get(p, 0) + build.quantity
        for sku, quantity in plan.allocations:
            p = index[sku]
            available[p] = available.get(p, 0) - quantity
