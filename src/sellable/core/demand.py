"""What an order of ``n`` units takes: the one definition the core and the order book share.

A unit of SKU ``s`` asked for in a warehouse is served from ``s``'s prepackaged available
stock first. The rest is *exploded* when ``s`` may be made from its components there (a
composite with a bill of materials, whose component inventory counts, and — for an assembly
— with assembly-on-demand): each slot then needs ``qty`` units of one of its options per
unit. Demand is added up per SKU over every path before any stock is taken, and prepackaged
stock is taken first at every level, so a component reached twice is counted twice
(``X = A + K, K = A``: ``n`` units of ``X`` need ``2n`` of ``A`` when ``K`` is out).

* :meth:`Demand.capacity` is ``sellable``: the largest ``n`` that fits.
* :meth:`Demand.explode` is what the order book allocates: a :class:`Plan` (assembly orders
  for the shortfall of assemblies, then allocations), or a :class:`Shortage`.

Three ways to find the largest ``n``, all exact:

* a **tree** (no SKU reached twice from the root) is the classic formula: prepackaged plus
  the minimum over slots of the sum over options of ``floor(capacity(option) / qty)``;
* a DAG **without options** aggregates demand per SKU; feasibility is monotone in ``n``, so
  a binary search below the formula's value (an upper bound) finds the largest ``n``;
* a DAG **with options** is an integer program (how many units of each slot each option
  fills), solved exactly with HiGHS (``scipy.optimize.milp``), then checked by the same
  aggregation as the order book's.

Splits among a slot's options: in a tree, the option with the most available first (each
option's subtree is its own, so any split within the options' capacities fits); in a shared
DAG, the integer program's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from sellable.core.catalog import Catalog, SkuKind

#: The owner of demand that is allocated to the line (not consumed by an assembly order).
LINE = -1

#: In a split ``[x, REST]``: the second option takes whatever the first does not.
REST = 1 << 62

#: Per (composite position, slot index): the option index the customer chose.
Forced = Mapping[tuple[int, int], int]


#: Tries of one less (see ``Demand._solve_program``) before bisecting.
STEPS_DOWN = 3
#: The most one integer program may take (seconds of HiGHS).
SOLVE_SECONDS = 10.0
#: The largest stock figure or ``n`` an integer program is given. HiGHS was seen running
#: for hours on bounds in the tens of billions, its time limit ignored (2 SKUs, 17 billion
#: units of one); with at most a billion it answers in milliseconds. Stock above it counts
#: as a billion there: the answer can only be fewer units, never more (fits confirms it
#: with the real stock), and a billion is Shopify's own largest inventory quantity.
PROGRAM_CAP = 1_000_000_000


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


class Structure:
    """Warehouse-independent facts about the catalog's shape, for :class:`Demand`.

    ``tree[pos]``: no SKU is reached twice from ``pos`` (through slots or options);
    ``shared_ancestors[pos]``: the non-tree composites whose closure holds ``pos`` (their
    value depends on ``pos``'s stock even when nothing between them changes).
    """

    __slots__ = ("_has_options", "_orders", "catalog", "shared_ancestors", "solved", "tree")

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        slots = catalog.slots
        tree = [True] * len(catalog)
        for pos in catalog.composite_order:  # components before their parents
            children = [child for slot in slots[pos] or () for child, _ in slot]
            if len(set(children)) != len(children) or not all(tree[c] for c in children):
                tree[pos] = False
                continue
            if all(slots[c] is None for c in children):
                continue  # distinct simple SKUs
            seen: set[int] = set()
            stack = list(children)
            while stack:
                node = stack.pop()
                if node in seen:
                    tree[pos] = False
                    break
                seen.add(node)
                for slot in slots[node] or ():
                    stack.extend(child for child, _ in slot)
        self.tree = tree
        #: Integer programs solved: (flags, root, choice, stock of its BOM) -> capacity.
        self.solved: dict[tuple[object, ...], int] = {}
        self._orders: dict[int, tuple[int, ...]] = {}
        self._has_options: dict[int, bool] = {}
        shared: dict[int, list[int]] = {}
        for pos in catalog.composite_order:
            if not tree[pos]:
                for node in self.order(pos)[1:]:
                    shared.setdefault(node, []).append(pos)
        self.shared_ancestors: dict[int, tuple[int, ...]] = {
            node: tuple(of) for node, of in shared.items()
        }

    def order(self, root: int) -> tuple[int, ...]:
        """``root`` and every SKU in its BOM, recursively: parents before their components
        (rank descending), in BOM order within a rank."""
        found = self._orders.get(root)
        if found is None:
            slots = self.catalog.slots
            seen = {root}
            listed = [root]
            index = 0
            while index < len(listed):
                for slot in slots[listed[index]] or ():
                    for child, _ in slot:
                        if child not in seen:
                            seen.add(child)
                            listed.append(child)
                index += 1
            rank = self.catalog.rank
            found = self._orders[root] = tuple(sorted(listed, key=lambda p: -rank[p]))
        return found

    def has_options(self, root: int) -> bool:
        """True when a slot with several options is reached from ``root``."""
        found = self._has_options.get(root)
        if found is None:
            slots = self.catalog.slots
            found = self._has_options[root] = any(
                len(slot) > 1 for node in self.order(root) for slot in slots[node] or ()
            )
        return found


class WarehouseFlags:
    """Per SKU position, in one warehouse: may it be made from its components
    (``explodable``), does it allow orders exceeding stock (``backorder``), and is any
    quantity of it accepted (``unbounded``: it allows backorders, or is made from
    components every slot of which has an unbounded option)."""

    __slots__ = ("backorder", "explodable", "unbounded")

    def __init__(
        self,
        catalog: Catalog,
        *,
        uses_components: bool,
        assembly_on_demand: bool,
        allow_backorder: Sequence[bool],
        sku_assembly_on_demand: Sequence[bool | None],
        sku_use_component_inventory: Sequence[bool | None],
    ) -> None:
        assembly = SkuKind.ASSEMBLY
        explodable = [False] * len(catalog)
        for pos in catalog.composite_order:
            if not catalog.slots[pos]:
                continue  # an empty BOM makes nothing
            own = sku_use_component_inventory[pos]
            if not (uses_components if own is None else own):
                continue
            if catalog.kinds[pos] is assembly:
                on_demand = sku_assembly_on_demand[pos]
                if not (assembly_on_demand if on_demand is None else on_demand):
                    continue
            explodable[pos] = True
        self.explodable = explodable
        self.backorder = [bool(b) for b in allow_backorder]
        unbounded = list(self.backorder)
        slots = catalog.slots
        for pos in catalog.composite_order:
            if not unbounded[pos] and explodable[pos]:
                unbounded[pos] = all(
                    any(unbounded[child] for child, _ in slot)
                    for slot in slots[pos]  # type: ignore[union-attr]
                )
        self.unbounded = unbounded


class Demand:
    """Exact sellable and plans for one warehouse, on a view of its prepackaged available
    stock (``avail(pos)``: on hand less locked, allocated and held; may be negative).

    ``known(pos)``, when given, is the exact capacity of a SKU on the same stock (the
    engine's computed sellable): it only bounds the search for a shared composite.
    """

    __slots__ = ("avail", "catalog", "flags", "known", "structure", "warehouse")

    def __init__(
        self,
        structure: Structure,
        flags: WarehouseFlags,
        avail: Callable[[int], int],
        warehouse: str,
        known: Callable[[int], int] | None = None,
    ) -> None:
        self.structure = structure
        self.catalog = structure.catalog
        self.flags = flags
        self.avail = avail
        self.warehouse = warehouse
        self.known = known

    # -- capacity (sellable) --------------------------------------------------------------------

    def capacity(self, root: int, forced: Forced | None = None) -> int:
        """The largest ``n`` of ``root`` that fits, with no order exceeding stock."""
        return self._capacity(root, forced or {}, {})

    def _capacity(self, root: int, forced: Forced, memo: dict[int, int]) -> int:
        found = memo.get(root)
        if found is not None:
            return found
        own = self.avail(root)
        if own < 0:
            own = 0
        if not self.flags.explodable[root]:
            memo[root] = own
            return own
        bound = own + self._slot_bound(root, forced, memo)
        if self.structure.tree[root]:
            result = bound  # exact on a tree
        elif not self._needs_split(root, forced):
            result = self._search(root, bound, forced)
        elif (pair := self._single_pair(root, forced)) is not None:
            result = self._search_pair(root, bound, forced, pair)
        else:
            result = self._solve(root, bound, forced)
        memo[root] = result
        return result

    def _slot_bound(self, pos: int, forced: Forced, memo: dict[int, int]) -> int:
        """Units the slots can make if no component were shared (exact on a tree)."""
        best = -1
        for index, slot in enumerate(self.catalog.slots[pos] or ()):
            chosen = forced.get((pos, index))
            options = slot if chosen is None else (slot[chosen],)
            units = 0
            for child, qty in options:
                cap = (
                    self.known(child)
                    if self.known is not None and not forced
                    else self._capacity(child, forced, memo)
                )
                units += cap // qty
            if units < best or best < 0:
                best = units
                if best == 0:
                    return 0
        return best if best > 0 else 0

    def _needs_split(self, root: int, forced: Forced) -> bool:
        if not self.structure.has_options(root):
            return False
        slots = self.catalog.slots
        return any(
            len(slot) > 1 and (node, index) not in forced
            for node in self.structure.order(root)
            for index, slot in enumerate(slots[node] or ())
        )

    def _single_pair(self, root: int, forced: Forced) -> tuple[int, int] | None:
        """The one slot with two options left to choose in ``root``'s BOM, if that is the
        only choice there: then the best split is a one-dimensional convex search."""
        found: tuple[int, int] | None = None
        slots = self.catalog.slots
        for node in self.structure.order(root):
            for index, slot in enumerate(slots[node] or ()):
                if len(slot) > 1 and (node, index) not in forced:
                    if found is not None or len(slot) != 2:
                        return None
                    found = (node, index)
        return found

    def _search_pair(self, root: int, bound: int, forced: Forced, pair: tuple[int, int]) -> int:
        """Largest ``n`` in ``[0, bound]`` for which some split of the one two-option slot
        fits (feasibility is monotone in ``n``)."""
        return _largest(bound, lambda n: self._pair_split(root, n, forced, pair) is not None)

    def _pair_split(
        self, root: int, n: int, forced: Forced, pair: tuple[int, int]
    ) -> dict[tuple[int, int], list[int]] | None:
        """A split of the one two-option slot with which ``n`` fits, or None.

        With ``x`` units on the first option and the rest on the second, every SKU's demand
        is a convex function of ``x`` (sums of ``max(0, demand - prepackaged)`` of linear
        terms), so the largest shortfall over the SKUs is convex too: its integer minimum
        is found by a binary search on its slope, and ``n`` fits iff that minimum is none."""
        worst, units = self._shortfall(root, n, forced, {pair: [0, REST]})
        if worst <= 0:
            return {pair: [0, units]}
        if units == 0:
            return None
        low, high = 0, units  # the smallest x whose next step does not lower the shortfall
        while low < high:
            middle = (low + high) // 2
            here = self._shortfall(root, n, forced, {pair: [middle, REST]})[0]
            after = self._shortfall(root, n, forced, {pair: [middle + 1, REST]})[0]
            if after >= here:
                high = middle
            else:
                low = middle + 1
        worst, units = self._shortfall(root, n, forced, {pair: [low, REST]})
        if worst > 0:
            return None
        return {pair: [min(low, units), units - min(low, units)]}

    def _shortfall(
        self,
        root: int,
        n: int,
        forced: Forced,
        splits: Mapping[tuple[int, int], Sequence[int]] | None,
        *,
        stop: bool = False,
    ) -> tuple[int, int]:
        """The demand count both searches and :meth:`fits` read: the largest shortfall over
        the SKUs that cannot be made (0 or less: ``n`` fits; with ``stop``, the first one
        found), and the units the last slot split had to fill. Splits are trimmed to what
        the slot needs (:func:`_trim`: ``[x, REST]`` puts ``min(x, units)`` on the first
        option and the rest on the second)."""
        slots = self.catalog.slots
        explodable = self.flags.explodable
        avail = self.avail
        demand = {root: n}
        worst = 0
        filled = 0
        for node in self.structure.order(root):
            wanted = demand.get(node)
            if not wanted:
                continue
            have = avail(node)
            if have < 0:
                have = 0
            rest = wanted - have
            if rest <= 0:
                continue
            if not explodable[node]:
                if stop:
                    return rest, filled
                if rest > worst:
                    worst = rest
                continue
            for index, slot in enumerate(slots[node]):  # type: ignore[arg-type]
                if len(slot) == 1:
                    child, qty = slot[0]
                    demand[child] = demand.get(child, 0) + qty * rest
                    continue
                chosen = forced.get((node, index))
                if chosen is not None:
                    child, qty = slot[chosen]
                    demand[child] = demand.get(child, 0) + qty * rest
                    continue
                if splits is None:
                    raise ValueError("a slot with several options needs a split")
                filled = rest
                split = _trim(splits[(node, index)], rest)
                if len(slot) == 2:  # the common case, unrolled: this loop is the hot path
                    (one, q_one), (two, q_two) = slot
                    if split[0]:
                        demand[one] = demand.get(one, 0) + q_one * split[0]
                    if split[1]:
                        demand[two] = demand.get(two, 0) + q_two * split[1]
                    continue
                for (child, qty), units in zip(slot, split, strict=True):
                    if units:
                        demand[child] = demand.get(child, 0) + qty * units
        return worst, filled

    def _search(self, root: int, bound: int, forced: Forced) -> int:
        """Largest ``n`` in ``[0, bound]`` that :meth:`fits` (monotone in ``n``)."""
        return _largest(bound, lambda n: self.fits(root, n, forced))

    def fits(
        self,
        root: int,
        n: int,
        forced: Forced | None = None,
        splits: Mapping[tuple[int, int], Sequence[int]] | None = None,
    ) -> bool:
        """Does ``n`` of ``root`` fit, demand added up per SKU, prepackaged first?

        Slots with several options need ``splits`` (units per option, as the integer
        program found them; fewer may be needed when prepackaged stock covers more) unless
        ``forced`` picks one option."""
        return n <= 0 or self._shortfall(root, n, forced or {}, splits, stop=True)[0] <= 0

    def _solve(self, root: int, bound: int, forced: Forced) -> int:
        """The largest ``n`` by the integer program, confirmed by :meth:`fits`. When the
        greedy split already reaches the bound, that is the answer without a solver."""
        if self._greedy_fits(root, bound, forced):
            return bound
        # The same composite on the same stock (a recompute after an unrelated change, or
        # the order book's planner and the core on one state) is solved once.
        avail = self.avail
        key = (
            id(self.flags),
            root,
            tuple(sorted(forced.items())),
            tuple(max(0, avail(node)) for node in self.structure.order(root)),
        )
        solved = self.structure.solved
        found = solved.get(key)
        if found is None:
            if len(solved) > 50_000:
                solved.clear()
            found = solved[key] = self._solve_program(root, bound, forced)
        return found

    def _solve_program(self, root: int, bound: int, forced: Forced) -> int:
        n = self._program_largest(root, bound, forced)
        if n < bound and (
            bound > PROGRAM_CAP
            or any(self.avail(node) > PROGRAM_CAP for node in self.structure.order(root))
        ):
            # The program saw at most PROGRAM_CAP of each SKU. The greedy split (most
            # available first), which the order book tries before the program, may fit
            # more: the largest n it fits, so that the order book accepts no unit more
            # than is answered (below the cap the program is exact, and this finds no more).
            n = _largest(bound, lambda m: self._greedy_fits(root, m, forced), low=n)
        return n

    def _program_largest(self, root: int, bound: int, forced: Forced) -> int:
        n = bound
        for _ in range(STEPS_DOWN):
            found = self._program(root, forced, maximum=n)
            if found is None:
                return 0
            best, splits = found
            n = min(n, best)
            if n <= 0 or self.fits(root, n, forced, splits):
                return max(0, n)
            # Rounding let the solver claim a split that does not fit: one less, and again.
            n -= 1
        # Still no split that fits (the solver's rounding at huge stock figures, where one
        # less at a time could take billions of solves): the largest n whose exact
        # program's split fits, by bisection. Fitting is monotone (what fits n fits fewer),
        # so this finds it, or less when a split rounds wrong (never more: every answer is
        # confirmed by fits).
        low, high = 0, n
        while low < high:
            middle = (low + high + 1) // 2
            found = self._program(root, forced, maximum=middle, exactly=True)
            if found is not None and self.fits(root, middle, forced, found[1]):
                low = middle
            else:
                high = middle - 1
        return low

    def _greedy_fits(self, root: int, n: int, forced: Forced) -> bool:
        """Does the most-available-first split allocate ``n`` in full? (A lower bound: the
        integer program decides when it does not.)"""
        return isinstance(self._explode(root, n, forced=forced, splits=None), Plan)

    def _program(
        self, root: int, forced: Forced, *, maximum: int, exactly: bool = False
    ) -> tuple[int, dict[tuple[int, int], list[int]]] | None:
        """Solve: maximise ``n`` (or reach ``n = maximum`` when ``exactly``) subject to the
        demand of every SKU in ``root``'s BOM being covered by its prepackaged stock and, where
        it may be exploded, by its components; returns ``n`` and the option splits."""
        import numpy as np
        from scipy.optimize import Bounds, LinearConstraint, milp

        if maximum > PROGRAM_CAP:
            if exactly:
                return None  # more than the program is given: no split (see PROGRAM_CAP)
            maximum = PROGRAM_CAP
        slots = self.catalog.slots
        explodable = self.flags.explodable
        nodes = self.structure.order(root)
        column = {"n": 0}
        lower: list[float] = [float(maximum) if exactly else 0.0]
        upper: list[float] = [float(maximum)]
        for node in nodes:
            have = min(max(0, self.avail(node)), PROGRAM_CAP)
            column[f"p{node}"] = len(lower)
            lower.append(0)
            upper.append(float(have))
            column[f"e{node}"] = len(lower)
            lower.append(0)
            upper.append(np.inf if explodable[node] else 0)
        split_columns: dict[tuple[int, int], list[int]] = {}
        for node in nodes:
            if not explodable[node]:
                continue
            for index, slot in enumerate(slots[node]):  # type: ignore[arg-type]
                if len(slot) == 1:
                    continue
                chosen = forced.get((node, index))
                columns = []
                for option in range(len(slot)):
                    columns.append(len(lower))
                    lower.append(0)
                    upper.append(np.inf if chosen is None or chosen == option else 0)
                split_columns[(node, index)] = columns
        rows: list[dict[int, float]] = []
        # Demand of each node: p + e - (what reaches it) = 0.
        reaches: dict[int, dict[int, float]] = {node: {} for node in nodes}
        reaches[root][0] = 1.0
        for node in nodes:
            if not explodable[node]:
                continue
            e_column = column[f"e{node}"]
            for index, slot in enumerate(slots[node]):  # type: ignore[arg-type]
                if len(slot) == 1:
                    child, qty = slot[0]
                    into = reaches[child]
                    into[e_column] = into.get(e_column, 0.0) + qty
                    continue
                columns = split_columns[(node, index)]
                for (child, qty), x_column in zip(slot, columns, strict=True):
                    into = reaches[child]
                    into[x_column] = into.get(x_column, 0.0) + qty
                # The options of a slot fill all its units: sum(x) - e = 0.
                row = dict.fromkeys(columns, 1.0)
                row[e_column] = -1.0
                rows.append(row)
        for node in nodes:
            row = {column[f"p{node}"]: 1.0, column[f"e{node}"]: 1.0}
            for col, weight in reaches[node].items():
                row[col] = row.get(col, 0.0) - weight
            rows.append(row)
        matrix = np.zeros((len(rows), len(lower)))
        for r, row in enumerate(rows):
            for col, value in row.items():
                matrix[r, col] = value
        objective = np.zeros(len(lower))
        objective[0] = -1.0
        result = milp(
            objective,
            integrality=np.ones(len(lower)),
            bounds=Bounds(np.array(lower, dtype=float), np.array(upper, dtype=float)),
            constraints=LinearConstraint(matrix, 0.0, 0.0),
            # HiGHS's branch and bound can run for ever on stock figures in the billions
            # (seen in the property tests); past the limit it answers its best split so
            # far, which fits confirms: fewer units, never more.
            options={"time_limit": SOLVE_SECONDS},
        )
        if result.x is None:
            return None
        values = [round(v) for v in result.x]
        splits = {key: [max(0, values[c]) for c in cols] for key, cols in split_columns.items()}
        return max(0, values[0]), splits

    # -- plans ----------------------------------------------------------------------------------

    def plan(
        self,
        root: int,
        n: int,
        *,
        forced: Forced | None = None,
        backorders: bool = False,
        force: bool = False,
        build: bool = False,
    ) -> Plan | Shortage:
        """What ``n`` units of ``root`` take, as the order book applies it.

        ``backorders``: SKUs that allow orders exceeding stock take what they lack anyway
        (their stock goes negative; a kit that allows them lets its components go negative);
        ``force`` treats ``root`` itself so (a channel says the line already shipped).
        ``build``: an assembly order for ``n`` of ``root`` from its components (its own
        stock is not taken)."""
        if not build and 0 < n <= self.avail(root):
            # Its own prepackaged stock covers the line (most lines): nothing to explode.
            return Plan(allocations=[(self.catalog.codes[root], n)])
        forced = forced or {}
        splits = None
        if (
            not build
            and not self.structure.tree[root]
            and self._needs_split(root, forced)
            and not self._greedy_fits(root, n, forced)
        ):
            pair = self._single_pair(root, forced)
            if pair is not None:
                splits = self._pair_split(root, n, forced, pair)
            else:
                found = self._program(root, forced, maximum=n, exactly=True)
                if found is not None and self.fits(root, n, forced, found[1]):
                    splits = found[1]
        outcome = self._explode(
            root,
            n,
            forced=forced,
            splits=splits,
            backorders=backorders or force,
            force=force,
            build=build,
        )
        if isinstance(outcome, Shortage) and (force or (backorders and self.flags.unbounded[root])):
            # Taking what is there first came up short on a SKU that allows nothing more:
            # send every slot's units to an option that accepts orders exceeding stock (there
            # is one in every slot of an unbounded composite).
            outcome = self._explode(
                root,
                n,
                forced=forced,
                splits=None,
                backorders=True,
                force=force,
                build=build,
                unbounded_first=True,
            )
        assert not isinstance(outcome, dict)
        return outcome

    def claims(self, root: int, n: int, forced: Forced | None = None) -> dict[int, int]:
        """What a held line of ``n`` units of ``root`` claims per SKU: its whole demand,
        exploded the way it would be allocated — the units that are there, and for SKUs that
        cannot be made, all that is wanted."""
        outcome = self._explode(root, n, forced=forced or {}, splits=None, claims=True)
        assert isinstance(outcome, dict)
        return outcome

    def _explode(
        self,
        root: int,
        n: int,
        *,
        forced: Forced,
        splits: Mapping[tuple[int, int], Sequence[int]] | None,
        backorders: bool = False,
        force: bool = False,
        build: bool = False,
        claims: bool = False,
        unbounded_first: bool = False,
    ) -> Plan | Shortage | dict[int, int]:
        catalog = self.catalog
        slots = catalog.slots
        kinds = catalog.kinds
        codes = catalog.codes
        flags = self.flags
        assembly = SkuKind.ASSEMBLY
        # demand[node][owner]: units of node wanted by the line (LINE) or consumed by the
        # assembly order of ``owner``.
        demand: dict[int, dict[int, int]] = {root: {LINE: n}}
        allocations: dict[int, int] = {}
        consumed: dict[int, dict[int, int]] = {}
        builds: dict[int, int] = {}
        claimed: dict[int, int] = {}
        absorbing: set[int] = {root} if force else set()
        shortages: list[Shortage] = []

        def credit(node: int, owner: int, units: int) -> None:
            if owner == LINE:
                allocations[node] = allocations.get(node, 0) + units
            else:
                into = consumed.setdefault(owner, {})
                into[node] = into.get(node, 0) + units

        def add(child: int, owner: int, units: int) -> None:
            into = demand.setdefault(child, {})
            into[owner] = into.get(owner, 0) + units

        for node in self.structure.order(root):
            owners = demand.get(node)
            if not owners:
                continue
            total = sum(owners.values())
            building = build and node == root
            have = 0 if building else self.avail(node)
            if have < 0:
                have = 0
            left = min(have, total)
            claimed[node] = left
            rest: dict[int, int] = {}
            for owner in sorted(owners):
                take = min(left, owners[owner])
                left -= take
                if take and not building:
                    credit(node, owner, take)
                if owners[owner] > take:
                    rest[owner] = owners[owner] - take
            if not rest:
                continue
            short = total - min(have, total)
            backorder = backorders and (flags.backorder[node] or node in absorbing)
            can_make = flags.explodable[node] or (
                building and bool(slots[node]) and kinds[node].is_composite
            )
            made_of_itself = kinds[node] is assembly or building
            if backorder and (made_of_itself or not can_make):
                # Orders exceeding stock: the SKU's own stock goes negative.
                for owner, units in rest.items():
                    credit(node, owner, units)
                continue
            if not can_make:
                claimed[node] = total
                shortages.append(Shortage(codes[node], have, total, self.warehouse))
                continue
            if made_of_itself:
                builds[node] = builds.get(node, 0) + short
                child_rest = {node: short}
                if not building:
                    for owner, units in rest.items():
                        credit(node, owner, units)
            else:
                child_rest = rest
                if backorder:
                    # A kit that allows orders exceeding stock lets its components go
                    # negative: they absorb what they lack.
                    absorbing.update(child for slot in slots[node] or () for child, _ in slot)
            for index, slot in enumerate(slots[node] or ()):
                chosen = forced.get((node, index))
                if chosen is not None:
                    options: tuple[tuple[int, int], ...] = (slot[chosen],)
                    units_per_option: Sequence[int] = (short,)
                elif len(slot) == 1:
                    options = slot
                    units_per_option = (short,)
                else:
                    options = slot
                    if splits is not None and (node, index) in splits:
                        units_per_option = _trim(splits[(node, index)], short)
                    else:
                        units_per_option = self._greedy(
                            slot, short, backorders, absorbing, unbounded_first
                        )
                remaining = list(units_per_option)
                for owner, wanted in sorted(child_rest.items()):
                    for option, (child, qty) in enumerate(options):
                        if not wanted:
                            break
                        give = min(wanted, remaining[option])
                        if give:
                            add(child, owner, qty * give)
                            remaining[option] -= give
                            wanted -= give
                    if wanted:  # the options cannot fill it: the first one comes up short
                        add(options[0][0], owner, options[0][1] * wanted)
        if claims:
            return claimed
        if shortages:
            # The bottleneck: the SKU that can serve the smallest share of its demand.
            return min(
                shortages, key=lambda s: (s.have / s.need, -catalog.rank[catalog.index[s.sku]])
            )
        plan = Plan()
        rank = catalog.rank
        for node in sorted(builds, key=lambda p: rank[p]):
            plan.builds.append(
                BuildStep(
                    codes[node],
                    builds[node],
                    [(codes[c], q) for c, q in consumed.get(node, {}).items() if q],
                )
            )
        plan.allocations = [(codes[node], q) for node, q in allocations.items() if q]
        return plan

    def _greedy(
        self,
        slot: tuple[tuple[int, int], ...],
        units: int,
        backorders: bool,
        absorbing: set[int],
        unbounded_first: bool = False,
    ) -> list[int]:
        """Split ``units`` of a slot among its options, the one with the most available
        first (exact in a tree, where each option's subtree is its own). What no option can
        fill goes to the first option that accepts orders exceeding stock, if any
        (``unbounded_first``: all of it does)."""
        if unbounded_first:
            for option, (child, _qty) in enumerate(slot):
                if self.flags.unbounded[child] or child in absorbing:
                    split = [0] * len(slot)
                    split[option] = units
                    return split
        capacities = [self.capacity(child) // qty for child, qty in slot]
        order = sorted(range(len(slot)), key=lambda i: (-capacities[i], i))
        split = [0] * len(slot)
        for option in order:
            give = min(units, capacities[option])
            split[option] += give
            units -= give
        if units and backorders:
            for option, (child, _qty) in enumerate(slot):
                if self.flags.unbounded[child] or child in absorbing:
                    split[option] += units
                    units = 0
                    break
        if units:
            split[order[0]] += units
        return split


def _largest(bound: int, fits: Callable[[int], bool], low: int = 0) -> int:
    """The largest ``n`` in ``[low, bound]`` with ``fits(n)``, for a monotone ``fits`` (``low``
    is known to fit; 0 always does): the bound first (usually the answer), then a binary
    search."""
    if fits(bound):
        return bound
    high = bound
    while high - low > 1:
        middle = (low + high) // 2
        if fits(middle):
            low = middle
        else:
            high = middle
    return low


def _trim(split: Sequence[int], units: int) -> Sequence[int]:
    """``split`` reduced (from its last options) to cover exactly ``units`` (prepackaged
    stock may have covered more than the split assumed)."""
    if len(split) == 2 and split[1] == REST:  # the convex search's split: the cheap way
        first = split[0] if split[0] < units else units
        return (first, units - first)
    out = list(split)
    excess = sum(out) - units
    for option in range(len(out) - 1, -1, -1):
        if excess <= 0:
            break
        cut = min(excess, out[option])
        out[option] -= cut
        excess -= cut
    if excess < 0:
        out[0] -= excess  # never: a split covers what the program said; kept total exact
    return out
