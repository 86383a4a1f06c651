"""Planning how an order line or a build takes stock in one warehouse. Pure, no I/O.

A line for SKU ``s`` takes ``s``'s prepackaged available stock first. For the rest:

* a kit, package or bundle (virtual composites), where the warehouse uses component
  inventory, takes its components, recursively; options of a slot are used in order;
* an assembly with assembly-on-demand is built for the shortfall (an assembly order:
  components consumed, assembly produced), then taken from the assembly's own stock;
* otherwise the line is short, unless the SKU allows orders exceeding stock
  (backorder): then it is taken anyway and its availability goes negative.

Plans are all or nothing: a short line yields a :class:`Shortage` naming the
bottleneck, and the working stock is left as it was.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from sellable.core.catalog import Catalog, SkuKind


@dataclass(frozen=True, slots=True)
class SkuPolicy:
    """What a SKU allows in the warehouse being planned."""

    allow_backorder: bool = False
    assembly_on_demand: bool = False


@dataclass(slots=True)
class BuildStep:
    """One assembly order: ``quantity`` of ``sku`` made from ``consumed`` (SKU, quantity)."""

    sku: str
    quantity: int
    consumed: list[tuple[str, int]] = field(default_factory=list)


@dataclass(slots=True)
class Plan:
    """What a line (or a manual build) does to stock, in order: builds, then allocations."""

    allocations: list[tuple[str, int]] = field(default_factory=list)
    builds: list[BuildStep] = field(default_factory=list)

    def stock_changes(self) -> dict[str, tuple[int, int]]:
        """Per SKU: (change of on hand, change of allocated)."""
        changes: dict[str, list[int]] = {}
        for build in self.builds:
            changes.setdefault(build.sku, [0, 0])[0] += build.quantity
            for sku, quantity in build.consumed:
                changes.setdefault(sku, [0, 0])[0] -= quantity
        for sku, quantity in self.allocations:
            changes.setdefault(sku, [0, 0])[1] += quantity
        return {sku: (c[0], c[1]) for sku, c in changes.items()}


@dataclass(frozen=True, slots=True)
class Shortage:
    """Why a plan cannot be made: ``need`` units of ``sku`` were wanted, ``have`` were there."""

    sku: str
    have: int
    need: int
    warehouse: str

    @property
    def reason(self) -> str:
        return (
            f"short {self.need - self.have} × {self.sku} in {self.warehouse} "
            f"(have {self.have}, need {self.need})"
        )


class _Short(Exception):
    def __init__(self, shortage: Shortage) -> None:
        super().__init__(shortage.reason)
        self.shortage = shortage


class AllocationPlanner:
    """Plans lines and builds against a working copy of prepackaged available stock.

    Usage::

        planner = AllocationPlanner(catalog, "main", True, {"MUG": 1, ...}, policy_for)
        result = planner.plan_line("GIFT-SET", 4)   # Plan, or Shortage
        planner.available                           # working stock after the plans so far

    Successive plans see each other's effects, so one planner can plan a batch of lines.
    """

    def __init__(
        self,
        catalog: Catalog,
        warehouse: str,
        uses_components: bool,
        available: Mapping[str, int],
        policy: Callable[[str], SkuPolicy],
    ) -> None:
        self.catalog = catalog
        self.warehouse = warehouse
        self.uses_components = uses_components
        self.available: dict[str, int] = dict(available)
        self.policy = policy
        self._plan = Plan()
        self._build_stack: list[BuildStep] = []

    # -- public ---------------------------------------------------------------------------------

    def plan_line(self, sku: str, quantity: int, *, force: bool = False) -> Plan | Shortage:
        """Allocate ``quantity`` of ``sku``. ``force`` takes the shortfall as a backorder
        of ``sku`` itself (used when a channel says it already shipped)."""
        return self._attempt(lambda: self._take(sku, quantity, allocate=True, force=force))

    def plan_build(self, sku: str, quantity: int) -> Plan | Shortage:
        """Build ``quantity`` of composite ``sku`` from its components, all or nothing."""
        return self._attempt(lambda: self._build(sku, quantity))

    def sellable(self, sku: str) -> int:
        """Sellable of ``sku`` on the working stock (the core's formula)."""
        return self._sellable(self.catalog.position(sku))

    # -- internals ------------------------------------------------------------------------------

    def _attempt(self, action: Callable[[], None]) -> Plan | Shortage:
        saved = dict(self.available)
        self._plan = Plan()
        self._build_stack = []
        try:
            action()
        except _Short as short:
            self.available = saved
            return short.shortage
        return self._plan

    def _record(self, sku: str, quantity: int, allocate: bool) -> None:
        if quantity <= 0:
            return
        self.available[sku] = self.available.get(sku, 0) - quantity
        if allocate:
            self._plan.allocations.append((sku, quantity))
            return
        consumed = self._build_stack[-1].consumed
        for index, (seen, already) in enumerate(consumed):
            if seen == sku:  # one line per component on an assembly order
                consumed[index] = (sku, already + quantity)
                return
        consumed.append((sku, quantity))

    def _checkpoint(self) -> tuple[dict[str, int], int, int, list[tuple[str, int]] | None]:
        consumed = list(self._build_stack[-1].consumed) if self._build_stack else None
        return (dict(self.available), len(self._plan.allocations), len(self._plan.builds), consumed)

    def _restore(
        self, saved: tuple[dict[str, int], int, int, list[tuple[str, int]] | None]
    ) -> None:
        self.available = saved[0]
        del self._plan.allocations[saved[1] :]
        del self._plan.builds[saved[2] :]
        if saved[3] is not None:
            self._build_stack[-1].consumed[:] = saved[3]

    def _take(self, sku: str, quantity: int, *, allocate: bool, force: bool = False) -> None:
        """Take ``quantity`` of ``sku`` into allocation (or into the build in progress).

        ``force`` (or the SKU's backorder setting) takes a shortfall anyway: a virtual kit's
        components go negative (a kit has no stock of its own to oversell); any other SKU's
        own stock does.
        """
        have = max(0, self.available.get(sku, 0))
        direct = min(have, quantity)
        self._record(sku, direct, allocate)
        rest = quantity - direct
        if rest == 0:
            return
        pos = self.catalog.position(sku)
        kind = self.catalog.kinds[pos]
        policy = self.policy(sku)
        backorder = policy.allow_backorder or force
        shortage = Shortage(sku, have, quantity, self.warehouse)
        if kind.is_composite and self.uses_components:
            saved = self._checkpoint()
            try:
                if kind is SkuKind.ASSEMBLY:
                    if not policy.assembly_on_demand:
                        raise _Short(shortage)
                    self._build(sku, rest)
                    self._record(sku, rest, allocate)
                else:
                    self._take_components(pos, rest, allocate)
                return
            except _Short as short:
                if not backorder:
                    raise
                shortage = short.shortage
                self._restore(saved)
            if kind is not SkuKind.ASSEMBLY:
                self._take_components(pos, rest, allocate, force=True)
                return
        if backorder:
            self._record(sku, rest, allocate)
            return
        raise _Short(shortage)

    def _take_components(self, pos: int, units: int, allocate: bool, force: bool = False) -> None:
        """Take what ``units`` of composite ``pos`` need from each of its slots."""
        slots = self.catalog.slots[pos]
        assert slots is not None
        if not slots:
            raise _Short(Shortage(self.catalog.codes[pos], 0, units, self.warehouse))
        # Try the bottleneck slot first, so a shortage names the component that limits
        # most (the one `sellable explain` marks), not merely the first one listed.
        capacity = [sum(self._sellable(c) // q for c, q in options) for options in slots]
        order = sorted(
            range(len(slots)),
            key=lambda i: (0, capacity[i], i) if capacity[i] < units else (1, 0, i),
        )
        codes = self.catalog.codes
        for index in order:
            options = slots[index]
            if len(options) == 1:
                child, qty = options[0]
                self._take(codes[child], units * qty, allocate=allocate, force=force)
                continue
            remaining = units
            offered = 0
            for child, qty in options:
                can = self._sellable(child) // qty
                offered += can
                give = min(remaining, can)
                if give:
                    self._take(codes[child], give * qty, allocate=allocate)
                    remaining -= give
                if remaining == 0:
                    break
            if remaining and force:
                first, qty = options[0]
                self._take(codes[first], remaining * qty, allocate=allocate, force=True)
            elif remaining:
                label = f"slot {self.catalog.slot_label(pos, index)}"
                raise _Short(Shortage(label, offered, units, self.warehouse))

    def _build(self, sku: str, quantity: int) -> None:
        pos = self.catalog.position(sku)
        if not self.catalog.kinds[pos].is_composite:
            raise ValueError(f"{sku!r} is a simple SKU: there is nothing to build it from")
        if not self.uses_components:
            raise _Short(Shortage(sku, 0, quantity, self.warehouse))
        step = BuildStep(sku, quantity)
        self._build_stack.append(step)
        try:
            self._take_components(pos, quantity, allocate=False)
        finally:
            self._build_stack.pop()
        self._plan.builds.append(step)
        self.available[sku] = self.available.get(sku, 0) + quantity

    def _sellable(self, pos: int) -> int:
        own = max(0, self.available.get(self.catalog.codes[pos], 0))
        slots = self.catalog.slots[pos]
        if slots is None or not self.uses_components:
            return own
        best: int | None = None
        for options in slots:
            units = sum(self._sellable(child) // qty for child, qty in options)
            if best is None or units < best:
                best = units
        return own + (best or 0)
