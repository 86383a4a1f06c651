"""What would release each held line: its shortfall, SKU by SKU, against the stock of its
warehouse, worked out by the order book's own planner (:class:`AllocationPlanner`, the core's
rule: prepackaged stock first, components where the warehouse or the SKU uses component
inventory, the customer's options, assembly on demand).

It plays a retry of the held lines as :meth:`OrderBook.retry_held` does it: every held
line's claims are given back, then the lines are planned oldest order first, each line that
still falls short claiming what it would claim, so a line's figures are what a retry now
would offer it. A line short of several SKUs lists each: the first shortage is made good on
a copy of the stock and the line is planned again, until it fits.

Usage::

    with live.lock:
        live.refresh()
        add_release(live, list_orders(connection, held_only=True))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sellable.core.allocation import AllocationPlanner, Shortage, forced_options
from sellable.errors import CatalogError
from sellable.store.live import LiveStock

#: The most SKUs one line's shortfall lists (each costs a plan of the line).
MAX_SHORT_SKUS = 20


@dataclass(frozen=True, slots=True)
class Need:
    """``more`` units of ``sku`` in ``warehouse`` are missing: ``available`` are there for
    the line (its own claims included), ``needed`` are wanted."""

    sku: str
    warehouse: str
    available: int
    needed: int

    @property
    def more(self) -> int:
        return self.needed - self.available

    def describe(self) -> str:
        return (
            f"needs {self.more} more {self.sku} in {self.warehouse} "
            f"({self.available} available to it, {self.needed} needed)"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "sku": self.sku,
            "warehouse": self.warehouse,
            "more": self.more,
            "available": self.available,
            "needed": self.needed,
        }


def add_release(live: LiveStock, orders: list[dict[str, Any]]) -> None:
    """Give every held line of ``orders`` (``list_orders``'s objects) a ``release`` object:
    ``ready`` (a retry now would allocate it), ``needs`` (:meth:`Need.to_dict` per short
    SKU) and ``text``. Call with ``live.lock`` held and the live stock refreshed."""
    core = live.core
    catalog = core.catalog
    planners: dict[str, AllocationPlanner] = {}

    def planner_of(warehouse: str) -> AllocationPlanner:
        found = planners.get(warehouse)
        if found is None:
            w = core.warehouse_position(warehouse)
            found = planners[warehouse] = AllocationPlanner(
                core.structure, core.flags[w], warehouse, {}
            )
        return found

    def working(planner: AllocationPlanner, pos: int) -> None:
        """Load the line's BOM into the planner's stock: available, with every held line's
        claims given back (the retry gives them back before planning)."""
        for p in core.structure.order(pos):
            if p not in planner.available:
                levels = core.levels(catalog.codes[p], planner.warehouse)
                planner.available[p] = levels.available + levels.held

    held = [
        (index, order, line)
        for index, order in enumerate(orders)
        for line in order["lines"]
        if line["status"] == "held"
    ]
    # The retry's order: oldest order first (no created time: last).
    held.sort(
        key=lambda item: (item[1]["created_at"] is None, item[1]["created_at"] or "", item[0])
    )
    for _index, order, line in held:
        warehouse = order["warehouse"]
        if line["sku"] not in catalog:
            line["release"] = {
                "ready": False,
                "needs": [],
                "text": f"{line['sku']} is not in the catalog: import it, then retry held lines",
            }
            continue
        pos = catalog.position(line["sku"])
        try:
            forced = (
                forced_options(core.structure, pos, list(line["options"].items()))
                if line["options"]
                else None
            )
        except CatalogError as err:
            line["release"] = {"ready": False, "needs": [], "text": f"its options: {err}"}
            continue
        planner = planner_of(warehouse)
        working(planner, pos)
        needs = shortfall(planner, pos, line["quantity"], forced)
        if needs:
            for p, quantity in planner.claims(pos, line["quantity"], forced).items():
                planner.available[p] = planner.available.get(p, 0) - quantity
            text = "; ".join(need.describe() for need in needs)
        else:
            planner.plan_line(pos, line["quantity"], forced=forced)  # a retry would allocate it
            text = (
                f"the stock is there in {warehouse} now: retrying held lines allocates it "
                "(a stock count or receipt retries them too)"
            )
        line["release"] = {
            "ready": not needs,
            "needs": [need.to_dict() for need in needs],
            "text": text,
        }


def shortfall(
    planner: AllocationPlanner, pos: int, quantity: int, forced: dict[tuple[int, int], int] | None
) -> list[Need]:
    """Each SKU the line is short of in the planner's stock, the planner's stock unchanged:
    the first shortage is made good on a copy and the line planned again, until it fits."""
    trial = dict(planner.available)
    needs: list[Need] = []
    seen: dict[str, Need] = {}
    for _attempt in range(2 * MAX_SHORT_SKUS):
        if len(needs) == MAX_SHORT_SKUS:
            break
        attempt = AllocationPlanner(
            planner.structure, planner.flags, planner.warehouse, dict(trial)
        )
        outcome = attempt.plan_line(pos, quantity, forced=forced)
        if not isinstance(outcome, Shortage):
            break
        first = seen.get(outcome.sku)
        if first is None:
            need = Need(outcome.sku, planner.warehouse, outcome.have, outcome.need)
            seen[outcome.sku] = need
            needs.append(need)
        else:  # the same SKU again, once more wanted after the first shortfall was made good
            need = Need(
                first.sku,
                first.warehouse,
                first.available,
                first.needed + outcome.need - outcome.have,
            )
            needs[needs.index(first)] = need
            seen[outcome.sku] = need
        p = planner.catalog.index[outcome.sku]
        trial[p] = trial.get(p, 0) + outcome.need - outcome.have
    return needs
