"""Every numeric availability example in ../shared/seeds/, checked against the core.

Seeds: 000 Luminous assembly-on-demand, 001 Luminous kits, 002 Omnium package types,
003 "Use Component Inventory" setting, 004 FAQ kit vs assembly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest

from sellable.core import (
    BomLine,
    Catalog,
    SkuKind,
    StockEngine,
    StockLevels,
    WarehouseRules,
    explain,
    render,
)
from sellable.errors import CatalogError

# The seeds' own warehouse assembles on demand (seed 000's "Assembly-on-Demand" setup).
MAIN = WarehouseRules("main", use_component_inventory=True, assembly_on_demand=True)
FBA = WarehouseRules("fba", use_component_inventory=False)

S = SkuKind.SIMPLE


def make_engine(
    skus: Sequence[tuple[str, SkuKind]],
    bom: Sequence[BomLine],
    stock: Mapping[tuple[str, str], StockLevels],
    warehouses: Sequence[WarehouseRules] = (MAIN,),
) -> StockEngine:
    engine = StockEngine(Catalog.build(skus, bom), list(warehouses))
    engine.load_stock(stock)
    engine.recompute_all()
    return engine


def on_hand(warehouse: str = "main", **levels: int) -> dict[tuple[str, str], StockLevels]:
    """``on_hand(MUG=30)`` -> ``{("MUG", "main"): StockLevels(30)}``."""
    return {(sku, warehouse): StockLevels(on_hand=qty) for sku, qty in levels.items()}


def component_dict(on_hand: int, available: int, bottleneck: str | None) -> dict[str, object]:
    return {"on_hand": on_hand, "available": available, "bottleneck": bottleneck}


def prepackaged_dict(on_hand: int = 0, locked: int = 0, allocated: int = 0) -> dict[str, int]:
    return {
        "on_hand": on_hand,
        "locked": locked,
        "allocated": allocated,
        "held": 0,
        "expired": 0,
        "available": on_hand - locked - allocated,
    }


# -- seed 000: Coffee Lover's Gift Set (Luminous, assembly-on-demand) ---------------------------

COFFEE_COMPONENTS = [("BEANS-12OZ", S), ("MUG-CERAMIC", S), ("SCOOP-WOOD", S)]
COFFEE_STOCK = on_hand(**{"BEANS-12OZ": 50, "MUG-CERAMIC": 30, "SCOOP-WOOD": 100})


def coffee_bom(parent: str) -> list[BomLine]:
    return [BomLine(parent, code, 1) for code, _ in COFFEE_COMPONENTS]


def test_engine_coffee_gift_set_kit_is_limited_by_mugs() -> None:
    engine = make_engine(
        [*COFFEE_COMPONENTS, ("GIFT-SET-KIT", SkuKind.KIT)],
        coffee_bom("GIFT-SET-KIT"),
        COFFEE_STOCK,
    )

    assert engine.sellable("GIFT-SET-KIT", "main") == 30
    assert engine.position("GIFT-SET-KIT", "main").to_dict() == {
        "sku": "GIFT-SET-KIT",
        "warehouse": "main",
        "kind": "kit",
        "prepackaged": prepackaged_dict(),
        "component": component_dict(30, 30, "MUG-CERAMIC"),
        "sellable": 30,
    }


def test_engine_coffee_gift_set_components_keep_their_own_sellable() -> None:
    engine = make_engine(
        [*COFFEE_COMPONENTS, ("GIFT-SET-KIT", SkuKind.KIT)],
        coffee_bom("GIFT-SET-KIT"),
        COFFEE_STOCK,
    )

    assert engine.sellable_by_warehouse("main") == {
        "BEANS-12OZ": 50,
        "MUG-CERAMIC": 30,
        "SCOOP-WOOD": 100,
        "GIFT-SET-KIT": 30,
    }
    assert engine.position("MUG-CERAMIC", "main").to_dict()["component"] is None


def test_engine_assembly_on_demand_sells_assembled_plus_assemblable() -> None:
    engine = make_engine(
        [*COFFEE_COMPONENTS, ("GIFT-SET-COFFEE", SkuKind.ASSEMBLY)],
        coffee_bom("GIFT-SET-COFFEE"),
        {**COFFEE_STOCK, **on_hand(**{"GIFT-SET-COFFEE": 10})},
    )

    position = engine.position("GIFT-SET-COFFEE", "main").to_dict()

    assert position["prepackaged"] == prepackaged_dict(on_hand=10)  # assembled on hand
    assert position["component"] == component_dict(30, 30, "MUG-CERAMIC")  # assemblable
    assert position["sellable"] == 40
    assert engine.sellable("GIFT-SET-COFFEE", "main") == 40


def test_engine_assembly_without_assembly_on_demand_sells_only_assembled_units() -> None:
    # Without assembly-on-demand an order beyond the assembled units is held until someone
    # builds: sellable is what an order would be allocated, the 10 assembled.
    engine = make_engine(
        [*COFFEE_COMPONENTS, ("GIFT-SET-COFFEE", SkuKind.ASSEMBLY)],
        coffee_bom("GIFT-SET-COFFEE"),
        {**COFFEE_STOCK, **on_hand(**{"GIFT-SET-COFFEE": 10})},
        warehouses=[WarehouseRules("main", use_component_inventory=True)],
    )

    assert engine.sellable("GIFT-SET-COFFEE", "main") == 10
    assert engine.position("GIFT-SET-COFFEE", "main").to_dict()["component"] == component_dict(
        0, 0, None
    )


def test_engine_assembly_on_demand_order_flow_keeps_sellable_exact() -> None:
    """Orders 1-10 ship from assembled stock; order 11 triggers a build of one unit."""
    engine = make_engine(
        [*COFFEE_COMPONENTS, ("GIFT-SET-COFFEE", SkuKind.ASSEMBLY)],
        coffee_bom("GIFT-SET-COFFEE"),
        {**COFFEE_STOCK, **on_hand(**{"GIFT-SET-COFFEE": 10})},
    )

    for shipped in range(1, 11):
        changed = engine.apply_one("GIFT-SET-COFFEE", "main", StockLevels(on_hand=10 - shipped))
        assert changed == [("GIFT-SET-COFFEE", "main")]
        assert engine.sellable("GIFT-SET-COFFEE", "main") == 40 - shipped

    # Order 11: assembly order for one unit (components -1 each, assembly +1).
    changed = engine.apply(
        {
            ("BEANS-12OZ", "main"): StockLevels(on_hand=49),
            ("MUG-CERAMIC", "main"): StockLevels(on_hand=29),
            ("SCOOP-WOOD", "main"): StockLevels(on_hand=99),
            ("GIFT-SET-COFFEE", "main"): StockLevels(on_hand=1),
        }
    )
    assert engine.sellable("GIFT-SET-COFFEE", "main") == 30  # a build never changes sellable
    assert engine.position("GIFT-SET-COFFEE", "main").to_dict()["component"] == component_dict(
        29, 29, "MUG-CERAMIC"
    )
    assert {pair for pair in changed if pair[0] != "GIFT-SET-COFFEE"} == {
        ("BEANS-12OZ", "main"),
        ("MUG-CERAMIC", "main"),
        ("SCOOP-WOOD", "main"),
    }

    # ... and order 11 ships from the unit just built.
    assert engine.apply_one("GIFT-SET-COFFEE", "main", StockLevels(on_hand=0)) == [
        ("GIFT-SET-COFFEE", "main")
    ]
    assert engine.sellable("GIFT-SET-COFFEE", "main") == 29


# -- seed 001: a Luminous kit is virtual; FBA only sells pre-packed bundles ---------------------

GIFT_KIT_SKUS = [("MUG", S), ("BEANS", S), ("SPOON", S), ("GIFT-KIT", SkuKind.KIT)]
GIFT_KIT_BOM = [
    BomLine("GIFT-KIT", "MUG", 1),
    BomLine("GIFT-KIT", "BEANS", 1),
    BomLine("GIFT-KIT", "SPOON", 1),
]


@pytest.mark.parametrize(
    ("prepacked", "expected"),
    [pytest.param(0, 0, id="no-prepacked-bundles"), pytest.param(12, 12, id="12-prepacked")],
)
def test_engine_kit_in_fba_sells_only_prepacked_bundles(prepacked: int, expected: int) -> None:
    engine = make_engine(
        GIFT_KIT_SKUS,
        GIFT_KIT_BOM,
        {
            **on_hand("fba", MUG=40, BEANS=40, SPOON=40),
            ("GIFT-KIT", "fba"): StockLevels(on_hand=prepacked),
        },
        warehouses=[FBA],
    )

    assert engine.sellable("GIFT-KIT", "fba") == expected
    assert engine.position("GIFT-KIT", "fba").to_dict()["component"] == component_dict(0, 0, None)


# -- seed 002: Omnium package, bundle and kit ---------------------------------------------------

CAMERA_SKUS = [
    ("dslr-camera-black", S),
    ("lens-18-55", S),
    ("lens-18-135", S),
    ("camera-bag", S),
    ("camera-starter-kit", SkuKind.PACKAGE),
]
CAMERA_BOM = [
    BomLine("camera-starter-kit", "dslr-camera-black", 1, slot="camera"),
    BomLine("camera-starter-kit", "lens-18-55", 1, slot="lens"),
    BomLine("camera-starter-kit", "lens-18-135", 1, slot="lens"),
    BomLine("camera-starter-kit", "camera-bag", 1, slot="bag"),
]


@pytest.mark.parametrize(
    ("camera", "lens_18_55", "lens_18_135", "bag", "expected", "bottleneck"),
    [
        pytest.param(10, 3, 4, 20, 7, "lens", id="lens-options-summed"),
        pytest.param(10, 0, 6, 20, 6, "lens", id="one-lens-option-out-of-stock"),
        pytest.param(10, 0, 0, 20, 0, "lens", id="both-lens-options-out-of-stock"),
        pytest.param(5, 3, 4, 20, 5, "dslr-camera-black", id="single-option-slot-names-its-sku"),
        pytest.param(10, 3, 4, 2, 2, "camera-bag", id="bag-limits"),
    ],
)
def test_engine_package_slot_options_are_summed(
    camera: int, lens_18_55: int, lens_18_135: int, bag: int, expected: int, bottleneck: str
) -> None:
    engine = make_engine(
        CAMERA_SKUS,
        CAMERA_BOM,
        on_hand(
            **{
                "dslr-camera-black": camera,
                "lens-18-55": lens_18_55,
                "lens-18-135": lens_18_135,
                "camera-bag": bag,
            }
        ),
    )

    assert engine.sellable("camera-starter-kit", "main") == expected
    assert engine.position("camera-starter-kit", "main").to_dict()["component"] == (
        component_dict(expected, expected, bottleneck)
    )


def test_catalog_package_bom_lists_slots_with_their_options() -> None:
    catalog = Catalog.build(CAMERA_SKUS, CAMERA_BOM)

    assert [
        (slot.name, [(o.sku, o.quantity) for o in slot.options])
        for slot in catalog.bom("camera-starter-kit")
    ] == [
        ("camera", [("dslr-camera-black", 1)]),
        ("lens", [("lens-18-55", 1), ("lens-18-135", 1)]),
        ("bag", [("camera-bag", 1)]),
    ]


PC_OPTIONS = {
    "processor": ["cpu-i5", "cpu-i7", "cpu-i9"],
    "memory": ["ram-16gb", "ram-32gb"],
    "storage": ["ssd-512gb", "ssd-1tb"],
}
PC_SKUS = [(code, S) for codes in PC_OPTIONS.values() for code in codes] + [
    ("build-your-pc", SkuKind.BUNDLE)
]
PC_BOM = [
    BomLine("build-your-pc", code, 1, slot=slot)
    for slot, codes in PC_OPTIONS.items()
    for code in codes
]


@pytest.mark.parametrize(
    ("stock", "expected", "bottleneck"),
    [
        pytest.param(
            {
                "cpu-i5": 3,
                "cpu-i7": 4,
                "cpu-i9": 5,
                "ram-16gb": 2,
                "ram-32gb": 6,
                "ssd-512gb": 10,
                "ssd-1tb": 10,
            },
            8,
            "memory",
            id="memory-slot-limits",
        ),
        pytest.param(
            {
                "cpu-i5": 1,
                "cpu-i7": 0,
                "cpu-i9": 2,
                "ram-16gb": 20,
                "ram-32gb": 20,
                "ssd-512gb": 10,
                "ssd-1tb": 10,
            },
            3,
            "processor",
            id="processor-slot-limits",
        ),
        pytest.param(
            {
                "cpu-i5": 5,
                "cpu-i7": 5,
                "cpu-i9": 5,
                "ram-16gb": 5,
                "ram-32gb": 5,
                "ssd-512gb": 0,
                "ssd-1tb": 0,
            },
            0,
            "storage",
            id="storage-slot-empty",
        ),
        pytest.param(
            {
                "cpu-i5": 2,
                "cpu-i7": 2,
                "cpu-i9": 0,
                "ram-16gb": 4,
                "ram-32gb": 0,
                "ssd-512gb": 0,
                "ssd-1tb": 4,
            },
            4,
            "processor",
            id="tie-names-first-slot",
        ),
    ],
)
def test_engine_bundle_build_your_pc_sums_options_per_slot(
    stock: dict[str, int], expected: int, bottleneck: str
) -> None:
    engine = make_engine(PC_SKUS, PC_BOM, on_hand(**stock))

    assert engine.sellable("build-your-pc", "main") == expected
    assert engine.position("build-your-pc", "main").to_dict()["component"] == (
        component_dict(expected, expected, bottleneck)
    )


@pytest.mark.parametrize(
    ("chocolate", "expected"),
    [
        pytest.param(25, 12, id="odd-chocolate-rounds-down"),
        pytest.param(24, 12, id="even-chocolate"),
        pytest.param(1, 0, id="one-bar-makes-no-bag"),
    ],
)
def test_engine_kit_quantity_per_unit_floors(chocolate: int, expected: int) -> None:
    """Holiday Gift Bag 2024: 2x chocolate, 1x candle, 1x mug."""
    engine = make_engine(
        [
            ("choc-dark-100g", S),
            ("candle-vanilla", S),
            ("mug-festive-red", S),
            ("holiday-gift-bag-2024", SkuKind.KIT),
        ],
        [
            BomLine("holiday-gift-bag-2024", "choc-dark-100g", 2),
            BomLine("holiday-gift-bag-2024", "candle-vanilla", 1),
            BomLine("holiday-gift-bag-2024", "mug-festive-red", 1),
        ],
        on_hand(**{"choc-dark-100g": chocolate, "candle-vanilla": 50, "mug-festive-red": 50}),
    )

    assert engine.sellable("holiday-gift-bag-2024", "main") == expected
    assert engine.position("holiday-gift-bag-2024", "main").to_dict()["component"] == (
        component_dict(expected, expected, "choc-dark-100g")
    )


OMNIUM_KIT_SKUS = [("A", S), ("B", S), ("C", S), ("KIT", SkuKind.KIT)]
OMNIUM_KIT_BOM = [BomLine("KIT", "A", 1), BomLine("KIT", "B", 2), BomLine("KIT", "C", 1)]


def test_engine_omnium_kit_before_assembly_makes_40() -> None:
    engine = make_engine(OMNIUM_KIT_SKUS, OMNIUM_KIT_BOM, on_hand(A=100, B=80, C=150, KIT=0))

    assert engine.sellable("KIT", "main") == 40
    assert engine.position("KIT", "main").to_dict()["component"] == component_dict(40, 40, "B")


def test_engine_omnium_kit_after_building_20_sells_20_plus_20() -> None:
    engine = make_engine(OMNIUM_KIT_SKUS, OMNIUM_KIT_BOM, on_hand(A=80, B=40, C=130, KIT=20))

    position = engine.position("KIT", "main").to_dict()

    assert position["prepackaged"] == prepackaged_dict(on_hand=20)
    assert position["component"] == component_dict(20, 20, "B")
    assert position["sellable"] == 40


def test_engine_omnium_kit_build_of_20_changes_no_sellable_of_the_kit() -> None:
    engine = make_engine(OMNIUM_KIT_SKUS, OMNIUM_KIT_BOM, on_hand(A=100, B=80, C=150, KIT=0))

    changed = engine.apply(on_hand(A=80, B=40, C=130, KIT=20))

    assert engine.sellable("KIT", "main") == 40
    assert engine.sellable_by_warehouse("main") == {"A": 80, "B": 40, "C": 130, "KIT": 40}
    assert {("A", "main"), ("B", "main"), ("C", "main")} <= changed


def test_engine_omnium_kit_build_of_20_reports_only_the_components() -> None:
    engine = make_engine(OMNIUM_KIT_SKUS, OMNIUM_KIT_BOM, on_hand(A=100, B=80, C=150, KIT=0))

    changed = engine.apply(on_hand(A=80, B=40, C=130, KIT=20))

    assert changed == {("A", "main"), ("B", "main"), ("C", "main")}


@pytest.mark.parametrize(
    ("pack", "per_pack", "expected"),
    [pytest.param("tee-3-pack", 3, 6, id="3-pack"), pytest.param("tee-6-pack", 6, 3, id="6-pack")],
)
def test_engine_variant_multipack_divides_single_stock(
    pack: str, per_pack: int, expected: int
) -> None:
    engine = make_engine(
        [("tee-single", S), ("tee-3-pack", SkuKind.PACKAGE), ("tee-6-pack", SkuKind.PACKAGE)],
        [BomLine("tee-3-pack", "tee-single", 3), BomLine("tee-6-pack", "tee-single", 6)],
        on_hand(**{"tee-single": 20}),
    )

    assert engine.sellable(pack, "main") == expected == 20 // per_pack


# -- seed 003: Use Component Inventory per warehouse ("Alphabet Bundle") ------------------------

ALPHABET_SKUS = [("ABC", S), ("DEF", S), ("GHI", S), ("ALPHABET-BUNDLE", SkuKind.BUNDLE)]
ALPHABET_BOM = [BomLine("ALPHABET-BUNDLE", code, 1) for code in ("ABC", "DEF", "GHI")]


def alphabet_engine() -> StockEngine:
    return make_engine(
        ALPHABET_SKUS,
        ALPHABET_BOM,
        {
            **on_hand("main", ABC=120, DEF=50, GHI=75, **{"ALPHABET-BUNDLE": 0}),
            # The FBA warehouse holds 8 pre-packed bundles, and loose components it ignores.
            **on_hand("fba", ABC=30, DEF=30, GHI=30, **{"ALPHABET-BUNDLE": 8}),
        },
        warehouses=[MAIN, FBA],
    )


def test_engine_alphabet_bundle_uses_component_inventory_when_enabled() -> None:
    engine = alphabet_engine()

    assert engine.sellable("ALPHABET-BUNDLE", "main") == 50
    assert engine.position("ALPHABET-BUNDLE", "main").to_dict() == {
        "sku": "ALPHABET-BUNDLE",
        "warehouse": "main",
        "kind": "bundle",
        "prepackaged": prepackaged_dict(on_hand=0),
        "component": component_dict(50, 50, "DEF"),
        "sellable": 50,
    }


def test_engine_alphabet_bundle_ignores_components_when_disabled() -> None:
    engine = alphabet_engine()

    assert engine.sellable("ALPHABET-BUNDLE", "fba") == 8
    assert engine.position("ALPHABET-BUNDLE", "fba").to_dict() == {
        "sku": "ALPHABET-BUNDLE",
        "warehouse": "fba",
        "kind": "bundle",
        "prepackaged": prepackaged_dict(on_hand=8),
        "component": component_dict(0, 0, None),
        "sellable": 8,
    }


def test_engine_alphabet_bundle_components_in_fba_stay_sellable_on_their_own() -> None:
    engine = alphabet_engine()

    assert engine.sellable_by_warehouse("fba") == {
        "ABC": 30,
        "DEF": 30,
        "GHI": 30,
        "ALPHABET-BUNDLE": 8,
    }


def test_engine_alphabet_bundle_component_change_in_fba_does_not_touch_bundle() -> None:
    engine = alphabet_engine()

    changed = engine.apply_one("DEF", "fba", StockLevels(on_hand=0))

    assert changed == [("DEF", "fba")]
    assert engine.sellable("ALPHABET-BUNDLE", "fba") == 8
    assert engine.sellable("ALPHABET-BUNDLE", "main") == 50


def test_engine_alphabet_bundle_component_out_of_stock_leaves_only_prepackaged() -> None:
    engine = make_engine(
        ALPHABET_SKUS,
        ALPHABET_BOM,
        on_hand(ABC=120, DEF=0, GHI=75, **{"ALPHABET-BUNDLE": 8}),
    )

    assert engine.sellable("ALPHABET-BUNDLE", "main") == 8
    assert engine.position("ALPHABET-BUNDLE", "main").to_dict()["component"] == (
        component_dict(0, 0, "DEF")
    )


def test_engine_component_on_hand_ignores_locked_and_allocated() -> None:
    """Seed 003: the same logic gives the bundle's On Hand and its Available."""
    engine = make_engine(
        ALPHABET_SKUS,
        ALPHABET_BOM,
        {
            **on_hand(ABC=120, GHI=75),
            ("DEF", "main"): StockLevels(on_hand=50, locked=4, allocated=6),
        },
    )

    assert engine.position("ALPHABET-BUNDLE", "main").to_dict()["component"] == (
        component_dict(50, 40, "DEF")
    )
    assert engine.sellable("ALPHABET-BUNDLE", "main") == 40


