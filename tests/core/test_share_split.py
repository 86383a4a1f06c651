"""The shared allocation on small catalogs: the split rule, ``min_units``, reserves and
``rebalance_below`` at their boundaries, bundles against their components, and the issue's
demo (22 mugs, a set and a kit, three channels)."""

from __future__ import annotations

import pytest

from sellable.core import BomLine, Catalog, StockEngine, StockLevels, WarehouseRules
from sellable.core.share import SharedAllocation, ShareListing, SharePolicy, split_units
from sellable.core.share_units import _split_in_python, _split_large
from sellable.errors import CatalogError

CHANNELS = ("woo", "shop", "amz")


def mugs_engine(mugs: int, sets_on_shelf: int = 0) -> StockEngine:
    catalog = Catalog.build(
        [("MUG", "simple"), ("BEANS", "simple"), ("SET", "kit"), ("KIT", "kit")],
        [BomLine("SET", "MUG", 1), BomLine("SET", "BEANS", 1), BomLine("KIT", "MUG", 1)],
    )
    engine = StockEngine(catalog, [WarehouseRules("main")])
    engine.load_stock(
        {
            ("MUG", "main"): StockLevels(mugs),
            ("BEANS", "main"): StockLevels(100),
            ("SET", "main"): StockLevels(sets_on_shelf),
        }
    )
    engine.recompute_all()
    return engine


def one_sku(units: int, weights: tuple[float, ...], policy: SharePolicy) -> list[int]:
    catalog = Catalog.build([("MUG", "simple")], [])
    engine = StockEngine(catalog, [WarehouseRules("main")])
    engine.load_stock({("MUG", "main"): StockLevels(units)})
    engine.recompute_all()
    shares = SharedAllocation(engine, policy)
    listings = [
        ShareListing((f"C{i}", "L"), "MUG", ("main",), weight=w) for i, w in enumerate(weights)
    ]
    shares.load(listings)
    return [shares.share(x.key) for x in listings]


@pytest.mark.parametrize(
    ("total", "weights", "floors", "expected"),
    [
        (10, (1.0, 1.0), (0, 0), [5, 5]),
        (11, (1.0, 1.0), (0, 0), [6, 5]),  # the remainder: ties go to the first claim
        (10, (3.0, 1.0), (0, 0), [8, 2]),  # 7.5 / 2.5: remainders tie, the heavier wins
        (10, (0.0, 0.0, 0.0), (0, 0, 0), [4, 3, 3]),  # no weights: equal
        (5, (1.0, 9.0), (3, 3), [2, 3]),  # floors in weight order while units last
        (7, (1.0, 9.0), (3, 3), [3, 4]),  # then the rest by weight
        (0, (1.0, 1.0), (2, 2), [0, 0]),
        (3 * 10**16, (1.0, 2.0), (0, 0), [10**16, 2 * 10**16]),  # exact beyond floats
    ],
)
def test_split_units_floors_then_weights_largest_remainder(
    total: int, weights: tuple[float, ...], floors: tuple[int, ...], expected: list[int]
) -> None:
    assert split_units(total, weights, floors) == expected
    assert sum(expected) == total


def test_split_units_of_200_claims_divides_in_arrays_as_one_at_a_time() -> None:
    # a component 200 composites draw on: floors first by weight, the rest by largest
    # remainder, ties to the earlier claim (split in arrays, from 64 claims)
    weights = [1.0, 2.0] * 100
    large = _split_large(350, weights, [1] * 200)
    assert large is not None
    # 200 floors, then 150 in proportion 1:2: 1 to each weight 2 (100) and half a unit to
    # each weight 1, of which the first 50 in claim order get one
    assert large == [2, 2] * 50 + [1, 2] * 50
    assert (
        large == _split_in_python(350, weights, [1] * 200) == split_units(350, weights, [1] * 200)
    )
    # 7 units over 200 equal claims: the first 7 in claim order
    assert split_units(7, [1.0] * 200, [0] * 200) == [1] * 7 + [0] * 193
    # floors short of units: descending weight, ties in claim order
    assert split_units(3, [1.0] * 100 + [5.0] * 100, [1] * 200) == [0] * 100 + [1] * 3 + [0] * 97


