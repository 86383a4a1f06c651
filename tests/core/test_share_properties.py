"""Property tests of the shared allocation (issue 15) on random catalogs.

Catalogs, warehouses and stock come from tests/core/test_engine_properties.py; on top of
them, two or three channels sell from random sets of the warehouses, each listing a random
subset of the SKUs with a random weight, reserve and ``min_units``.

Domain, stated exactly:

* the sum invariant and the joint acceptance hold with ``rebalance_below = 0`` for catalogs
  whose slots each offer a single SKU (a slot with options lets the order book choose an
  option other than the one whose budget the split counted on: docs/allocation.md), for
  each listing's share in each warehouse booked in that warehouse;
* with ``rebalance_below = F > 0``, a listing whose SKU's full sellable in a warehouse is at
  or under ``F`` is offered exactly that full sellable there, and every other share is
  what it is with ``F = 0`` (so the invariant holds over the listings above the floor);
* incremental re-splits equal a full recompute for every catalog (options included).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from sellable.core import Catalog, StockEngine, StockLevels
from sellable.core.demand import Plan
from sellable.core.share import SharedAllocation, ShareListing, SharePolicy, split_units
from sellable.core.share_units import _split_groups, _split_in_python, _split_large
from tests.conftest import property_settings
from tests.core.test_engine_properties import Scenario, scenarios, stock_levels

PROPERTY_SETTINGS = property_settings(100, 800)
# The properties that build two or more allocations per example: fewer in CI.
FEWER = property_settings(50, 400)

Pair = tuple[str, str]


def first_options_only(scenario: Scenario) -> Scenario:
    """The scenario with every slot reduced to its first option."""
    boms = {
        sku: tuple((name, options[:1]) for name, options in slots)
        for sku, slots in scenario.boms.items()
    }
    return Scenario(scenario.skus, boms, scenario.warehouses, scenario.stock, scenario.steps)


@st.composite
def listings_for(draw: st.DrawFn, scenario: Scenario) -> list[ShareListing]:
    codes = [w.code for w in scenario.warehouses]
    out: list[ShareListing] = []
    for c in range(draw(st.integers(1, 3))):
        channel_warehouses = tuple(
            draw(st.lists(st.sampled_from(codes), min_size=1, max_size=len(codes), unique=True))
        )
        reserve = draw(st.integers(0, 2))
        for sku, _ in scenario.skus:
            if not draw(st.booleans()):
                continue
            own = draw(st.none() | st.lists(st.sampled_from(codes), min_size=1, unique=True))
            out.append(
                ShareListing(
                    (f"C{c}", sku),
                    sku,
                    tuple(own) if own else channel_warehouses,
                    weight=draw(st.sampled_from([0.0, 0.5, 1.0, 2.0, 7.0])),
                    reserve=reserve,
                )
            )
    return out


def allocation(
    scenario: Scenario,
    listings: list[ShareListing],
    policy: SharePolicy,
    stock: Mapping[Pair, StockLevels] | None = None,
) -> tuple[StockEngine, SharedAllocation]:
    engine = scenario.engine(scenario.stock if stock is None else stock)
    shares = SharedAllocation(engine, policy)
    shares.load(listings)
    return engine, shares


def exploded_demand(
    scenario: Scenario, engine: StockEngine, warehouse: str, offers: Mapping[str, int]
) -> dict[str, tuple[int, int]]:
    """Per SKU: (units the offers draw on it, its available units), the offers placed all
    together in ``warehouse``: prepackaged units first at every level, the rest taken from
    the components where the SKU may be made from them there. Slots have one option."""
    catalog: Catalog = engine.catalog
    w = engine.warehouse_position(warehouse)
    explodable = engine.flags[w].explodable
    demand = {sku: offers.get(sku, 0) for sku, _ in scenario.skus}
    out: dict[str, tuple[int, int]] = {}
    for pos in sorted(range(len(catalog)), key=lambda p: -catalog.rank[p]):
        sku = catalog.codes[pos]
        own = max(0, engine.levels(sku, warehouse).available)
        wanted = demand[sku]
        out[sku] = (wanted, own)
        rest = max(0, wanted - own)
        if rest and explodable[pos]:
            out[sku] = (min(wanted, own), own)
            for _name, options in scenario.boms[sku]:
                ((component, qty),) = options
                demand[component] += rest * qty
    return out


def offers_in(
    shares: SharedAllocation, listings: list[ShareListing], warehouse: str
) -> dict[str, int]:
    by_sku: dict[str, int] = {}
    for listing in listings:
        by_sku[listing.sku] = by_sku.get(listing.sku, 0) + shares.share_in(listing.key, warehouse)
    return by_sku


@st.composite
def shared_cases(
    draw: st.DrawFn, options: bool = True
) -> tuple[Scenario, list[ShareListing], SharePolicy]:
    scenario = draw(scenarios())
    if not options:
        scenario = first_options_only(scenario)
    listings = draw(listings_for(scenario))
    policy = SharePolicy(min_units=draw(st.integers(0, 3)))
    return scenario, listings, policy


@PROPERTY_SETTINGS
@given(shared_cases(options=False))
def test_share_offers_never_exceed_any_skus_available_units(
    case: tuple[Scenario, list[ShareListing], SharePolicy],
) -> None:
    scenario, listings, policy = case
    engine, shares = allocation(scenario, listings, policy)
    for warehouse in scenario.warehouses:
        offers = offers_in(shares, listings, warehouse.code)
        for sku, (wanted, available) in exploded_demand(
            scenario, engine, warehouse.code, offers
        ).items():
            assert wanted <= available, (sku, warehouse.code, wanted, available, offers)


@PROPERTY_SETTINGS
@given(shared_cases(options=False))
def test_share_offers_are_jointly_accepted_by_the_order_books_planner(
    case: tuple[Scenario, list[ShareListing], SharePolicy],
) -> None:
    """The core rule: an order of exactly each listing's share, all placed together (in
    listing order, then in the reverse order), is allocated in full."""
    scenario, listings, policy = case
    engine, shares = allocation(scenario, listings, policy)
    catalog = engine.catalog
    for warehouse in scenario.warehouses:
        for ordering in (listings, listings[::-1]):
            planner = engine.planner(warehouse.code)
            for listing in ordering:
                quantity = shares.share_in(listing.key, warehouse.code)
                if quantity:
                    outcome = planner.plan_line(
                        catalog.position(listing.sku), quantity, backorders=False
                    )
                    assert isinstance(outcome, Plan), (listing, quantity, outcome)


@FEWER
@given(shared_cases(), st.integers(1, 6))
def test_share_rebalance_floor_offers_everything_only_to_listings_at_or_under_it(
    case: tuple[Scenario, list[ShareListing], SharePolicy], floor: int
) -> None:
    scenario, listings, policy = case
    engine, split = allocation(scenario, listings, policy)
    floored = SharedAllocation(engine, SharePolicy(policy.min_units, rebalance_below=floor))
    floored.load(listings)
    for listing in listings:
        for warehouse in dict.fromkeys(listing.warehouses):
            full = engine.sellable(listing.sku, warehouse)
            got = floored.share_in(listing.key, warehouse)
            if full <= floor:
                assert got == full
            else:
                assert got == split.share_in(listing.key, warehouse)


@FEWER
@given(scenarios(with_steps=True), st.data())
def test_share_incremental_rebalance_equals_a_full_recompute(
    scenario: Scenario, data: st.DataObject
) -> None:
    listings = data.draw(listings_for(scenario))
    policy = SharePolicy(
        min_units=data.draw(st.integers(0, 2)), rebalance_below=data.draw(st.integers(0, 3))
    )
    engine, shares = allocation(scenario, listings, policy)
    pairs = scenario.pairs()
    for step in scenario.steps:
        change = dict([step]) if isinstance(step, tuple) else dict(step)
        moved = engine.apply(change) | set(change)
        shares.stock_changed(moved)
        if listings and data.draw(st.booleans()):
            listing = data.draw(st.sampled_from(listings))
            shares.set_weights({listing.key: data.draw(st.sampled_from([0.0, 1.0, 3.0, 9.0]))})
        fresh = SharedAllocation(engine, policy)
        fresh.load(shares.listings)
        assert shares.shares() == fresh.shares()
        for listing in listings:
            for warehouse in listing.warehouses:
                assert shares.share_in(listing.key, warehouse) == fresh.share_in(
                    listing.key, warehouse
                )
    # one more random single change, as an order would make
    if pairs:
        pair = data.draw(st.sampled_from(pairs))
        levels = data.draw(stock_levels())
        shares.stock_changed(set(engine.apply({pair: levels})) | {pair})
        fresh = SharedAllocation(engine, policy)
        fresh.load(shares.listings)
        assert shares.shares() == fresh.shares()


@FEWER
@given(shared_cases())
def test_share_listing_alone_on_a_tree_gets_the_full_sellable(
    case: tuple[Scenario, list[ShareListing], SharePolicy],
) -> None:
    """With one listing and a BOM that reaches no SKU twice, sharing changes nothing."""
    scenario, listings, _policy = case
    for listing in listings[:3]:
        if not scenario._is_tree(listing.sku):
            continue
        engine, alone = allocation(scenario, [listing], SharePolicy())
        for warehouse in dict.fromkeys(listing.warehouses):
            assert alone.share_in(listing.key, warehouse) == engine.sellable(listing.sku, warehouse)


@FEWER
@given(shared_cases(), st.sampled_from(["right", "one wrong", "one missing"]))
def test_share_split_with_position_hints_gives_the_same_units(
    case: tuple[Scenario, list[ShareListing], SharePolicy], hints: str
) -> None:
    """The SKUs' catalog positions given as hints (all right, or one wrong or missing,
    which the split must not trust) change no unit."""
    scenario, listings, policy = case
    engine, plain = allocation(scenario, listings, policy)
    index = engine.catalog.index
    hinted = [replace(x, position=index[x.sku]) for x in listings]
    if hinted and hints != "right":
        wrong = (index[hinted[0].sku] + 1) % len(index) if hints == "one wrong" else None
        hinted[0] = replace(hinted[0], position=wrong)
    given = SharedAllocation(engine, policy)
    given.load(hinted)
    assert given.shares() == plain.shares()
    for listing in listings:
        for warehouse in dict.fromkeys(listing.warehouses):
            assert given.share_in(listing.key, warehouse) == plain.share_in(listing.key, warehouse)
    assert [x.position for x in given.listings] == [x.position for x in hinted]


WEIGHTS = st.sampled_from([0.0, 0.5, 1.0, 1.3, 2.0, 7.0]) | st.floats(
    0, 1e6, allow_nan=False, allow_infinity=False
)


@st.composite
def split_groups(draw: st.DrawFn) -> list[tuple[int, list[float], list[int], int]]:
    """Groups of claims as ``split_units`` takes them: a total, weights, floors; and where
    the claims pass from the first part (a SKU's listings) to the second (its parents)."""
    totals = st.integers(0, 40) | st.integers(0, 10**6) | st.integers(2**39, 2**64)
    groups = []
    for _ in range(draw(st.integers(1, 30))):
        size = draw(st.integers(1, 6))
        weights = draw(st.lists(WEIGHTS, min_size=size, max_size=size))
        floors = draw(st.lists(st.integers(0, 5), min_size=size, max_size=size))
        groups.append((draw(totals), weights, floors, draw(st.integers(0, size))))
    return groups


@FEWER
@given(
    st.integers(64, 300).flatmap(
        lambda size: st.tuples(
            st.integers(0, 40) | st.integers(0, 10**6) | st.integers(2**39, 2**41),
            st.lists(WEIGHTS, min_size=size, max_size=size)
            | st.lists(st.sampled_from([0.0, 1.0, 3.0]), min_size=size, max_size=size),
            st.lists(st.integers(0, 5), min_size=size, max_size=size) | st.just([0] * size),
        )
    )
)
def test_split_units_of_many_claims_in_arrays_gives_the_same_units(
    case: tuple[int, list[float], list[int]],
) -> None:
    # from 64 claims (a component hundreds of composites draw on) split_units divides in
    # arrays: exactly the units of the claim-at-a-time split, ties and leftovers included
    total, weights, floors = case
    expected = _split_in_python(total, weights, floors)
    assert split_units(total, weights, floors) == expected
    large = _split_large(total, weights, floors)
    assert large is None or large == expected
    assert sum(expected) == total


@PROPERTY_SETTINGS
@given(split_groups())
def test_share_vectorised_split_gives_split_units_own_units(
    groups: list[tuple[int, list[float], list[int], int]],
) -> None:
    # the full allocation splits many groups at once in arrays; every group must get
    # exactly what split_units gives it (the incremental path's split), whether its claims
    # lie in one part or in two
    huge = any(total >= 2**62 for total, _, _, _ in groups)
    ints: Any = object if huge else np.int64
    totals = np.array([total for total, _, _, _ in groups], dtype=ints)

    def part(first: bool) -> tuple[Any, Any, Any]:
        def cut(values: list[Any], at: int) -> list[Any]:
            return values[:at] if first else values[at:]

        return (
            np.array([w for _, ws, _, at in groups for w in cut(ws, at)], dtype=np.float64),
            np.array([f for _, _, fs, at in groups for f in cut(fs, at)], dtype=ints),
            np.array([len(cut(ws, at)) for _, ws, _, at in groups], dtype=np.int64),
        )

    first, second = part(True), part(False)
    expected = [split_units(total, w, f) for total, w, f, _ in groups]
    # one part: each group's claims together
    whole = (
        np.array([w for _, ws, _, _ in groups for w in ws], dtype=np.float64),
        np.array([f for _, _, fs, _ in groups for f in fs], dtype=ints),
        np.array([len(ws) for _, ws, _, _ in groups], dtype=np.int64),
    )
    (got,) = _split_groups(totals, (whole,))
    assert [int(x) for x in got] == [u for units in expected for u in units]
    # two parts: each group's claims cut in two
    got_first, got_second = _split_groups(totals, (first, second))
    cuts = [at for _, _, _, at in groups]
    assert [int(x) for x in got_first] == [
        u for units, at in zip(expected, cuts, strict=True) for u in units[:at]
    ]
    assert [int(x) for x in got_second] == [
        u for units, at in zip(expected, cuts, strict=True) for u in units[at:]
    ]
