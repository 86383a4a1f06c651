"""``import components``: replaces the BOMs of the parents named; bad rows and cycles reject all."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from sellable.errors import CatalogError, InputError
from sellable.imports import ImportSummary, import_components, import_products
from tests.imports import BACKENDS, EXAMPLES, Store, open_store, rejected, shared_store

HEADER = "parent_sku,component_sku,quantity,slot,price_offset\n"
UNKNOWN_SKU = "unknown SKU (import it with 'sellable import products' first)"

# Three kits nested K1 -> K2 -> K3 (an existing multi-level BOM), and two empty kits.
NESTED_PRODUCTS = (
    "sku,name,kind\nK1,Kit 1,kit\nK2,Kit 2,kit\nK3,Kit 3,kit\nK4,Kit 4,kit\nK5,Kit 5,kit\n"
)
NESTED_BOM = "parent_sku,component_sku,quantity\nK1,K2,1\nK2,K3,1\nK3,COMP-A,1\n"


@pytest.fixture(scope="module", params=BACKENDS)
def examples(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Store]:
    """Examples plus nested kits on each backend, shared by tests of rejected files."""
    with shared_store(request, tmp_path_factory.mktemp("components")) as opened:
        import_products(opened.engine, opened.csv("nested-products.csv", NESTED_PRODUCTS))
        import_components(opened.engine, opened.csv("nested-bom.csv", NESTED_BOM))
        yield opened


@pytest.fixture
def store(config_file: Path) -> Iterator[Store]:
    opened = open_store(config_file)
    opened.load_examples()
    yield opened
    opened.engine.dispose()


def _reject(store: Store, text: str) -> tuple[Path, str]:
    """Import ``text``, expect it rejected with nothing written; return path and message."""
    path = store.csv("components.csv", text)
    before = store.snapshot()
    counts = store.counts()
    with pytest.raises(InputError) as excinfo:
        import_components(store.engine, path)
    assert store.counts() == counts
    assert store.snapshot() == before
    return path, str(excinfo.value)


# -- rejected rows --------------------------------------------------------------------------------

ROW_ERRORS = [
    pytest.param(
        HEADER + "FAQ-KIT,COMP-A,1,,\nNOPE-PARENT,COMP-A,1,,\n",
        [f"line 3, column 'parent_sku': {UNKNOWN_SKU} (value 'NOPE-PARENT')"],
        id="unknown-parent-sku",
    ),
    pytest.param(
        HEADER + "FAQ-KIT,COMP-A,1,,\nFAQ-KIT,NOPE-COMPONENT,1,,\n",
        [f"line 3, column 'component_sku': {UNKNOWN_SKU} (value 'NOPE-COMPONENT')"],
        id="unknown-component-sku",
    ),
    pytest.param(
        HEADER + "NOPE-1,NOPE-2,1,,\n",
        [
            f"line 2, column 'parent_sku': {UNKNOWN_SKU} (value 'NOPE-1')",
            f"line 2, column 'component_sku': {UNKNOWN_SKU} (value 'NOPE-2')",
        ],
        id="unknown-parent-and-component",
    ),
    pytest.param(
        HEADER + "FAQ-KIT,COMP-A,0,,\n",
        ["line 2, column 'quantity': must be a positive integer (value '0')"],
        id="quantity-zero",
    ),
    pytest.param(
        HEADER + "FAQ-KIT,COMP-A,-1,,\n",
        ["line 2, column 'quantity': must be a positive integer (value '-1')"],
        id="quantity-negative",
    ),
    pytest.param(
        HEADER + "FAQ-KIT,COMP-A,abc,,\n",
        ["line 2, column 'quantity': must be an integer (value 'abc')"],
        id="quantity-abc",
    ),
    pytest.param(
        HEADER + "FAQ-KIT,COMP-A,1.5,,\n",
        ["line 2, column 'quantity': must be a whole number (value '1.5')"],
        id="quantity-fraction",
    ),
    pytest.param(
        HEADER + "FAQ-KIT,COMP-A,,,\n",
        ["line 2, column 'quantity': must not be empty (value '')"],
        id="quantity-empty",
    ),
    pytest.param(
        HEADER + ",COMP-A,1,,\n",
        ["line 2, column 'parent_sku': must not be empty (value '')"],
        id="parent-empty",
    ),
    pytest.param(
        HEADER + "FAQ-KIT,COMP-A,1,,\nFAQ-KIT,COMP-B,1,,\nFAQ-KIT,COMP-A,2,,\n",
        [
            "line 4, column 'component_sku': duplicate row: same parent, slot and component as "
            "line 2 (value 'COMP-A')"
        ],
        id="duplicate-row",
    ),
    pytest.param(
        HEADER + "CAMERA-STARTER-KIT,LENS-18-55,1,lens,\nCAMERA-STARTER-KIT,LENS-18-55,1,lens,5\n",
        [
            "line 3, column 'component_sku': duplicate row: same parent, slot and component as "
            "line 2 (value 'LENS-18-55')"
        ],
        id="duplicate-option-in-slot",
    ),
    pytest.param(
        HEADER + "FAQ-KIT,FAQ-KIT,1,,\n",
        ["line 2, column 'component_sku': BOM cycle: FAQ-KIT -> FAQ-KIT (value 'FAQ-KIT')"],
        id="self-reference",
    ),
    pytest.param(
        HEADER + "GIFT-KIT-COFFEE,BEANS-12OZ,1,,\nMUG-CERAMIC,SCOOP-WOOD,1,,\n",
        [
            "line 3, column 'parent_sku': is a simple SKU and cannot have components (make it a "
            "kit, assembly, package or bundle) (value 'MUG-CERAMIC')"
        ],
        id="component-of-simple-sku",
    ),
    pytest.param(
        HEADER + "CAMERA-STARTER-KIT,LENS-18-135,1,lens,abc\n",
        ["line 2, column 'price_offset': must be a decimal number (value 'abc')"],
        id="price-offset-not-a-number",
    ),
    pytest.param(
        HEADER + "FAQ-KIT,COMP-A,1\n",
        ["line 2: expected 5 fields like the header, found 3"],
        id="too-few-fields",
    ),
]


@pytest.mark.parametrize(("text", "problems"), ROW_ERRORS)
def test_import_components_rejects_bad_row_and_writes_nothing(
    examples: Store, text: str, problems: list[str]
) -> None:
    path, message = _reject(examples, text)
    assert message == rejected(path, *(f"{path} {p}" for p in problems))


HEADER_ERRORS = [
    pytest.param(
        "parent_sku,component_sku,quantiy\nFAQ-KIT,COMP-A,1\n",
        [
            "line 1: unknown column 'quantiy'; did you mean 'quantity'?",
            "line 1: missing column(s) 'quantity' (required: parent_sku, component_sku, quantity)",
        ],
        id="unknown-column-did-you-mean",
    ),
    pytest.param(
        "parent_sku,component_sku,quantity,slots\nFAQ-KIT,COMP-A,1,x\n",
        ["line 1: unknown column 'slots'; did you mean 'slot'?"],
        id="unknown-optional-column-did-you-mean",
    ),
    pytest.param(
        "parent_sku,component_sku\nFAQ-KIT,COMP-A\n",
        ["line 1: missing column(s) 'quantity' (required: parent_sku, component_sku, quantity)"],
        id="missing-quantity-column",
    ),
]


@pytest.mark.parametrize(("text", "problems"), HEADER_ERRORS)
def test_import_components_rejects_bad_header_and_writes_nothing(
    examples: Store, text: str, problems: list[str]
) -> None:
    path, message = _reject(examples, text)
    assert message == "\n".join(f"{path} {p}" for p in problems)


def test_import_components_rejects_empty_file(examples: Store) -> None:
    path, message = _reject(examples, "")
    assert message == f"{path}: empty file (expected a header row)"


CYCLES = [
    pytest.param(
        "parent_sku,component_sku,quantity\nK2,K1,1\n",
        "line 2, column 'component_sku': BOM cycle: K1 -> K2 -> K1 (line 2: K2 contains K1) "
        "(value 'K1')",
        id="two-long-across-existing-bom",
    ),
    pytest.param(
        "parent_sku,component_sku,quantity\nFAQ-KIT,COMP-A,1\nK3,K1,1\n",
        "line 3, column 'component_sku': BOM cycle: K1 -> K2 -> K3 -> K1 "
        "(line 3: K3 contains K1) (value 'K1')",
        id="three-long-across-existing-bom",
    ),
    pytest.param(
        "parent_sku,component_sku,quantity,slot\nK3,COMP-A,1,pick\nK3,K1,1,pick\n",
        "line 3, column 'component_sku': BOM cycle: K1 -> K2 -> K3 -> K1 "
        "(line 3: K3 contains K1) (value 'K1')",
        id="through-a-slot-option",
    ),
    pytest.param(
        "parent_sku,component_sku,quantity\nK4,K5,1\nK5,K4,2\n",
        "line 2, column 'component_sku': BOM cycle: K4 -> K5 -> K4 "
        "(line 2: K4 contains K5; line 3: K5 contains K4) (value 'K5')",
        id="two-long-within-file",
    ),
    pytest.param(
        "parent_sku,component_sku,quantity\nK3,K4,1\nK4,K5,1\nK5,K1,1\n",
        "line 2, column 'component_sku': BOM cycle: K1 -> K2 -> K3 -> K4 -> K5 -> K1 "
        "(line 2: K3 contains K4; line 3: K4 contains K5; line 4: K5 contains K1) (value 'K4')",
        id="five-long-mixed",
    ),
]


@pytest.mark.parametrize(("text", "cycle"), CYCLES)
def test_import_components_rejects_bom_cycle_naming_path_and_lines(
    examples: Store, text: str, cycle: str
) -> None:
    """The message names the first line of the cycle in the file, its column and value, then
    every line of the file that takes part in the cycle."""
    path = examples.csv("components.csv", text)
    before = examples.snapshot()
    with pytest.raises(CatalogError) as excinfo:
        import_components(examples.engine, path)
    assert str(excinfo.value) == f"{path} {cycle}; nothing was written"
    assert examples.snapshot() == before


def test_import_components_bom_cycle_names_column_and_value(examples: Store) -> None:
    path = examples.csv("components.csv", "parent_sku,component_sku,quantity\nK2,K1,1\n")
    before = examples.snapshot()
    with pytest.raises(CatalogError) as excinfo:
        import_components(examples.engine, path)
    assert str(excinfo.value) == (
        f"{path} line 2, column 'component_sku': BOM cycle: K1 -> K2 -> K1 "
        "(line 2: K2 contains K1) (value 'K1'); nothing was written"
    )
    assert examples.snapshot() == before


# -- happy paths ---------------------------------------------------------------------------------


def test_import_components_first_import_creates_every_row(config_file: Path) -> None:
    store = open_store(config_file)
    import_products(store.engine, EXAMPLES / "products.csv")
    summary = import_components(store.engine, EXAMPLES / "components.csv")
    assert summary == ImportSummary(str(EXAMPLES / "components.csv"), 17, 17, 0, 0)
    assert store.counts()["bom_lines"] == 17
    assert store.bom("GIFT-SET-COFFEE") == [
        (None, "BEANS-12OZ", 1, None),
        (None, "MUG-CERAMIC", 1, None),
        (None, "SCOOP-WOOD", 1, None),
    ]
    assert store.bom("FAQ-ASSEMBLY") == [(None, "COMP-A", 2, None), (None, "COMP-B", 1, None)]
    store.engine.dispose()


def test_import_components_slots_with_options_and_price_offsets(store: Store) -> None:
    assert store.bom("CAMERA-STARTER-KIT") == [
        ("camera", "DSLR-CAMERA-BLACK", 1, None),
        ("lens", "LENS-18-55", 1, None),
        ("lens", "LENS-18-135", 1, Decimal("100.00")),
        ("bag", "CAMERA-BAG", 1, None),
    ]
    # camera 12 - 2 locked = 10, lens 4 + 3 options = 7, bag 20: the lens slot limits.
    assert store.sellable("CAMERA-STARTER-KIT", "main") == 7
    assert store.sellable("CAMERA-STARTER-KIT", "fba-us") == 0


def test_import_components_replaces_parent_bom_and_keeps_others(store: Store) -> None:
    others = {p: store.bom(p) for p in ("GIFT-SET-COFFEE", "FAQ-KIT", "CAMERA-STARTER-KIT")}
    path = store.csv(
        "components.csv",
        "parent_sku,component_sku,quantity\nGIFT-KIT-COFFEE,BEANS-12OZ,2\n"
        "GIFT-KIT-COFFEE,MUG-CERAMIC,1\n",
    )
    summary = import_components(store.engine, path)
    assert summary.rows == 2
    assert store.bom("GIFT-KIT-COFFEE") == [
        (None, "BEANS-12OZ", 2, None),
        (None, "MUG-CERAMIC", 1, None),
    ]
    assert store.counts()["bom_lines"] == 16
    assert {p: store.bom(p) for p in others} == others
    # 50 beans / 2 = 25, 30 mugs: the beans are now the bottleneck.
    assert store.sellable("GIFT-KIT-COFFEE", "main") == 25


def test_import_components_slot_options_sum_and_quantities_divide(store: Store) -> None:
    import_products(store.engine, store.csv("p.csv", "sku,name,kind\nMORNING-BOX,Box,bundle\n"))
    path = store.csv(
        "components.csv",
        HEADER
        + "MORNING-BOX,BEANS-12OZ,1,,\n"
        + "MORNING-BOX,MUG-CERAMIC,2,extra,\n"
        + "MORNING-BOX,SCOOP-WOOD,5,extra,-1.50\n",
    )
    assert import_components(store.engine, path) == ImportSummary(str(path), 3, 3, 0, 0)
    assert store.bom("MORNING-BOX") == [
        (None, "BEANS-12OZ", 1, None),
        ("extra", "MUG-CERAMIC", 2, None),
        ("extra", "SCOOP-WOOD", 5, Decimal("-1.5")),
    ]
    # beans 50; extra slot: 30 // 2 + 100 // 5 = 35 -> 35.
    assert store.sellable("MORNING-BOX", "main") == 35


def test_import_components_nested_composites(store: Store) -> None:
    import_products(store.engine, store.csv("p.csv", "sku,name,kind\nMEGA-KIT,Mega,kit\n"))
    path = store.csv(
        "components.csv",
        "parent_sku,component_sku,quantity\nMEGA-KIT,GIFT-SET-COFFEE,1\nMEGA-KIT,FAQ-KIT,1\n",
    )
    import_components(store.engine, path)
    # GIFT-SET-COFFEE sells 40 (10 assembled + 30 from components), FAQ-KIT 30.
    assert store.sellable("MEGA-KIT", "main") == 30


def test_import_components_whole_number_spellings_are_accepted(store: Store) -> None:
    path = store.csv("components.csv", "parent_sku,component_sku,quantity\nFAQ-KIT,COMP-A,3.0\n")
    import_components(store.engine, path)
    assert store.bom("FAQ-KIT") == [(None, "COMP-A", 3, None)]


def test_import_components_same_component_in_two_slots_is_allowed(store: Store) -> None:
    path = store.csv(
        "components.csv",
        HEADER + "FAQ-KIT,COMP-A,1,first,\nFAQ-KIT,COMP-A,1,second,\n",
    )
    import_components(store.engine, path)
    assert store.bom("FAQ-KIT") == [("first", "COMP-A", 1, None), ("second", "COMP-A", 1, None)]
    # Shared: a kit takes one COMP-A for each slot, 2 per kit; 50 COMP-A make 25 kits.
    assert store.sellable("FAQ-KIT", "main") == 25


def test_import_components_rows_for_one_parent_need_not_be_adjacent(store: Store) -> None:
    path = store.csv(
        "components.csv",
        "parent_sku,component_sku,quantity\nFAQ-KIT,COMP-A,1\nFAQ-ASSEMBLY,COMP-B,1\n"
        "FAQ-KIT,COMP-B,3\n",
    )
    import_components(store.engine, path)
    assert store.bom("FAQ-KIT") == [(None, "COMP-A", 1, None), (None, "COMP-B", 3, None)]
    assert store.bom("FAQ-ASSEMBLY") == [(None, "COMP-B", 1, None)]


def test_import_components_identical_reimport_is_unchanged(store: Store) -> None:
    before = store.snapshot()["bom_lines"]
    summary = import_components(store.engine, EXAMPLES / "components.csv")
    assert len(store.snapshot()["bom_lines"]) == len(before)
    assert summary == ImportSummary(str(EXAMPLES / "components.csv"), 17, 0, 0, 17)


def test_import_components_rejects_quantity_out_of_range(examples: Store) -> None:
    path, message = _reject(
        examples, "parent_sku,component_sku,quantity\nFAQ-KIT,COMP-A,9999999999\n"
    )
    assert message == rejected(
        path,
        f"{path} line 2, column 'quantity': is out of range (at most 1,000,000,000) "
        "(value '9999999999')",
    )
