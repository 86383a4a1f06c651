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
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from itertools import chain
from itertools import count as count_from
from operator import attrgetter
from typing import Any

import numpy as np
import numpy.typing as npt

from sellable.core.catalog import Catalog
from sellable.core.engine import StockEngine

#: Units from which :func:`split_units` divides exactly rather than in floats.
_EXACT_ABOVE = 1 << 40

#: A listing's identity: (channel code, listing id).
ListingKey = tuple[str, str]


@dataclass(frozen=True, slots=True)
class ShareListing:
    """One listing in the split: its ``key``, its SKU, the warehouses it sells from (in
    order), its ``weight`` (>= 0), its ``reserve`` (units it gets first, per warehouse) and,
    for the latency headroom, its expected sales: ``demand``, the units it is expected to
    sell before its sales are seen (its channel's pull interval), ``rate``, its units per
    hour, and ``latency``, the seconds a new offer takes to show on its channel. Demands and
    rates are counted in thousandths of a unit, latencies in whole seconds."""

    key: ListingKey
    sku: str
    warehouses: tuple[str, ...]
    weight: float = 1.0
    reserve: int = 0
    demand: float = 0.0
    rate: float = 0.0
    latency: float = 0.0


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


#: Thousandths of a unit: demands are held as whole numbers of them, so that sums of
#: demands are exact and the full and incremental paths agree to the unit.
DEMAND_SCALE = 1000


def demand_units(demand: float) -> int:
    """A listing's expected units, in thousandths (rounded; never negative)."""
    if not math.isfinite(demand) or demand <= 0:
        return 0
    return round(demand * DEMAND_SCALE)


def latency_seconds(latency: float) -> int:
    """A push latency in whole seconds (rounded up; never negative)."""
    if not math.isfinite(latency) or latency <= 0:
        return 0
    return math.ceil(latency)


def others_expected(total: Any, own: Any, total_rate: Any, latency: Any) -> Any:
    """The units (thousandths) a claim's offer is exposed to besides its own sale: the
    other claims' demand until their sales are pulled (``total`` less the claim's ``own``),
    plus what every claim, itself included, sells while its new offer takes ``latency``
    seconds to show (a quantity pushed at ``t`` overwrites what the channel sold since;
    ``total_rate`` per hour). Whole numbers, or arrays of them, alike."""
    return total - own + latency * total_rate // 3600


def demand_bound(millis: int, sigmas: float) -> int:
    """The units that claims expecting ``millis`` thousandths of a unit in total may take
    within their horizon: ``ceil(m + sigmas * sqrt(m))`` for ``m`` units (a Poisson upper
    bound), 0 when nothing is expected."""
    if millis <= 0:
        return 0
    m = millis / float(DEMAND_SCALE)
    return math.ceil(m + sigmas * math.sqrt(m))


def headroom_room(supply: int, others: int, everyone: int, sigmas: float) -> int:
    """What a claim may be offered out of ``supply``: all of it when the bound of what
    every claim (``everyone``, itself included) is expected to take within its horizon fits
    in it; else what the bound of the ``others`` leaves (may be negative: then the strict
    share stands)."""
    if supply >= demand_bound(everyone, sigmas):
        return supply
    return supply - demand_bound(others, sigmas)


def _rooms(
    supply: npt.NDArray[Any], others: npt.NDArray[Any], everyone: npt.NDArray[Any], sigmas: float
) -> npt.NDArray[Any]:
    """:func:`headroom_room` of each entry."""
    return np.where(supply >= _bounds(everyone, sigmas), supply, supply - _bounds(others, sigmas))


def _bounds(millis: npt.NDArray[Any], sigmas: float) -> npt.NDArray[Any]:
    """:func:`demand_bound` of each entry, in the same float operations."""
    m = np.asarray(millis, dtype=np.float64) / float(DEMAND_SCALE)
    positive = m > 0
    root = np.sqrt(np.where(positive, m, 0.0))
    out = np.where(positive, np.ceil(m + sigmas * root), 0.0)
    if len(out) and float(out.max()) >= 2.0**62:
        return np.array([demand_bound(int(x), sigmas) for x in millis], dtype=object)
    return out.astype(np.int64)


_I64 = np.int64
#: Index arrays (positions, edges, listings: all far below 2**31).
_IDX = np.int32

#: Quantities from which the arrays hold Python ints (object arrays), not int64.
_WIDE_FROM = 1 << 40

_KEY = attrgetter("key")
_SKU = attrgetter("sku")
_WEIGHT = attrgetter("weight")
_RESERVE = attrgetter("reserve")
_WAREHOUSES = attrgetter("warehouses")


def _ints(values: Sequence[int]) -> npt.NDArray[Any]:
    """``values`` as an int64 array, or an object array when one does not fit."""
    try:
        # fromiter with the count: a third faster than np.array on a list of ints
        return np.fromiter(values, dtype=_I64, count=len(values))
    except OverflowError:
        return np.array(values, dtype=object)


def _largest(values: npt.NDArray[Any]) -> int:
    """The largest magnitude in ``values`` (0 when empty)."""
    if len(values) == 0:
        return 0
    return int(max(abs(values.max()), abs(values.min())))


