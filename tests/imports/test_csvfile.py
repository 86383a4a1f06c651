"""Reading a CSV file: its encoding. A file that is not UTF-8 is named by line and byte, with
what to do; a UTF-8 byte order mark (as spreadsheets write) is accepted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sellable.errors import InputError
from sellable.imports import import_products
from sellable.imports.csvfile import CsvFile
from tests.imports import BACKENDS, Store, shared_store

HEADER = "sku,name,kind\n"


def _rows(path: Path) -> list[tuple[int, dict[str, str]]]:
    return list(CsvFile(path, ("sku", "name", "kind")))


def _latin1_file(path: Path, good_rows: int) -> Path:
    """``good_rows`` ASCII rows, then one named in Latin-1 ("Café" with byte 0xE9)."""
    body = "".join(f"SKU-{i},Plain name {i},simple\n" for i in range(good_rows))
    path.write_bytes(HEADER.encode() + body.encode() + "CAFE,Café,simple\n".encode("latin-1"))
    return path


@pytest.mark.parametrize("good_rows", [0, 3, 2000], ids=["second-line", "early", "far-down"])
def test_csvfile_not_utf8_names_the_line_and_byte(tmp_path: Path, good_rows: int) -> None:
    path = _latin1_file(tmp_path / "products.csv", good_rows)
    offset = path.read_bytes().index(b"\xe9")
    with pytest.raises(InputError) as excinfo:
        _rows(path)
    assert str(excinfo.value) == (
        f"{path} line {good_rows + 2}: not UTF-8 text: byte 0xE9 at byte offset {offset} of the "
        "file (column 9 of the line) cannot be read; save the file as UTF-8 (in a spreadsheet: "
        "'CSV UTF-8') and import it again"
    )


def test_csvfile_not_utf8_in_the_header(tmp_path: Path) -> None:
    path = tmp_path / "products.csv"
    path.write_bytes("sku,name,kind,désignation\n".encode("cp1252"))
    with pytest.raises(InputError, match=r"line 1: not UTF-8 text: byte 0xE9 at byte offset 15 "):
        _rows(path)


def test_csvfile_utf8_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "products.csv"
    path.write_bytes(b"\xef\xbb\xbf" + (HEADER + "CAFE,Café,simple\n").encode())
    assert _rows(path) == [(2, {"sku": "CAFE", "name": "Café", "kind": "simple"})]


@pytest.fixture(scope="module", params=BACKENDS)
def examples(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Store]:
    with shared_store(request, tmp_path_factory.mktemp("encoding")) as opened:
        yield opened


def test_import_not_utf8_writes_nothing(examples: Store) -> None:
    path = _latin1_file(examples.dir / "latin1.csv", 10)
    before = examples.snapshot()
    with pytest.raises(InputError, match=r"latin1\.csv line 12: not UTF-8 text"):
        import_products(examples.engine, path)
    assert examples.snapshot() == before
