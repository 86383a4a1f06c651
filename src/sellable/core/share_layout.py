"""The shared split's state as flat arrays (see docs/allocation.md, "Cost"): the catalog's
BOMs as edges (:class:`_Graph`), each warehouse's split by SKU position, by edge and by
listing (:class:`_Warehouse`), and :class:`SplitState`, what the full split
(``share_full``) and the incremental path (``share_incremental``) both work on.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from sellable.core.catalog import Catalog

if TYPE_CHECKING:
    from sellable.core.engine import StockEngine
    from sellable.core.share import ShareListing, SharePolicy

_I64 = np.int64
#: Index arrays (positions, edges, listings: all far below 2**31).
_IDX = np.int32

#: Quantities from which the arrays hold Python ints (object arrays), not int64.
_WIDE_FROM = 1 << 40


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


def _slot_budget(budget: int, qty: int, total_qty: int) -> int:
    """The part of a component's budget for one of its parent's slots (by quantity)."""
    if qty == total_qty:
        return budget
    return budget * qty // total_qty


class SplitState:
    """What the full split and the incremental path share, held by
    :class:`~sellable.core.share.SharedAllocation` (which sets all of it): the engine, the
    policy, the listings and their arrays (SKU position, weight, floor and, for the
    headroom, demand, rate and latency), the split of each warehouse and the BOM graph."""

    core: StockEngine
    policy: SharePolicy
    catalog: Catalog
    listings: list[ShareListing]
    _pos: npt.NDArray[Any]
    _lw: npt.NDArray[Any]
    _lf: npt.NDArray[Any]
    _ld: npt.NDArray[Any]
    _lr: npt.NDArray[Any]
    _ll: npt.NDArray[Any]
    _warehouses: list[_Warehouse]
    _graph: _Graph | None
    #: Per composite: total units of each component per unit (over all its slots).
    _uses: dict[int, dict[int, int]]

    @property
    def graph(self) -> _Graph:
        """The catalog's BOM graph, built on first use and kept with the catalog (it is
        immutable, and so is the graph), so that every split over it shares one."""
        if self._graph is None:
            graph = self.catalog.derived.get("share_graph")
            if graph is None:
                graph = self.catalog.derived["share_graph"] = _Graph(self.catalog)
            self._graph = graph
        return self._graph
