"""The exact solver's shortcuts agree with its integer program.

``core/demand.py`` finds the largest ``n`` of a composite that shares components by the
cheapest exact method its shape allows: a convex search when one slot with two options is
the only choice, else an integer program (HiGHS). Both must give the same answer, and the
split each finds must be one the order book's own demand count accepts.
"""

from __future__ import annotations

from hypothesis import given

from sellable.core.demand import Demand
from tests.conftest import property_settings
from tests.core.test_exact_sellable import Scenario, scenarios

COUNTS: list[int] = []


@property_settings(examples=150, deep_examples=3000)
@given(scenarios())
def test_convex_pair_search_equals_the_integer_program(scenario: Scenario) -> None:
    engine = scenario.engine()
    structure = engine.structure
    catalog = engine.catalog
    checked = 0
    for w, rules in enumerate(engine.warehouses):
        available = engine._available[w]
        demand = Demand(structure, engine.flags[w], available.__getitem__, rules.code)
        for pos in catalog.composite_order:
            if structure.tree[pos] or not engine.flags[w].explodable[pos]:
                continue
            pair = demand._single_pair(pos, {})
            if pair is None:
                continue
            bound = max(0, available[pos]) + demand._slot_bound(pos, {}, {})
            by_search = demand._search_pair(pos, bound, {}, pair)
            by_program = demand._solve_program(pos, bound, {})
            assert by_search == by_program, catalog.codes[pos]
            split = demand._pair_split(pos, by_search, {}, pair)
            assert split is not None
            assert demand.fits(pos, by_search, {}, split)
            assert demand._pair_split(pos, by_search + 1, {}, pair) is None
            checked += 1
    COUNTS.append(checked)


def test_the_comparison_above_met_shared_two_option_slots() -> None:
    # The random catalogs must reach the shape being compared, or the test above proves
    # nothing: run it here (in this process) and count the composites it compared.
    COUNTS.clear()
    test_convex_pair_search_equals_the_integer_program()
    assert sum(COUNTS) >= 20


def test_stock_in_the_tens_of_billions_is_answered_at_once_and_never_over() -> None:
    # Seen in the property tests: with 17,179,868,660 units of B, HiGHS ran for hours on
    # this program, past its time limit. The program is given at most PROGRAM_CAP of any
    # figure (a billion of B: 125,000,002 of X), then the greedy split the order book tries
    # first finds more: all of X's slots from B, 8 a unit. The order book agrees to the unit.
    from sellable.core.catalog import SkuKind
    from sellable.core.demand import PROGRAM_CAP, Plan, Shortage
    from sellable.core.engine import StockLevels, WarehouseRules
    from tests.core.test_engine_properties import Scenario as EngineScenario

    def sellable_x(b_units: int) -> tuple[int, Demand, int]:
        scenario = EngineScenario(
            skus=(
                ("A", SkuKind.SIMPLE),
                ("B", SkuKind.SIMPLE),
                ("K", SkuKind.KIT),
                ("X", SkuKind.KIT),
            ),
            boms={
                "K": (("a1", (("A", 3),)), ("a2", (("A", 2),)), ("s", (("A", 3), ("B", 1)))),
                "X": (
                    ("s1", (("B", 2), ("A", 4), ("K", 4))),
                    ("s2", (("B", 2), ("K", 3), ("A", 4))),
                    ("s3", (("A", 3), ("B", 4), ("K", 3))),
                ),
            },
            warehouses=(WarehouseRules("W", True, True),),
            stock={
                ("A", "W"): StockLevels(17),
                ("B", "W"): StockLevels(b_units),
                ("K", "W"): StockLevels(2),
            },
        )
        engine = scenario.engine(scenario.stock)
        demand = engine._demand(0, engine._sellable[0])
        return engine.sellable("X", "W"), demand, engine.catalog.position("X")

    # Below the cap: exact (B / 8 for the most part, X's slots taking 2 + 2 + 4 of B).
    assert sellable_x(1_000)[0] == 127
    x, demand, root = sellable_x(17_179_868_660)
    assert sellable_x(PROGRAM_CAP)[0] == 125_000_002
    assert x == 17_179_868_660 // 8 == 2_147_483_582
    assert isinstance(demand.plan(root, x), Plan)
    assert isinstance(demand.plan(root, x + 1), Shortage)