@pytest.mark.parametrize(
    ("units", "expected"),
    [
        (5, [2, 2, 1]),  # 2 each while units allow: weight order, heaviest first
        (6, [2, 2, 2]),  # exactly min_units each
        (7, [3, 2, 2]),  # one over: it goes by weight
        (0, [0, 0, 0]),
    ],
    ids=["one-short", "exact", "one-over", "none"],
)
def test_share_min_units_at_its_boundary(units: int, expected: list[int]) -> None:
    assert one_sku(units, (10.0, 1.0, 1.0), SharePolicy(min_units=2)) == expected


@pytest.mark.parametrize(
    ("units", "expected"),
    [
        (3, [3, 3, 3]),  # at the floor: everyone is offered everything
        (4, [2, 1, 1]),  # one above: the split holds
        (1, [1, 1, 1]),
        (0, [0, 0, 0]),
    ],
    ids=["at-floor", "above", "under", "zero"],
)
def test_share_rebalance_below_at_its_boundary(units: int, expected: list[int]) -> None:
    assert one_sku(units, (1.0, 1.0, 1.0), SharePolicy(rebalance_below=3)) == expected


def test_share_rebalance_below_zero_is_off() -> None:
    assert one_sku(1, (1.0, 1.0), SharePolicy(rebalance_below=0)) == [1, 0]


def test_share_channel_reserve_comes_before_weights_and_min_units() -> None:
    engine = mugs_engine(10)
    shares = SharedAllocation(engine, SharePolicy(min_units=1))
    listings = [
        ShareListing(("woo", "M"), "MUG", ("main",), weight=1.0, reserve=4),
        ShareListing(("shop", "M"), "MUG", ("main",), weight=9.0),
    ]
    shares.load(listings)
    # reserve 4 + min 1 = floor 5 for woo, 1 for shop; the other 4 by weight 1:9
    assert [shares.share(x.key) for x in listings] == [5 + 0, 1 + 4]


def test_share_demo_mugs_are_promised_once_across_bundles_and_channels() -> None:
    """The issue's demo: in full mode every listing is offered what all 22 mugs make."""
    engine = mugs_engine(22)
    listings = [
        ShareListing((code, sku), sku, ("main",))
        for code in CHANNELS
        for sku in ("MUG", "SET", "KIT")
    ]
    full = {x.key: engine.sellable(x.sku, "main") for x in listings}
    assert sum(full.values()) == 3 * 22 * 3
    shares = SharedAllocation(engine, SharePolicy())
    shares.load(listings)
    got = shares.shares()
    assert got == {
        ("woo", "MUG"): 3,
        ("woo", "SET"): 3,
        ("woo", "KIT"): 3,
        ("shop", "MUG"): 3,
        ("shop", "SET"): 2,
        ("shop", "KIT"): 2,
        ("amz", "MUG"): 2,
        ("amz", "SET"): 2,
        ("amz", "KIT"): 2,
    }
    assert sum(got.values()) == 22


def test_share_bundle_leftover_goes_to_the_components_own_listings() -> None:
    """A set needs a mug and beans; with 2 beans it can use 2 of the mugs its weight got:
    the mugs it cannot use go back to the mug listing."""
    catalog = Catalog.build(
        [("MUG", "simple"), ("BEANS", "simple"), ("SET", "kit")],
        [BomLine("SET", "MUG", 1), BomLine("SET", "BEANS", 1)],
    )
    engine = StockEngine(catalog, [WarehouseRules("main")])
    engine.load_stock({("MUG", "main"): StockLevels(10), ("BEANS", "main"): StockLevels(2)})
    engine.recompute_all()
    shares = SharedAllocation(engine)
    listings = [
        ShareListing(("shop", "M"), "MUG", ("main",)),
        ShareListing(("shop", "S"), "SET", ("main",)),
    ]
    shares.load(listings)
    assert [shares.share(x.key) for x in listings] == [8, 2]
    detail = shares.detail(("shop", "M"))[0]
    assert (detail.supply, detail.granted, detail.leftover, detail.share) == (10, 5, 3, 8)
    assert [(c.listing, c.parent, c.units) for c in detail.competitors] == [
        (("shop", "M"), None, 5),
        (None, "SET", 5),
    ]