def _widen(wh: _Warehouse) -> None:
    """Hold the warehouse's quantities as Python ints from now on (huge stock)."""
    same = wh.strict is wh.share
    for name in (
        "supply",
        "made",
        "budget",
        "floor",
        "granted",
        "leftover",
        "share",
        "strict",
        "demand",
        "rate",
    ):
        setattr(wh, name, getattr(wh, name).astype(object))
    wh.hsupply = [x.astype(object) for x in wh.hsupply]
    wh.hbudget = [x.astype(object) for x in wh.hbudget]
    if same:
        wh.strict = wh.share


def _split_rows(
    total: npt.NDArray[Any], w: npt.NDArray[Any], f: npt.NDArray[Any]
) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
    """:func:`split_units` for ``G`` rows of ``k`` claims at once, in the same float
    operations in the same order (so the same units). Returns the grants and which rows it
    could do; a row whose floors are negative, or that needs the exact path, is left to
    :func:`split_units`."""
    rows, count = w.shape
    if count == 1:
        return total.reshape(rows, 1).copy(), np.ones(rows, dtype=bool)
    if not f.any():
        ok: npt.NDArray[Any] = np.ones(rows, dtype=bool)
        grants = np.zeros((rows, count), dtype=total.dtype)
        remaining = np.maximum(total, 0)
    else:
        if f.min() >= 0:  # (floors are never negative but in tests: no per-row check)
            ok = np.ones(rows, dtype=bool)
        else:
            ok = np.asarray((f >= 0).all(axis=1), dtype=bool)
        floors = f.sum(axis=1)
        # Where the floors all fit (the usual case) each claim takes its whole floor,
        # whatever their order: only the rows short of units need the weight order.
        grants = f.astype(total.dtype)
        short = np.flatnonzero(total < floors)
        if len(short):
            grants[short] = _floors_in_order(total[short], w[short], f[short])
        remaining = np.maximum(total - floors, 0)
    active = remaining > 0
    if not active.any():
        return grants, ok
    weight_sum = w[:, 0].copy()
    for j in range(1, count):  # left to right, as sum() adds
        weight_sum += w[:, j]
    zero = weight_sum <= 0
    if zero.any():
        w = np.where(zero[:, None], 1.0, w)
        weight_sum = np.where(zero, float(count), weight_sum)
    exact = (remaining < _EXACT_ABOVE).astype(bool)
    safe = np.where(exact, remaining, 0).astype(np.float64)
    ideal = (safe[:, None] * w) / weight_sum[:, None]
    wholes = ideal.astype(_I64)
    rest = remaining - wholes.sum(axis=1)
    ok &= ~active | ((rest >= 0).astype(bool) & exact)
    frac = ideal - wholes
    # the units left over go one each by largest remainder (ties: higher weight, then claim
    # order)
    if count == 2 and bool((rest <= 1).all()):
        one = rest == 1
        zero_first = (frac[:, 0] > frac[:, 1]) | ((frac[:, 0] == frac[:, 1]) & (w[:, 0] >= w[:, 1]))
        bonus = np.stack([one & zero_first, one & ~zero_first], axis=1)
    else:
        # ranked only where units are left over (most rows divide exactly or not at all)
        bonus = np.zeros((rows, count), dtype=bool)
        some = np.flatnonzero(active & (rest > 0))
        if len(some):
            bonus[some] = _ranks(frac[some], w[some]) < rest[some][:, None]
    wholes += bonus
    if not active.all():
        wholes[~active] = 0
    grants += wholes
    return grants, ok


def _floors_in_order(
    total: npt.NDArray[Any], w: npt.NDArray[Any], f: npt.NDArray[Any]
) -> npt.NDArray[Any]:
    """The floors each row's claims take in descending weight order (ties: claim order)
    while units last: each takes min(floor, what is left)."""
    rows, count = w.shape
    grants = np.zeros((rows, count), dtype=total.dtype)
    if count == 2:
        first = w[:, 0] >= w[:, 1]
        f_first = np.where(first, f[:, 0], f[:, 1])
        f_second = np.where(first, f[:, 1], f[:, 0])
        take_first = np.minimum(f_first, np.maximum(total, 0))
        take_second = np.minimum(f_second, np.maximum(total - f_first, 0))
        grants[:, 0] = np.where(first, take_first, take_second)
        grants[:, 1] = np.where(first, take_second, take_first)
        return grants
    order = np.argsort(-w, axis=1, kind="stable")
    fs = np.take_along_axis(f, order, axis=1)
    left = np.maximum(total[:, None] - (np.cumsum(fs, axis=1) - fs), 0)
    np.put_along_axis(grants, order, np.minimum(fs, left), axis=1)
    return grants


