"""``import stock``: absolute counts, Adjustment movements for the differences only."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from sellable.errors import InputError
from sellable.imports import ImportSummary, import_components, import_products, import_stock
from sellable.store import schema
from sellable.store.sql import utcnow
from tests.imports import BACKENDS, EXAMPLES, Store, open_store, rejected, shared_store

HEADER = "sku,warehouse,on_hand,locked\n"
UNKNOWN_SKU = "unknown SKU (import it with 'sellable import products' first)"
UNKNOWN_WAREHOUSE = "unknown warehouse (known: main, fba-us)"


@pytest.fixture(scope="module", params=BACKENDS)
def examples(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Store]:
    """The examples on each backend, shared by the tests of rejected files (they write nothing)."""
    with shared_store(request, tmp_path_factory.mktemp("stock")) as opened:
        yield opened


@pytest.fixture
def store(config_file: Path) -> Iterator[Store]:
    opened = open_store(config_file)
    opened.load_examples()
    yield opened
    opened.engine.dispose()


# -- rejected rows --------------------------------------------------------------------------------

ROW_ERRORS = [
    pytest.param(
        HEADER + "MUG-CERAMIC,main,29,0\nNOPE,main,1,0\n",
        [f"line 3, column 'sku': {UNKNOWN_SKU} (value 'NOPE')"],
        id="unknown-sku",
    ),
    pytest.param(
        HEADER + "MUG-CERAMIC,main,29,0\nMUG-CERAMIC,nope,1,0\n",
        [f"line 3, column 'warehouse': {UNKNOWN_WAREHOUSE} (value 'nope')"],
        id="unknown-warehouse",
    ),
    pytest.param(
        HEADER + "MUG-CERAMIC,MAIN,1,0\n",
        [f"line 2, column 'warehouse': {UNKNOWN_WAREHOUSE} (value 'MAIN')"],
        id="warehouse-code-is-case-sensitive",
    ),
    pytest.param(
        HEADER + "MUG-CERAMIC,,1,0\n",
        [f"line 2, column 'warehouse': {UNKNOWN_WAREHOUSE} (value '')"],
        id="warehouse-empty",
    ),
    pytest.param(
        HEADER + ",main,1,0\n",
        ["line 2, column 'sku': must not be empty (value '')"],
        id="sku-empty",
    ),
    pytest.param(
        HEADER + "MUG-CERAMIC,main,-1,0\n",
        ["line 2, column 'on_hand': must be zero or a positive integer (value '-1')"],
        id="on-hand-negative",
    ),
    pytest.param(
        HEADER + "MUG-CERAMIC,main,abc,0\n",
        ["line 2, column 'on_hand': must be an integer (value 'abc')"],
        id="on-hand-abc",
    ),
    pytest.param(
        HEADER + "MUG-CERAMIC,main,1.5,0\n",
        ["line 2, column 'on_hand': must be a whole number (value '1.5')"],
        id="on-hand-fraction",
    ),
    pytest.param(
        HEADER + "MUG-CERAMIC,main,,0\n",
        ["line 2, column 'on_hand': must not be empty (value '')"],
        id="on-hand-empty",
    ),
    pytest.param(
        HEADER + "MUG-CERAMIC,main,5,-1\n",
        ["line 2, column 'locked': must be zero or a positive integer (value '-1')"],
        id="locked-negative",
    ),
    pytest.param(
        HEADER + "MUG-CERAMIC,main,5,x\n",
        ["line 2, column 'locked': must be an integer (value 'x')"],
        id="locked-not-a-number",
    ),
    pytest.param(
        HEADER + "DSLR-CAMERA-BLACK,main,2,3\n",
        ["line 2, column 'locked': cannot lock more than is on hand (2) (value '3')"],
        id="locked-more-than-on-hand",
    ),
    pytest.param(
        HEADER + "MUG-CERAMIC,main,29,0\nBEANS-12OZ,main,50,0\nMUG-CERAMIC,main,28,0\n",
        [
            "line 4, column 'sku': duplicate row: same SKU and warehouse as line 2 "
            "(value 'MUG-CERAMIC')"
        ],
        id="duplicate-row",
    ),
    pytest.param(
        HEADER + "MUG-CERAMIC,main,29\n",
        ["line 2: expected 4 fields like the header, found 3"],
        id="too-few-fields",
    ),
    pytest.param(
        HEADER + "MUG-CERAMIC,main,-1,0\nMUG-CERAMIC,nope,1,0\nNOPE,fba-us,1,\n",
        [
            "line 2, column 'on_hand': must be zero or a positive integer (value '-1')",
            f"line 3, column 'warehouse': {UNKNOWN_WAREHOUSE} (value 'nope')",
            f"line 4, column 'sku': {UNKNOWN_SKU} (value 'NOPE')",
        ],
        id="every-problem-reported-at-once",
    ),
]


@pytest.mark.parametrize(("text", "problems"), ROW_ERRORS)
def test_import_stock_rejects_bad_row_and_writes_nothing(
    examples: Store, text: str, problems: list[str]
) -> None:
    path = examples.csv("stock.csv", text)
    before = examples.snapshot()
    counts = examples.counts()
    with pytest.raises(InputError) as excinfo:
        import_stock(examples.engine, examples.settings, path)
    assert str(excinfo.value) == rejected(path, *(f"{path} {p}" for p in problems))
    assert examples.counts() == counts
    assert examples.snapshot() == before


HEADER_ERRORS = [
    pytest.param(
        "sku,warehouse,on_hnd\nMUG-CERAMIC,main,1\n",
        [
            "line 1: unknown column 'on_hnd'; did you mean 'on_hand'?",
            "line 1: missing column(s) 'on_hand' (required: sku, warehouse, on_hand)",
        ],
        id="unknown-column-did-you-mean",
    ),
    pytest.param(
        "sku,warehouse,on_hand,lockd\nMUG-CERAMIC,main,1,0\n",
        ["line 1: unknown column 'lockd'; did you mean 'locked'?"],
        id="unknown-optional-column-did-you-mean",
    ),
    pytest.param(
        "sku,on_hand\nMUG-CERAMIC,1\n",
        ["line 1: missing column(s) 'warehouse' (required: sku, warehouse, on_hand)"],
        id="missing-warehouse-column",
    ),
]


@pytest.mark.parametrize(("text", "problems"), HEADER_ERRORS)
def test_import_stock_rejects_bad_header_and_writes_nothing(
    examples: Store, text: str, problems: list[str]
) -> None:
    path = examples.csv("stock.csv", text)
    before = examples.snapshot()
    with pytest.raises(InputError) as excinfo:
        import_stock(examples.engine, examples.settings, path)
    assert str(excinfo.value) == "\n".join(f"{path} {p}" for p in problems)
    assert examples.snapshot() == before


def test_import_stock_rejects_empty_file(examples: Store) -> None:
    path = examples.csv("stock.csv", "")
    before = examples.snapshot()
    with pytest.raises(InputError) as excinfo:
        import_stock(examples.engine, examples.settings, path)
    assert str(excinfo.value) == f"{path}: empty file (expected a header row)"
    assert examples.snapshot() == before


# -- happy paths ---------------------------------------------------------------------------------


def test_import_stock_first_count_writes_one_adjustment_per_row(config_file: Path) -> None:
    store = open_store(config_file)
    import_products(store.engine, EXAMPLES / "products.csv")
    import_components(store.engine, EXAMPLES / "components.csv")
    summary = import_stock(store.engine, store.settings, EXAMPLES / "stock.csv")
    assert summary == ImportSummary(str(EXAMPLES / "stock.csv"), 14, 14, 0, 0, movements=14)
    movements = store.movements()
    assert len(movements) == 14
    assert movements[0] == (
        "BEANS-12OZ",
        "main",
        "Adjustment",
        50,
        50,
        0,
        0,
        "stock count stock.csv",
    )
    assert ("DSLR-CAMERA-BLACK", "main", "Adjustment", 12, 12, 2, 0, "stock count stock.csv") in (
        movements
    )
    assert store.stock_row("ALPHABET-BUNDLE", "fba-us") == (8, 0, 0)
    assert store.ledger_mismatches() == []
    store.engine.dispose()


def test_import_stock_recount_writes_only_the_differences(store: Store) -> None:
    path = store.csv(
        "recount.csv",
        HEADER
        + "MUG-CERAMIC,main,29,0\n"  # on hand -1
        + "BEANS-12OZ,main,50,0\n"  # unchanged
        + "COMP-A,fba-us,5,1\n"  # new row
        + "DSLR-CAMERA-BLACK,main,12,0\n",  # unlock 2
    )
    counts = store.counts()
    summary = import_stock(store.engine, store.settings, path)
    assert summary == ImportSummary(str(path), 4, 1, 2, 1, movements=3)
    assert store.movements()[counts["movements"] :] == [
        ("MUG-CERAMIC", "main", "Adjustment", -1, -1, 0, 0, "stock count recount.csv"),
        ("COMP-A", "fba-us", "Adjustment", 5, 5, 1, 0, "stock count recount.csv"),
        ("DSLR-CAMERA-BLACK", "main", "Adjustment", 0, 0, -2, 0, "stock count recount.csv"),
    ]
    assert store.stock_row("MUG-CERAMIC", "main") == (29, 0, 0)
    assert store.stock_row("COMP-A", "fba-us") == (5, 1, 0)
    assert store.stock_row("DSLR-CAMERA-BLACK", "main") == (12, 0, 0)
    assert store.ledger_mismatches() == []
    assert store.sellable("GIFT-SET-COFFEE", "main") == 39


def test_import_stock_identical_recount_writes_nothing(store: Store) -> None:
    before = store.snapshot()
    summary = import_stock(store.engine, store.settings, EXAMPLES / "stock.csv")
    assert summary == ImportSummary(str(EXAMPLES / "stock.csv"), 14, 0, 0, 14, movements=0)
    assert store.snapshot() == before


def test_import_stock_without_locked_column_keeps_locked(store: Store) -> None:
    path = store.csv("recount.csv", "sku,warehouse,on_hand\nDSLR-CAMERA-BLACK,main,15\n")
    summary = import_stock(store.engine, store.settings, path)
    assert summary == ImportSummary(str(path), 1, 0, 1, 0, movements=1)
    assert store.stock_row("DSLR-CAMERA-BLACK", "main") == (15, 2, 0)
    assert store.movements()[-1] == (
        "DSLR-CAMERA-BLACK",
        "main",
        "Adjustment",
        3,
        3,
        0,
        0,
        "stock count recount.csv",
    )
    assert store.ledger_mismatches() == []


def test_import_stock_empty_locked_value_keeps_locked(store: Store) -> None:
    path = store.csv("recount.csv", HEADER + "DSLR-CAMERA-BLACK,main,15,\n")
    import_stock(store.engine, store.settings, path)
    assert store.stock_row("DSLR-CAMERA-BLACK", "main") == (15, 2, 0)


def _allocate(store: Store, sku: str, warehouse: str, quantity: int) -> None:
    """What an order import does: an Allocation movement and the stock row's allocated."""
    s, k, w = schema.stock.c, schema.skus.c, schema.warehouses.c
    with store.engine.begin() as connection:
        sku_id = connection.execute(select(k.id).where(k.sku == sku)).scalar_one()
        warehouse_id = connection.execute(select(w.id).where(w.code == warehouse)).scalar_one()
        connection.execute(
            schema.movements.insert().values(
                sku_id=sku_id,
                warehouse_id=warehouse_id,
                type="Allocation",
                quantity=quantity,
                on_hand_change=0,
                locked_change=0,
                allocated_change=quantity,
                reference="order 1",
                at=utcnow(),
            )
        )
        connection.execute(
            schema.stock.update()
            .where(s.sku_id == sku_id, s.warehouse_id == warehouse_id)
            .values(allocated=s.allocated + quantity)
        )