# -- seed 004: FAQ, kit vs assembly -------------------------------------------------------------

FAQ_KIT_SKUS = [("A", S), ("B", S), ("KIT", SkuKind.KIT)]
FAQ_KIT_BOM = [BomLine("KIT", "A", 1), BomLine("KIT", "B", 1)]


def test_engine_faq_kit_from_a50_b30_sells_30() -> None:
    engine = make_engine(FAQ_KIT_SKUS, FAQ_KIT_BOM, on_hand(A=50, B=30))

    assert engine.sellable("KIT", "main") == 30
    assert engine.position("KIT", "main").to_dict()["component"] == component_dict(30, 30, "B")


def test_engine_faq_kit_sale_deducts_components_and_kit_follows() -> None:
    engine = make_engine(FAQ_KIT_SKUS, FAQ_KIT_BOM, on_hand(A=50, B=30))

    changed = engine.apply(on_hand(A=49, B=29))

    assert changed == {("A", "main"), ("B", "main"), ("KIT", "main")}
    assert engine.sellable_by_warehouse("main") == {"A": 49, "B": 29, "KIT": 29}


def test_engine_faq_kit_cannot_be_sold_when_a_component_reaches_zero() -> None:
    engine = make_engine(FAQ_KIT_SKUS, FAQ_KIT_BOM, on_hand(A=50, B=1))

    assert engine.apply_one("B", "main", StockLevels(on_hand=0)) == [
        ("B", "main"),
        ("KIT", "main"),
    ]
    assert engine.sellable("KIT", "main") == 0