def _ranks(frac: npt.NDArray[Any], w: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """Each claim's place in its row's order of larger remainder, then higher weight, then
    claim order (0 first): how many claims of the row come before it. Compared a column
    against all at once (rows hold a few claims: cheaper than sorting each row)."""
    rows, count = frac.shape
    place = np.zeros((rows, count), dtype=_I64)
    for j in range(count):
        fj, wj = frac[:, j : j + 1], w[:, j : j + 1]
        tied = fj == frac
        before = (fj > frac) | (tied & (wj > w))
        # tied on both: the earlier claim comes first
        before[:, j + 1 :] |= tied[:, j + 1 :] & (wj == w[:, j + 1 :])
        place += before
    return place


def _split_groups(
    totals: npt.NDArray[Any],
    parts: Sequence[tuple[npt.NDArray[Any], npt.NDArray[Any], npt.NDArray[Any]]],
) -> list[npt.NDArray[Any]]:
    """:func:`split_units` of every group at once. Group ``g``'s claims are, part by part,
    the next ``counts[g]`` claims of each part's flat ``(weights, floors, counts)`` (a SKU's
    listings, then the composites drawing on it): it divides ``totals[g]`` among them.
    Returns each part's flat grants."""
    outs = [np.zeros(len(weights), dtype=totals.dtype) for weights, _, _ in parts]
    if len(totals) == 0:
        return outs
    offsets = [np.cumsum(counts) - counts for _, _, counts in parts]
    # the groups by their claims in each part, each such shape in one pass (no claim is
    # moved to build the rows: each part's cells are read where they lie)
    shape = np.zeros(len(totals), dtype=_I64)
    widths: list[int] = []
    for _, _, counts in parts:
        width = int(counts.max()) + 1
        shape = shape * width + counts
        widths.append(width)
    if len(parts) == 1 and bool((shape == 1).all()):  # one claim a group: it takes the total
        outs[0][:] = totals
        return outs
    for code in np.flatnonzero(np.bincount(shape)).tolist():
        sizes = _sizes(code, widths)
        if sum(sizes) == 0:
            continue
        rows = np.flatnonzero(shape == code)
        if sizes.count(1) == 1 and sum(sizes) == 1:  # one claim: it takes the total
            k = sizes.index(1)
            outs[k][offsets[k][rows]] = totals[rows]
            continue
        cells = [offsets[k][rows][:, None] + np.arange(size) for k, size in enumerate(sizes)]
        if len(parts) == 1:
            w, f = parts[0][0][cells[0]], parts[0][1][cells[0]]
        else:
            w = np.concatenate([part[0][c] for part, c in zip(parts, cells, strict=True)], axis=1)
            f = np.concatenate([part[1][c] for part, c in zip(parts, cells, strict=True)], axis=1)
        grants, ok = _split_rows(totals[rows], w, f)
        bad = np.flatnonzero(~ok).tolist()
        for r in bad:
            grants[r] = split_units(int(totals[rows[r]]), w[r].tolist(), f[r].tolist())
        at = 0
        for out, c, size in zip(outs, cells, sizes, strict=True):
            out[c] = grants[:, at : at + size]
            at += size
    return outs


def _sizes(code: int, widths: Sequence[int]) -> list[int]:
    """The claims in each part of the groups of shape ``code`` (see :func:`_split_groups`)."""
    sizes: list[int] = []
    for width in reversed(widths):
        code, size = divmod(code, width)
        sizes.append(size)
    sizes.reverse()
    return sizes


def _gather(
    start: npt.NDArray[Any], items: npt.NDArray[Any], nodes: npt.NDArray[Any]
) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
    """Per node of ``nodes`` its items of the CSR ``(start, items)``, flat in node order,
    and the count per node."""
    first = start[nodes].astype(_I64)
    counts = start[nodes + 1].astype(_I64) - first
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=_I64), counts
    offsets = np.cumsum(counts) - counts
    cell = np.arange(total, dtype=_I64) - np.repeat(offsets - first, counts)
    return items[cell], counts


def _starts(keys: npt.NDArray[Any], n: int) -> npt.NDArray[Any]:
    """The CSR starts of ``keys`` (positions below ``n``) once sorted: entry ``p`` is how
    many keys are below ``p``."""
    out = np.zeros(n + 1, dtype=_IDX)
    np.cumsum(np.bincount(keys, minlength=n), out=out[1:])
    return out