def test_import_stock_recount_keeps_allocated(store: Store) -> None:
    _allocate(store, "MUG-CERAMIC", "main", 4)
    assert store.ledger_mismatches() == []
    path = store.csv("recount.csv", HEADER + "MUG-CERAMIC,main,25,0\n")
    summary = import_stock(store.engine, store.settings, path)
    assert summary == ImportSummary(str(path), 1, 0, 1, 0, movements=1)
    assert store.stock_row("MUG-CERAMIC", "main") == (25, 0, 4)
    assert store.movements()[-1] == (
        "MUG-CERAMIC",
        "main",
        "Adjustment",
        -5,
        -5,
        0,
        0,
        "stock count recount.csv",
    )
    assert store.ledger_mismatches() == []
    assert store.sellable("MUG-CERAMIC", "main") == 21


def test_import_stock_count_of_zero(store: Store) -> None:
    path = store.csv(
        "recount.csv",
        "sku,warehouse,on_hand\nLENS-18-55,main,0\nLENS-18-55,fba-us,0\n",
    )
    summary = import_stock(store.engine, store.settings, path)
    # main drops from 4 to 0 (one movement); fba-us gets a zero row without a movement.
    assert summary == ImportSummary(str(path), 2, 1, 1, 0, movements=1)
    assert store.stock_row("LENS-18-55", "main") == (0, 0, 0)
    assert store.stock_row("LENS-18-55", "fba-us") == (0, 0, 0)
    assert store.ledger_mismatches() == []
    assert store.sellable("CAMERA-STARTER-KIT", "main") == 3


