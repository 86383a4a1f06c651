"""The incremental path: after a stock change or new weights, re-split one SKU at a time,
in rank order, only what depends on the change (on the full split's arrays), and return the
listings whose share changed. It must equal a full recompute; the property tests check it.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from typing import Any

import numpy.typing as npt

from sellable.core.share_headroom import headroom_room, others_expected
from sellable.core.share_layout import SplitState, _slot_budget, _Warehouse
from sellable.core.share_units import split_units


class IncrementalSplit(SplitState):
    """The one-SKU-at-a-time steps behind :meth:`SharedAllocation.stock_changed`,
    :meth:`SharedAllocation.set_weights` and :meth:`SharedAllocation.detail`."""

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
