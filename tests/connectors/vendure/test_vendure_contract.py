"""The Vendure connector passes the connector contract suite (sellable.sdk.testing) against
a real Vendure 3.7.3 (npm, PostgreSQL, loopback), a server of this module's own.

Vendure is seeded with six products (server/products.csv); the listing page size is made 2
for these tests so that listings take several pages. A refused push is one for a variant
Vendure does not have."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sellable_vendure.connector
from pydantic import SecretStr
from sellable_vendure.client import StockUpdate, StockUpdateOutcome, VendureAdminClient
from sellable_vendure.connector import VendureConnector

from sellable.sdk import ChannelHttp, PushItem
from sellable.sdk.testing import ContractSetup, build_connector, connector_tests
from tests.connectors.vendure.vendure_server import SYNC_USER, VendureServer, running_vendure


@pytest.fixture(scope="module")
def vendure(
    postgres_server: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[VendureServer]:
    with running_vendure(postgres_server, tmp_path_factory.mktemp("vendure")) as server:
        server.place_order([("BEANS-12OZ", 1), ("MUG-CERAMIC", 2)], "contract-1@example.com")
        server.place_order([("GIFT-KIT-COFFEE", 1)], "contract-2@example.com")
        yield server


def refuse(item: PushItem) -> PushItem:
    """The same listing, for a variant id Vendure never had."""
    _variant, _at, location = item.listing.listing_id.partition("@")
    extra = {**item.listing.extra, "variant_id": "999999"}
    listing = dataclasses.replace(item.listing, listing_id=f"999999@{location}", extra=extra)
    return dataclasses.replace(item, listing=listing)


class TestVendureContract(connector_tests(VendureConnector)):
    @pytest.fixture
    def contract(self, vendure: VendureServer, monkeypatch: pytest.MonkeyPatch) -> ContractSetup:
        monkeypatch.setattr(sellable_vendure.connector, "PAGE_SIZE", 2)
        monkeypatch.setattr(sellable_vendure.connector, "LISTING_PAGE_SIZE", 2)
        user, password = SYNC_USER
        return ContractSetup(
            settings={
                "admin_api_url": vendure.admin_api_url,
                "username": user,
                "password": password,
            },
            build=lambda settings: build_connector(VendureConnector, settings),
            refuse=refuse,
            since=datetime.now(UTC) - timedelta(hours=1),
            min_listings=6,
            min_orders=2,
            bad_settings={"admin_api_url": "ftp://vendure.example.com/admin-api"},
        )


def test_a_stock_update_vendure_refuses_together_is_applied_variant_by_variant(
    vendure: VendureServer,
) -> None:
    """One unknown variant fails the single updateProductVariants field, which Vendure rolls
    back whole; the client sends the updates again one field each: the known variants are
    set, the unknown one fails with Vendure's reason."""
    user, password = SYNC_USER
    http = ChannelHttp("vendure", base_url=vendure.admin_api_url)
    client = VendureAdminClient(http, user, SecretStr(password))
    http.authenticate = client.authenticate
    tshirt, bundle = vendure.variant_ids["VENDURE-TSHIRT"], vendure.variant_ids["ALPHABET-BUNDLE"]
    before = vendure.stock("VENDURE-TSHIRT"), vendure.stock("ALPHABET-BUNDLE")
    sent: list[str] = []
    http.on_response = lambda response: sent.append(json.loads(response.request.content)["query"])
    try:
        outcomes = client.set_stock_levels(
            [
                StockUpdate(tshirt, (("1", 41),)),
                StockUpdate("999999", (("1", 42),)),
                StockUpdate(bundle, (("1", 43),)),
            ]
        )
        operations = [query.split("(")[0].split()[-1] for query in sent]
        after = vendure.stock("VENDURE-TSHIRT"), vendure.stock("ALPHABET-BUNDLE")
    finally:
        client.set_stock_levels(
            [
                StockUpdate(tshirt, (("1", before[0][0]),)),
                StockUpdate(bundle, (("1", before[1][0]),)),
            ]
        )
        http.close()

    assert outcomes == [
        StockUpdateOutcome(tshirt, {"1": 41}),
        StockUpdateOutcome(
            "999999",
            None,
            'ENTITY_NOT_FOUND: No ProductVariant with the id "999999" could be found at v1',
        ),
        StockUpdateOutcome(bundle, {"1": 43}),
    ]
    assert after == ((41, before[0][1]), (43, before[1][1]))
    assert operations == [
        "SellableLogin",
        "SellableSetStockTogether",
        "SellableSetStock",
        "SellableSetStock",
    ]
