"""Shared allocation: divide the units of every SKU among the listings that draw on it. Pure.

In ``"full"`` mode every listing is offered the SKU's whole sellable quantity, so two
channels, or a bundle and its component, can each sell the last units. In ``"shared"`` mode
(this module) the units are divided, one warehouse at a time, so that the offers of all
listings together fit the stock:

* **Claims.** In warehouse ``w``, a SKU's units are claimed by the listings of that SKU that
  sell from ``w`` (directly), and by each composite made from it there (a parent that may be
  exploded in ``w`` and that some listing draws on). A listing claims with its weight; a
  parent claims with the weight of everything that draws on it, times the units of the SKU
  one unit of it needs (weights flow down the BOM, so a bundle's listing competes for the
  mugs in mug units).
* **Bottom up.** Components before their parents (rank order), each SKU's supply — its own
  prepackaged available units, plus what the budgets its components gave it can make (the
  core's formula: the minimum over slots of the sum over options of ``budget // qty``) — is
  split among its claims (:func:`split_units`): floors first (a channel's ``reserve``, then
  ``min_units``, in weight order while units last), the rest by weight, largest remainder.
* **Leftovers.** A parent rarely uses all of a budget (another slot limits it). What it
  does not use goes to the SKU's own listings by weight.
* **The floor.** With ``rebalance_below = F > 0``, a listing whose SKU's full sellable in
  ``w`` is at or under ``F`` is offered that full sellable (whichever listing sells first
  takes the last units). Only those listings can make the sum exceed the stock.

Every unit of every SKU goes to exactly one claim, and a parent's units are made only from
its budgets, so the demand of all offers together, exploded per SKU with prepackaged units
first (the order book's rule), fits the stock of each SKU in each warehouse. The guarantee
assumes each listing's order is booked in the warehouse its share lies in and, for a slot
with options, that the order book picks options within the budgets (see docs/allocation.md).

Usage::

    shares = SharedAllocation(core, SharePolicy(min_units=1))
    shares.load([ShareListing(("shop", "L1"), "MUG", ("main",), weight=3.0), ...])
    shares.share(("shop", "L1"))                  # units offered before channel rules
    changed = shares.stock_changed(core.apply(changes))   # listings whose share changed
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

from sellable.core.engine import StockEngine

#: Units from which :func:`split_units` divides exactly rather than in floats.
_EXACT_ABOVE = 1 << 40

#: A listing's identity: (channel code, listing id).
ListingKey = tuple[str, str]


@dataclass(frozen=True, slots=True)
class ShareListing:
    """One listing in the split: its ``key``, its SKU, the warehouses it sells from (in
    order), its ``weight`` (>= 0) and its ``reserve`` (units it gets first, per warehouse)."""

    key: ListingKey
    sku: str
    warehouses: tuple[str, ...]
    weight: float = 1.0
    reserve: int = 0


@dataclass(frozen=True, slots=True)
class SharePolicy:
    """``min_units``: each listing gets at least this many (after reserves) while units last;
    ``rebalance_below``: the floor under which a listing is offered its full sellable."""

    min_units: int = 0
    rebalance_below: int = 0


@dataclass(frozen=True, slots=True)
class Competitor:
    """One claim on a SKU's units in a warehouse, for ``explain``: a listing (``listing``
    set) or a composite drawing on it (``parent`` set)."""

    listing: ListingKey | None
    parent: str | None
    weight: float
    floor: int
    units: int


@dataclass(frozen=True, slots=True)
class ShareDetail:
    """How one listing's share in one warehouse came about, for ``explain``."""

    warehouse: str
    sku: str
    supply: int
    competitors: tuple[Competitor, ...]
    granted: int
    leftover: int
    full_sellable: int
    below_floor: bool
    share: int


