"""Property tests: the engine against a brute-force reading of ARCHITECTURE.md.

Catalogs are random DAGs: each composite only references SKUs declared before it, so
there are no cycles; slots offer 1-3 options with 1-4 units each; a "chain" flag makes
composites contain the previous composite so that nesting gets deep.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from hypothesis import example, given
from hypothesis import strategies as st

from sellable.core import (
    BomLine,
    Catalog,
    SkuKind,
    StockEngine,
    StockLevels,
    WarehouseRules,
    explain,
)
from tests.conftest import property_settings

# 120 derandomized examples per property in CI; SELLABLE_HYPOTHESIS_PROFILE=deep runs 800
# with a fresh seed each time (tests/conftest.py).
PROPERTY_SETTINGS = property_settings(120, 800)

COMPOSITE_KINDS = [SkuKind.KIT, SkuKind.ASSEMBLY, SkuKind.PACKAGE, SkuKind.BUNDLE]

Pair = tuple[str, str]
Option = tuple[str, int]  # (component SKU, units per parent)
SlotSpec = tuple[str | None, tuple[Option, ...]]  # (slot name or None, options)


@dataclass(frozen=True)
class Scenario:
    skus: tuple[tuple[str, SkuKind], ...]
    boms: Mapping[str, tuple[SlotSpec, ...]]  # every composite, possibly with no slots
    warehouses: tuple[WarehouseRules, ...]
    stock: Mapping[Pair, StockLevels]
    steps: tuple[Mapping[Pair, StockLevels] | tuple[Pair, StockLevels], ...] = field(default=())

    def bom_lines(self) -> list[BomLine]:
        return [
            BomLine(parent, component, quantity, slot=name)
            for parent, slots in self.boms.items()
            for name, options in slots
            for component, quantity in options
        ]

    def catalog(self) -> Catalog:
        return Catalog.build(self.skus, self.bom_lines())

    def engine(self, stock: Mapping[Pair, StockLevels]) -> StockEngine:
        engine = StockEngine(self.catalog(), list(self.warehouses))
        engine.load_stock(stock)
        engine.recompute_all()
        return engine

    def pairs(self) -> list[Pair]:
        return [(sku, w.code) for sku, _ in self.skus for w in self.warehouses]

    def tree_pairs(self) -> list[Pair]:
        """The pairs whose SKU reaches no SKU twice: there the classic formula the reference
        reads is exact (shared components are tests/core/test_exact_sellable.py's)."""
        return [(sku, wh) for sku, wh in self.pairs() if self._is_tree(sku)]

    def _is_tree(self, sku: str) -> bool:
        seen: set[str] = set()
        todo = [sku]
        while todo:
            node = todo.pop()
            if node in seen:
                return False
            seen.add(node)
            todo.extend(c for _, options in self.boms.get(node, ()) for c, _ in options)
        return True


# -- the reference: ARCHITECTURE.md's formula, read literally ------------------------------------


class Reference:
    """sellable(s, w) = max(0, prepackaged available) + (component(s, w) if w uses it else 0);
    component(s, w) = min over slots of sum over options of floor(sellable(c, w) / qty);
    0 for an empty BOM. On hand follows the same rule with on hand in place of available."""

    def __init__(self, scenario: Scenario, stock: Mapping[Pair, StockLevels]) -> None:
        self.boms = scenario.boms
        self.uses = {w.code: w.use_component_inventory for w in scenario.warehouses}
        self.stock = stock
        self._sellable: dict[Pair, int] = {}
        self._on_hand: dict[Pair, int] = {}

    def levels(self, sku: str, wh: str) -> StockLevels:
        return self.stock.get((sku, wh), StockLevels())

    def slot_units(self, sku: str, wh: str, of: str = "sellable") -> list[int]:
        value = self.sellable if of == "sellable" else self.total_on_hand
        return [sum(value(c, wh) // q for c, q in options) for _, options in self.boms[sku]]

    def component(self, sku: str, wh: str) -> int:
        if sku not in self.boms or not self.uses[wh]:
            return 0
        return min(self.slot_units(sku, wh), default=0)

    def sellable(self, sku: str, wh: str) -> int:
        if (sku, wh) not in self._sellable:
            own = max(0, self.levels(sku, wh).available)
            self._sellable[sku, wh] = own + self.component(sku, wh)
        return self._sellable[sku, wh]

    def component_on_hand(self, sku: str, wh: str) -> int:
        if sku not in self.boms or not self.uses[wh]:
            return 0
        return min(self.slot_units(sku, wh, of="on_hand"), default=0)

    def total_on_hand(self, sku: str, wh: str) -> int:
        if (sku, wh) not in self._on_hand:
            own = max(0, self.levels(sku, wh).on_hand)
            self._on_hand[sku, wh] = own + self.component_on_hand(sku, wh)
        return self._on_hand[sku, wh]

    def bottleneck_slot(self, sku: str, wh: str) -> int | None:
        """Index of the first slot giving the fewest units; None for an empty BOM."""
        units = self.slot_units(sku, wh)
        return units.index(min(units)) if units else None

    def bottleneck(self, sku: str, wh: str) -> str | None:
        if not self.uses[wh]:
            return None
        index = self.bottleneck_slot(sku, wh)
        if index is None:
            return None
        name, options = self.boms[sku][index]
        return options[0][0] if len(options) == 1 else name


# -- strategies ---------------------------------------------------------------------------------


def stock_levels() -> st.SearchStrategy[StockLevels]:
    # Every field is given: st.builds fills a NamedTuple's defaulted fields too, with any
    # integer (hypothesis 6.170 drew held and expired in the 10**30s, and HiGHS then ran for
    # hours on one example).
    return st.builds(
        StockLevels,
        on_hand=st.integers(-3, 60),
        locked=st.integers(0, 8),
        allocated=st.integers(0, 15),
        held=st.integers(0, 4),
        expired=st.integers(0, 4),
    )


@st.composite
def catalogs(
    draw: st.DrawFn,
) -> tuple[tuple[tuple[str, SkuKind], ...], dict[str, tuple[SlotSpec, ...]]]:
    count = draw(st.integers(2, 12))
    skus: list[tuple[str, SkuKind]] = []
    boms: dict[str, tuple[SlotSpec, ...]] = {}
    last_composite: str | None = None
    for i in range(count):
        code = f"S{i}"
        if i == 0 or not draw(st.booleans()):
            skus.append((code, SkuKind.SIMPLE))
            continue
        skus.append((code, draw(st.sampled_from(COMPOSITE_KINDS))))
        earlier = [c for c, _ in skus[:-1]]
        slots: list[SlotSpec] = []
        lone: set[str] = set()  # components already used by a slot=None row of this parent
        if last_composite is not None and draw(st.booleans()):  # chain for deep nesting
            slots.append((None, ((last_composite, draw(st.integers(1, 4))),)))
            lone.add(last_composite)
        extra = draw(st.integers(0, 6))
        for j in range(0 if extra == 0 else 1 + (extra - 1) % 3):
            components = draw(
                st.lists(
                    st.sampled_from(earlier),
                    min_size=1,
                    max_size=min(3, len(earlier)),
                    unique=True,
                )
            )
            options = tuple((c, draw(st.integers(1, 4))) for c in components)
            if len(options) == 1 and components[0] not in lone and draw(st.booleans()):
                lone.add(components[0])
                slots.append((None, options))
            else:
                slots.append((f"slot{j}", options))
        boms[code] = tuple(slots)
        last_composite = code
    return tuple(skus), boms


@st.composite
def scenarios(draw: st.DrawFn, with_steps: bool = False) -> Scenario:
    skus, boms = draw(catalogs())
    # Assemblies are made on demand wherever components count (as a kit is), so that every
    # composite is made from its components where the warehouse allows it.
    uses = [draw(st.booleans()) for _ in range(draw(st.integers(1, 3)))]
    warehouses = tuple(
        WarehouseRules(f"W{i}", use_component_inventory=u, assembly_on_demand=u)
        for i, u in enumerate(uses)
    )
    pairs = [(sku, w.code) for sku, _ in skus for w in warehouses]
    stock = {}
    for pair in pairs:
        levels = draw(st.none() | stock_levels())
        if levels is not None:
            stock[pair] = levels
    steps: list[Mapping[Pair, StockLevels] | tuple[Pair, StockLevels]] = []
    if with_steps:
        pair_strategy = st.sampled_from(pairs)
        current = dict(stock)
        for _ in range(draw(st.integers(1, 8))):
            step_kind = draw(st.sampled_from(["one", "many", "build"]))
            if step_kind == "build" and boms:
                change = build_step(
                    boms,
                    current,
                    draw(st.sampled_from(sorted(boms))),
                    draw(st.sampled_from([w.code for w in warehouses])),
                    draw(st.integers(1, 3)),
                )
                steps.append(change)
                current.update(change)
            elif step_kind == "one":
                pair, levels = draw(pair_strategy), draw(stock_levels())
                steps.append((pair, levels))
                current[pair] = levels
            else:
                change = draw(
                    st.dictionaries(pair_strategy, stock_levels(), min_size=1, max_size=4)
                )
                steps.append(change)
                current.update(change)
    return Scenario(skus, boms, warehouses, stock, tuple(steps))


def build_step(
    boms: Mapping[str, tuple[SlotSpec, ...]],
    stock: Mapping[Pair, StockLevels],
    sku: str,
    wh: str,
    units: int,
) -> dict[Pair, StockLevels]:
    """An assembly build of ``units``: the composite's on hand goes up, the first option of
    each slot goes down (possibly below zero). Such a change often leaves sellable as it was."""

    def shifted(pair: Pair, delta: int) -> StockLevels:
        levels = stock.get(pair, StockLevels())
        return levels._replace(on_hand=levels.on_hand + delta)

    change = {(sku, wh): shifted((sku, wh), units)}
    for _name, options in boms[sku]:
        component, quantity = options[0]
        change[component, wh] = shifted((component, wh), -units * quantity)
    return change


def depth(scenario: Scenario, sku: str) -> int:
    slots = scenario.boms.get(sku)
    if slots is None:
        return 0
    return 1 + max((depth(scenario, c) for _, opts in slots for c, _ in opts), default=0)


# A hand-written deep case so that nesting of 4 levels, options and an empty BOM are always run.
DEEP = Scenario(
    skus=(
        ("A", SkuKind.SIMPLE),
        ("B", SkuKind.SIMPLE),
        ("C", SkuKind.SIMPLE),
        ("EMPTY", SkuKind.KIT),
        ("L1", SkuKind.ASSEMBLY),
        ("L2", SkuKind.KIT),
        ("L3", SkuKind.PACKAGE),
        ("L4", SkuKind.BUNDLE),
    ),
    boms={
        "EMPTY": (),
        "L1": ((None, (("A", 2),)), (None, (("B", 1),))),
        "L2": (("pick", (("L1", 1), ("C", 3))), (None, (("B", 2),))),
        "L3": ((None, (("L2", 2),)), ("extra", (("A", 4), ("EMPTY", 1), ("C", 1)))),
        "L4": ((None, (("L3", 1),)), (None, (("L1", 3),))),
    },
    warehouses=(WarehouseRules("W0", True, True), WarehouseRules("W1", False)),
    stock={
        ("A", "W0"): StockLevels(41, locked=2, allocated=3),
        ("B", "W0"): StockLevels(30),
        ("C", "W0"): StockLevels(2, allocated=9),
        ("L1", "W0"): StockLevels(3, allocated=5),
        ("L2", "W0"): StockLevels(2),
        ("L4", "W0"): StockLevels(1),
        ("A", "W1"): StockLevels(10),
        ("L3", "W1"): StockLevels(6, locked=1),
        ("L4", "W1"): StockLevels(-2),
    },
    steps=(
        (("A", "W0"), StockLevels(7)),
        {("B", "W0"): StockLevels(3), ("L2", "W0"): StockLevels(0), ("L3", "W1"): StockLevels(0)},
        (("L1", "W0"), StockLevels(20)),
    ),
)


# -- properties ---------------------------------------------------------------------------------


def test_generator_reaches_deep_nesting() -> None:
    assert max(depth(DEEP, sku) for sku, _ in DEEP.skus) == 4


@PROPERTY_SETTINGS
@given(scenarios())
@example(DEEP)
def test_engine_sellable_matches_reference(scenario: Scenario) -> None:
    engine = scenario.engine(scenario.stock)
    reference = Reference(scenario, scenario.stock)

    actual = {pair: engine.sellable(*pair) for pair in scenario.tree_pairs()}
    expected = {pair: reference.sellable(*pair) for pair in scenario.tree_pairs()}

    assert actual == expected
    assert all(value >= 0 for value in actual.values())


@PROPERTY_SETTINGS
@given(scenarios())
@example(DEEP)
def test_engine_position_matches_reference(scenario: Scenario) -> None:
    engine = scenario.engine(scenario.stock)
    reference = Reference(scenario, scenario.stock)

    for sku, wh in scenario.tree_pairs():
        levels = reference.levels(sku, wh)
        component = (
            None
            if sku not in scenario.boms
            else {
                "on_hand": reference.component_on_hand(sku, wh),
                "available": reference.component(sku, wh),
                "bottleneck": reference.bottleneck(sku, wh),
            }
        )
        assert engine.position(sku, wh).to_dict() == {
            "sku": sku,
            "warehouse": wh,
            "kind": dict(scenario.skus)[sku].value,
            "prepackaged": {
                "on_hand": levels.on_hand,
                "locked": levels.locked,
                "allocated": levels.allocated,
                "held": levels.held,
                "expired": levels.expired,
                "available": levels.available,
            },
            "component": component,
            "sellable": reference.sellable(sku, wh),
        }


@PROPERTY_SETTINGS
@given(scenarios())
@example(DEEP)
def test_explain_matches_reference(scenario: Scenario) -> None:
    engine = scenario.engine(scenario.stock)
    reference = Reference(scenario, scenario.stock)

    for sku, wh in scenario.tree_pairs():
        tree = explain(engine, sku, wh)
        assert (tree.sku, tree.sellable, tree.component) == (
            sku,
            reference.sellable(sku, wh),
            reference.component(sku, wh),
        )
        if sku not in scenario.boms or not reference.uses[wh]:
            assert tree.children == ()
            continue
        slots = scenario.boms[sku]
        limiting = reference.bottleneck_slot(sku, wh)
        assert [(c.sku, c.per_unit, c.sellable, c.makes, c.limiting) for c in tree.children] == [
            (c, q, reference.sellable(c, wh), reference.sellable(c, wh) // q, index == limiting)
            for index, (_, options) in enumerate(slots)
            for c, q in options
        ]


def replay(scenario: Scenario) -> list[tuple[set[Pair], set[Pair], list[Pair] | None]]:
    """Run the scenario's steps on one engine; after each step check every value against a
    fresh full recompute. Returns, per step, (reported, truly changed, apply_one's list)."""
    engine = scenario.engine(scenario.stock)
    stock = dict(scenario.stock)
    results: list[tuple[set[Pair], set[Pair], list[Pair] | None]] = []
    for step in scenario.steps:
        before = {pair: engine.sellable(*pair) for pair in scenario.pairs()}
        listed: list[Pair] | None = None
        if isinstance(step, tuple):
            (sku, wh), levels = step
            listed = engine.apply_one(sku, wh, levels)
            reported = set(listed)
            stock[sku, wh] = levels
        else:
            reported = engine.apply(step)
            stock.update(step)
        after = {pair: engine.sellable(*pair) for pair in scenario.pairs()}
        fresh = scenario.engine(stock)
        reference = Reference(scenario, stock)
        assert after == {pair: fresh.sellable(*pair) for pair in scenario.pairs()}
        assert {p: after[p] for p in scenario.tree_pairs()} == {
            pair: reference.sellable(*pair) for pair in scenario.tree_pairs()
        }
        for pair in scenario.pairs():
            assert engine.position(*pair) == fresh.position(*pair)
        truly = {pair for pair in scenario.pairs() if before[pair] != after[pair]}
        results.append((reported, truly, listed))
    return results


@PROPERTY_SETTINGS
@given(scenarios(with_steps=True))
@example(DEEP)
def test_engine_apply_sequence_matches_full_recompute(scenario: Scenario) -> None:
    for reported, truly, listed in replay(scenario):
        assert truly <= reported  # no changed pair is ever missed
        if listed is not None:  # apply_one: exact, and each pair once
            assert len(listed) == len(set(listed))
            assert reported == truly


# apply() may report a pair whose sellable changed and changed back within one call.
APPLY_NET_ZERO = Scenario(
    skus=(("A", SkuKind.SIMPLE), ("K", SkuKind.KIT)),
    boms={"K": ((None, (("A", 1),)),)},
    warehouses=(WarehouseRules("main"),),
    stock={("A", "main"): StockLevels(10)},
    # K: 0 prepackaged + 10 from A  ->  5 prepackaged + 5 from A: still 10.
    steps=({("K", "main"): StockLevels(5), ("A", "main"): StockLevels(5)},),
)


@PROPERTY_SETTINGS
@given(scenarios(with_steps=True))
@example(APPLY_NET_ZERO)
def test_engine_apply_changed_set_is_exact(scenario: Scenario) -> None:
    for reported, truly, _listed in replay(scenario):
        assert reported == truly


def test_engine_apply_does_not_report_net_unchanged_composite() -> None:
    engine = APPLY_NET_ZERO.engine(APPLY_NET_ZERO.stock)
    assert engine.sellable("K", "main") == 10

    changed = engine.apply({("K", "main"): StockLevels(5), ("A", "main"): StockLevels(5)})

    assert engine.sellable("K", "main") == 10
    assert changed == {("A", "main")}


@PROPERTY_SETTINGS
@given(scenarios())
@example(DEEP)
def test_engine_recompute_all_is_idempotent(scenario: Scenario) -> None:
    engine = scenario.engine(scenario.stock)
    first = {pair: engine.sellable(*pair) for pair in scenario.pairs()}

    engine.recompute_all()

    assert {pair: engine.sellable(*pair) for pair in scenario.pairs()} == first


@PROPERTY_SETTINGS
@given(scenarios())
@example(DEEP)
def test_engine_warehouses_are_independent(scenario: Scenario) -> None:
    engine = scenario.engine(scenario.stock)

    for rules in scenario.warehouses:
        alone = Scenario(
            scenario.skus,
            scenario.boms,
            (rules,),
            {pair: lv for pair, lv in scenario.stock.items() if pair[1] == rules.code},
        )
        assert engine.sellable_by_warehouse(rules.code) == alone.engine(
            alone.stock
        ).sellable_by_warehouse(rules.code)
