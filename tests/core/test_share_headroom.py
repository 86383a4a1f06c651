"""The latency headroom of the shared allocation (``headroom = "latency"``, issue 15).

A claim is offered ``max(strict share, supply - bound(others))``: ``supply`` is its SKU's
units in the warehouse (with the headroom of its components), ``others`` the units the
other claims are expected to take before this claim's offer is corrected (their demand
until their sales are pulled, plus their rate over this claim's push latency), and
``bound(m) = ceil(m + sigmas * sqrt(m))``.

The invariant that replaces the strict sum invariant, tested here on random catalogs:

* every offer is at least the strict share (the split without headroom), and the strict
  shares still satisfy the sum invariant (tests/core/test_share_properties.py);
* an offer above the strict share leaves, out of the supply, at least the bound of the
  others' expected units: ``offer + bound(others) <= supply``;
* no offer exceeds the listing's full sellable for a BOM that is a tree;
* so, for a SKU only its own listings draw on: when a listing offered more than its strict
  share sells its whole offer while the others together sell no more than the bound of
  their expected units (the model's assumption), the order book allocates every order
  (checked with its planner); without such a listing, any sales up to the offers fit.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sellable.core import BomLine, Catalog, StockEngine, StockLevels, WarehouseRules
from sellable.core.demand import Plan
from sellable.core.share import (
    SharedAllocation,
    ShareListing,
    SharePolicy,
    demand_bound,
    demand_units,
    latency_seconds,
    others_expected,
)
from tests.conftest import property_settings
from tests.core.test_engine_properties import Scenario
from tests.core.test_share_properties import allocation, listings_for, shared_cases

PROPERTY_SETTINGS = property_settings(100, 800)
FEWER = property_settings(50, 400)

HEADROOM = SharePolicy(headroom=True)


@pytest.mark.parametrize(
    ("millis", "sigmas", "bound"),
    [
        (0, 3.0, 0),
        (-5, 3.0, 0),
        (1, 0.0, 1),
        (1000, 0.0, 1),
        (1000, 3.0, 4),
        (500, 3.0, 3),  # 0.5 + 3 * 0.7071 = 2.62
        (4000, 2.0, 8),  # 4 + 2 * 2
        (4001, 2.0, 9),
    ],
    ids=["none", "negative", "a-thousandth", "one-exact", "one-3-sigma", "half", "four", "above"],
)
def test_share_headroom_demand_bound_is_a_poisson_upper_bound(
    millis: int, sigmas: float, bound: int
) -> None:
    assert demand_bound(millis, sigmas) == bound


def test_share_headroom_units_and_latencies_are_whole_numbers() -> None:
    assert (demand_units(0.0015), demand_units(-1.0), demand_units(float("nan"))) == (2, 0, 0)
    assert (latency_seconds(0.2), latency_seconds(30.0), latency_seconds(-4)) == (1, 30, 0)
    # the others' demand until pulled, plus every claim's rate over this claim's latency
    assert others_expected(3000, 1000, 7200, 1800) == 2000 + 3600


def _engine(on_hand: dict[str, int], bom: dict[str, list[tuple[str, int]]]) -> StockEngine:
    skus = [(sku, "simple") for sku in on_hand] + [(sku, "kit") for sku in bom]
    lines = [
        BomLine(parent, component, qty) for parent, parts in bom.items() for component, qty in parts
    ]
    engine = StockEngine(Catalog.build(skus, lines), [WarehouseRules("main")])
    engine.load_stock({(sku, "main"): StockLevels(units) for sku, units in on_hand.items()})
    engine.recompute_all()
    return engine


def _listing(
    key: str, sku: str, demand: float, rate: float = 0.0, latency: float = 0.0
) -> ShareListing:
    return ShareListing((key, sku), sku, ("main",), 1.0, 0, demand, rate, latency)


def _shares(engine: StockEngine, listings: list[ShareListing], policy: SharePolicy) -> dict:  # type: ignore[type-arg]
    shares = SharedAllocation(engine, policy)
    shares.load(listings)
    return {key[0]: units for key, units in shares.shares().items()}


@pytest.mark.parametrize(
    ("mugs", "demands", "strict", "offered"),
    [
        # everyone's bound ceil(1.5 + 3 * 1.22) = 6 fits in 20 mugs: all of them to both
        (20, (1.0, 0.5), {"a": 10, "b": 10}, {"a": 20, "b": 20}),
        (6, (1.0, 0.5), {"a": 3, "b": 3}, {"a": 6, "b": 6}),
        # 5 < 6: a may have what b's bound (3) leaves, 2, b what a's (4) leaves, 1: strict
        (5, (1.0, 0.5), {"a": 3, "b": 2}, {"a": 3, "b": 2}),
        # everyone's bound 11 > 10; b expects 0.01 (bound 1): a may sell 9 before b's
        # sales are seen; a expects 4 (bound 10): b keeps its strict 5
        (10, (4.0, 0.01), {"a": 5, "b": 5}, {"a": 9, "b": 5}),
    ],
    ids=["plenty", "everyones-bound-fits", "short", "one-busy-listing"],
)
def test_share_headroom_offers_what_the_others_cannot_take_before_the_next_sync(
    mugs: int, demands: tuple[float, float], strict: dict[str, int], offered: dict[str, int]
) -> None:
    engine = _engine({"MUG": mugs}, {})
    listings = [_listing("a", "MUG", demands[0]), _listing("b", "MUG", demands[1])]
    assert _shares(engine, listings, SharePolicy()) == strict
    assert _shares(engine, listings, HEADROOM) == offered


def test_share_headroom_counts_the_others_rate_over_this_listings_push_latency() -> None:
    engine = _engine({"MUG": 3}, {})
    # b sells 2 units an hour; a's offer takes 30 minutes to show: b may sell 1 meanwhile
    # (bound 4 > 3: a keeps its strict 2); a expects nothing: b is offered all 3
    slow = [_listing("a", "MUG", 0.0, 0.0, 1800), _listing("b", "MUG", 0.0, 2.0, 0)]
    assert _shares(engine, slow, HEADROOM) == {"a": 2, "b": 3}
    fast = [_listing("a", "MUG", 0.0, 0.0, 0), _listing("b", "MUG", 0.0, 2.0, 0)]
    assert _shares(engine, fast, HEADROOM) == {"a": 3, "b": 3}


@pytest.mark.parametrize(
    ("mugs", "offered"),
    [(20, {"MUG": 20, "KIT": 20}), (10, {"MUG": 9, "KIT": 5})],
    ids=["plenty", "busy-mug-listing"],
)
def test_share_headroom_reaches_a_kit_through_its_components(
    mugs: int, offered: dict[str, int]
) -> None:
    engine = _engine({"MUG": mugs, "BOX": 100}, {"KIT": [("MUG", 1), ("BOX", 1)]})
    shares = SharedAllocation(engine, HEADROOM)
    shares.load([_listing("shop", "MUG", 4.0), _listing("shop", "KIT", 0.01)])
    assert {key[1]: units for key, units in shares.shares().items()} == offered
    if mugs == 10:
        # strict: 5 mugs each. The kit's claim on the mugs: the mug listing's bound (10)
        # leaves nothing, so it keeps the 5 it uses; the mug listing: 10 - bound(0.01) = 9
        (mug,) = shares.detail(("shop", "MUG"))
        assert (mug.strict, mug.headroom_supply, mug.others_bound, mug.everyone_bound) == (
            5,
            10,
            1,
            11,
        )
        (kit,) = shares.detail(("shop", "KIT"))
        assert (kit.strict, kit.headroom_supply, kit.share) == (5, 5, 5)


@st.composite
def expected_sales(draw: st.DrawFn, listings: list[ShareListing]) -> list[ShareListing]:
    demands = st.sampled_from([0.0, 0.01, 0.3, 1.0, 2.5]) | st.floats(0, 20)
    out = []
    for x in listings:
        out.append(
            ShareListing(
                x.key,
                x.sku,
                x.warehouses,
                x.weight,
                x.reserve,
                draw(demands),
                draw(demands),
                draw(st.sampled_from([0.0, 30.0, 1800.0])),
            )
        )
    return out


@PROPERTY_SETTINGS
@given(shared_cases(options=False), st.data(), st.sampled_from([0.0, 1.0, 3.0]))
def test_share_headroom_offer_is_the_strict_share_or_leaves_the_others_their_bound(
    case: tuple[Scenario, list[ShareListing], SharePolicy], data: st.DataObject, sigmas: float
) -> None:
    scenario, listings, policy = case
    listings = data.draw(expected_sales(listings))
    engine, strict = allocation(scenario, listings, policy)
    headroom = SharedAllocation(
        engine, SharePolicy(policy.min_units, headroom=True, headroom_sigmas=sigmas)
    )
    headroom.load(listings)
    for listing in listings:
        for warehouse in dict.fromkeys(listing.warehouses):
            offer = headroom.share_in(listing.key, warehouse)
            assert offer >= strict.share_in(listing.key, warehouse)
            for detail in headroom.detail(listing.key):
                if detail.warehouse != warehouse:
                    continue
                assert detail.strict == strict.share_in(listing.key, warehouse)
                if offer > detail.strict:
                    supply = detail.headroom_supply
                    assert offer + detail.others_bound <= supply or (
                        detail.everyone_bound <= supply and offer <= supply
                    ), detail
            if scenario._is_tree(listing.sku):
                assert offer <= max(
                    engine.sellable(listing.sku, warehouse),
                    strict.share_in(listing.key, warehouse),
                )


@st.composite
def simple_cases(draw: st.DrawFn) -> tuple[StockEngine, list[ShareListing], float]:
    """One simple SKU on one to five listings with random expected sales and stock."""
    units = draw(st.integers(0, 60))
    engine = _engine({"A": units}, {})
    listings = [
        ShareListing(
            (f"C{k}", "A"),
            "A",
            ("main",),
            draw(st.sampled_from([0.0, 1.0, 3.0])),
            0,
            draw(st.floats(0, 8)),
            draw(st.floats(0, 8)),
            draw(st.sampled_from([0.0, 600.0, 1800.0])),
        )
        for k in range(draw(st.integers(1, 5)))
    ]
    return engine, listings, draw(st.sampled_from([0.0, 1.0, 3.0]))


@PROPERTY_SETTINGS
@given(simple_cases(), st.data())
def test_share_headroom_never_oversells_while_sales_stay_within_their_bounds(
    case: tuple[StockEngine, list[ShareListing], float], data: st.DataObject
) -> None:
    """The model's guarantee, for each listing offered more than its strict share: when
    every listing may have all of the supply (everyone's bound fits in it), any sales up to
    the offers that total at most that bound; otherwise, that listing selling all of its
    offer while the others together sell at most their bound. Without such a listing, any
    sales up to the offers. The order book allocates every order."""
    engine, listings, sigmas = case
    shares = SharedAllocation(engine, SharePolicy(headroom=True, headroom_sigmas=sigmas))
    shares.load(listings)
    offers = shares.shares()
    details = {x.key: shares.detail(x.key)[0] for x in listings}
    boosted = [x for x in listings if offers[x.key] > details[x.key].strict]
    for burst in boosted or [None]:
        planner = engine.planner("main")
        sold: list[tuple[ShareListing, int]] = []
        left = None
        if burst is not None:
            detail = details[burst.key]
            if detail.everyone_bound <= detail.headroom_supply:
                left = detail.everyone_bound
            else:
                sold.append((burst, offers[burst.key]))
                left = detail.others_bound
        for other in data.draw(
            st.permutations([x for x in listings if (x, offers[x.key]) not in sold])
        ):
            want = data.draw(st.integers(0, offers[other.key]))
            if left is not None:
                want = min(want, left)
                left -= want
            sold.append((other, want))
        for listing, quantity in sold:
            if quantity:
                outcome = planner.plan_line(0, quantity, backorders=False)
                assert isinstance(outcome, Plan), (listing, quantity, offers, details)


@FEWER
@given(shared_cases(), st.data())
def test_share_headroom_incremental_equals_a_full_recompute(
    case: tuple[Scenario, list[ShareListing], SharePolicy], data: st.DataObject
) -> None:
    scenario, _listings, policy = case
    listings = data.draw(expected_sales(data.draw(listings_for(scenario))))
    policy = SharePolicy(policy.min_units, data.draw(st.integers(0, 2)), headroom=True)
    engine, shares = allocation(scenario, listings, policy)
    for pair in data.draw(st.lists(st.sampled_from(scenario.pairs()), max_size=4)):
        levels = StockLevels(on_hand=data.draw(st.integers(0, 30)))
        shares.stock_changed(set(engine.apply({pair: levels})) | {pair})
        if listings and data.draw(st.booleans()):
            listing = data.draw(st.sampled_from(listings))
            shares.set_weights(
                {listing.key: data.draw(st.sampled_from([0.0, 1.0, 3.0]))},
                {listing.key: (data.draw(st.floats(0, 5)), data.draw(st.floats(0, 5)), 600.0)},
            )
        fresh = SharedAllocation(engine, policy)
        fresh.load(shares.listings)
        assert shares.shares() == fresh.shares()
        for listing in listings:
            for warehouse in listing.warehouses:
                assert shares.share_in(listing.key, warehouse) == fresh.share_in(
                    listing.key, warehouse
                )


def test_share_headroom_follows_a_stock_change_incrementally() -> None:
    """The incremental path gives the figures of the parametrized cases above."""
    engine = _engine({"MUG": 20, "BOX": 100}, {"KIT": [("MUG", 1), ("BOX", 1)]})
    shares = SharedAllocation(engine, HEADROOM)
    shares.load([_listing("shop", "MUG", 4.0), _listing("shop", "KIT", 0.01)])
    assert {key[1]: units for key, units in shares.shares().items()} == {"MUG": 20, "KIT": 20}
    pair = ("MUG", "main")
    changed = shares.stock_changed(set(engine.apply({pair: StockLevels(10)})) | {pair})
    assert changed == {("shop", "MUG"), ("shop", "KIT")}
    assert {key[1]: units for key, units in shares.shares().items()} == {"MUG": 9, "KIT": 5}
    engine_b = _engine({"MUG": 20}, {})
    simple = SharedAllocation(engine_b, HEADROOM)
    simple.load([_listing("a", "MUG", 4.0), _listing("b", "MUG", 0.01)])
    simple.stock_changed(set(engine_b.apply({pair: StockLevels(10)})) | {pair})
    assert simple.shares() == {("a", "MUG"): 9, ("b", "MUG"): 5}