def split_units(total: int, weights: Sequence[float], floors: Sequence[int]) -> list[int]:
    """Divide ``total`` units: each claim's floor first, in descending weight order (ties in
    claim order) while units last, then the rest in proportion to the weights (equally when
    all weights are 0), rounding by largest remainder (ties: higher weight, then claim
    order). The result always sums to ``total`` (when there is at least one claim)."""
    count = len(weights)
    if count == 1:
        return [total]
    grants = [0] * count
    remaining = total
    if any(floors):
        for i in sorted(range(count), key=lambda k: -weights[k]):
            take = floors[i] if floors[i] < remaining else remaining
            if take > 0:
                grants[i] = take
                remaining -= take
            if remaining <= 0:
                return grants
    if remaining <= 0:
        return grants
    weight_sum = sum(weights)
    if weight_sum <= 0:
        weights = [1.0] * count
        weight_sum = float(count)
    ideal: Sequence[float | Fraction] = [remaining * w / weight_sum for w in weights]
    wholes = [int(x) for x in ideal]
    if sum(wholes) > remaining or remaining >= _EXACT_ABOVE:
        # Floats lost the units (huge quantities, or a rounding at an integer): exactly.
        exact = [Fraction(w) for w in weights]
        total_weight = sum(exact, Fraction(0))
        ideal = [remaining * w / total_weight for w in exact]
        wholes = [math.floor(x) for x in ideal]
    for i in range(count):
        grants[i] += wholes[i]
    rest = remaining - sum(wholes)
    if rest > 0:
        order = sorted(range(count), key=lambda k: (-(ideal[k] - wholes[k]), -weights[k], k))
        for i in order[:rest]:
            grants[i] += 1
    return grants


@dataclass(slots=True)
class _Warehouse:
    """The split in one warehouse; every mapping is keyed by SKU position and sparse (only
    SKUs some listing draws on)."""

    index: int
    code: str
    direct: dict[int, list[int]] = field(default_factory=dict)  # pos -> listing indices
    weight: dict[int, float] = field(default_factory=dict)  # claim weight drawing on pos
    floor: dict[int, int] = field(default_factory=dict)  # floors drawing on pos, in pos units
    #: pos -> the composites drawing on it here, with the units of pos one unit needs
    pclaims: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    supply: dict[int, int] = field(default_factory=dict)
    made: dict[int, int] = field(default_factory=dict)
    budget: dict[tuple[int, int], int] = field(default_factory=dict)  # (child, parent)
    granted: dict[int, int] = field(default_factory=dict)  # listing -> units from the split
    leftover: dict[int, int] = field(default_factory=dict)  # listing -> unused parent budgets
    share: dict[int, int] = field(default_factory=dict)  # listing -> offered here


