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
