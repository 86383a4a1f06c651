"""The full split: every share from scratch, a warehouse at a time, in arrays (see
docs/allocation.md, "Cost"). The incremental path (``share_incremental``) must give the same
units; the property tests check it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from sellable.core.share_headroom import _rooms, others_expected
from sellable.core.share_layout import (
    _I64,
    _IDX,
    _WIDE_FROM,
    SplitState,
    _gather,
    _Graph,
    _ints,
    _largest,
    _Warehouse,
)
from sellable.core.share_units import _split_groups


class FullSplit(SplitState):
    """:meth:`_recompute_warehouse`, for :meth:`SharedAllocation.recompute_all`."""

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
        if len(order) == count:  # every listing: each SKU's in listing order all the same
            weight: npt.NDArray[Any] = np.bincount(lpos, weights=lw, minlength=n)
        else:
            weight = np.bincount(sku_of, weights=lw[order], minlength=n)
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
