"""``sellable cogs --json`` for the connectors' end-to-end tests: a kit sold through a
channel (an emulator, or a real Vendure) shows the revenue the channel gave, exactly."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.orders.test_order_book import invoke

KIT = "GIFT-KIT-COFFEE"
KIT_COMPONENTS = {"BEANS-12OZ", "MUG-CERAMIC", "SCOOP-WOOD"}


def cogs_line(config: Path, channel: str, order_id: str) -> dict[str, Any]:
    """The one shipped line of ``order_id`` as ``sellable cogs --json`` shows it."""
    result = invoke(config, "cogs", "--channel", channel, "--order", order_id, "--json")
    assert result.exit_code == 0, result.output
    (line,) = json.loads(result.stdout)
    assert isinstance(line, dict)
    return line


def assert_kit_earned(line: dict[str, Any], revenue: str, currency: str, quantity: int) -> None:
    """The kit's line carries the channel's revenue to the cent, in its currency, split over
    its components without losing a cent, and its margin is revenue less cost."""
    assert (line["sku"], line["quantity"]) == (KIT, quantity)
    assert line["revenue"] == revenue
    assert (line["original_revenue"], line["original_currency"]) == (revenue, currency)
    parts = line["components"]
    assert {part["sku"] for part in parts} == KIT_COMPONENTS
    assert sum(Decimal(part["revenue"]) for part in parts) == Decimal(revenue)
    assert Decimal(line["margin"]) == Decimal(revenue) - Decimal(line["cost"])


#: The revenue end-to-end tests run on both databases.
BOTH_DATABASES = pytest.mark.parametrize(
    "database_url",
    ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
    indirect=True,
)