class SharedAllocation:
    """The split of every SKU's units among the listings that draw on it, kept current.

    :meth:`load` computes everything; :meth:`stock_changed` and :meth:`set_weights`
    re-derive only what depends on the change and return the listings whose share changed.
    """

    def __init__(self, core: StockEngine, policy: SharePolicy | None = None) -> None:
        self.core = core
        self.policy = policy or SharePolicy()
        catalog = core.catalog
        self.catalog = catalog
        self.listings: list[ShareListing] = []
        self._index: dict[ListingKey, int] = {}
        self._positions: list[int] = []
        self._warehouses = [_Warehouse(w, rules.code) for w, rules in enumerate(core.warehouses)]
        #: Per composite: total units of each component per unit (over all its slots).
        self._uses: dict[int, dict[int, int]] = {}
        #: Composites whose slots each hold one option, each component in one slot.
        self._plain: set[int] = set()

    # -- building -------------------------------------------------------------------------------

    def load(self, listings: Sequence[ShareListing]) -> None:
        """Take a new set of listings and compute every share from scratch."""
        self.listings = list(listings)
        self._index = {listing.key: i for i, listing in enumerate(self.listings)}
        if len(self._index) != len(self.listings):
            seen: set[ListingKey] = set()
            dup = next(x.key for x in self.listings if x.key in seen or seen.add(x.key))  # type: ignore[func-returns-value]
            raise ValueError(f"listing {dup} appears twice in the shared allocation")
        position = self.catalog.position
        self._positions = [position(listing.sku) for listing in self.listings]
        self.recompute_all()

    def recompute_all(self) -> None:
        """Every share from scratch (the reference the incremental path must equal)."""
        known = {w.code: w for w in self._warehouses}
        for wh in self._warehouses:
            for part in (wh.direct, wh.weight, wh.floor, wh.pclaims, wh.supply, wh.made):
                part.clear()
            wh.budget.clear()
            wh.granted.clear()
            wh.leftover.clear()
            wh.share.clear()
        positions = self._positions
        for i, listing in enumerate(self.listings):
            codes = listing.warehouses
            for code in dict.fromkeys(codes) if len(codes) > 1 else codes:
                target = known.get(code)
                if target is not None:
                    target.direct.setdefault(positions[i], []).append(i)
        for wh in self._warehouses:
            explodable = self._explodable(wh)
            # What composites draw on, with them: split in rank order. Everything else is
            # a SKU only its own listings draw on (the fast path below).
            nested = self._closure(wh, [p for p in wh.direct if explodable[p]])
            self._flow_down(wh, nested)
            rank = self.catalog.rank
            self._resplit(wh, sorted(nested, key=rank.__getitem__))
            self._settle(wh, nested)
            self._split_leaves(wh, [p for p in wh.direct if p not in nested])

    def _split_leaves(self, wh: _Warehouse, leaves: Iterable[int]) -> None:
        """Shares of SKUs that no composite draws on here and that are not made here from
        components: their own available units, split among their listings."""
        available = self.core.available_list(wh.code)
        direct, supply, granted, share, leftover = (
            wh.direct,
            wh.supply,
            wh.granted,
            wh.share,
            wh.leftover,
        )
        listings = self.listings
        min_units = self.policy.min_units
        floor_on = self.policy.rebalance_below > 0
        for pos in leaves:
            own = available[pos]
            if own < 0:
                own = 0
            supply[pos] = own
            mine = direct[pos]
            if len(mine) == 1:
                i = mine[0]
                granted[i] = share[i] = own
                leftover[i] = 0
                continue
            grants = split_units(
                own,
                [listings[i].weight for i in mine],
                [listings[i].reserve + min_units for i in mine],
            )
            # below the floor every listing is offered it all
            below = floor_on and self._below_floor(own)
            for i, units in zip(mine, grants, strict=True):
                granted[i] = units
                share[i] = own if below else units
                leftover[i] = 0

    # -- incremental ----------------------------------------------------------------------------

    def stock_changed(self, pairs: Iterable[tuple[str, str]]) -> set[ListingKey]:
        """Re-derive after the sellable of these (SKU, warehouse) pairs changed (what
        :meth:`StockEngine.apply` returns); returns the listings whose share changed."""
        by_warehouse: dict[str, list[int]] = {}
        position = self.catalog.position
        for sku, warehouse in pairs:
            by_warehouse.setdefault(warehouse, []).append(position(sku))
        changed: set[int] = set()
        for wh in self._warehouses:
            touched = by_warehouse.get(wh.code)
            if touched:
                changed |= self._propagate(wh, touched, touched)
        return {self.listings[i].key for i in changed}

    def set_weights(self, weights: Mapping[ListingKey, float]) -> set[ListingKey]:
        """New weights for some listings; returns the listings whose share changed."""
        moved: list[int] = []
        for key, weight in weights.items():
            i = self._index.get(key)
            if i is None or self.listings[i].weight == weight:
                continue
            old = self.listings[i]
            self.listings[i] = ShareListing(old.key, old.sku, old.warehouses, weight, old.reserve)
            moved.append(i)
        changed: set[int] = set()
        if not moved:
            return set()
        for wh in self._warehouses:
            roots = [self._positions[i] for i in moved if self._positions[i] in wh.direct]
            roots = [p for p in roots if any(i in moved for i in wh.direct[p])]
            if not roots:
                continue
            closure = self._closure(wh, roots)
            self._flow_down(wh, closure)
            changed |= self._propagate(wh, list(closure), list(closure))
        return {self.listings[i].key for i in changed}

    def weights(self) -> dict[ListingKey, float]:
        return {listing.key: listing.weight for listing in self.listings}

    # -- reading --------------------------------------------------------------------------------

    def __contains__(self, key: object) -> bool:
        return key in self._index

    def share(self, key: ListingKey) -> int:
        """Units offered to the listing over its warehouses, before the channel's rules."""
        i = self._index[key]
        return sum(wh.share.get(i, 0) for wh in self._warehouses)

    def shares(self) -> dict[ListingKey, int]:
        return {listing.key: self.share(listing.key) for listing in self.listings}

    def share_in(self, key: ListingKey, warehouse: str) -> int:
        i = self._index[key]
        for wh in self._warehouses:
            if wh.code == warehouse:
                return wh.share.get(i, 0)
        return 0

    def detail(self, key: ListingKey) -> list[ShareDetail]:
        """Per warehouse of the listing: its SKU's supply, every claim on it with its weight
        and units, and what the listing got."""
        i = self._index[key]
        pos = self._positions[i]
        out: list[ShareDetail] = []
        core, codes = self.core, self.catalog.codes
        for wh in self._warehouses:
            if i not in wh.direct.get(pos, ()):
                continue
            weights, floors, claims = self._claims(wh, pos)
            grants = split_units(wh.supply.get(pos, 0), weights, floors) if claims else []
            competitors = tuple(
                Competitor(
                    listing=self.listings[c].key if is_listing else None,
                    parent=None if is_listing else codes[c],
                    weight=weights[k],
                    floor=floors[k],
                    units=grants[k],
                )
                for k, (is_listing, c) in enumerate(claims)
            )
            full = core.sellable(codes[pos], wh.code)
            below = self._below_floor(full)
            out.append(
                ShareDetail(
                    warehouse=wh.code,
                    sku=codes[pos],
                    supply=wh.supply.get(pos, 0),
                    competitors=competitors,
                    granted=wh.granted.get(i, 0),
                    leftover=wh.leftover.get(i, 0),
                    full_sellable=full,
                    below_floor=below,
                    share=wh.share.get(i, 0),
                )
            )
        return out

    # -- internals ------------------------------------------------------------------------------

    def _below_floor(self, full: int) -> bool:
        floor = self.policy.rebalance_below
        return floor > 0 and full <= floor

    def _explodable(self, wh: _Warehouse) -> list[bool]:
        return self.core.flags[wh.index].explodable

    def _uses_of(self, parent: int) -> dict[int, int]:
        uses = self._uses.get(parent)
        if uses is None:
            uses = {}
            slots = self.catalog.slots[parent] or ()
            for slot in slots:
                for child, qty in slot:
                    uses[child] = uses.get(child, 0) + qty
            self._uses[parent] = uses
            if all(len(slot) == 1 for slot in slots) and len(uses) == len(slots):
                self._plain.add(parent)
        return uses

    def _closure(self, wh: _Warehouse, roots: Iterable[int]) -> set[int]:
        """``roots`` and everything reached from them through composites that may be made
        from their components in this warehouse."""
        explodable = self._explodable(wh)
        slots = self.catalog.slots
        seen: set[int] = set()
        stack = list(roots)
        while stack:
            pos = stack.pop()
            if pos in seen:
                continue
            seen.add(pos)
            if explodable[pos]:
                for slot in slots[pos] or ():
                    for child, _ in slot:
                        if child not in seen:
                            stack.append(child)
        return seen

    def _flow_down(self, wh: _Warehouse, nodes: set[int]) -> None:
        """Claim weights and floors of ``nodes``, parents first: a node's own listings plus
        what each parent that draws on it passes down (times the units per parent). A node
        is drawn on when it has listings here or a drawn parent may be made from it here."""
        rank = self.catalog.rank
        parents = self.catalog.parents
        explodable = self._explodable(wh)
        listings = self.listings
        floor_each = self.policy.min_units
        weight, floor, direct, pclaims = wh.weight, wh.floor, wh.direct, wh.pclaims
        for pos in sorted(nodes, key=lambda p: -rank[p]):
            total_w = 0.0
            total_f = 0
            for i in direct.get(pos, ()):
                total_w += listings[i].weight
                total_f += listings[i].reserve + floor_each
            claims: list[tuple[int, int]] = []
            for parent in parents[pos]:
                if explodable[parent] and parent in weight:
                    qty = self._uses_of(parent)[pos]
                    claims.append((parent, qty))
                    total_w += weight[parent] * qty
                    total_f += floor[parent] * qty
            if claims:
                pclaims[pos] = claims
            else:
                pclaims.pop(pos, None)
            if claims or pos in direct:
                weight[pos] = total_w
                floor[pos] = total_f
            else:
                weight.pop(pos, None)
                floor.pop(pos, None)

    def _claims(
        self, wh: _Warehouse, pos: int
    ) -> tuple[list[float], list[int], list[tuple[bool, int]]]:
        """The claims on ``pos``'s units: its listings, then the parents drawing on it."""
        listings = self.listings
        floor_each = self.policy.min_units
        weights: list[float] = []
        floors: list[int] = []
        claims: list[tuple[bool, int]] = []
        for i in wh.direct.get(pos, ()):
            weights.append(listings[i].weight)
            floors.append(listings[i].reserve + floor_each)
            claims.append((True, i))
        weight, floor = wh.weight, wh.floor
        for parent, qty in wh.pclaims.get(pos, ()):
            weights.append(weight[parent] * qty)
            floors.append(floor[parent] * qty)
            claims.append((False, parent))
        return weights, floors, claims

    def _made(self, wh: _Warehouse, pos: int) -> int:
        """Units of composite ``pos`` its budgets can make: min over slots of the sum over
        options of ``budget // qty`` (a component used by several slots has its budget
        divided among them by their quantities)."""
        budget = wh.budget
        uses = self._uses_of(pos)
        best = -1
        if pos in self._plain:
            for child, qty in uses.items():
                units = budget.get((child, pos), 0) // qty
                if best < 0 or units < best:
                    best = units
                    if best == 0:
                        return 0
            return best if best > 0 else 0
        for slot in self.catalog.slots[pos] or ():
            units = 0
            for child, qty in slot:
                units += _slot_budget(budget.get((child, pos), 0), qty, uses[child]) // qty
            if best < 0 or units < best:
                best = units
        return best if best > 0 else 0

    def _split_one(self, wh: _Warehouse, pos: int, available: list[int]) -> list[int]:
        """Recompute ``pos``'s supply and split it; returns the parents whose budget changed."""
        own = available[pos]
        if own < 0:
            own = 0
        made = self._made(wh, pos) if self.core.flags[wh.index].explodable[pos] else 0
        supply = own + made
        wh.supply[pos] = supply
        wh.made[pos] = made
        parents = wh.pclaims.get(pos)
        if parents is None:  # only its own listings: no budget moves
            mine = wh.direct.get(pos)
            if mine:
                if len(mine) == 1:
                    wh.granted[mine[0]] = supply
                else:
                    listings = self.listings
                    floor_each = self.policy.min_units
                    grants = split_units(
                        supply,
                        [listings[i].weight for i in mine],
                        [listings[i].reserve + floor_each for i in mine],
                    )
                    granted = wh.granted
                    for i, units in zip(mine, grants, strict=True):
                        granted[i] = units
            return []
        weights, floors, claims = self._claims(wh, pos)
        moved: list[int] = []
        grants = split_units(supply, weights, floors)
        budget, granted = wh.budget, wh.granted
        for (is_listing, c), units in zip(claims, grants, strict=True):
            if is_listing:
                granted[c] = units
            elif budget.get((pos, c)) != units:
                budget[(pos, c)] = units
                moved.append(c)
        return moved

    def _resplit(self, wh: _Warehouse, ordered: Sequence[int]) -> None:
        available = self.core.available_list(wh.code)
        for pos in ordered:
            self._split_one(wh, pos, available)

    def _propagate(self, wh: _Warehouse, touched: Iterable[int], extra: Iterable[int]) -> set[int]:
        """Re-split ``touched`` and, in rank order, every parent whose budget moved; then
        settle the listings of what was re-split and of the components of re-split
        composites. Returns the listings whose share changed."""
        rank = self.catalog.rank
        available = self.core.available_list(wh.code)
        direct, pclaims = wh.direct, wh.pclaims
        heap: list[tuple[int, int]] = []
        queued: set[int] = set()
        for pos in touched:
            if (pos in direct or pos in pclaims) and pos not in queued:
                queued.add(pos)
                heapq.heappush(heap, (rank[pos], pos))
        done: set[int] = set()
        while heap:
            _, pos = heapq.heappop(heap)
            done.add(pos)
            for parent in self._split_one(wh, pos, available):
                if parent not in queued:
                    queued.add(parent)
                    heapq.heappush(heap, (rank[parent], parent))
        settle = set(done)
        slots = self.catalog.slots
        for pos in done:
            for slot in slots[pos] or ():
                for child, _ in slot:
                    settle.add(child)
        # Listings of SKUs whose full sellable changed may cross the floor.
        if self.policy.rebalance_below > 0:
            settle.update(p for p in extra if p in wh.direct)
        return self._settle(wh, settle)

    def _settle(self, wh: _Warehouse, nodes: Iterable[int]) -> set[int]:
        """Final shares of the listings of ``nodes``: their grant plus the SKU's leftover
        parent budgets split by weight, or the full sellable below the floor."""
        changed: set[int] = set()
        listings = self.listings
        codes = self.catalog.codes
        core = self.core
        floor_on = self.policy.rebalance_below > 0
        for pos in nodes:
            mine = wh.direct.get(pos)
            if not mine:
                continue
            unused = 0
            for parent, _qty in wh.pclaims.get(pos, ()):
                unused += self._unused(wh, pos, parent)
            if unused:
                extra = split_units(unused, [listings[i].weight for i in mine], [0] * len(mine))
            else:
                extra = [0] * len(mine)
            full = core.sellable(codes[pos], wh.code) if floor_on else 0
            below = floor_on and self._below_floor(full)
            for i, more in zip(mine, extra, strict=True):
                wh.leftover[i] = more
                value = full if below else wh.granted.get(i, 0) + more
                if wh.share.get(i) != value:
                    wh.share[i] = value
                    changed.add(i)
        return changed

    def _unused(self, wh: _Warehouse, child: int, parent: int) -> int:
        """Units of ``child``'s budget for ``parent`` that making ``parent``'s units leaves
        over (options: the slot's units taken from its options in BOM order)."""
        budget = wh.budget.get((child, parent), 0)
        if not budget:
            return 0
        made = wh.made.get(parent, 0)
        uses = self._uses_of(parent)
        if parent in self._plain:  # one option a slot, each component once: the formula
            used = made * uses[child]
            return budget - used if budget > used else 0
        used = 0
        for slot in self.catalog.slots[parent] or ():
            need = made
            for option, qty in slot:
                part = _slot_budget(wh.budget.get((option, parent), 0), qty, uses[option])
                take = min(part // qty, need)
                need -= take
                if option == child:
                    used += take * qty
        return budget - used if budget > used else 0


def _slot_budget(budget: int, qty: int, total_qty: int) -> int:
    """The part of a component's budget for one of its parent's slots (by quantity)."""
    if qty == total_qty:
        return budget
    return budget * qty // total_qty


__all__ = [
    "Competitor",
    "ListingKey",
    "ShareDetail",
    "ShareListing",
    "SharePolicy",
    "SharedAllocation",
    "split_units",
]
