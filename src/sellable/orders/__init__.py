"""Orders, the stock ledger and assembly orders."""

from __future__ import annotations

from sellable.orders.book import OrderBook
from sellable.orders.csv_orders import read_orders_csv
from sellable.orders.model import (
    LineStatus,
    OrderImportResult,
    OrderIn,
    OrderLineIn,
    OrderStatus,
)
from sellable.orders.queries import ledger, list_orders

__all__ = [
    "LineStatus",
    "OrderBook",
    "OrderImportResult",
    "OrderIn",
    "OrderLineIn",
    "OrderStatus",
    "ledger",
    "list_orders",
    "read_orders_csv",
]
