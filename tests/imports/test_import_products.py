"""``import products``: upserts SKUs; a bad row rejects the whole file and writes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from sellable.errors import InputError
from sellable.imports import ImportSummary, import_products
from tests.imports import BACKENDS, EXAMPLES, Store, open_store, rejected, shared_store

HEADER = "sku,name,kind,allow_backorder,price\n"
KINDS = "simple, kit, assembly, package, bundle"


@pytest.fixture(scope="module", params=BACKENDS)
def examples(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Store]:
    """The examples on each backend, shared by the tests of rejected files (they write nothing)."""
    with shared_store(request, tmp_path_factory.mktemp("products")) as opened:
        yield opened


@pytest.fixture
def store(config_file: Path) -> Iterator[Store]:
    """The example catalog, BOMs and stock, loaded."""
    opened = open_store(config_file)
    opened.load_examples()
    yield opened
    opened.engine.dispose()


@pytest.fixture
def empty_store(config_file: Path) -> Iterator[Store]:
    opened = open_store(config_file)
    yield opened
    opened.engine.dispose()


# -- rejected rows: exact message (file, line, column, value) and nothing written ---------------

ROW_ERRORS = [
    pytest.param(
        HEADER + "NEW-1,New one,simple,false,1.00\nNEW-2,New two,kitt,false,\n",
        ["line 3, column 'kind': unknown kind (expected one of: " + KINDS + ") (value 'kitt')"],
        id="bad-kind",
    ),
    pytest.param(
        HEADER + "NEW-1,New,gadget,,\n",
        ["line 2, column 'kind': unknown kind (expected one of: " + KINDS + ") (value 'gadget')"],
        id="bad-kind-unrelated-word",
    ),
    pytest.param(
        HEADER + "NEW-1,New,,,\n",
        ["line 2, column 'kind': unknown kind (expected one of: " + KINDS + ") (value '')"],
        id="empty-kind",
    ),
    pytest.param(
        HEADER + "NEW-1,First,simple,,\nNEW-2,Other,simple,,\nNEW-1,Again,kit,,\n",
        ["line 4, column 'sku': duplicate row: SKU already given on line 2 (value 'NEW-1')"],
        id="duplicate-sku",
    ),
    pytest.param(
        HEADER + "MUG-CERAMIC,Ceramic Mug,simple,false,9.00\n"
        "MUG-CERAMIC,Ceramic Mug,simple,false,9.00\n",
        ["line 3, column 'sku': duplicate row: SKU already given on line 2 (value 'MUG-CERAMIC')"],
        id="duplicate-identical-row",
    ),
    pytest.param(
        HEADER + ",No code,simple,,\n",
        ["line 2, column 'sku': must not be empty (value '')"],
        id="empty-sku",
    ),
    pytest.param(
        HEADER + "NEW-1,New,simple,maybe,\n",
        ["line 2, column 'allow_backorder': must be true or false (value 'maybe')"],
        id="bad-allow-backorder",
    ),
    pytest.param(
        HEADER + "NEW-1,New,simple,,abc\n",
        ["line 2, column 'price': must be a decimal number (value 'abc')"],
        id="price-not-a-number",
    ),
    pytest.param(
        HEADER + 'NEW-1,New,simple,,"1,50"\n',
        ["line 2, column 'price': must be a decimal number (value '1,50')"],
        id="price-decimal-comma",
    ),
    pytest.param(
        HEADER + "NEW-1,New,simple,,-1\n",
        ["line 2, column 'price': must not be negative (value '-1')"],
        id="price-negative",
    ),
    pytest.param(
        HEADER + "NEW-1,New,simple,,NaN\n",
        ["line 2, column 'price': must be a finite decimal number (value 'NaN')"],
        id="price-nan",
    ),
    pytest.param(
        HEADER + "NEW-1,New,simple,,Infinity\n",
        ["line 2, column 'price': must be a finite decimal number (value 'Infinity')"],
        id="price-infinity",
    ),
    pytest.param(
        HEADER + "NEW-1,New,simple,false\n",
        ["line 2: expected 5 fields like the header, found 4"],
        id="too-few-fields",
    ),
    pytest.param(
        HEADER + "NEW-1,New,simple,false,1,extra\n",
        ["line 2: expected 5 fields like the header, found 6"],
        id="too-many-fields",
    ),
    pytest.param(
        HEADER + "NEW-1,New,simple,,\nGIFT-SET-COFFEE,Gift set,simple,,\n",
        [
            "line 3, column 'kind': SKU 'GIFT-SET-COFFEE' has components and cannot become "
            "simple (a component of a simple SKU); remove its components first (value 'simple')"
        ],
        id="composite-with-components-to-simple",
    ),
    pytest.param(
        HEADER + "NEW-1,New,kitt,maybe,-5\nNEW-1,Again,simple,,\n,Blank,simple,,\n",
        [
            "line 2, column 'kind': unknown kind (expected one of: " + KINDS + ") (value 'kitt')",
            "line 2, column 'allow_backorder': must be true or false (value 'maybe')",
            "line 2, column 'price': must not be negative (value '-5')",
            "line 4, column 'sku': must not be empty (value '')",
        ],
        id="every-problem-reported-at-once",
    ),
]


@pytest.mark.parametrize(("text", "problems"), ROW_ERRORS)
def test_import_products_rejects_bad_row_and_writes_nothing(
    examples: Store, text: str, problems: list[str]
) -> None:
    path = examples.csv("products.csv", text)
    before = examples.snapshot()
    counts = examples.counts()
    with pytest.raises(InputError) as excinfo:
        import_products(examples.engine, path)
    assert str(excinfo.value) == rejected(path, *(f"{path} {p}" for p in problems))
    assert examples.counts() == counts
    assert examples.snapshot() == before


HEADER_ERRORS = [
    pytest.param(
        "sku,name,kind,prcie\nNEW-1,New,simple,1\n",
        ["line 1: unknown column 'prcie'; did you mean 'price'?"],
        id="unknown-column-did-you-mean",
    ),
    pytest.param(
        "sku,name,kind,allow_backorders\nNEW-1,New,simple,true\n",
        ["line 1: unknown column 'allow_backorders'; did you mean 'allow_backorder'?"],
        id="unknown-column-plural",
    ),
    pytest.param(
        "sku,name\nNEW-1,New\n",
        ["line 1: missing column(s) 'kind' (required: sku, name, kind)"],
        id="missing-kind-column",
    ),
    pytest.param(
        "sku,nme,kind\nNEW-1,New,simple\n",
        [
            "line 1: unknown column 'nme'; did you mean 'name'?",
            "line 1: missing column(s) 'name' (required: sku, name, kind)",
        ],
        id="misspelt-required-column",
    ),
    pytest.param(
        "price\n1\n",
        ["line 1: missing column(s) 'sku', 'name', 'kind' (required: sku, name, kind)"],
        id="missing-every-required-column",
    ),
    pytest.param(
        "sku,name,kind,price,price\nNEW-1,New,simple,1,2\n",
        ["line 1: column 'price' appears twice"],
        id="duplicate-column",
    ),
]


@pytest.mark.parametrize(("text", "problems"), HEADER_ERRORS)
def test_import_products_rejects_bad_header_and_writes_nothing(
    examples: Store, text: str, problems: list[str]
) -> None:
    path = examples.csv("products.csv", text)
    before = examples.snapshot()
    with pytest.raises(InputError) as excinfo:
        import_products(examples.engine, path)
    assert str(excinfo.value) == "\n".join(f"{path} {p}" for p in problems)
    assert examples.snapshot() == before


def test_import_products_unknown_column_without_close_match_lists_known(examples: Store) -> None:
    path = examples.csv("products.csv", "sku,name,kind,colour\nNEW-1,New,simple,red\n")
    before = examples.snapshot()
    with pytest.raises(InputError) as excinfo:
        import_products(examples.engine, path)
    message = str(excinfo.value)
    assert message.startswith(f"{path} line 1: unknown column 'colour' (known: sku, name, kind, ")
    assert "\n" not in message
    for column in ("allow_backorder", "price"):
        assert column in message
    assert examples.snapshot() == before


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("", "empty file (expected a header row)", id="zero-bytes"),
        pytest.param("\ufeff", "empty file (expected a header row)", id="only-a-bom"),
    ],
)
def test_import_products_rejects_empty_file(examples: Store, text: str, message: str) -> None:
    path = examples.csv("products.csv", text)
    before = examples.snapshot()
    with pytest.raises(InputError) as excinfo:
        import_products(examples.engine, path)
    assert str(excinfo.value) == f"{path}: {message}"
    assert examples.snapshot() == before


def test_import_products_missing_file_is_input_error(examples: Store) -> None:
    path = examples.dir / "nope.csv"
    with pytest.raises(InputError) as excinfo:
        import_products(examples.engine, path)
    assert str(excinfo.value) == f"{path}: file not found"


def test_import_products_reports_at_most_50_problems(examples: Store) -> None:
    rows = "".join(f"BAD-{i},Bad,kitt,,\n" for i in range(60))
    path = examples.csv("products.csv", HEADER + rows)
    before = examples.snapshot()
    with pytest.raises(InputError) as excinfo:
        import_products(examples.engine, path)
    lines = str(excinfo.value).splitlines()
    assert len(lines) == 52
    assert lines[0] == (
        f"{path} line 2, column 'kind': unknown kind (expected one of: {KINDS}) (value 'kitt')"
    )
    assert lines[49].startswith(f"{path} line 51, column 'kind'")
    assert lines[50:] == [
        "... and 10 more",
        f"{path}: rejected (60 problem(s)); nothing was written",
    ]
    assert examples.snapshot() == before


# -- happy paths ---------------------------------------------------------------------------------


def test_import_products_creates_every_example_sku(empty_store: Store) -> None:
    summary = import_products(empty_store.engine, EXAMPLES / "products.csv")
    assert summary == ImportSummary(str(EXAMPLES / "products.csv"), 18, 18, 0, 0)
    rows = empty_store.sku_rows()
    assert len(rows) == 18
    assert rows["GIFT-SET-COFFEE"] == (
        "Coffee Lover's Gift Set (assembled)",
        "assembly",
        False,
        Decimal("29.00"),
    )
    assert rows["LENS-18-55"] == ("Standard lens 18-55mm", "simple", False, None)
    assert rows["CAMERA-STARTER-KIT"][1:] == ("package", False, Decimal("999.00"))


def test_import_products_reimport_is_all_unchanged(store: Store) -> None:
    before = store.snapshot()
    summary = import_products(store.engine, EXAMPLES / "products.csv")
    assert summary == ImportSummary(str(EXAMPLES / "products.csv"), 18, 0, 0, 18)
    assert store.snapshot() == before


def test_import_products_upsert_updates_name_and_kind(store: Store) -> None:
    path = store.csv(
        "products.csv",
        HEADER
        + "MUG-CERAMIC,Ceramic Mug (white),simple,false,9.00\n"  # name changes
        + "GIFT-KIT-COFFEE,Coffee Lover's Gift Kit (virtual kit),assembly,false,27.00\n"  # kind
        + "SCOOP-WOOD,Wooden Scoop,simple,false,3.00\n"  # unchanged
        + "LENS-18-55,Standard lens 18-55mm,simple,true,\n"  # backorder changes
        + "NEW-PLATE,Plate,simple,false,4.50\n",  # created
    )
    counts = store.counts()
    summary = import_products(store.engine, path)
    assert summary == ImportSummary(str(path), 5, 1, 3, 1)
    rows = store.sku_rows()
    assert rows["MUG-CERAMIC"] == ("Ceramic Mug (white)", "simple", False, Decimal("9"))
    assert rows["GIFT-KIT-COFFEE"][1] == "assembly"
    assert rows["LENS-18-55"] == ("Standard lens 18-55mm", "simple", True, None)
    assert rows["NEW-PLATE"] == ("Plate", "simple", False, Decimal("4.5"))
    assert store.counts() == {**counts, "skus": counts["skus"] + 1}
    # The kind change keeps the BOM: the kit is now an assembly of the same components.
    assert [component for _, component, _, _ in store.bom("GIFT-KIT-COFFEE")] == [
        "BEANS-12OZ",
        "MUG-CERAMIC",
        "SCOOP-WOOD",
    ]


def test_import_products_columns_left_out_keep_stored_values(store: Store) -> None:
    path = store.csv("products.csv", "sku,name,kind\nBEANS-12OZ,Beans (12oz),simple\n")
    summary = import_products(store.engine, path)
    assert summary == ImportSummary(str(path), 1, 0, 1, 0)
    assert store.sku_rows()["BEANS-12OZ"] == ("Beans (12oz)", "simple", False, Decimal("14"))


def test_import_products_kind_change_between_composites_is_allowed(store: Store) -> None:
    path = store.csv("products.csv", "sku,name,kind\nALPHABET-BUNDLE,Alphabet Bundle,KIT\n")
    assert import_products(store.engine, path) == ImportSummary(str(path), 1, 0, 1, 0)
    assert store.sku_rows()["ALPHABET-BUNDLE"][1] == "kit"
    assert store.sellable("ALPHABET-BUNDLE", "main") == 50


def test_import_products_simple_becomes_composite(store: Store) -> None:
    path = store.csv("products.csv", "sku,name,kind\nCOMP-A,FAQ component A,bundle\n")
    assert import_products(store.engine, path) == ImportSummary(str(path), 1, 0, 1, 0)
    assert store.sku_rows()["COMP-A"][1] == "bundle"


BACKORDER_VALUES = {
    "true": True,
    "TRUE": True,
    "yes": True,
    "y": True,
    "1": True,
    "false": False,
    "No": False,
    "n": False,
    "0": False,
}


def test_import_products_allow_backorder_values(empty_store: Store) -> None:
    rows = "".join(f"X-{i},X,simple,{value}\n" for i, value in enumerate(BACKORDER_VALUES))
    path = empty_store.csv("products.csv", "sku,name,kind,allow_backorder\n" + rows)
    import_products(empty_store.engine, path)
    stored = empty_store.sku_rows()
    assert {value: stored[f"X-{i}"][2] for i, value in enumerate(BACKORDER_VALUES)} == (
        BACKORDER_VALUES
    )


PRICES = {
    "cents": ("19.99", Decimal("19.99")),
    "not-binary-exact": ("0.1", Decimal("0.1")),
    "smallest-unit": ("0.0001", Decimal("0.0001")),
    "fourteen-digits": ("1234567890.1234", Decimal("1234567890.1234")),
    "trailing-zeros": ("29.00", Decimal("29")),
    "zero": ("0", Decimal("0")),
    "empty": ("", None),
}


def test_import_products_decimal_price_round_trips_and_reimport_is_unchanged(
    empty_store: Store,
) -> None:
    rows = "".join(f"{name},{name},simple,{price}\n" for name, (price, _) in PRICES.items())
    path = empty_store.csv("products.csv", "sku,name,kind,price\n" + rows)
    assert import_products(empty_store.engine, path) == ImportSummary(str(path), 7, 7, 0, 0)
    stored = {sku: row[3] for sku, row in empty_store.sku_rows().items()}
    assert stored == {name: expected for name, (_, expected) in PRICES.items()}
    assert all(isinstance(v, Decimal) for k, v in stored.items() if k != "empty")
    assert import_products(empty_store.engine, path) == ImportSummary(str(path), 7, 0, 0, 7)


def test_import_products_price_change_is_an_update(store: Store) -> None:
    path = store.csv("products.csv", "sku,name,kind,price\nSCOOP-WOOD,Wooden Scoop,simple,3.01\n")
    assert import_products(store.engine, path) == ImportSummary(str(path), 1, 0, 1, 0)
    assert store.sku_rows()["SCOOP-WOOD"][3] == Decimal("3.01")


def test_import_products_tolerates_bom_blank_lines_and_spaces(empty_store: Store) -> None:
    path = empty_store.csv(
        "products.csv",
        "\ufeff sku , name , kind \n\n  X-1 ,  Spaced name , Simple \n\n",
    )
    assert import_products(empty_store.engine, path) == ImportSummary(str(path), 1, 1, 0, 0)
    assert empty_store.sku_rows() == {"X-1": ("Spaced name", "simple", False, None)}


def test_import_products_header_only_file_imports_nothing(store: Store) -> None:
    path = store.csv("products.csv", HEADER)
    before = store.snapshot()
    assert import_products(store.engine, path) == ImportSummary(str(path), 0, 0, 0, 0)
    assert store.snapshot() == before


# -- values beyond what the database columns hold: rejected as input, nothing written -----------


def test_import_products_rejects_price_out_of_range(store: Store) -> None:
    path = store.csv("products.csv", "sku,name,kind,price\nBIG,Big,simple,99999999999\n")
    before = store.snapshot()
    with pytest.raises(InputError) as excinfo:
        import_products(store.engine, path)
    assert str(excinfo.value) == rejected(
        path,
        f"{path} line 2, column 'price': is out of range (at most 9999999999) "
        "(value '99999999999')",
    )
    assert store.snapshot() == before


def test_import_products_rejects_sku_too_long(store: Store) -> None:
    long_sku = "A" * 256
    path = store.csv("products.csv", f"sku,name,kind\n{long_sku},Long,simple\n")
    before = store.snapshot()
    with pytest.raises(InputError) as excinfo:
        import_products(store.engine, path)
    # The value shown is cut to its first 40 characters.
    assert str(excinfo.value) == rejected(
        path,
        f"{path} line 2, column 'sku': is 256 characters long (at most 255) "
        f"(value '{'A' * 40}\u2026')",
    )
    assert store.snapshot() == before


def test_import_products_rejects_price_with_five_decimals(empty_store: Store) -> None:
    """Stored with 4 decimal places, a 5th would be rounded away (and every re-import would
    report the row 'updated'): the file is rejected instead."""
    path = empty_store.csv("products.csv", "sku,name,kind,price\nX,X,simple,1.23456\n")
    before = empty_store.snapshot()
    with pytest.raises(InputError) as excinfo:
        import_products(empty_store.engine, path)
    assert str(excinfo.value) == rejected(
        path, f"{path} line 2, column 'price': has more than 4 decimal places (value '1.23456')"
    )
    assert empty_store.snapshot() == before