FAQ_ASM_SKUS = [("A", S), ("B", S), ("ASM", SkuKind.ASSEMBLY)]
FAQ_ASM_BOM = [BomLine("ASM", "A", 2), BomLine("ASM", "B", 1)]


def test_engine_faq_assembly_sale_deducts_only_assembly_stock() -> None:
    engine = make_engine(FAQ_ASM_SKUS, FAQ_ASM_BOM, on_hand(ASM=5, A=20, B=15))
    assert engine.sellable("ASM", "main") == 15  # 5 + min(20 // 2, 15)

    changed = engine.apply_one("ASM", "main", StockLevels(on_hand=4))

    assert changed == [("ASM", "main")]
    assert engine.sellable_by_warehouse("main") == {"A": 20, "B": 15, "ASM": 14}


LIFECYCLE = [
    # step, assembly, A, B, sellable = assembly + min(A // 2, B)
    pytest.param(0, 100, 100, 50, id="starting-stock"),
    pytest.param(10, 80, 90, 50, id="build-10"),
    pytest.param(7, 80, 90, 47, id="sell-3"),
    pytest.param(12, 70, 85, 47, id="build-5-more"),
    pytest.param(4, 70, 85, 39, id="sell-8"),
]


@pytest.mark.parametrize(("assembly", "a", "b", "expected"), LIFECYCLE)
def test_engine_faq_assembly_lifecycle_step_sellable(
    assembly: int, a: int, b: int, expected: int
) -> None:
    engine = make_engine(FAQ_ASM_SKUS, FAQ_ASM_BOM, on_hand(ASM=assembly, A=a, B=b))

    assert engine.sellable("ASM", "main") == expected


