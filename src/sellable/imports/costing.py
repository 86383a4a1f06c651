"""``sellable import receipts`` and ``sellable import rates``: costed stock arriving, and
the exchange rates receipts in other currencies convert at. All or nothing per file; every
error names the file, line, column and value."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from sellable.config import Settings
from sellable.costing.layers import lot_name
from sellable.costing.moves import MoveOutcome, ReceiptIn, receive
from sellable.costing.rates import Rates
from sellable.imports.csvfile import (
    CsvFile,
    Progress,
    RowRejected,
    currency_cell,
    exchange_rate,
    iso_date,
    iso_moment,
    optional_decimal,
    positive_int,
    required_text,
)
from sellable.imports.summary import ImportSummary
from sellable.store import schema
from sellable.store.db import writing
from sellable.store.sql import upsert, utcnow

if TYPE_CHECKING:
    from sellable.orders.book import OrderBook

RECEIPT_COLUMNS = ("sku", "warehouse", "quantity", "unit_cost")
RECEIPT_OPTIONAL = ("currency", "lot", "expires_on", "received_at", "reference")


def _lot(column: str, value: str) -> str:
    try:
        return lot_name(value, column)
    except Exception as error:  # InputError: as a row rejection naming line and column
        raise RowRejected(column, value, str(error).split(": ", 1)[-1]) from None


def _unit_cost(column: str, value: str) -> Decimal:
    number = optional_decimal(column, value)
    if number is None:
        raise RowRejected(column, value, "must not be empty")
    if number < 0:
        raise RowRejected(column, value, "must not be negative")
    return number


def import_receipts(
    book: OrderBook,
    settings: Settings,
    path: str | os.PathLike[str],
    progress: Progress | None = None,
) -> tuple[ImportSummary, MoveOutcome]:
    """Receive stock: each row writes a Receipt movement and opens a cost layer at its unit
    cost converted to the base currency at the rate valid on its ``received_at`` date."""
    live = book.live
    base = settings.costing.currency
    zone = ZoneInfo(settings.costing.timezone)
    csv_file = CsvFile(path, RECEIPT_COLUMNS, RECEIPT_OPTIONAL, progress)
    reject = csv_file.reject
    live.refresh()
    known_warehouses = ", ".join(live.warehouse_ids)
    parsed: list[tuple[int, ReceiptIn]] = []
    now = utcnow()
    with book.engine.connect() as connection:
        rates = Rates(connection, base)
        for line, row in csv_file:
            sku = csv_file.field(line, required_text, "sku", row["sku"])
            if sku is not None and not live.knows(sku):
                reject(
                    line,
                    "sku",
                    sku,
                    "unknown SKU (import it with 'sellable import products' first)",
                )
                sku = None
            warehouse = row["warehouse"]
            if warehouse not in live.warehouse_ids:
                reject(
                    line, "warehouse", warehouse, f"unknown warehouse (known: {known_warehouses})"
                )
            quantity = csv_file.field(line, positive_int, "quantity", row["quantity"])
            unit_cost = csv_file.field(line, _unit_cost, "unit_cost", row["unit_cost"])
            currency = (
                csv_file.field(line, currency_cell, "currency", row["currency"])
                if row["currency"]
                else base
            )
            lot = csv_file.field(line, _lot, "lot", row["lot"]) if row["lot"] else None
            expires_on = (
                csv_file.field(line, iso_date, "expires_on", row["expires_on"])
                if row["expires_on"]
                else None
            )
            received_at = (
                csv_file.field(
                    line, lambda c, v: iso_moment(c, v, zone), "received_at", row["received_at"]
                )
                if row["received_at"]
                else now
            )
            reference = row["reference"] or f"receipt {os.path.basename(path)}:{line}"
            if len(reference) > 255:
                reject(line, "reference", reference[:40] + "…", "is longer than 255 characters")
                continue
            if (
                None in (sku, quantity, unit_cost, currency, received_at)
                or warehouse not in live.warehouse_ids
            ):
                continue
            assert currency is not None and received_at is not None
            day = received_at.astimezone(zone).date()
            rate = rates.on(currency, day)
            if rate is None:
                reject(
                    line,
                    "currency",
                    currency,
                    f"no {currency} rate valid on {day.isoformat()} "
                    f"(import one with 'sellable import rates'; the base currency is {base})",
                )
                continue
            assert sku is not None and quantity is not None and unit_cost is not None
            parsed.append(
                (
                    line,
                    ReceiptIn(
                        sku,
                        warehouse,
                        quantity,
                        unit_cost,
                        currency,
                        rate,
                        received_at,
                        lot,
                        expires_on,
                        reference,
                    ),
                )
            )
    csv_file.raise_errors()
    outcome = receive(book, [r for _, r in parsed], settings.costing.today())
    summary = ImportSummary(str(path), len(parsed), len(parsed), 0, 0, movements=outcome.movements)
    return summary, outcome


@dataclass(frozen=True, slots=True)
class _Rate:
    currency: str
    valid_from: date
    rate: Decimal


def import_rates(
    engine: Engine,
    settings: Settings,
    path: str | os.PathLike[str],
    progress: Progress | None = None,
) -> ImportSummary:
    """Create or replace exchange rates: ``currency,rate,valid_from``, where ``rate`` is how
    many base-currency units one unit of ``currency`` buys from ``valid_from`` on."""
    base = settings.costing.currency
    csv_file = CsvFile(path, ("currency", "rate", "valid_from"), (), progress)
    rows: dict[tuple[str, date], _Rate] = {}
    first_line: dict[tuple[str, date], int] = {}
    for line, row in csv_file:
        currency = csv_file.field(line, currency_cell, "currency", row["currency"])
        rate = csv_file.field(line, exchange_rate, "rate", row["rate"])
        valid_from = csv_file.field(line, iso_date, "valid_from", row["valid_from"])
        if currency == base and rate is not None and rate != 1:
            csv_file.reject(
                line, "rate", row["rate"], f"{base} is the base currency: its rate is always 1"
            )
            continue
        if currency is None or rate is None or valid_from is None:
            continue
        key = (currency, valid_from)
        if key in first_line:
            csv_file.reject(
                line,
                "valid_from",
                row["valid_from"],
                f"duplicate row: {currency} from {valid_from} already given on line "
                f"{first_line[key]}",
            )
            continue
        first_line[key] = line
        rows[key] = _Rate(currency, valid_from, rate)
    csv_file.raise_errors()
    er = schema.exchange_rates
    with writing(engine) as connection:
        existing = {
            (c, v): Decimal(r)
            for c, v, r in connection.execute(
                er.select().with_only_columns(er.c.currency, er.c.valid_from, er.c.rate)
            )
        }
        created = sum(1 for key in rows if key not in existing)
        updated = sum(1 for key, r in rows.items() if key in existing and existing[key] != r.rate)
        upsert(
            connection,
            er,
            [
                {"currency": r.currency, "valid_from": r.valid_from, "rate": r.rate}
                for r in rows.values()
            ],
            key=("currency", "valid_from"),
            update=("rate",),
        )
    return ImportSummary(str(path), len(rows), created, updated, len(rows) - created - updated)


__all__ = ["import_rates", "import_receipts"]
