"""The contract suite (sellable.sdk.testing) fails a connector that breaks the contract: its
test methods are called directly with an in-memory connector that breaks one rule each."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

import pytest
from pydantic import SecretStr

from sellable.sdk import (
    AuthenticationError,
    Capability,
    ChannelHttp,
    ChannelOrder,
    ChannelOrderLine,
    Connector,
    ConnectorContext,
    ConnectorSettings,
    Listing,
    ListingPage,
    OrderPage,
    OrderStatus,
    PushItem,
    PushResult,
)
from sellable.sdk.testing import ConnectorContractTests, ContractSetup, connector_tests

SINCE = datetime(2026, 1, 1, tzinfo=UTC)
TOKEN = "memory-5ecr3t-token"


class MemorySettings(ConnectorSettings):
    token: SecretStr
    page_size: int = 2


class MemoryShop(Connector):
    """A channel in memory that keeps the contract; subclasses break one rule each."""

    name = "memory"
    capabilities = frozenset(
        {Capability.LIST_LISTINGS, Capability.PUSH_QUANTITIES, Capability.PULL_ORDERS}
    )
    Settings = MemorySettings
    settings: MemorySettings
    refused: ClassVar[set[str]] = set()
    pulls: ClassVar[int] = 0

    def _check_token(self) -> None:
        if self.settings.token.get_secret_value() != TOKEN:
            raise AuthenticationError("credentials refused", channel=self.context.channel)

    def list_listings(self, cursor: str | None) -> ListingPage:
        self._check_token()
        start = int(cursor or 0)
        ids = [f"L{n}" for n in range(5)][start : start + self.settings.page_size]
        following = start + self.settings.page_size
        return ListingPage(
            [Listing(i, f"SKU-{i}", quantity=1) for i in ids],
            str(following) if following < 5 else None,
        )

    def push_quantities(self, items: Sequence[PushItem]) -> list[PushResult]:
        return [
            PushResult.failed(i.listing.listing_id, "refused")
            if i.listing.listing_id in self.refused
            else PushResult.ok(i.listing.listing_id)
            for i in items
        ]

    def pull_orders(self, since: datetime, cursor: str | None) -> OrderPage:
        type(self).pulls += 1
        line = ChannelOrderLine("1", "SKU-L1", 1)
        return OrderPage([ChannelOrder("1001", OrderStatus.OPEN, SINCE, (line,))])


def setup_for(cls: type[MemoryShop]) -> ContractSetup:
    def build(settings: Mapping[str, Any]) -> Connector:
        http = ChannelHttp("memory")
        return cls(cls.Settings.model_validate(dict(settings)), ConnectorContext("m", (), http))

    def refuse(item: PushItem) -> PushItem:
        cls.refused = {item.listing.listing_id}
        return item

    return ContractSetup(
        settings={"token": TOKEN}, build=build, refuse=refuse, since=SINCE, min_listings=5
    )


def run(test: str, cls: type[MemoryShop]) -> None:
    suite = connector_tests(cls)()
    contract = setup_for(cls)
    arguments: dict[str, Any] = {"connector_class": cls}
    method = getattr(suite, test)
    names = method.__code__.co_varnames[1 : method.__code__.co_argcount]
    if "contract" in names:
        arguments["contract"] = contract
    if "connector" in names:
        arguments["connector"] = contract.build(contract.settings)
    if "secrets" in names:
        arguments["secrets"] = [TOKEN]
    if "_built" in names:
        arguments["_built"] = []
    if "caplog" in names:
        arguments["caplog"] = _NoLog()
    method(**arguments)


class _NoLog:
    text = ""


TESTS = [name for name in dir(ConnectorContractTests) if name.startswith("test_")]


@pytest.mark.parametrize("test", TESTS)
def test_a_connector_keeping_the_contract_passes(test: str) -> None:
    run(test, MemoryShop)


class Duplicates(MemoryShop):
    def list_listings(self, cursor: str | None) -> ListingPage:
        page = super().list_listings(cursor)
        return ListingPage([*page.listings, Listing("L0", "SKU-L0")], page.next_cursor)


class MissingResult(MemoryShop):
    def push_quantities(self, items: Sequence[PushItem]) -> list[PushResult]:
        return super().push_quantities(items)[1:]


class RefusalBlocksAll(MemoryShop):
    def push_quantities(self, items: Sequence[PushItem]) -> list[PushResult]:
        if any(i.listing.listing_id in self.refused for i in items):
            return [PushResult.failed(i.listing.listing_id, "batch refused") for i in items]
        return super().push_quantities(items)


class NotIdempotent(MemoryShop):
    def pull_orders(self, since: datetime, cursor: str | None) -> OrderPage:
        page = super().pull_orders(since, cursor)
        if self.pulls > 1:
            return OrderPage([])  # the second pull from the same since lost the order
        return page


class UndeclaredHook(MemoryShop):
    def read_quantities(self, listings: Sequence[Listing]) -> dict[str, int]:
        return {}


class LeaksSecret(MemoryShop):
    def _check_token(self) -> None:
        token = self.settings.token.get_secret_value()
        if token != TOKEN:
            raise AuthenticationError(f"token {token} refused", channel=self.context.channel)


class LoosePageSize(MemoryShop):
    class Settings(MemorySettings):
        page_size: Any = 2  # accepts anything

    settings: Any


@pytest.mark.parametrize(
    ("test", "cls"),
    [
        ("test_listings_page_to_the_end_without_duplicates", Duplicates),
        ("test_push_answers_one_result_per_item_and_a_refused_item_fails_alone", MissingResult),
        (
            "test_push_answers_one_result_per_item_and_a_refused_item_fails_alone",
            RefusalBlocksAll,
        ),
        ("test_order_pull_is_idempotent_across_the_overlap", NotIdempotent),
        ("test_capabilities_match_the_hooks_overridden", UndeclaredHook),
        ("test_refused_credentials_raise_a_channel_error_showing_no_secret", LeaksSecret),
        ("test_settings_model_refuses_a_bad_value_naming_the_key", LoosePageSize),
    ],
    ids=lambda value: value if isinstance(value, str) else value.__name__,
)
def test_a_connector_breaking_the_contract_fails(test: str, cls: type[MemoryShop]) -> None:
    cls.pulls = 0
    with pytest.raises((AssertionError, pytest.fail.Exception)):  # type: ignore[arg-type]
        run(test, cls)