def test_engine_faq_assembly_lifecycle_end_state_position() -> None:
    engine = make_engine(FAQ_ASM_SKUS, FAQ_ASM_BOM, on_hand(ASM=4, A=70, B=85))

    assert engine.position("ASM", "main").to_dict() == {
        "sku": "ASM",
        "warehouse": "main",
        "kind": "assembly",
        "prepackaged": prepackaged_dict(on_hand=4),
        "component": component_dict(35, 35, "A"),  # min(70 // 2, 85 // 1) = 35
        "sellable": 39,
    }


def test_engine_faq_assembly_lifecycle_replayed_incrementally() -> None:
    engine = make_engine(FAQ_ASM_SKUS, FAQ_ASM_BOM, on_hand(ASM=0, A=100, B=100))
    seen = [engine.sellable("ASM", "main")]

    for assembly, a, b, _expected in (p.values for p in LIFECYCLE[1:]):
        engine.apply(on_hand(ASM=assembly, A=a, B=b))
        seen.append(engine.sellable("ASM", "main"))

    assert seen == [p.values[3] for p in LIFECYCLE]


# -- locked / allocated / oversold --------------------------------------------------------------


@pytest.mark.parametrize(
    ("levels", "expected"),
    [
        pytest.param(StockLevels(50), 50, id="on-hand-only"),
        pytest.param(StockLevels(50, locked=5), 45, id="locked"),
        pytest.param(StockLevels(50, allocated=10), 40, id="allocated"),
        pytest.param(StockLevels(50, locked=5, allocated=10), 35, id="locked-and-allocated"),
        pytest.param(StockLevels(5, locked=5), 0, id="all-locked"),
        pytest.param(StockLevels(2, allocated=5), 0, id="oversold"),
        pytest.param(StockLevels(-3), 0, id="negative-on-hand"),
    ],
)
def test_engine_simple_sellable_is_available_floored_at_zero(
    levels: StockLevels, expected: int
) -> None:
    engine = make_engine([("MUG", S)], [], {("MUG", "main"): levels})

    assert engine.sellable("MUG", "main") == expected
    assert engine.position("MUG", "main").to_dict()["prepackaged"]["available"] == (
        levels.on_hand - levels.locked - levels.allocated
    )


