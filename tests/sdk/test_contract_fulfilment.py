"""The contract suite's fulfilment tests: a fulfilment connector keeping the contract
passes (the whole suite runs on the in-memory provider of tests/sync/fake_fulfilment.py),
and one that creates a second order for a re-sent reference, or cannot find what it
created, fails."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from sellable.sdk import (
    FulfilmentLine,
    FulfilmentRequest,
    FulfilmentUpdate,
    ShippingAddress,
    SubmitResult,
)
from sellable.sdk.testing import ContractSetup, build_connector, connector_tests
from tests.sync import fake_fulfilment
from tests.sync.fake_fulfilment import FakeFulfilment, Provider

RECIPIENT = ShippingAddress("Grace Hopper", "1 Compiler Lane", "Arlington", "US")
_numbers = itertools.count(1)


def requests() -> list[FulfilmentRequest]:
    n = next(_numbers)
    return [
        FulfilmentRequest(
            f"shop:{n}{suffix}",
            "shop",
            str(n),
            "sb",
            RECIPIENT,
            (FulfilmentLine("l1", "A", 1, (("A", 1),)),),
        )
        for suffix in (":1", ":2")
    ]


def setup(cls: type[FakeFulfilment]) -> ContractSetup:
    fake_fulfilment.PROVIDERS["contract"] = Provider()
    return ContractSetup(
        settings={},
        build=lambda settings: build_connector(cls, settings, warehouses=("sb",)),
        fulfilment_requests=requests,
    )


class TestFakeFulfilmentContract(connector_tests(FakeFulfilment)):  # type: ignore[misc]
    @pytest.fixture
    def contract(self) -> Iterator[ContractSetup]:
        yield setup(FakeFulfilment)
        fake_fulfilment.PROVIDERS.clear()


class CreatesTwice(FakeFulfilment):
    def fulfil_orders(self, requests: Sequence[FulfilmentRequest]) -> list[SubmitResult]:
        for request in requests:
            self.provider.orders.pop(request.reference, None)  # forgets: a second order
        return super().fulfil_orders(requests)


class FindsNothing(FakeFulfilment):
    def find_fulfilments(self, references: Sequence[str]) -> dict[str, FulfilmentUpdate]:
        return {}


class AnswersOnlyTheFirst(FakeFulfilment):
    def fulfil_orders(self, requests: Sequence[FulfilmentRequest]) -> list[SubmitResult]:
        return super().fulfil_orders(requests)[:1]


class LogsTheAddress(FakeFulfilment):
    def fulfil_orders(self, requests: Sequence[FulfilmentRequest]) -> list[SubmitResult]:
        import logging

        for request in requests:
            logging.getLogger("sellable.test").info("to %s", request.recipient.address1)
        return super().fulfil_orders(requests)


@pytest.mark.parametrize(
    ("test", "cls"),
    [
        ("test_fulfil_answers_each_request_once_and_existed_when_sent_again", CreatesTwice),
        ("test_fulfil_answers_each_request_once_and_existed_when_sent_again", AnswersOnlyTheFirst),
        ("test_fulfil_answers_each_request_once_and_existed_when_sent_again", LogsTheAddress),
        ("test_find_fulfilments_finds_a_created_order_by_its_reference", FindsNothing),
    ],
    ids=lambda value: value if isinstance(value, str) else value.__name__,
)
def test_a_fulfilment_connector_breaking_the_contract_fails(
    test: str, cls: type[FakeFulfilment], caplog: pytest.LogCaptureFixture
) -> None:
    contract = setup(cls)
    suite = connector_tests(cls)()
    arguments: dict[str, Any] = {
        "connector_class": cls,
        "contract": contract,
        "connector": contract.build(contract.settings),
    }
    method = getattr(suite, test)
    names = method.__code__.co_varnames[1 : method.__code__.co_argcount]
    if "caplog" in names:
        arguments["caplog"] = caplog
    try:
        with caplog.at_level("DEBUG"), pytest.raises(AssertionError):
            method(**{k: v for k, v in arguments.items() if k in names})
    finally:
        fake_fulfilment.PROVIDERS.clear()