def _stable_order(keys: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """``np.argsort(keys, kind="stable")`` of keys in ``[0, 2**31)`` (as int32): each key
    and its index packed in one int64 and sorted, several times faster than a stable
    argsort of keys in no order."""
    packed = (keys.astype(_I64) << 32) | np.arange(len(keys), dtype=_I64)
    packed.sort()
    return (packed & 0xFFFFFFFF).astype(_IDX)


class _Graph:
    """The catalog's BOMs as flat arrays: one edge per (parent, component) with the
    component's units per unit of the parent over all slots (edges grouped by parent, in
    position order), the edges per component (parents in position order), and each slot's
    options for the made/unused formulas."""

    def __init__(self, catalog: Catalog) -> None:
        n = len(catalog)
        slots = catalog.slots
        comps = sorted(catalog.composite_order)
        packed = [slots[p] or () for p in comps]
        flat = list(chain.from_iterable(packed))
        options = np.fromiter(chain.from_iterable(chain.from_iterable(flat)), _I64)
        per_parent = np.fromiter(map(len, packed), _I64, len(packed))
        per_slot = np.fromiter(map(len, flat), _I64, len(flat))
        o_child = options[0::2].copy()
        self.o_qty = options[1::2].copy()
        composites = np.fromiter(comps, _IDX, len(comps))
        self.slot_parent = np.repeat(composites, per_parent)
        self.o_slot = np.repeat(np.arange(len(flat), dtype=_IDX), per_slot)
        o_parent = self.slot_parent[self.o_slot].astype(_I64)
        # one edge per (parent, component), by parent then component position
        pairs, self.o_edge = np.unique(o_parent * max(n, 1) + o_child, return_inverse=True)
        self.o_edge = self.o_edge.astype(_IDX).reshape(-1)
        self.e_parent = (pairs // max(n, 1)).astype(_IDX)
        self.e_child = (pairs % max(n, 1)).astype(_IDX)
        self.e_qty = np.zeros(len(pairs), dtype=_I64)
        np.add.at(self.e_qty, self.o_edge, self.o_qty)
        self.o_uses = self.e_qty[self.o_edge]
        self.n = n
        # plain: one option a slot and each component in one slot
        self.plain = np.zeros(n, dtype=bool)
        if len(comps):
            one_option = np.ones(n, dtype=bool)
            one_option[self.slot_parent[per_slot != 1]] = False
            edges_of = np.bincount(self.e_parent, minlength=n)
            slots_of = np.zeros(n, dtype=_I64)
            slots_of[composites] = per_parent
            self.plain[composites] = (one_option & (edges_of == slots_of))[composites]
        self.pstart = _starts(self.e_parent, n)
        self.cedge = _stable_order(self.e_child)
        self.cstart = _starts(self.e_child, n)
        # first option of each slot, first slot of each parent (both non-empty groups)
        self.slot_first = np.cumsum(per_slot) - per_slot
        # (slot_parent is sorted: a parent's first slot is where it changes)
        changes = np.flatnonzero(self.slot_parent[1:] != self.slot_parent[:-1]) + 1
        self.made_first = np.concatenate([np.zeros(min(len(flat), 1), dtype=_I64), changes])
        self.made_parents = self.slot_parent[self.made_first]
        self.rank = np.fromiter(catalog.rank, _IDX, n)

    def made(self, budget: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """Units of every composite its budgets can make (0 for the rest)."""
        out = np.zeros(self.n, dtype=budget.dtype)
        if len(self.o_edge) == 0:
            return out
        part = budget[self.o_edge]
        split = self.o_qty != self.o_uses
        part = np.where(split, part * self.o_qty // np.maximum(self.o_uses, 1), part)
        units = np.add.reduceat(part // self.o_qty, self.slot_first)
        # slots of one parent are consecutive: min over them
        best = np.minimum.reduceat(units, self.made_first)
        out[self.made_parents] = np.maximum(best, 0)
        return out

    def unused(self, budget: npt.NDArray[Any], made: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """Per edge: units of the component's budget that making the parent's units leaves
        over (options: each slot's units taken from its options in BOM order)."""
        e_parent = self.e_parent
        plain_e = self.plain[e_parent]
        used = made[e_parent] * self.e_qty
        if not plain_e.all():
            part = budget[self.o_edge]
            split = self.o_qty != self.o_uses
            part = np.where(split, part * self.o_qty // np.maximum(self.o_uses, 1), part)
            units = part // self.o_qty
            need0 = made[self.slot_parent][self.o_slot]
            before = np.cumsum(units) - units
            before -= np.repeat(
                before[self.slot_first], np.diff(np.append(self.slot_first, len(units)))
            )
            take = np.minimum(units, np.maximum(need0 - before, 0))
            by_edge = np.zeros(len(e_parent), dtype=budget.dtype)
            np.add.at(by_edge, self.o_edge, take * self.o_qty)
            used = np.where(plain_e, used, by_edge)
        return np.where(budget > used, budget - used, 0)


class _Warehouse:
    """The split in one warehouse, in arrays: by SKU position (its listings here as a CSR,
    the composites drawing on it here as a CSR of edges, claim weight, floor and demand,
    supply, made, supply with headroom), by edge (budget, budget with headroom) and by
    listing (granted, leftover, strict share, share offered). Without the headroom,
    ``strict`` is ``share`` (one array)."""

    __slots__ = (
        "active",
        "budget",
        "code",
        "demand",
        "dmem",
        "dstart",
        "floor",
        "granted",
        "hbudget",
        "hsupply",
        "index",
        "latencies",
        "leftover",
        "made",
        "nested",
        "pcedge",
        "pcstart",
        "rate",
        "share",
        "strict",
        "supply",
        "weight",
    )

    def __init__(self, index: int, code: str) -> None:
        self.index = index
        self.code = code
        self.active = False
        empty_i = np.zeros(0, dtype=_I64)
        self.dstart = self.dmem = self.pcstart = self.pcedge = empty_i
        self.supply = self.made = self.budget = self.floor = empty_i
        self.granted = self.leftover = self.share = self.strict = empty_i
        self.demand = self.rate = empty_i
        #: The headroom, one pass per push latency of the listings here (every composite
        #: claim taken at that latency): supply by SKU, budget by edge.
        self.latencies: list[int] = []
        self.hsupply: list[npt.NDArray[Any]] = []
        self.hbudget: list[npt.NDArray[Any]] = []
        self.nested = np.zeros(0, dtype=bool)
        self.weight = np.zeros(0, dtype=np.float64)


class SharedAllocation:
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

    @property
    def graph(self) -> _Graph:
        if self._graph is None:
            self._graph = _Graph(self.catalog)
        return self._graph

    # -- building -------------------------------------------------------------------------------

    def load(self, listings: Sequence[ShareListing]) -> None:
        """Take a new set of listings and compute every share from scratch."""
        self.listings = list(listings)
        count = len(self.listings)
        # the split needs no key index: it is built on the first read by key
        self._keys = None
        try:
            self._pos = self._positions(list(map(_SKU, self.listings)))
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

    def _positions(self, skus: list[str]) -> npt.NDArray[Any]:
        """The catalog positions of ``skus`` (one C-level pass: the index's ``__getitem__``
        mapped over them, straight into the array)."""
        return np.fromiter(map(self.catalog.index.__getitem__, skus), _I64, len(skus))

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
        kind_by_pos = kind[by_pos]
        for wh in self._warehouses:
            sells = np.array([wh.code in codes for codes in kinds], dtype=bool)
            if len(kinds) and sells.all():  # every listing sells from here: no selection
                order = by_pos
            else:
                order = by_pos[sells[kind_by_pos]] if len(kinds) else np.zeros(0, dtype=_I64)
            if len(order) == 0:
                _Warehouse.__init__(wh, wh.index, wh.code)
                continue
            self._recompute_warehouse(wh, graph, order.astype(_I64, copy=False))

    def _recompute_warehouse(self, wh: _Warehouse, graph: _Graph, order: npt.NDArray[Any]) -> None:
        """Split every SKU in ``wh`` among ``order``, its listings sorted by SKU position
        (ties: listing order)."""
        n = graph.n
        count = len(self.listings)
        lw, lf, lpos = self._lw, self._lf, self._pos
        wh.active = True
        wh.dmem = order.astype(_IDX)
        # each listing's SKU, ascending (listings are gathered by mask over it, not by CSR)
        sku_of = lpos[order]
        dcount = np.bincount(sku_of, minlength=n).astype(_I64, copy=False)
        wh.dstart = np.zeros(n + 1, dtype=_IDX)
        np.cumsum(dcount, out=wh.dstart[1:])
        has_direct = dcount > 0
        explodable = np.fromiter(self.core.flags[wh.index].explodable, bool, n)
        available = _ints(self.core.available_list(wh.code))
        own = np.maximum(available, 0)
        # int64 unless quantities (times BOM units down the levels) could overflow it
        lf = self._lf
        largest = max(_largest(available), _largest(lf), 1)
        qty = max(_largest(graph.e_qty), 1)
        depth = int(graph.rank.max(initial=0)) + 1
        wide = largest >= _WIDE_FROM or largest * qty**depth * (count + 1) >= 1 << 62
        it: Any = object if wide else _I64
        own = own.astype(it, copy=False)
        lf = lf.astype(it, copy=False)
        # the closure: what composites with listings here draw on, through composites that
        # may be made here
        e_parent, e_child, e_qty = graph.e_parent, graph.e_child, graph.e_qty
        nested = has_direct & explodable
        frontier = nested.copy()
        while True:
            reach = frontier[e_parent] & explodable[e_parent]
            found = e_child[reach]
            found = found[~nested[found]]
            if len(found) == 0:
                break
            nested[found] = True
            frontier = np.zeros(n, dtype=bool)
            frontier[found] = True
        wh.nested = nested
        claim_edge = nested[e_parent] & explodable[e_parent]
        edges = graph.cedge[claim_edge[graph.cedge]]
        # each claim edge's component, ascending (as ``sku_of`` for the listings)
        edge_of = e_child[edges]
        pcount = np.bincount(edge_of, minlength=n).astype(_I64, copy=False)
        wh.pcstart = np.zeros(n + 1, dtype=_IDX)
        np.cumsum(pcount, out=wh.pcstart[1:])
        wh.pcedge = edges.astype(_IDX)
        # claim weights and floors, parents first (in the order the incremental path adds)
        # (bincount adds in listing order, as the incremental path does: the same floats)
        weight: npt.NDArray[Any] = np.bincount(sku_of, weights=lw[order], minlength=n)
        demand = np.zeros(n, dtype=it)
        rate = np.zeros(n, dtype=it)
        headroom = self.policy.headroom
        if it is _I64 and not headroom and len(lf) and lf.min() == lf.max():
            # one floor for every listing (no reserves): a SKU's is that times its listings
            # (no overflow: ``wide`` bounds the floor times the listings)
            floor = dcount * int(lf[0])
            rows = np.zeros(0, dtype=_I64)
        else:
            floor = np.zeros(n, dtype=it)
            rows = np.flatnonzero(has_direct)
        if len(rows):
            starts = wh.dstart[rows].astype(_I64)
            floor[rows] = np.add.reduceat(lf[order], starts)
            if headroom:
                demand[rows] = np.add.reduceat(self._ld.astype(it)[order], starts)
                rate[rows] = np.add.reduceat(self._lr.astype(it)[order], starts)
        nodes = np.flatnonzero(nested)
        node_rank = graph.rank[nodes]
        levels = np.flatnonzero(np.bincount(node_rank)).tolist() if len(nodes) else []
        by_level = {r: nodes[node_rank == r] for r in levels}
        for r in reversed(levels):
            rows = by_level[r]
            rows = rows[pcount[rows] > 0]
            j = 0
            while len(rows):
                edge = edges[wh.pcstart[rows] + j]
                parent = e_parent[edge]
                weight[rows] += weight[parent] * e_qty[edge]
                floor[rows] += floor[parent] * e_qty[edge]
                if headroom:
                    demand[rows] += demand[parent] * e_qty[edge]
                    rate[rows] += rate[parent] * e_qty[edge]
                j += 1
                rows = rows[pcount[rows] > j]
        wh.weight, wh.floor = weight, floor
        wh.demand, wh.rate = demand, rate
        # the split, components first; a level's claims are its SKUs' listings (those of
        # ``order`` whose SKU is at that level) and its SKUs' claim edges, each in CSR order
        supply = np.zeros(n, dtype=it)
        made = np.zeros(n, dtype=it)
        budget = np.zeros(len(e_parent), dtype=it)
        granted = np.zeros(count, dtype=it)
        level = np.where(nested, graph.rank, -1)
        listing_level = level[sku_of]
        edge_level = level[edge_of]
        for r in levels:
            rows = by_level[r]
            if r > 0:
                made_now = graph.made(budget)
                made[rows] = np.where(explodable[rows], made_now[rows], 0)
            supply[rows] = own[rows] + made[rows]
            mine = order[listing_level == r]
            theirs = edges[edge_level == r]
            parent = e_parent[theirs]
            grants, budgets = _split_groups(
                supply[rows],
                (
                    (lw[mine], lf[mine], dcount[rows]),
                    (weight[parent] * e_qty[theirs], floor[parent] * e_qty[theirs], pcount[rows]),
                ),
            )
            granted[mine] = grants
            budget[theirs] = budgets
        wh.made, wh.budget = made, budget
        # settle the listings of nested SKUs: grant plus leftover budgets
        unused_e = graph.unused(budget, made)
        unused = np.zeros(n, dtype=it)
        np.add.at(unused, edge_of, unused_e[edges])
        share = np.zeros(count, dtype=it)
        leftover = np.zeros(count, dtype=it)
        floor_on = self.policy.rebalance_below > 0
        below_at = self.policy.rebalance_below
        settle = np.flatnonzero(nested & has_direct)
        in_nested = nested[sku_of]
        mine, ncount = order[in_nested], dcount[settle]
        # only the SKUs whose composites left something over have anything to split
        left = unused[settle] > 0
        extra = np.zeros(len(mine), dtype=it)
        if left.any():
            some = (unused > 0)[sku_of[in_nested]]
            (extra[some],) = _split_groups(
                unused[settle][left],
                ((lw[mine[some]], np.zeros(int(some.sum()), dtype=it), ncount[left]),),
            )
        leftover[mine] = extra
        value = granted[mine] + extra
        if floor_on:
            sellable, codes = self.core.sellable, self.catalog.codes
            full = np.repeat(
                np.array([sellable(codes[p], wh.code) for p in settle.tolist()], dtype=it),
                ncount,
            )
            value = np.where(full <= below_at, full, value)
        share[mine] = value
        # leaves: SKUs only their own listings draw on here
        leaves = np.flatnonzero(has_direct & ~nested)
        supply[leaves] = own[leaves]
        mine, ncount = order[~in_nested], dcount[leaves]
        (grants,) = _split_groups(own[leaves], ((lw[mine], lf[mine], ncount),))
        granted[mine] = grants
        if floor_on:
            full = np.repeat(own[leaves], ncount)
            share[mine] = np.where(full <= below_at, full, grants)
        else:
            share[mine] = grants
        wh.supply, wh.granted, wh.leftover, wh.strict = supply, granted, leftover, share
        if not headroom:
            wh.share = share
            wh.latencies, wh.hsupply, wh.hbudget = [], [], []
            return
        # the latency headroom, components first: a claim may take what its SKU's supply
        # (with the headroom of its components) leaves over the bound of the others'
        # demand, or all of it when the bound of everyone's fits; one pass per latency
        sigmas = self.policy.headroom_sigmas
        used = budget - unused_e
        wh.latencies = sorted(set(self._ll[order].tolist()))
        wh.hsupply, wh.hbudget = [], []
        offered = share.copy()
        listed = np.flatnonzero(has_direct)
        mine, ncount = _gather(wh.dstart, order, listed)
        node = np.repeat(listed, ncount)
        tree = self.core.structure.tree
        capped = [k for k, p in enumerate(node.tolist()) if not tree[p]]
        if capped:
            sellable, codes = self.core.sellable, self.catalog.codes
            cap = np.array([sellable(codes[int(node[k])], wh.code) for k in capped], dtype=it)
        for latency in wh.latencies:
            hbudget = np.zeros(len(e_parent), dtype=it)
            hsupply = own.copy()
            for r in levels:
                rows = by_level[r]
                if r > 0:
                    made_now = graph.made(hbudget)
                    hsupply[rows] = own[rows] + np.where(explodable[rows], made_now[rows], 0)
                theirs, pc = _gather(wh.pcstart, edges, rows)
                at = np.repeat(rows, pc)
                parent, qty = e_parent[theirs], e_qty[theirs]
                others = others_expected(demand[at], demand[parent] * qty, rate[at], latency)
                everyone = others_expected(demand[at], 0, rate[at], latency)
                room = _rooms(hsupply[at], others, everyone, sigmas)
                hbudget[theirs] = np.maximum(used[theirs], room)
            wh.hsupply.append(hsupply)
            wh.hbudget.append(hbudget)
            # the listings with this latency
            these = self._ll[mine] == latency
            at, them = node[these], mine[these]
            others = others_expected(demand[at], self._ld.astype(it)[them], rate[at], latency)
            everyone = others_expected(demand[at], 0, rate[at], latency)
            room = _rooms(hsupply[at], others, everyone, sigmas)
            # a BOM that reaches a SKU twice draws on it by two claims at once: never more
            # than its full sellable (which the strict share never exceeds either)
            if capped:
                full = np.full(len(node), np.iinfo(np.int64).max, dtype=object)
                full[capped] = cap
                room = np.where(room > full[these], full[these], room)
            offered[them] = np.maximum(share[them], room)
        wh.share = offered

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
                old.key, old.sku, old.warehouses, weight, old.reserve, *sales
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

    # -- internals (the incremental path, one SKU at a time) --------------------------------------

    def _below_floor(self, full: int) -> bool:
        floor = self.policy.rebalance_below
        return floor > 0 and full <= floor

    def _mine(self, wh: _Warehouse, pos: int) -> list[int]:
        """The listings of ``pos`` selling from ``wh``, in listing order."""
        return wh.dmem[wh.dstart[pos] : wh.dstart[pos + 1]].tolist()  # type: ignore[no-any-return]

    def _edges(self, wh: _Warehouse, pos: int) -> list[int]:
        """The edges of the composites drawing on ``pos`` in ``wh``, parents in position order."""
        return wh.pcedge[wh.pcstart[pos] : wh.pcstart[pos + 1]].tolist()  # type: ignore[no-any-return]

    def _uses_of(self, parent: int) -> dict[int, int]:
        uses = self._uses.get(parent)
        if uses is None:
            uses = {}
            for slot in self.catalog.slots[parent] or ():
                for child, qty in slot:
                    uses[child] = uses.get(child, 0) + qty
            self._uses[parent] = uses
        return uses

    def _budget_of(
        self, wh: _Warehouse, child: int, parent: int, budgets: npt.NDArray[Any] | None = None
    ) -> int:
        graph = self.graph
        values = wh.budget if budgets is None else budgets
        start, end = int(graph.pstart[parent]), int(graph.pstart[parent + 1])
        for edge in range(start, end):
            if graph.e_child[edge] == child:
                return int(values[edge])
        return 0

    def _closure(self, wh: _Warehouse, roots: Iterable[int]) -> set[int]:
        """``roots`` and everything reached from them through composites that may be made
        from their components in this warehouse."""
        explodable = self.core.flags[wh.index].explodable
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
        what each parent that draws on it passes down (times the units per parent)."""
        rank = self.catalog.rank
        graph = self.graph
        lw, lf = self._lw, self._lf
        weight, floor = wh.weight, wh.floor
        for pos in sorted(nodes, key=lambda p: -rank[p]):
            total_w = 0.0
            total_f = 0
            total_d = total_r = 0
            for i in self._mine(wh, pos):
                total_w += float(lw[i])
                total_f += int(lf[i])
                total_d += int(self._ld[i])
                total_r += int(self._lr[i])
            for edge in self._edges(wh, pos):
                qty = int(graph.e_qty[edge])
                parent = int(graph.e_parent[edge])
                total_w += float(weight[parent]) * qty
                total_f += int(floor[parent]) * qty
                total_d += int(wh.demand[parent]) * qty
                total_r += int(wh.rate[parent]) * qty
            weight[pos] = total_w
            floor[pos] = total_f
            if self.policy.headroom:
                wh.demand[pos], wh.rate[pos] = total_d, total_r

    def _claims(
        self, wh: _Warehouse, pos: int
    ) -> tuple[list[float], list[int], list[tuple[bool, int]]]:
        """The claims on ``pos``'s units: its listings, then the parents drawing on it."""
        graph = self.graph
        weights: list[float] = []
        floors: list[int] = []
        claims: list[tuple[bool, int]] = []
        for i in self._mine(wh, pos):
            weights.append(float(self._lw[i]))
            floors.append(int(self._lf[i]))
            claims.append((True, i))
        for edge in self._edges(wh, pos):
            parent, qty = int(graph.e_parent[edge]), int(graph.e_qty[edge])
            weights.append(float(wh.weight[parent]) * qty)
            floors.append(int(wh.floor[parent]) * qty)
            claims.append((False, parent))
        return weights, floors, claims

    def _made(self, wh: _Warehouse, pos: int, budgets: npt.NDArray[Any] | None = None) -> int:
        """Units of composite ``pos`` its budgets (``wh.budget``, or ``budgets`` by edge) can
        make: min over slots of the sum over options of ``budget // qty`` (a component used
        by several slots has its budget divided among them by their quantities)."""
        uses = self._uses_of(pos)
        best = -1
        for slot in self.catalog.slots[pos] or ():
            units = 0
            for child, qty in slot:
                budget = self._budget_of(wh, child, pos, budgets)
                units += _slot_budget(budget, qty, uses[child]) // qty
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
        weights, floors, claims = self._claims(wh, pos)
        if not claims:
            return []
        grants = split_units(supply, weights, floors)
        moved: list[int] = []
        budget, granted = wh.budget, wh.granted
        edges = iter(self._edges(wh, pos))
        for (is_listing, c), units in zip(claims, grants, strict=True):
            if is_listing:
                granted[c] = units
                continue
            edge = next(edges)
            if budget[edge] != units:
                budget[edge] = units
                moved.append(c)
        return moved

    def _propagate(self, wh: _Warehouse, touched: Iterable[int], extra: Iterable[int]) -> set[int]:
        """Re-split ``touched`` and, in rank order, every parent whose budget moved; then
        settle the listings of what was re-split and of the components of re-split
        composites. Returns the listings whose share changed."""
        rank = self.catalog.rank
        available = self.core.available_list(wh.code)
        dstart, pcstart = wh.dstart, wh.pcstart
        heap: list[tuple[int, int]] = []
        queued: set[int] = set()
        for pos in touched:
            drawn = dstart[pos + 1] > dstart[pos] or pcstart[pos + 1] > pcstart[pos]
            if drawn and pos not in queued:
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
            settle.update(p for p in extra if dstart[p + 1] > dstart[p])
        changed = self._settle(wh, settle)
        if self.policy.headroom:
            # every listing whose strict share moved is a listing of ``settle``
            return self._headroom(wh, settle, available)
        return changed

    def _headroom(self, wh: _Warehouse, nodes: Iterable[int], available: list[int]) -> set[int]:
        """The latency headroom of ``nodes`` and, in rank order, of every parent whose
        budget with headroom moved, in each latency's pass; then the offers of their
        listings. Returns the listings whose offer changed."""
        graph, rank = self.graph, self.catalog.rank
        explodable = self.core.flags[wh.index].explodable
        sigmas = self.policy.headroom_sigmas
        demand, rate = wh.demand, wh.rate
        tree, codes = self.core.structure.tree, self.catalog.codes
        start = set(nodes)
        changed: set[int] = set()
        for latency, hsupply, hbudget in zip(wh.latencies, wh.hsupply, wh.hbudget, strict=True):
            heap = [(rank[pos], pos) for pos in start]
            heapq.heapify(heap)
            queued = set(start)
            seen: list[int] = []
            while heap:
                _, pos = heapq.heappop(heap)
                seen.append(pos)
                own = available[pos] if available[pos] > 0 else 0
                supply = own + (self._made(wh, pos, hbudget) if explodable[pos] else 0)
                hsupply[pos] = supply
                total, total_rate = int(demand[pos]), int(rate[pos])
                everyone = others_expected(total, 0, total_rate, latency)
                for edge in self._edges(wh, pos):
                    parent, qty = int(graph.e_parent[edge]), int(graph.e_qty[edge])
                    used = int(wh.budget[edge]) - self._unused(wh, edge)
                    others = others_expected(total, int(demand[parent]) * qty, total_rate, latency)
                    value = max(used, headroom_room(supply, others, everyone, sigmas))
                    if hbudget[edge] != value:
                        hbudget[edge] = value
                        if parent not in queued:
                            queued.add(parent)
                            heapq.heappush(heap, (rank[parent], parent))
            for pos in seen:
                supply, total, total_rate = int(hsupply[pos]), int(demand[pos]), int(rate[pos])
                everyone = others_expected(total, 0, total_rate, latency)
                cap = None if tree[pos] else self.core.sellable(codes[pos], wh.code)
                for i in self._mine(wh, pos):
                    if int(self._ll[i]) != latency:
                        continue
                    others = others_expected(total, int(self._ld[i]), total_rate, latency)
                    room = headroom_room(supply, others, everyone, sigmas)
                    if cap is not None and room > cap:
                        room = cap
                    value = max(int(wh.strict[i]), room)
                    if wh.share[i] != value:
                        wh.share[i] = value
                        changed.add(i)
        return changed

    def _settle(self, wh: _Warehouse, nodes: Iterable[int]) -> set[int]:
        """Strict shares of the listings of ``nodes``: their grant plus the SKU's leftover
        parent budgets split by weight, or the full sellable below the floor. Returns the
        listings whose strict share changed."""
        changed: set[int] = set()
        codes = self.catalog.codes
        core = self.core
        floor_on = self.policy.rebalance_below > 0
        for pos in nodes:
            mine = self._mine(wh, pos)
            if not mine:
                continue
            unused = 0
            for edge in self._edges(wh, pos):
                unused += self._unused(wh, edge)
            if unused:
                weights = [float(self._lw[i]) for i in mine]
                extra = split_units(unused, weights, [0] * len(mine))
            else:
                extra = [0] * len(mine)
            full = core.sellable(codes[pos], wh.code) if floor_on else 0
            below = floor_on and self._below_floor(full)
            strict = wh.strict
            for i, more in zip(mine, extra, strict=True):
                wh.leftover[i] = more
                value = full if below else int(wh.granted[i]) + more
                if strict[i] != value:
                    strict[i] = value
                    changed.add(i)
        return changed

    def _unused(self, wh: _Warehouse, edge: int) -> int:
        """Units of a component's budget for a parent (the ``edge``) that making the
        parent's units leaves over (options: the slot's units taken from its options in BOM
        order)."""
        budget = int(wh.budget[edge])
        if not budget:
            return 0
        graph = self.graph
        parent, child = int(graph.e_parent[edge]), int(graph.e_child[edge])
        made = int(wh.made[parent])
        if graph.plain[parent]:  # one option a slot, each component once: the formula
            used = made * int(graph.e_qty[edge])
            return budget - used if budget > used else 0
        uses = self._uses_of(parent)
        used = 0
        for slot in self.catalog.slots[parent] or ():
            need = made
            for option, qty in slot:
                part = _slot_budget(self._budget_of(wh, option, parent), qty, uses[option])
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
    "demand_bound",
    "demand_units",
    "headroom_room",
    "latency_seconds",
    "others_expected",
    "split_units",
]