@pytest.mark.parametrize(
    ("mug", "expected"),
    [
        pytest.param(StockLevels(30, locked=2, allocated=8), 20, id="locked-and-allocated"),
        pytest.param(StockLevels(30, allocated=30), 0, id="fully-allocated"),
        pytest.param(StockLevels(1, allocated=4), 0, id="oversold-component"),
    ],
)
def test_engine_kit_component_locked_and_allocated_reduce_kit(
    mug: StockLevels, expected: int
) -> None:
    engine = make_engine(
        [*COFFEE_COMPONENTS, ("GIFT-SET-KIT", SkuKind.KIT)],
        coffee_bom("GIFT-SET-KIT"),
        {**COFFEE_STOCK, ("MUG-CERAMIC", "main"): mug},
    )

    assert engine.sellable("GIFT-SET-KIT", "main") == expected
    assert engine.position("GIFT-SET-KIT", "main").to_dict()["component"] == (
        component_dict(max(0, mug.on_hand), expected, "MUG-CERAMIC")
    )


@pytest.mark.parametrize(
    ("warehouse", "prepackaged", "expected"),
    [
        pytest.param(MAIN, StockLevels(10, locked=1, allocated=2), 37, id="main-7-plus-30"),
        pytest.param(MAIN, StockLevels(1, allocated=4), 30, id="main-oversold-prepackaged"),
        pytest.param(FBA, StockLevels(10, locked=1, allocated=2), 7, id="fba-7"),
        pytest.param(FBA, StockLevels(1, allocated=4), 0, id="fba-oversold-prepackaged"),
    ],
)
def test_engine_composite_prepackaged_available_is_floored_before_adding_components(
    warehouse: WarehouseRules, prepackaged: StockLevels, expected: int
) -> None:
    code = warehouse.code
    engine = make_engine(
        [*COFFEE_COMPONENTS, ("GIFT-SET-COFFEE", SkuKind.ASSEMBLY)],
        coffee_bom("GIFT-SET-COFFEE"),
        {
            **on_hand(code, **{"BEANS-12OZ": 50, "MUG-CERAMIC": 30, "SCOOP-WOOD": 100}),
            ("GIFT-SET-COFFEE", code): prepackaged,
        },
        warehouses=[warehouse],
    )

    assert engine.sellable("GIFT-SET-COFFEE", code) == expected
    assert engine.position("GIFT-SET-COFFEE", code).to_dict()["prepackaged"] == prepackaged_dict(
        prepackaged.on_hand, prepackaged.locked, prepackaged.allocated
    )