def test_share_listings_in_different_warehouses_do_not_compete() -> None:
    catalog = Catalog.build([("MUG", "simple")], [])
    engine = StockEngine(catalog, [WarehouseRules("main"), WarehouseRules("east")])
    engine.load_stock({("MUG", "main"): StockLevels(6), ("MUG", "east"): StockLevels(4)})
    engine.recompute_all()
    shares = SharedAllocation(engine)
    listings = [
        ShareListing(("shop", "M"), "MUG", ("main", "east")),
        ShareListing(("woo", "M"), "MUG", ("main",)),
    ]
    shares.load(listings)
    # main's 6 split 3/3; east's 4 only the shop sells from
    assert [shares.share(x.key) for x in listings] == [7, 3]
    assert shares.share_in(("shop", "M"), "east") == 4


def test_share_incremental_order_lowers_the_other_listings_share() -> None:
    engine = mugs_engine(22)
    listings = [ShareListing((code, "MUG"), "MUG", ("main",)) for code in ("woo", "shop")]
    shares = SharedAllocation(engine)
    shares.load(listings)
    assert shares.shares() == {("woo", "MUG"): 11, ("shop", "MUG"): 11}
    # an order of 4 mugs on woo is allocated
    moved = engine.apply({("MUG", "main"): StockLevels(22, allocated=4)})
    changed = shares.stock_changed(moved | {("MUG", "main")})
    assert changed == {("woo", "MUG"), ("shop", "MUG")}
    assert shares.shares() == {("woo", "MUG"): 9, ("shop", "MUG"): 9}


def test_share_weights_change_only_what_depends_on_them() -> None:
    engine = mugs_engine(20)
    listings = [
        ShareListing(("woo", "MUG"), "MUG", ("main",)),
        ShareListing(("shop", "MUG"), "MUG", ("main",)),
        ShareListing(("shop", "BEANS"), "BEANS", ("main",)),
    ]
    shares = SharedAllocation(engine)
    shares.load(listings)
    changed = shares.set_weights({("woo", "MUG"): 3.0})
    assert changed == {("woo", "MUG"), ("shop", "MUG")}
    assert shares.shares() == {("woo", "MUG"): 15, ("shop", "MUG"): 5, ("shop", "BEANS"): 100}


@pytest.mark.parametrize("position", [None, 0, 1, 7, -1])
def test_a_listing_of_an_unknown_sku_is_named_whatever_position_it_claims(
    position: int | None,
) -> None:
    """A position hint is checked against the SKU: an unknown SKU is refused by name even
    where its hint points at a real SKU."""
    engine = mugs_engine(22)
    shares = SharedAllocation(engine, SharePolicy())
    listings = [
        ShareListing(("woo", "1"), "MUG", ("main",), position=0),
        ShareListing(("woo", "2"), "GHOST", ("main",), position=position),
    ]
    with pytest.raises(CatalogError, match="unknown SKU 'GHOST'"):
        shares.load(listings)


def test_a_wrong_position_hint_is_not_trusted() -> None:
    """A hint that points at another SKU is ignored: the share is the SKU's own."""
    engine = mugs_engine(22)
    listings = [
        ShareListing(("woo", "1"), "MUG", ("main",), position=engine.catalog.index["BEANS"]),
        ShareListing(("woo", "2"), "BEANS", ("main",), position=engine.catalog.index["BEANS"]),
    ]
    shares = SharedAllocation(engine, SharePolicy())
    shares.load(listings)
    assert shares.share(("woo", "1")) == 22
    assert shares.share(("woo", "2")) == 100
