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

This module holds the public types and :class:`SharedAllocation`; the work lies in
``share_units`` (how one SKU's units are divided, and the same for many groups at once in
arrays), ``share_layout`` (the split's state as flat arrays), ``share_full`` (every share
from scratch), ``share_incremental`` (one SKU at a time after a change) and
``share_headroom`` (the latency headroom's arithmetic).

Usage::

    shares = SharedAllocation(core, SharePolicy(min_units=1))
    shares.load([ShareListing(("shop", "L1"), "MUG", ("main",), weight=3.0), ...])
    shares.share(("shop", "L1"))                  # units offered before channel rules
    changed = shares.stock_changed(core.apply(changes))   # listings whose share changed
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from itertools import count as count_from
from operator import attrgetter, eq
from typing import Any

import numpy as np
import numpy.typing as npt

from sellable.core.engine import StockEngine
from sellable.core.share_full import FullSplit
from sellable.core.share_headroom import (
    DEMAND_SCALE,
    demand_bound,
    demand_units,
    headroom_room,
    latency_seconds,
    others_expected,
)
from sellable.core.share_incremental import IncrementalSplit
from sellable.core.share_layout import (
    _I64,
    _IDX,
    _WIDE_FROM,
    _Graph,
    _ints,
    _largest,
    _Warehouse,
    _widen,
)
from sellable.core.share_units import split_units

#: A listing's identity: (channel code, listing id).
ListingKey = tuple[str, str]


@dataclass(frozen=True, slots=True)
class ShareListing:
    """One listing in the split: its ``key``, its SKU, the warehouses it sells from (in
    order), its ``weight`` (>= 0), its ``reserve`` (units it gets first, per warehouse) and,
    for the latency headroom, its expected sales: ``demand``, the units it is expected to
    sell before its sales are seen (its channel's pull interval), ``rate``, its units per
    hour, and ``latency``, the seconds a new offer takes to show on its channel. Demands and
    rates are counted in thousandths of a unit, latencies in whole seconds.

    ``position``, optional, is the SKU's position in the catalog (``catalog.index[sku]``)
    where the caller looked it up already (the daemon does, to drop listings of unknown
    SKUs): a hint that saves :meth:`SharedAllocation.load` a lookup per listing. It is
    checked against ``sku``; a wrong one is ignored, never trusted."""

    key: ListingKey
    sku: str
    warehouses: tuple[str, ...]
    weight: float = 1.0
    reserve: int = 0
    demand: float = 0.0
    rate: float = 0.0
    latency: float = 0.0
    position: int | None = None


@dataclass(frozen=True, slots=True)
class SharePolicy:
    """``min_units``: each listing gets at least this many (after reserves) while units last;
    ``rebalance_below``: the floor under which a listing is offered its full sellable;
    ``headroom``: offer a claim, beyond its strict share, what the other claims cannot take
    within their sync horizon (:func:`demand_bound` at ``headroom_sigmas``)."""

    min_units: int = 0
    rebalance_below: int = 0
    headroom: bool = False
    headroom_sigmas: float = 3.0


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
    #: The latency headroom (``headroom`` on): the strict share; the units this SKU's
    #: supply reaches with the headroom of its components; the units the other claims, and
    #: all claims, are expected to take within this listing's horizon, with their bounds.
    strict: int = 0
    headroom_supply: int = 0
    others_demand: float = 0.0
    others_bound: int = 0
    everyone_demand: float = 0.0
    everyone_bound: int = 0


_KEY = attrgetter("key")
_SKU = attrgetter("sku")
_POSITION = attrgetter("position")
_WEIGHT = attrgetter("weight")
_RESERVE = attrgetter("reserve")
_WAREHOUSES = attrgetter("warehouses")


class SharedAllocation(FullSplit, IncrementalSplit):
    """The split of every SKU's units among the listings that draw on it, kept current.

    :meth:`load` computes everything (array by array); :meth:`stock_changed` and
    :meth:`set_weights` re-derive only what depends on the change and return the listings
    whose share changed.
    """

    def __init__(self, core: StockEngine, policy: SharePolicy | None = None) -> None:
        self.core = core
        self.policy = policy or SharePolicy()
        catalog = core.catalog
        self.catalog = catalog
        self.listings: list[ShareListing] = []
        self._keys: dict[ListingKey, int] | None = {}
        self._pos = np.zeros(0, dtype=_I64)
        self._lw = np.zeros(0, dtype=np.float64)
        self._lf = np.zeros(0, dtype=_I64)
        #: Per listing, for the headroom: demand and rate (thousandths), latency (seconds).
        self._ld = self._lr = self._ll = np.zeros(0, dtype=_I64)
        self._warehouses = [_Warehouse(w, rules.code) for w, rules in enumerate(core.warehouses)]
        self._graph: _Graph | None = None
        #: Per composite: total units of each component per unit (over all its slots).
        self._uses: dict[int, dict[int, int]] = {}

    @property
    def _index(self) -> dict[ListingKey, int]:
        """Listing key -> position in :attr:`listings`, built on the first read by key (a
        dict of 1,500,000 keys takes as long as a third of the split). A key twice is an
        error there."""
        if self._keys is None:
            count = len(self.listings)
            keys = dict(zip(map(_KEY, self.listings), range(count), strict=True))
            if len(keys) != count:
                seen: set[ListingKey] = set()
                dup = next(x.key for x in self.listings if x.key in seen or seen.add(x.key))  # type: ignore[func-returns-value]
                raise ValueError(f"listing {dup} appears twice in the shared allocation")
            self._keys = keys
        return self._keys

    # -- building -------------------------------------------------------------------------------

    def load(self, listings: Sequence[ShareListing]) -> None:
        """Take a new set of listings and compute every share from scratch."""
        self.listings = list(listings)
        count = len(self.listings)
        # the split needs no key index: it is built on the first read by key
        self._keys = None
        try:
            self._pos = self._positions(self.listings)
        except KeyError:
            position = self.catalog.position
            for listing in self.listings:
                position(listing.sku)  # raises, naming the SKU
            raise
        self._lw = np.fromiter(map(_WEIGHT, self.listings), np.float64, count)
        if any(map(_RESERVE, self.listings)):
            self._lf = _ints(list(map(_RESERVE, self.listings)))
        else:  # no reserves (the usual case): no array to build from the listings
            self._lf = np.zeros(count, dtype=_I64)
        if _largest(self._lf) + abs(self.policy.min_units) >= _WIDE_FROM:
            self._lf = self._lf.astype(object)
        self._lf += self.policy.min_units
        if self.policy.headroom:
            self._ld = _ints([demand_units(x.demand) for x in self.listings])
            self._lr = _ints([demand_units(x.rate) for x in self.listings])
            self._ll = _ints([latency_seconds(x.latency) for x in self.listings])
        else:
            self._ld = self._lr = self._ll = np.zeros(count, dtype=_I64)
        self.recompute_all()

    def _positions(self, listings: list[ShareListing]) -> npt.NDArray[Any]:
        """The catalog positions of the listings' SKUs: their ``position`` hints where every
        listing has a right one (checked in C-level passes: in range, and the catalog's
        code there equal to the SKU), else the catalog's index looked up for each (a
        lookup in a dict of 1,000,000 codes costs about as much as all those passes)."""
        count = len(listings)
        codes = self.catalog.codes
        hints = list(map(_POSITION, listings))
        try:
            positions = np.fromiter(hints, _I64, count)
            if count and (positions.min() < 0 or positions.max() >= len(codes)):
                raise IndexError
            if all(map(eq, map(codes.__getitem__, hints), map(_SKU, listings))):
                return positions
        except (TypeError, ValueError, OverflowError, IndexError):  # none, or not a position
            pass
        skus = map(_SKU, listings)
        return np.fromiter(map(self.catalog.index.__getitem__, skus), _I64, count)

    def recompute_all(self) -> None:
        """Every share from scratch (the reference the incremental path must equal)."""
        graph = self.graph
        listings = self.listings
        count = len(listings)
        # per distinct warehouse tuple, which of our warehouses it sells from
        # (one pass: a new tuple is numbered as it is first met, in listing order)
        kinds: dict[tuple[str, ...], int] = defaultdict(count_from().__next__)
        kind = np.fromiter(map(kinds.__getitem__, map(_WAREHOUSES, listings)), _IDX, count)
        # the listings by SKU position (ties: listing order), once for every warehouse
        by_pos = np.argsort(self._pos, kind="stable")
        kind_by_pos: npt.NDArray[Any] | None = None
        for wh in self._warehouses:
            sells = np.array([wh.code in codes for codes in kinds], dtype=bool)
            if not len(kinds):
                order = np.zeros(0, dtype=_I64)
            elif sells.all():  # every listing sells from here: no selection
                order = by_pos
            else:
                if kind_by_pos is None:
                    kind_by_pos = kind[by_pos]
                order = by_pos[sells[kind_by_pos]]
            if len(order) == 0:
                _Warehouse.__init__(wh, wh.index, wh.code)
                continue
            self._recompute_warehouse(wh, graph, order.astype(_I64, copy=False))

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
            if touched and wh.active:
                if wh.share.dtype != object:
                    available = self.core.available_list(wh.code)
                    if any(abs(available[p]) >= _WIDE_FROM for p in touched):
                        _widen(wh)
                changed |= self._propagate(wh, touched, touched)
        return {self.listings[i].key for i in changed}

    def set_weights(
        self,
        weights: Mapping[ListingKey, float],
        expected: Mapping[ListingKey, tuple[float, float, float]] | None = None,
    ) -> set[ListingKey]:
        """New weights (and, for the headroom, ``expected`` sales: demand, rate, latency)
        for some listings; returns the listings whose share changed."""
        moved: list[int] = []
        headroom = self.policy.headroom
        relatch = False
        for key in dict.fromkeys(chain(weights, expected or ())):
            i = self._index.get(key)
            if i is None:
                continue
            old = self.listings[i]
            weight = weights.get(key, old.weight)
            sales = (old.demand, old.rate, old.latency)
            if expected is not None:
                sales = expected.get(key, sales)
            units = (demand_units(sales[0]), demand_units(sales[1]), latency_seconds(sales[2]))
            same = (int(self._ld[i]), int(self._lr[i]), int(self._ll[i])) == units
            if weight == old.weight and (not headroom or same):
                continue
            self.listings[i] = ShareListing(
                old.key, old.sku, old.warehouses, weight, old.reserve, *sales, old.position
            )
            self._lw[i] = weight
            if headroom:
                relatch = relatch or int(self._ll[i]) != units[2]
                self._ld[i], self._lr[i], self._ll[i] = units
            moved.append(i)
        if relatch:
            # a new push latency may need a pass of its own: everything again
            before = self.shares()
            self.recompute_all()
            return {key for key, units in self.shares().items() if before[key] != units}
        changed: set[int] = set()
        if not moved:
            return set()
        for wh in self._warehouses:
            if not wh.active:
                continue
            roots = [int(self._pos[i]) for i in moved if wh.code in self.listings[i].warehouses]
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
        return sum(int(wh.share[i]) for wh in self._warehouses if wh.active)

    def shares(self) -> dict[ListingKey, int]:
        total: Any = np.zeros(len(self.listings), dtype=_I64)
        for wh in self._warehouses:
            if wh.active:
                total = total + wh.share
        return dict(zip((x.key for x in self.listings), total.tolist(), strict=True))

    def share_in(self, key: ListingKey, warehouse: str) -> int:
        i = self._index[key]
        for wh in self._warehouses:
            if wh.code == warehouse:
                return int(wh.share[i]) if wh.active else 0
        return 0

    def detail(self, key: ListingKey) -> list[ShareDetail]:
        """Per warehouse of the listing: its SKU's supply, every claim on it with its weight
        and units, and what the listing got."""
        i = self._index[key]
        pos = int(self._pos[i])
        out: list[ShareDetail] = []
        core, codes = self.core, self.catalog.codes
        for wh in self._warehouses:
            if not wh.active or i not in self._mine(wh, pos):
                continue
            weights, floors, claims = self._claims(wh, pos)
            supply = int(wh.supply[pos])
            grants = split_units(supply, weights, floors) if claims else []
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
            headroom: dict[str, Any] = {}
            if self.policy.headroom:
                total, total_rate = int(wh.demand[pos]), int(wh.rate[pos])
                others = others_expected(total, int(self._ld[i]), total_rate, int(self._ll[i]))
                everyone = others_expected(total, 0, total_rate, int(self._ll[i]))
                sigmas = self.policy.headroom_sigmas
                headroom = {
                    "strict": int(wh.strict[i]),
                    "headroom_supply": int(wh.hsupply[wh.latencies.index(int(self._ll[i]))][pos]),
                    "others_demand": others / DEMAND_SCALE,
                    "others_bound": demand_bound(others, sigmas),
                    "everyone_demand": everyone / DEMAND_SCALE,
                    "everyone_bound": demand_bound(everyone, sigmas),
                }
            else:
                headroom = {"strict": int(wh.share[i])}
            out.append(
                ShareDetail(
                    warehouse=wh.code,
                    sku=codes[pos],
                    supply=supply,
                    competitors=competitors,
                    granted=int(wh.granted[i]),
                    leftover=int(wh.leftover[i]),
                    full_sellable=full,
                    below_floor=self._below_floor(full),
                    share=int(wh.share[i]),
                    **headroom,
                )
            )
        return out


__all__ = [
    "Competitor",
    "ListingKey",
    "ShareDetail",
    "ShareListing",
    "SharePolicy",
    "SharedAllocation",
    "demand_bound",
    "demand_units",
    "headroom_room",
    "latency_seconds",
    "others_expected",
    "split_units",
]