def test_engine_oversold_component_never_makes_ancestors_negative() -> None:
    engine = make_engine(
        [("A", S), ("B", S), ("INNER", SkuKind.KIT), ("OUTER", SkuKind.KIT)],
        [BomLine("INNER", "A", 1), BomLine("INNER", "B", 1), BomLine("OUTER", "INNER", 2)],
        {
            ("A", "main"): StockLevels(3, allocated=10),
            ("B", "main"): StockLevels(20),
            ("INNER", "main"): StockLevels(0, allocated=2),
            ("OUTER", "main"): StockLevels(0, allocated=1),
        },
    )

    assert engine.sellable_by_warehouse("main") == {"A": 0, "B": 20, "INNER": 0, "OUTER": 0}
    outer = engine.position("OUTER", "main").to_dict()
    assert outer["prepackaged"] == prepackaged_dict(0, 0, 1)
    # On hand ignores allocations: INNER could be built 3 times from A's 3 on hand -> 1 OUTER.
    assert outer["component"] == component_dict(1, 0, "INNER")


# -- nesting and empty BOMs ---------------------------------------------------------------------


def test_engine_nested_kit_of_assemblies_uses_each_assembly_sellable() -> None:
    engine = make_engine(
        [
            ("A", S),
            ("B", S),
            ("C", S),
            ("ASM", SkuKind.ASSEMBLY),
            ("ASM2", SkuKind.ASSEMBLY),
            ("KIT", SkuKind.KIT),
        ],
        [
            BomLine("ASM", "A", 2),
            BomLine("ASM", "B", 1),
            BomLine("ASM2", "C", 3),
            BomLine("KIT", "ASM", 2),
            BomLine("KIT", "ASM2", 1),
        ],
        on_hand(A=10, B=4, C=31, ASM=3, ASM2=1),
    )

    # ASM = 3 + min(10 // 2, 4) = 7; ASM2 = 1 + 31 // 3 = 11; KIT = min(7 // 2, 11) = 3
    assert engine.sellable_by_warehouse("main") == {
        "A": 10,
        "B": 4,
        "C": 31,
        "ASM": 7,
        "ASM2": 11,
        "KIT": 3,
    }
    assert engine.position("KIT", "main").to_dict()["component"] == component_dict(3, 3, "ASM")


