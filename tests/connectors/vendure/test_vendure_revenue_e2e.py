"""A real Vendure 3.7.3 (see vendure_server.py): an order with a 10 % order-level coupon
and 20 % tax reaches the connector with the line's revenue after the discount and
without the tax, ``proratedLinePrice``, in major units of the order's currency; a kit
sold so shows that revenue in ``sellable cogs``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import SecretStr
from sellable_vendure.connector import VendureConnector, VendureSettings

from sellable.sdk import ChannelHttp, ConnectorContext
from sellable.sync.engine import SyncEngine
from tests.connectors.cogs import KIT, assert_kit_earned, cogs_line
from tests.connectors.vendure.vendure_server import SYNC_USER, VendureServer, running_vendure
from tests.imports import WAREHOUSES_TOML, open_store

COUPON = "TENOFF"


@pytest.fixture(scope="module")
def vendure(
    postgres_server: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[VendureServer]:
    with running_vendure(postgres_server, tmp_path_factory.mktemp("vendure")) as server:
        created = server.admin(
            "mutation($input: CreatePromotionInput!) { createPromotion(input: $input) { "
            "__typename ... on ErrorResult { errorCode message } } }",
            {
                "input": {
                    "enabled": True,
                    "couponCode": COUPON,
                    "conditions": [],
                    "actions": [
                        {
                            "code": "order_percentage_discount",
                            "arguments": [{"name": "discount", "value": "10"}],
                        }
                    ],
                    "translations": [{"languageCode": "en", "name": "Ten percent off"}],
                }
            },
        )["createPromotion"]
        assert created["__typename"] == "Promotion", created
        yield server


def pulled_lines(server: VendureServer, code: str) -> dict[str, tuple[Decimal | None, str | None]]:
    """SKU -> (revenue, currency) of order ``code`` as the connector reads it."""
    http = ChannelHttp("vendure", rate=50, burst=50)
    settings = VendureSettings(
        admin_api_url=server.admin_api_url,
        username=SYNC_USER[0],
        password=SecretStr(SYNC_USER[1]),
        recheck_days=0,
    )
    connector = VendureConnector(settings, ConnectorContext("vendure", ("main",), http))
    http.set_base_url(connector.base_url())
    http.authenticate = connector.authenticate
    try:
        page = connector.pull_orders(datetime.now(UTC) - timedelta(hours=1), None)
    finally:
        http.close()
    (order,) = [o for o in page.orders if o.order_id == code]
    return {line.sku: (line.revenue, line.currency) for line in order.lines}


def test_vendure_revenue_is_the_prorated_line_price_of_a_real_order(
    vendure: VendureServer,
) -> None:
    placed = vendure.place_order(
        [("GIFT-KIT-COFFEE", 3), ("MUG-CERAMIC", 1)], "buyer@example.com", coupon=COUPON
    )
    fields = vendure.admin(
        "query($id: ID!) { order(id: $id) { currencyCode lines { productVariant { sku } "
        "linePrice discountedLinePrice proratedLinePrice proratedLinePriceWithTax } } }",
        {"id": placed["id"]},
    )["order"]

    lines = pulled_lines(vendure, placed["code"])

    # 3 x 27.00 = 81.00 less 10 % = 72.90 and 9.00 less 10 % = 8.10, without the 20 % tax.
    assert lines == {
        "GIFT-KIT-COFFEE": (Decimal("72.90"), fields["currencyCode"]),
        "MUG-CERAMIC": (Decimal("8.10"), fields["currencyCode"]),
    }
    kit = next(f for f in fields["lines"] if f["productVariant"]["sku"] == "GIFT-KIT-COFFEE")
    # The fields that are not revenue differ, so the right one was read.
    assert kit["linePrice"] == kit["discountedLinePrice"] == 8100  # order-level discount
    assert kit["proratedLinePrice"] == 7290
    assert kit["proratedLinePriceWithTax"] == 8748


def test_vendure_cogs_shows_what_a_kit_earned_after_the_order_coupon(
    vendure: VendureServer, tmp_path: Path
) -> None:
    currency = vendure.admin("{ activeChannel { defaultCurrencyCode } }")["activeChannel"][
        "defaultCurrencyCode"
    ]
    user, password = SYNC_USER
    config = tmp_path / "sellable.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "sellable.db"}"\n{WAREHOUSES_TOML}'
        f'\n[costing]\ncurrency = "{currency}"\n'
        '\n[[channels]]\ncode = "vendure"\nconnector = "vendure"\nwarehouses = ["main"]\n'
        f'[channels.settings]\nadmin_api_url = "{vendure.admin_api_url}"\n'
        f'username = "{user}"\npassword = "{password}"\n'
    )
    store = open_store(config)
    store.load_examples()
    placed = vendure.place_order([(KIT, 3)], "kit-buyer@example.com", coupon=COUPON)
    vendure.ship(placed["id"])
    engine = SyncEngine(store.engine, store.settings)
    try:
        result = engine.run_job("vendure", "orders")
        assert result.ok, result.error
    finally:
        engine.close()
        store.engine.dispose()

    # 3 x 27.00 = 81.00 less the 10 % order coupon: proratedLinePrice 7290, tax apart
    assert_kit_earned(cogs_line(config, "vendure", placed["code"]), "72.90", currency, 3)
