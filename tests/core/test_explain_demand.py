"""``explain``'s demand per unit: every SKU below a composite, summed over every path."""

from __future__ import annotations

from sellable.core import BomLine, Catalog, SkuKind
from sellable.core.explain import Demand, DemandPath, SlotDemand, UnitDemand, unit_demand

S, K, A = SkuKind.SIMPLE, SkuKind.KIT, SkuKind.ASSEMBLY


def test_demand_sums_a_component_reached_directly_and_through_a_sub_assembly() -> None:
    """X = 1×A + 1×K, K = 1×A: one X takes 2 A (the issue's first reproduction)."""
    catalog = Catalog.build(
        [("A", S), ("K", K), ("X", K)],
        [BomLine("X", "A", 1), BomLine("X", "K", 1), BomLine("K", "A", 1)],
    )

    demand = unit_demand(catalog, "X")

    assert demand == UnitDemand(
        "X",
        (
            Demand("A", 2, (DemandPath((), 1), DemandPath(("K",), 1))),
            Demand("K", 1, (DemandPath((), 1),)),
        ),
        (),
    )
    assert [d.describe() for d in demand.components] == [
        "A: 2 per unit (1 direct, 1 via K)",
        "K: 1 per unit (1 direct)",
    ]


def test_demand_multiplies_quantities_down_nested_paths() -> None:
    """TOP = 2×SUB + 3×B, SUB = 2×MID + 1×B, MID = 5×B: B is 3 + 2×1 + 2×2×5 = 25."""
    catalog = Catalog.build(
        [("B", S), ("MID", A), ("SUB", K), ("TOP", K)],
        [
            BomLine("TOP", "SUB", 2),
            BomLine("TOP", "B", 3),
            BomLine("SUB", "MID", 2),
            BomLine("SUB", "B", 1),
            BomLine("MID", "B", 5),
        ],
    )

    demand = unit_demand(catalog, "TOP")

    assert [d.describe() for d in demand.components] == [
        "SUB: 2 per unit (2 direct)",
        "MID: 4 per unit (4 via SUB)",
        "B: 25 per unit (3 direct, 20 via SUB > MID, 2 via SUB)",
    ]
    assert demand.to_dict()["demand_per_unit"][2] == {
        "sku": "B",
        "per_unit": 25,
        "paths": [
            {"via": None, "quantity": 3},
            {"via": "SUB > MID", "quantity": 20},
            {"via": "SUB", "quantity": 2},
        ],
    }


def test_demand_shows_a_slot_with_options_as_one_of_them() -> None:
    """KIT = 1×CAM + (1×L1 or 2×L2) + 1×SUB, SUB = 1×L1 + (1×BAG or 1×BOX)."""
    catalog = Catalog.build(
        [("CAM", S), ("L1", S), ("L2", S), ("BAG", S), ("BOX", S), ("SUB", K), ("KIT", K)],
        [
            BomLine("KIT", "CAM", 1),
            BomLine("KIT", "L1", 1, "lens"),
            BomLine("KIT", "L2", 2, "lens"),
            BomLine("KIT", "SUB", 1),
            BomLine("SUB", "L1", 1),
            BomLine("SUB", "BAG", 1, "case"),
            BomLine("SUB", "BOX", 1, "case"),
        ],
    )

    demand = unit_demand(catalog, "KIT")

    assert [d.describe() for d in demand.components] == [
        "CAM: 1 per unit (1 direct)",
        "SUB: 1 per unit (1 direct)",
        "L1: 1 per unit (1 via SUB)",
    ]
    assert demand.slots == (
        SlotDemand(
            "lens",
            (),
            (Demand("L1", 1, (DemandPath((), 1),)), Demand("L2", 2, (DemandPath((), 2),))),
        ),
        SlotDemand(
            "case",
            ("SUB",),
            (
                Demand("BAG", 1, (DemandPath(("SUB",), 1),)),
                Demand("BOX", 1, (DemandPath(("SUB",), 1),)),
            ),
        ),
    )
    assert [s.describe() for s in demand.slots] == [
        "slot lens: one of L1 1 per unit, L2 2 per unit",
        "slot case, via SUB: one of BAG 1 per unit, BOX 1 per unit",
    ]


def test_demand_of_a_simple_sku_is_empty() -> None:
    catalog = Catalog.build([("A", S)], [])
    assert unit_demand(catalog, "A") == UnitDemand("A", (), ())