def test_import_stock_same_sku_in_two_warehouses_and_whole_number_spelling(store: Store) -> None:
    path = store.csv("recount.csv", HEADER + "GHI,main,70.0,0\nGHI,fba-us,3,1\n")
    assert import_stock(store.engine, store.settings, path) == ImportSummary(
        str(path), 2, 1, 1, 0, movements=2
    )
    assert store.stock_row("GHI", "main") == (70, 0, 0)
    assert store.stock_row("GHI", "fba-us") == (3, 1, 0)


# -- counts the stored quantities cannot take: rejected on their line, nothing written ---------


def test_import_stock_rejects_count_below_stored_locked(store: Store) -> None:
    """Without a locked column the stored locked quantity (DSLR main: 2) is kept, so a count
    below it would leave more locked than on hand: the line is rejected."""
    path = store.csv("recount.csv", "sku,warehouse,on_hand\nDSLR-CAMERA-BLACK,main,1\n")
    before = store.snapshot()
    with pytest.raises(InputError) as excinfo:
        import_stock(store.engine, store.settings, path)
    assert str(excinfo.value) == rejected(
        path,
        f"{path} line 2, column 'on_hand': is below the 2 unit(s) already locked; give the "
        "locked column too (value '1')",
    )
    assert store.snapshot() == before


def test_import_stock_rejects_on_hand_out_of_range(store: Store) -> None:
    path = store.csv("recount.csv", HEADER + "MUG-CERAMIC,main,99999999999999999999,0\n")
    before = store.snapshot()
    with pytest.raises(InputError) as excinfo:
        import_stock(store.engine, store.settings, path)
    assert str(excinfo.value) == rejected(
        path,
        f"{path} line 2, column 'on_hand': is out of range (at most 1,000,000,000) "
        "(value '99999999999999999999')",
    )
    assert store.snapshot() == before