def test_engine_three_level_nesting_propagates_one_change_to_the_top() -> None:
    engine = make_engine(
        [("A", S), ("L1", SkuKind.KIT), ("L2", SkuKind.KIT), ("L3", SkuKind.BUNDLE)],
        [BomLine("L1", "A", 2), BomLine("L2", "L1", 2), BomLine("L3", "L2", 2)],
        on_hand(A=40, L1=1, L2=1, L3=1),
    )
    # L1 = 1 + 20 = 21; L2 = 1 + 10 = 11; L3 = 1 + 5 = 6
    assert engine.sellable_by_warehouse("main") == {"A": 40, "L1": 21, "L2": 11, "L3": 6}

    changed = engine.apply_one("A", "main", StockLevels(on_hand=8))

    # L1 = 1 + 4 = 5; L2 = 1 + 2 = 3; L3 = 1 + 1 = 2
    assert changed == [("A", "main"), ("L1", "main"), ("L2", "main"), ("L3", "main")]
    assert engine.sellable_by_warehouse("main") == {"A": 8, "L1": 5, "L2": 3, "L3": 2}


def test_engine_change_that_does_not_move_a_floor_stops_propagation() -> None:
    engine = make_engine(
        [("A", S), ("PAIR", SkuKind.KIT)], [BomLine("PAIR", "A", 2)], on_hand(A=10)
    )

    assert engine.apply_one("A", "main", StockLevels(on_hand=11)) == [("A", "main")]
    assert engine.sellable("PAIR", "main") == 5


@pytest.mark.parametrize(
    ("warehouse", "prepackaged"),
    [
        pytest.param(MAIN, 5, id="main"),
        pytest.param(FBA, 5, id="fba"),
        pytest.param(MAIN, 0, id="main-nothing-prepackaged"),
    ],
)
def test_engine_composite_with_empty_bom_has_zero_component_stock(
    warehouse: WarehouseRules, prepackaged: int
) -> None:
    engine = make_engine(
        [("EMPTY", SkuKind.KIT)],
        [],
        {("EMPTY", warehouse.code): StockLevels(prepackaged)},
        warehouses=[warehouse],
    )

    position = engine.position("EMPTY", warehouse.code).to_dict()
    assert position["component"] == component_dict(0, 0, None)
    assert position["sellable"] == prepackaged
    assert engine.sellable("EMPTY", warehouse.code) == prepackaged


def test_engine_empty_bom_composite_contributes_nothing_to_its_parent() -> None:
    engine = make_engine(
        [("A", S), ("EMPTY", SkuKind.ASSEMBLY), ("TOP", SkuKind.KIT)],
        [BomLine("TOP", "A", 1), BomLine("TOP", "EMPTY", 1)],
        on_hand(A=10, EMPTY=0),
    )

    assert engine.sellable("TOP", "main") == 0
    assert engine.position("TOP", "main").to_dict()["component"] == component_dict(0, 0, "EMPTY")


