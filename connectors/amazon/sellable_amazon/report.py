"""Reading a Reports API document piece by piece, in bounded memory.

A report document (Reports API 2021-06-30, ``getReportDocument``) sits behind a presigned
URL, optionally gzipped (``compressionAlgorithm: GZIP``). :class:`DocumentReader` asks for
it in HTTP Range requests of :data:`RANGE_BYTES`, inflates what it got with a streaming
decompressor limited to :data:`TEXT_BYTES` of text at a time, and hands out the rows of the
tab-separated text; so at any moment it holds one range of the document, one piece of text
and the unfinished last line, whatever the document's size.

The listings report ``GET_MERCHANT_LISTINGS_ALL_DATA`` is a tab-separated flat file with a
header line (https://developer-docs.amazon.com/sp-api/docs/report-type-values-inventory;
columns listed in "Inventory reports attributes"): item-name, item-description, listing-id,
seller-sku, price, quantity, open-date, image-url, item-is-marketplace, product-id-type,
zshop-shipping-fee, item-note, item-condition, zshop-category1, zshop-browse-path,
zshop-storefront-feature, asin1, asin2, asin3, will-ship-internationally,
expedited-shipping, zshop-boldface, product-id, bid-for-featured-placement, add-delete,
pending-quantity, fulfillment-channel, merchant-shipping-group, status. Values are not
quoted. Columns are found by name, so that added or reordered ones change nothing.
"""

from __future__ import annotations

import codecs
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from sellable_amazon.client import DocumentPiece

#: Bytes of the document asked for in one Range request.
RANGE_BYTES = 1 << 20
#: Text inflated at a time: a gzipped report inflates about tenfold, so a range is
#: inflated in several steps rather than all at once.
TEXT_BYTES = 1 << 20

Fetch = Callable[[int, int], DocumentPiece]


class DocumentError(ValueError):
    """The document is not what its report said (not gzip, not text, no header)."""


@dataclass(slots=True)
class Row:
    """One line of a tab-separated report: its cells, read by lower-case column name."""

    line: int  # 1 is the header
    cells: list[str]
    columns: dict[str, int]  # name -> position, shared by every row of the document

    def get(self, column: str) -> str:
        at = self.columns.get(column)
        return self.cells[at].strip() if at is not None and at < len(self.cells) else ""


class TsvLines:
    """Lines of a tab-separated text given in pieces of bytes, as :class:`Row`s; the first
    line names the columns."""

    def __init__(self, charset: str) -> None:
        try:
            decoder = codecs.getincrementaldecoder(charset)
        except LookupError as err:
            raise DocumentError(f"unknown charset {charset!r}") from err
        # A character the charset cannot decode is replaced rather than failing the whole
        # refresh; SKUs are plain ASCII in practice (Amazon's own advice for SKUs).
        self._decode = decoder(errors="replace").decode
        self._rest = ""
        self._line = 0
        self.header: list[str] | None = None
        self._columns: dict[str, int] = {}

    def feed(self, data: bytes, final: bool = False) -> list[Row]:
        text = self._rest + self._decode(data, final)
        lines = text.split("\n")
        self._rest = "" if final else lines.pop()
        rows: list[Row] = []
        for raw in lines:
            self._line += 1
            line = raw.rstrip("\r")
            if not line.strip():
                continue
            cells = line.split("\t")
            if self.header is None:
                self.header = [c.strip().lstrip("\ufeff").lower() for c in cells]
                self._columns = {name: at for at, name in reversed(list(enumerate(self.header)))}
                continue
            rows.append(Row(self._line, cells, self._columns))
        return rows


class DocumentReader:
    """Where the reading of one document stands. Usage::

    reader = DocumentReader(compression="GZIP")
    while not reader.done:
        rows = reader.next_rows(lambda start, size: client.download_range(url, start, size))
    """

    def __init__(self, compression: str | None) -> None:
        if compression not in (None, "GZIP"):
            raise DocumentError(f"compressionAlgorithm {compression!r} is not known")
        # wbits 16 + MAX_WBITS: a gzip header and trailer (RFC 1952) around deflate.
        self._inflate = zlib.decompressobj(16 + zlib.MAX_WBITS) if compression else None
        self._pending = b""  # fetched, not yet inflated
        self._more_out = False  # the decompressor may hold more text without more input
        self.offset = 0  # bytes of the document fetched so far
        self.total: int | None = None
        self._lines: TsvLines | None = None
        self.done = False
        self.rows = 0  # rows handed out so far

    def next_rows(self, fetch: Fetch) -> list[Row]:
        """The rows of up to about :data:`TEXT_BYTES` more text (fetching a range when
        nothing is left in hand); ``done`` once the document is read."""
        if self.done:
            return []
        if not self._pending and not self._more_out and not self._fetched_all:
            piece = fetch(self.offset, RANGE_BYTES)
            if self.total is None:
                self.total = piece.total
            if self._lines is None:
                self._lines = TsvLines(piece.charset or "utf-8")
            self.offset += len(piece.content)
            self._pending = piece.content
            if not piece.content or (self.total is not None and self.offset > self.total):
                self.total = self.offset  # an empty answer or a short document: the end
        if self._lines is None:
            self._lines = TsvLines("utf-8")
        text = self._text()
        final = self._fetched_all and not self._pending and not self._more_out
        if final and self._inflate is not None and not self._inflate.eof:
            raise DocumentError("the gzip document ends before its end marker")
        rows = self._lines.feed(text, final)
        if final:
            if self._lines.header is None:
                raise DocumentError("the document has no header line")
            self.done = True
        self.rows += len(rows)
        return rows

    @property
    def _fetched_all(self) -> bool:
        return self.total is not None and self.offset >= self.total

    def _text(self) -> bytes:
        if self._inflate is None:
            text, self._pending = self._pending, b""
            return text
        try:
            text = self._inflate.decompress(self._pending, TEXT_BYTES)
        except zlib.error as err:
            raise DocumentError(f"not a gzip document: {err}") from err
        self._pending = self._inflate.unconsumed_tail
        # A full piece may leave output inside the decompressor with no input left.
        self._more_out = len(text) == TEXT_BYTES and not self._inflate.eof
        return text
