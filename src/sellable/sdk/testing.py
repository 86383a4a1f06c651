"""The connector contract suite: standard tests any connector runs against its own emulator
or sandbox (as singer-sdk's standard tap tests do). See docs/writing-a-connector.md.

Usage, in the connector's own tests (pytest)::

    from sellable.sdk.testing import ContractSetup, build_connector, connector_tests

    class TestMyShopContract(connector_tests(MyShopConnector)):
        @pytest.fixture
        def contract(self) -> Iterator[ContractSetup]:
            with MyShopSandbox() as shop:           # seeded: listings over 2+ pages, an order
                yield ContractSetup(
                    settings=shop.settings(),       # valid [channels.settings]
                    build=lambda settings: build_connector(MyShopConnector, settings),
                    refuse=lambda item: shop.refuse(item.listing.listing_id) or item,
                    since=shop.first_order_time,
                )

The class :func:`connector_tests` returns holds these tests:

* the capabilities declared match the hooks overridden;
* the settings model refuses a bad value of each key, and an unknown key, naming the key;
* the listings page to the end with no listing twice;
* a push answers one result per item, and an item the channel refuses fails alone;
* an order pull is idempotent: pulling twice from the same ``since`` gives the same orders;
* one order the channel sends corrupt (``ContractSetup.corrupt``) is refused by its id in
  ``OrderPage.rejected``, naming a field, and every other order still comes;
* a fulfilment connector (``fulfil_orders``) answers one result per request, EXISTED (never
  a second order) for a reference sent again, finds a created order by its reference with
  ``find_fulfilments`` and not one never sent, and logs no shipping address
  (``ContractSetup.fulfilment_requests``; without it these tests are skipped);
* refused credentials raise a :class:`ChannelError`;
* no secret of the settings (each ``SecretStr`` value) appears in any log line, error or
  push message captured while the suite runs.

A test of a capability the connector does not declare is skipped, naming the capability.
This module needs pytest (a test dependency), which the rest of Sellable does not.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import pytest
from pydantic import BaseModel, SecretStr, ValidationError

from sellable.errors import ChannelError
from sellable.sdk._connector import Capability, Connector, ConnectorContext
from sellable.sdk._fulfilment import FulfilmentRequest, SubmitOutcome
from sellable.sdk._http import ChannelHttp
from sellable.sdk._models import (
    ChannelOrder,
    Listing,
    PushItem,
    PushResult,
    PushStatus,
    RejectedOrder,
)

__all__ = [
    "HOOKS",
    "ConnectorContractTests",
    "ContractSetup",
    "build_connector",
    "connector_tests",
    "secrets_of",
    "with_listing_id",
]

#: The hook each capability names.
HOOKS: dict[Capability, str] = {
    Capability.PULL_ORDERS: "pull_orders",
    Capability.PULL_STOCK: "pull_stock",
    Capability.PUSH_QUANTITIES: "push_quantities",
    Capability.LIST_LISTINGS: "list_listings",
    Capability.READ_QUANTITIES: "read_quantities",
    Capability.FULFIL_ORDERS: "fulfil_orders",
}

#: Most pages a listing or order pull may take before the suite calls it a loop.
MAX_PAGES = 1000
#: Push rounds for items answered RETRY (accepted, not applied yet), ``settle`` between.
PUSH_ROUNDS = 10


def _not_a_setting() -> object:
    return [["not", "a", "setting"]]


@dataclass
class ContractSetup:
    """What a connector's test hands the suite (its ``contract`` fixture yields one).

    ``settings``: valid ``[channels.settings]`` reaching the emulator or sandbox.
    ``build(settings)``: a connector for those settings (see :func:`build_connector`); the
    suite closes what it builds.
    ``refuse(item)``: arrange for the channel to refuse this push item (an emulator fault, a
    deleted product) and return the item to push (the same one, or one naming a listing
    the channel does not have). Required when the connector pushes quantities.
    ``since``: orders updated at or after it exist (at least ``min_orders``).
    ``min_listings``: how many listings the channel holds at least; seed more than a page.
    ``settle()``: let the channel apply what it accepted (advance a fake clock, process a
    feed); called between push rounds while an item is answered RETRY.
    ``bad_settings``: key -> a value the settings model must refuse; a key not named gets
    a nested list, which no plain field accepts.
    ``pushable(listing)``: which listings the push test may use (default: those with a SKU).
    ``corrupt()``: make the channel send one of the orders after ``since`` corrupt (a
    quantity ``"two"``, an emulator fault) and return its id as the connector reports it;
    without it the corrupt-order test is skipped.
    ``fulfilment_requests()``: for a fulfilment connector, new requests the provider will
    accept (references never sent before, warehouses among those ``build`` gives the
    connector, SKUs the provider knows, a full recipient); at least one. Without it the
    fulfilment tests are skipped.
    """

    settings: Mapping[str, Any]
    build: Callable[[Mapping[str, Any]], Connector]
    refuse: Callable[[PushItem], PushItem] | None = None
    since: datetime | None = None
    min_listings: int = 2
    min_orders: int = 1
    settle: Callable[[], None] = lambda: None
    bad_settings: Mapping[str, Any] = field(default_factory=dict)
    pushable: Callable[[Listing], bool] = lambda listing: listing.sku is not None
    push_items: int = 3
    corrupt: Callable[[], str] | None = None
    fulfilment_requests: Callable[[], Sequence[FulfilmentRequest]] | None = None


def build_connector(
    connector_class: type[Connector],
    settings: Mapping[str, Any],
    *,
    channel: str = "contract",
    warehouses: Sequence[str] = ("main",),
    **http_options: Any,
) -> Connector:
    """A connector as the daemon builds one: settings validated by its model, a
    :class:`ChannelHttp` paced by its :meth:`~Connector.rate_limits`, its base URL and
    authentication hook installed. ``http_options`` go to ChannelHttp (``clock``, ``sleep``
    of a fake clock, ``backoff_base``...)."""
    validated = connector_class.Settings.model_validate(dict(settings))
    http = ChannelHttp(channel, limits=connector_class.rate_limits(validated), **http_options)
    connector = connector_class(validated, ConnectorContext(channel, tuple(warehouses), http))
    http.set_base_url(connector.base_url())
    http.authenticate = connector.authenticate
    return connector


def secrets_of(settings: BaseModel) -> list[str]:
    """Every ``SecretStr`` value of a settings model (in dicts and lists too)."""
    found: list[str] = []

    def visit(value: Any) -> None:
        if isinstance(value, SecretStr):
            if value.get_secret_value():
                found.append(value.get_secret_value())
        elif isinstance(value, BaseModel):
            for name in type(value).model_fields:
                visit(getattr(value, name))
        elif isinstance(value, Mapping):
            for item in value.values():
                visit(item)
        elif isinstance(value, list | tuple | set | frozenset):
            for item in value:
                visit(item)

    visit(settings)
    return found


class ConnectorContractTests:
    """The contract tests; use :func:`connector_tests` to get them for a connector class."""

    connector_class: type[Connector] = Connector

    # -- fixtures ---------------------------------------------------------------------------------

    @pytest.fixture(name="connector_class")
    def _connector_class(self) -> type[Connector]:
        """The connector under test; override this fixture to import it lazily (a plugin
        installed by a session fixture)."""
        if self.connector_class is Connector:
            raise NotImplementedError("pass the connector class to connector_tests()")
        return self.connector_class

    @pytest.fixture
    def contract(self) -> ContractSetup:
        raise NotImplementedError(
            "define a 'contract' fixture yielding a ContractSetup for your connector"
        )

    @pytest.fixture
    def _built(self) -> Iterator[list[Connector]]:
        built: list[Connector] = []
        yield built
        for connector in built:
            try:
                connector.close()
            finally:
                connector.http.close()

    @pytest.fixture
    def connector(
        self,
        contract: ContractSetup,
        _built: list[Connector],
        connector_class: type[Connector],
    ) -> Connector:
        return _build(connector_class, contract, _built, contract.settings)

    @pytest.fixture
    def secrets(self, contract: ContractSetup, connector_class: type[Connector]) -> list[str]:
        return secrets_of(connector_class.Settings.model_validate(dict(contract.settings)))

    @pytest.fixture(autouse=True)
    def _no_secret_logged(
        self, request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
    ) -> Iterator[None]:
        """Every test runs with logging at DEBUG; afterwards no secret may be in the log."""
        secrets: list[str] = (
            request.getfixturevalue("secrets") if "contract" in request.fixturenames else []
        )
        with caplog.at_level(logging.DEBUG):
            yield
        for secret in secrets:
            assert secret not in caplog.text, "a secret of the settings in the log"

    # -- capabilities ---------------------------------------------------------------------------

    def test_capabilities_match_the_hooks_overridden(
        self, connector_class: type[Connector]
    ) -> None:
        cls = connector_class
        for capability, hook in HOOKS.items():
            overridden = getattr(cls, hook) is not getattr(Connector, hook)
            declared = capability in cls.capabilities
            assert overridden == declared, (
                f"{cls.__name__}: capability {capability.value} is "
                f"{'declared' if declared else 'not declared'} but {hook}() is "
                f"{'overridden' if overridden else 'not overridden'}"
            )
        assert cls.name, f"{cls.__name__}.name is empty"
        assert cls.max_push_batch >= 1

    # -- settings -------------------------------------------------------------------------------

    def test_settings_model_accepts_the_setup_settings(
        self, connector_class: type[Connector], contract: ContractSetup
    ) -> None:
        connector_class.Settings.model_validate(dict(contract.settings))

    def test_settings_model_refuses_a_bad_value_naming_the_key(
        self, connector_class: type[Connector], contract: ContractSetup
    ) -> None:
        model = connector_class.Settings
        for key in model.model_fields:
            bad = contract.bad_settings.get(key, _not_a_setting())
            with pytest.raises(ValidationError) as excinfo:
                model.model_validate({**contract.settings, key: bad})
            locations = [error["loc"] for error in excinfo.value.errors()]
            assert all(loc and loc[0] == key for loc in locations), (key, locations)
            assert key in str(excinfo.value)

    def test_settings_model_refuses_an_unknown_key_naming_it(
        self, connector_class: type[Connector], contract: ContractSetup
    ) -> None:
        with pytest.raises(ValidationError) as excinfo:
            connector_class.Settings.model_validate({**contract.settings, "no_such_setting": 1})
        assert "no_such_setting" in str(excinfo.value)

    def test_settings_errors_show_no_secret(
        self, connector_class: type[Connector], contract: ContractSetup, secrets: list[str]
    ) -> None:
        model = connector_class.Settings
        for key in model.model_fields:
            try:
                model.model_validate({**contract.settings, key: _not_a_setting()})
            except ValidationError as err:
                for secret in secrets:
                    assert secret not in str(err), f"a secret in the error for {key!r}"

    # -- listings -------------------------------------------------------------------------------

    def _all_listings(self, connector: Connector) -> list[Listing]:
        listings: list[Listing] = []
        cursor: str | None = None
        seen_cursors: set[str] = set()
        for _page in range(MAX_PAGES):
            page = connector.list_listings(cursor)
            listings.extend(page.listings)
            cursor = page.next_cursor
            if cursor is None:
                return listings
            assert cursor not in seen_cursors, f"list_listings gave cursor {cursor!r} twice"
            seen_cursors.add(cursor)
        raise AssertionError(f"list_listings did not end after {MAX_PAGES} pages")

    def test_listings_page_to_the_end_without_duplicates(
        self, connector_class: type[Connector], contract: ContractSetup, connector: Connector
    ) -> None:
        _needs(connector_class, Capability.LIST_LISTINGS)
        listings = self._all_listings(connector)
        ids = [listing.listing_id for listing in listings]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        assert not twice, f"listings returned more than once: {twice}"
        assert len(ids) >= contract.min_listings, (len(ids), contract.min_listings)
        for listing in listings:
            assert isinstance(listing, Listing)
            assert listing.listing_id

    # -- push -----------------------------------------------------------------------------------

    def test_push_answers_one_result_per_item_and_a_refused_item_fails_alone(
        self,
        connector_class: type[Connector],
        contract: ContractSetup,
        connector: Connector,
        secrets: list[str],
    ) -> None:
        _needs(connector_class, Capability.LIST_LISTINGS, Capability.PUSH_QUANTITIES)
        assert contract.refuse is not None, "ContractSetup.refuse is needed to test pushes"
        candidates = [x for x in self._all_listings(connector) if contract.pushable(x)]
        assert len(candidates) >= 2, "the push test needs two pushable listings"
        chosen = candidates[: max(2, contract.push_items)]
        items = [
            PushItem(listing, (listing.quantity or 0) + 3, listing.quantity) for listing in chosen
        ]
        refused = contract.refuse(items[0])
        items[0] = refused
        refused_id = refused.listing.listing_id
        final: dict[str, PushResult] = {}
        pending = items
        for round_ in range(PUSH_ROUNDS):
            if round_:
                contract.settle()
            results: list[PushResult] = []
            for start in range(0, len(pending), connector_class.max_push_batch):
                batch = pending[start : start + connector_class.max_push_batch]
                answered = connector.push_quantities(batch)
                ids = sorted(r.listing_id for r in answered)
                assert ids == sorted(i.listing.listing_id for i in batch), (
                    "push_quantities must answer exactly one result per item",
                    ids,
                )
                results.extend(answered)
            for result in results:
                assert isinstance(result, PushResult)
                for secret in secrets:
                    assert secret not in (result.message or "")
                final[result.listing_id] = result
            pending = [i for i in pending if final[i.listing.listing_id].status is PushStatus.RETRY]
            if not pending:
                break
        assert final[refused_id].status is PushStatus.FAILED, final[refused_id]
        assert final[refused_id].message, "a refused item says why"
        others = {lid: r.status for lid, r in final.items() if lid != refused_id}
        assert others == dict.fromkeys(others, PushStatus.OK), others

    # -- orders ---------------------------------------------------------------------------------

    def _pull(
        self,
        connector: Connector,
        since: datetime,
        rejected: dict[str, RejectedOrder] | None = None,
    ) -> dict[str, ChannelOrder]:
        orders: dict[str, ChannelOrder] = {}
        cursor: str | None = None
        seen_cursors: set[str] = set()
        for _page in range(MAX_PAGES):
            page = connector.pull_orders(since, cursor)
            for order in page.orders:
                assert isinstance(order, ChannelOrder)
                orders[order.order_id] = order  # an order may come again on a later page
            for rejection in page.rejected:
                assert isinstance(rejection, RejectedOrder)
                if rejected is not None:
                    rejected[rejection.order_id] = rejection
            cursor = page.next_cursor
            if cursor is None:
                return orders
            assert cursor not in seen_cursors, f"pull_orders gave cursor {cursor!r} twice"
            seen_cursors.add(cursor)
        raise AssertionError(f"pull_orders did not end after {MAX_PAGES} pages")

    def test_order_pull_is_idempotent_across_the_overlap(
        self,
        connector_class: type[Connector],
        contract: ContractSetup,
        connector: Connector,
        _built: list[Connector],
    ) -> None:
        _needs(connector_class, Capability.PULL_ORDERS)
        assert contract.since is not None, "ContractSetup.since is needed to pull orders"
        first = self._pull(connector, contract.since)
        again = self._pull(connector, contract.since)
        restarted = self._pull(
            _build(connector_class, contract, _built, contract.settings), contract.since
        )
        assert len(first) >= contract.min_orders, (len(first), contract.min_orders)
        assert again == first
        assert restarted == first

    def test_a_corrupt_order_is_refused_by_id_and_the_others_still_come(
        self,
        connector_class: type[Connector],
        contract: ContractSetup,
        connector: Connector,
    ) -> None:
        _needs(connector_class, Capability.PULL_ORDERS)
        if contract.corrupt is None:
            pytest.skip("ContractSetup.corrupt is not given")
        assert contract.since is not None, "ContractSetup.since is needed to pull orders"
        before = self._pull(connector, contract.since)
        order_id = contract.corrupt()
        rejected: dict[str, RejectedOrder] = {}
        after = self._pull(connector, contract.since, rejected)
        assert list(rejected) == [order_id]
        assert rejected[order_id].field and rejected[order_id].reason
        assert after == {k: v for k, v in before.items() if k != order_id}

    # -- fulfilment -----------------------------------------------------------------------------

    def _requests(
        self, connector_class: type[Connector], contract: ContractSetup
    ) -> list[FulfilmentRequest]:
        _needs(connector_class, Capability.FULFIL_ORDERS)
        if contract.fulfilment_requests is None:
            pytest.skip("ContractSetup.fulfilment_requests is not given")
        requests = list(contract.fulfilment_requests())
        assert requests, "fulfilment_requests() gave no request"
        assert len({r.reference for r in requests}) == len(requests), "references repeat"
        return requests

    def test_fulfil_answers_each_request_once_and_existed_when_sent_again(
        self,
        connector_class: type[Connector],
        contract: ContractSetup,
        connector: Connector,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        requests = self._requests(connector_class, contract)
        results = connector.fulfil_orders(requests)
        assert sorted(r.reference for r in results) == sorted(r.reference for r in requests)
        created = {r.reference: r for r in results}
        for reference, result in created.items():
            assert result.outcome is SubmitOutcome.CREATED, (reference, result)
            assert result.remote_id, f"{reference}: CREATED without the provider's order id"
        first = requests[0]
        [again] = connector.fulfil_orders([first])
        assert again.reference == first.reference
        assert again.outcome is SubmitOutcome.EXISTED, again
        if again.remote_id is not None:
            assert again.remote_id == created[first.reference].remote_id
        for request in requests:
            for value in (request.recipient.name, request.recipient.address1):
                assert value not in caplog.text, "a shipping address in the log"

    def test_find_fulfilments_finds_a_created_order_by_its_reference(
        self,
        connector_class: type[Connector],
        contract: ContractSetup,
        connector: Connector,
    ) -> None:
        requests = self._requests(connector_class, contract)
        [result] = connector.fulfil_orders(requests[:1])
        assert result.outcome is SubmitOutcome.CREATED, result
        never = f"{requests[0].reference}-never-sent"
        found = connector.find_fulfilments([requests[0].reference, never])
        assert set(found) == {requests[0].reference}
        assert found[requests[0].reference].reference == requests[0].reference
        assert found[requests[0].reference].remote_id == result.remote_id

    # -- credentials ----------------------------------------------------------------------------

    def test_refused_credentials_raise_a_channel_error_showing_no_secret(
        self,
        connector_class: type[Connector],
        contract: ContractSetup,
        secrets: list[str],
        _built: list[Connector],
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        model = connector_class.Settings.model_validate(dict(contract.settings))
        keys = [k for k in type(model).model_fields if isinstance(getattr(model, k), SecretStr)]
        if not keys:
            pytest.skip(f"{connector_class.__name__} settings hold no SecretStr")
        wrong = {k: _wrong(getattr(model, k).get_secret_value()) for k in keys}
        connector = _build(connector_class, contract, _built, {**contract.settings, **wrong})
        calls: list[tuple[Capability, Callable[[], object]]] = [
            (Capability.LIST_LISTINGS, lambda: connector.list_listings(None)),
            (Capability.PULL_ORDERS, lambda: connector.pull_orders(contract.since or _EPOCH, None)),
            (Capability.PULL_STOCK, connector.pull_stock),
        ]
        call = next((c for cap, c in calls if cap in connector_class.capabilities), None)
        if call is None:
            pytest.skip("no pull or listing hook to call")
        with pytest.raises(ChannelError) as excinfo:
            call()
        for secret in [*secrets, *wrong.values()]:
            assert secret not in str(excinfo.value), "a secret in the error message"
            assert secret not in caplog.text, "a secret in the log"


def _build(
    connector_class: type[Connector],
    contract: ContractSetup,
    built: list[Connector],
    settings: Mapping[str, Any],
) -> Connector:
    connector = contract.build(settings)
    built.append(connector)
    assert isinstance(connector, connector_class), (
        f"build() made a {type(connector).__name__}, not a {connector_class.__name__}"
    )
    return connector


def _needs(connector_class: type[Connector], *capabilities: Capability) -> None:
    missing = [c.value for c in capabilities if c not in connector_class.capabilities]
    if missing:
        pytest.skip(f"{connector_class.__name__} does not declare {', '.join(missing)}")


_EPOCH = datetime.fromisoformat("2000-01-01T00:00:00+00:00")


def _wrong(secret: str) -> str:
    """A credential of the same shape that the channel will refuse."""
    flipped = "".join(
        chr(ord(c) ^ 1) if c.isalnum() and chr(ord(c) ^ 1).isalnum() else c for c in secret[-4:]
    )
    return secret[:-4] + flipped if len(secret) > 4 else secret + "-wrong"


def connector_tests(
    connector_class: type[Connector] | None = None,
) -> type[ConnectorContractTests]:
    """The contract test class for ``connector_class``: subclass it in a test module (its
    name starting with ``Test``) and give it a ``contract`` fixture (see the module).
    Without a class, the subclass overrides the ``connector_class`` fixture instead."""
    if connector_class is None:
        return ConnectorContractTests
    return type(
        f"{connector_class.__name__}ContractTests",
        (ConnectorContractTests,),
        {"connector_class": connector_class},
    )


def with_listing_id(item: PushItem, listing_id: str) -> PushItem:
    """``item`` for the listing ``listing_id`` (same SKU, quantity and extras): for a
    ``refuse`` that pushes a listing the channel does not have."""
    return replace(item, listing=replace(item.listing, listing_id=listing_id))
