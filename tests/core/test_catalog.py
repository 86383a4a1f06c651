"""Catalog validation: cycles, components of simple SKUs, unknown SKUs, quantities;
reverse lookups (dependents) and the BOM as named slots."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sellable.core import BomLine, Catalog, SkuKind, StockEngine, StockLevels, WarehouseRules
from sellable.errors import CatalogError, InputError

S = SkuKind.SIMPLE
K = SkuKind.KIT
ASM = SkuKind.ASSEMBLY


def rotations(cycle: list[str]) -> list[str]:
    """Every way to write the closed path ``cycle`` (first node repeated at the end)."""
    nodes = cycle[:-1]
    return [" -> ".join([*nodes[i:], *nodes[:i], nodes[i]]) for i in range(len(nodes))]


def assert_names_cycle(error: CatalogError, cycle: list[str]) -> None:
    message = str(error)
    assert message.startswith("BOM cycle: ")
    assert any(path in message for path in rotations(cycle)), message


@pytest.mark.parametrize(
    ("skus", "bom", "cycle"),
    [
        pytest.param([("A", K)], [BomLine("A", "A", 1)], ["A", "A"], id="self"),
        pytest.param(
            [("A", K), ("B", ASM)],
            [BomLine("A", "B", 1), BomLine("B", "A", 2)],
            ["A", "B", "A"],
            id="direct",
        ),
        pytest.param(
            [("A", K), ("B", K), ("C", SkuKind.BUNDLE)],
            [BomLine("A", "B", 1), BomLine("B", "C", 1), BomLine("C", "A", 1)],
            ["A", "B", "C", "A"],
            id="three-long",
        ),
        pytest.param(
            [("X", S), ("A", K), ("B", K), ("C", SkuKind.PACKAGE), ("TOP", K)],
            [
                BomLine("TOP", "A", 1),
                BomLine("A", "X", 1),
                BomLine("A", "B", 1, slot="pick"),
                BomLine("A", "X", 1, slot="pick"),
                BomLine("B", "C", 1),
                BomLine("C", "A", 3),
            ],
            ["A", "B", "C", "A"],
            id="three-long-through-an-option-below-a-parent",
        ),
    ],
)
def test_catalog_bom_cycle_raises_naming_the_path(
    skus: list[tuple[str, SkuKind]], bom: list[BomLine], cycle: list[str]
) -> None:
    with pytest.raises(CatalogError) as caught:
        Catalog.build(skus, bom)

    assert_names_cycle(caught.value, cycle)


def test_catalog_three_long_cycle_message_in_declaration_order() -> None:
    with pytest.raises(CatalogError, match=re.escape("BOM cycle: A -> B -> C -> A")):
        Catalog.build(
            [("A", K), ("B", K), ("C", K)],
            [BomLine("A", "B", 1), BomLine("B", "C", 1), BomLine("C", "A", 1)],
        )


def test_catalog_error_is_an_input_error() -> None:
    with pytest.raises(InputError):
        Catalog.build([("A", K)], [BomLine("A", "A", 1)])


def test_catalog_shared_component_is_not_a_cycle() -> None:
    catalog = Catalog.build(
        [("X", S), ("A", K), ("B", K), ("TOP", K)],
        [
            BomLine("A", "X", 1),
            BomLine("B", "X", 1),
            BomLine("TOP", "A", 1),
            BomLine("TOP", "B", 1),
        ],
    )

    assert catalog.dependents("X") == {"A", "B", "TOP"}


@pytest.mark.parametrize(
    ("component_kind",),
    [pytest.param(S, id="simple-component"), pytest.param(K, id="kit-component")],
)
def test_catalog_component_of_a_simple_sku_raises_naming_it(component_kind: SkuKind) -> None:
    with pytest.raises(CatalogError) as caught:
        Catalog.build([("MUG", S), ("BEANS", component_kind)], [BomLine("MUG", "BEANS", 1)])

    message = str(caught.value)
    assert "'MUG' is a simple SKU" in message
    assert "'BEANS'" in message


@pytest.mark.parametrize(
    ("line", "message"),
    [
        pytest.param(
            BomLine("KIT", "GHOST", 1),
            "BOM component SKU 'GHOST' is not in the catalog",
            id="unknown-component",
        ),
        pytest.param(
            BomLine("GHOST", "A", 1),
            "BOM parent SKU 'GHOST' is not in the catalog",
            id="unknown-parent",
        ),
    ],
)
def test_catalog_unknown_sku_in_bom_raises(line: BomLine, message: str) -> None:
    with pytest.raises(CatalogError, match=re.escape(message)):
        Catalog.build([("A", S), ("KIT", K)], [BomLine("KIT", "A", 1), line])


@pytest.mark.parametrize("quantity", [pytest.param(0, id="zero"), pytest.param(-2, id="negative")])
def test_catalog_non_positive_quantity_raises(quantity: int) -> None:
    with pytest.raises(CatalogError) as caught:
        Catalog.build([("A", S), ("KIT", K)], [BomLine("KIT", "A", quantity)])

    assert str(caught.value) == (
        f"BOM of 'KIT': quantity of 'A' must be a positive integer, got {quantity}"
    )


def test_catalog_duplicate_sku_raises() -> None:
    with pytest.raises(CatalogError, match=re.escape("SKU 'A' appears twice in the catalog")):
        Catalog.build([("A", S), ("B", S), ("A", K)], [])


def test_catalog_unknown_kind_is_refused() -> None:
    with pytest.raises((ValueError, CatalogError), match="kitt"):
        Catalog.build([("A", "kitt")], [])


@pytest.mark.parametrize(
    ("sku", "expected"),
    [
        pytest.param("LEAF", {"L1", "L2", "L3", "L4", "SIDE"}, id="deep-component"),
        pytest.param("L2", {"L3", "L4"}, id="middle"),
        pytest.param("L4", set(), id="top"),
        pytest.param("LONE", set(), id="unused"),
        pytest.param("OTHER", {"SIDE", "L4"}, id="side-branch"),
    ],
)
def test_catalog_dependents_include_every_ancestor(sku: str, expected: set[str]) -> None:
    catalog = Catalog.build(
        [
            ("LEAF", S),
            ("OTHER", S),
            ("LONE", S),
            ("L1", ASM),
            ("L2", K),
            ("L3", SkuKind.PACKAGE),
            ("SIDE", SkuKind.BUNDLE),
            ("L4", K),
        ],
        [
            BomLine("L1", "LEAF", 2),
            BomLine("L2", "L1", 1),
            BomLine("L3", "L2", 3),
            BomLine("SIDE", "LEAF", 1, slot="pick"),
            BomLine("SIDE", "OTHER", 1, slot="pick"),
            BomLine("L4", "L3", 1),
            BomLine("L4", "SIDE", 1),
        ],
    )

    assert catalog.dependents(sku) == expected


def test_catalog_dependents_of_unknown_sku_raises() -> None:
    catalog = Catalog.build([("A", S)], [])

    with pytest.raises(CatalogError, match=re.escape("unknown SKU 'NOPE'")):
        catalog.dependents("NOPE")


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(
    st.lists(
        st.lists(st.tuples(st.integers(0, 30), st.integers(1, 4)), max_size=4),
        min_size=1,
        max_size=12,
    )
)
def test_catalog_dependents_equal_brute_force_ancestors(
    raw: list[list[tuple[int, int]]],
) -> None:
    """SKU i>0 is a kit whose components are drawn among SKUs 0..i-1 (S0 is simple)."""
    codes = [f"S{i}" for i in range(len(raw) + 1)]
    children = {
        codes[i + 1]: sorted({codes[pick % (i + 1)] for pick, _ in picks})
        for i, picks in enumerate(raw)
    }
    catalog = Catalog.build(
        [(codes[0], S)] + [(code, K) for code in codes[1:]],
        [BomLine(parent, child, 1) for parent, kids in children.items() for child in kids],
    )

    def ancestors(sku: str) -> set[str]:
        direct = {parent for parent, kids in children.items() if sku in kids}
        return direct.union(*(ancestors(parent) for parent in direct))

    for code in codes:
        assert catalog.dependents(code) == ancestors(code)


def test_catalog_bom_lists_named_slots_in_first_row_order() -> None:
    catalog = Catalog.build(
        [("A", S), ("B", S), ("C", S), ("PKG", SkuKind.PACKAGE)],
        [
            BomLine("PKG", "C", 2),
            BomLine("PKG", "A", 1, slot="pick"),
            BomLine("PKG", "B", 3, slot="pick"),
        ],
    )

    assert [
        (slot.name, [(o.sku, o.quantity) for o in slot.options]) for slot in catalog.bom("PKG")
    ] == [
        ("C", [("C", 2)]),
        ("pick", [("A", 1), ("B", 3)]),
    ]
    assert catalog.bom("A") == ()
    assert catalog.kind_of("PKG") is SkuKind.PACKAGE
    assert "PKG" in catalog
    assert "NOPE" not in catalog
    assert len(catalog) == 4


def test_catalog_accepts_kinds_as_strings() -> None:
    catalog = Catalog.build([("A", "simple"), ("SET", "kit")], [BomLine("SET", "A", 1)])

    assert catalog.kind_of("SET") is SkuKind.KIT


# -- found while writing these tests: BOM rows that the catalog merges or double counts -----------


def test_catalog_unslotted_rows_of_the_same_component_are_refused() -> None:
    # Two rows for A without a slot are ambiguous (two slots? one of quantity 3?): refused.
    with pytest.raises(CatalogError, match=r"'A' is listed twice in its own slot"):
        Catalog.build([("A", S), ("KIT", K)], [BomLine("KIT", "A", 1), BomLine("KIT", "A", 2)])


def test_catalog_duplicate_option_in_a_slot_is_refused_or_counted_once() -> None:
    try:
        catalog = Catalog.build(
            [("A", S), ("KIT", K)],
            [BomLine("KIT", "A", 1, slot="s"), BomLine("KIT", "A", 1, slot="s")],
        )
    except CatalogError:
        return
    engine = StockEngine(catalog, [WarehouseRules("main")])
    engine.load_stock({("A", "main"): StockLevels(10)})
    engine.recompute_all()

    # 10 units of A make at most 10 kits. Today: 10 // 1 + 10 // 1 = 20.
    assert engine.sellable("KIT", "main") == 10