# -- explain / render ---------------------------------------------------------------------------


def coffee_kit_engine() -> StockEngine:
    return make_engine(
        [*COFFEE_COMPONENTS, ("GIFT-SET-KIT", SkuKind.KIT)],
        coffee_bom("GIFT-SET-KIT"),
        {**COFFEE_STOCK, ("GIFT-SET-KIT", "fba"): StockLevels(8)},
        warehouses=[MAIN, FBA],
    )


def test_explain_marks_the_bottleneck_component() -> None:
    tree = explain(coffee_kit_engine(), "GIFT-SET-KIT", "main")

    assert (tree.sku, tree.available, tree.component, tree.sellable) == ("GIFT-SET-KIT", 0, 30, 30)
    assert [(c.sku, c.per_unit, c.sellable, c.makes, c.limiting) for c in tree.children] == [
        ("BEANS-12OZ", 1, 50, 50, False),
        ("MUG-CERAMIC", 1, 30, 30, True),
        ("SCOOP-WOOD", 1, 100, 100, False),
    ]


def test_render_names_the_bottleneck() -> None:
    engine = coffee_kit_engine()

    text = render(explain(engine, "GIFT-SET-KIT", "main"), "main")

    lines = text.splitlines()
    assert lines[0] == (
        "GIFT-SET-KIT (kit) in main: sellable 30 = prepackaged available 0 + from components 30"
    )
    bottleneck_lines = [line for line in lines if "bottleneck" in line]
    assert bottleneck_lines == ["  1 × MUG-CERAMIC: sellable 30 → enough for 30  ← bottleneck"]


def test_render_in_warehouse_without_component_inventory_lists_no_components() -> None:
    engine = coffee_kit_engine()

    tree = explain(engine, "GIFT-SET-KIT", "fba")
    text = render(tree, "fba")

    assert tree.children == ()
    assert tree.sellable == 8
    assert text == (
        "GIFT-SET-KIT (kit) in fba: sellable 8 = prepackaged available 8 "
        "(warehouse fba does not use component inventory)"
    )


def test_explain_marks_every_option_of_a_limiting_slot() -> None:
    engine = make_engine(
        CAMERA_SKUS,
        CAMERA_BOM,
        on_hand(**{"dslr-camera-black": 10, "lens-18-55": 3, "lens-18-135": 4, "camera-bag": 20}),
    )

    tree = explain(engine, "camera-starter-kit", "main")
    text = render(tree, "main")

    assert tree.sellable == 7
    assert [(c.sku, c.slot, c.makes, c.limiting) for c in tree.children] == [
        ("dslr-camera-black", None, 10, False),
        ("lens-18-55", "lens", 3, True),
        ("lens-18-135", "lens", 4, True),
        ("camera-bag", None, 20, False),
    ]
    assert [line for line in text.splitlines() if "bottleneck" in line] == [
        "  1 × lens-18-55 [option of slot lens]: sellable 3 → enough for 3  ← bottleneck",
        "  1 × lens-18-135 [option of slot lens]: sellable 4 → enough for 4  ← bottleneck",
    ]


def test_explain_walks_nested_composites() -> None:
    engine = make_engine(
        [("A", S), ("B", S), ("ASM", SkuKind.ASSEMBLY), ("KIT", SkuKind.KIT)],
        [BomLine("ASM", "A", 2), BomLine("ASM", "B", 1), BomLine("KIT", "ASM", 2)],
        on_hand(A=10, B=4, ASM=3),
    )

    tree = explain(engine, "KIT", "main")

    (asm,) = tree.children
    assert (asm.sku, asm.available, asm.component, asm.sellable, asm.makes, asm.limiting) == (
        "ASM",
        3,
        4,
        7,
        3,
        True,
    )
    assert [(c.sku, c.makes, c.limiting) for c in asm.children] == [
        ("A", 5, False),
        ("B", 4, True),
    ]
    assert (
        "  2 × ASM: sellable 7 (prepackaged 3 + from components 4) → enough for 3  ← bottleneck"
        in (render(tree, "main").splitlines())
    )


# -- addressing errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sku", "warehouse", "message"),
    [
        pytest.param("NOPE", "main", "unknown SKU 'NOPE'", id="unknown-sku"),
        pytest.param("A", "nowhere", "unknown warehouse 'nowhere'", id="unknown-warehouse"),
    ],
)
def test_engine_unknown_sku_or_warehouse_raises_catalog_error(
    sku: str, warehouse: str, message: str
) -> None:
    engine = make_engine([("A", S)], [], on_hand(A=1))

    with pytest.raises(CatalogError, match=message):
        engine.sellable(sku, warehouse)
    with pytest.raises(CatalogError, match=message):
        engine.apply_one(sku, warehouse, StockLevels(1))
