"""The Admin API client: login and its token, one re-login, per-variant stock updates."""

from __future__ import annotations

import pytest
from sellable_vendure.client import StockUpdate, StockUpdateOutcome

from sellable.sdk import AuthenticationError, ChannelError
from tests.connectors.vendure.payloads import (
    FORBIDDEN,
    LOGIN_REFUSED,
    TOKEN,
    Script,
    connector,
    variants_page,
)

NO_VARIANTS = variants_page([], 0)


def test_client_logs_in_once_and_sends_the_token_from_the_header_as_bearer() -> None:
    script = Script().login().then("SellableVariants", NO_VARIANTS)
    script.then("SellableVariants", NO_VARIANTS)

    with connector(script) as vendure:
        vendure.client.variants(0, 100)
        vendure.client.variants(100, 100)

    login, first, second = script.sent
    assert login.variables == {"username": "sync@example.com", "password": "s3cret-pass"}
    assert "authorization" not in login.headers
    assert first.headers["authorization"] == second.headers["authorization"] == f"Bearer {TOKEN}"
    assert first.variables == {"options": {"skip": 0, "take": 100, "sort": {"id": "ASC"}}}
    assert vendure.client.logins == 1


def test_client_logs_in_again_once_when_vendure_refuses_the_session() -> None:
    script = Script().login().then("SellableVariants", FORBIDDEN).login()
    script.then("SellableVariants", NO_VARIANTS)

    with connector(script) as vendure:
        page = vendure.client.variants(0, 100)

    assert page.total == 0
    assert script.operations() == [
        "SellableLogin",
        "SellableVariants",
        "SellableLogin",
        "SellableVariants",
    ]


def test_client_refused_twice_after_a_fresh_login_is_an_authentication_error() -> None:
    script = Script().login().then("SellableVariants", FORBIDDEN).login()
    script.then("SellableVariants", FORBIDDEN)

    with connector(script) as vendure, pytest.raises(AuthenticationError) as raised:
        vendure.client.variants(0, 100)

    assert str(raised.value) == (
        "vendure: Vendure refused the request of 'sync@example.com' after a fresh "
        "login: FORBIDDEN: You are not currently authorized to perform this action at "
        "productVariants (see the permissions in docs/connectors/vendure.md)"
    )


def test_client_login_refused_names_the_user_and_never_the_password() -> None:
    script = Script().then("SellableLogin", LOGIN_REFUSED)

    with connector(script) as vendure, pytest.raises(AuthenticationError) as raised:
        vendure.client.variants(0, 100)

    assert "s3cret-pass" not in str(raised.value)
    assert str(raised.value) == (
        "vendure: Vendure refused the login of 'sync@example.com': "
        "INVALID_CREDENTIALS_ERROR: The provided credentials are invalid"
    )


def test_client_login_without_token_header_says_to_enable_bearer_tokens() -> None:
    script = Script().then("SellableLogin", {"data": {"login": {"__typename": "CurrentUser"}}})

    with connector(script) as vendure, pytest.raises(AuthenticationError) as raised:
        vendure.client.variants(0, 100)

    assert "authOptions.tokenMethod to ['bearer', 'cookie']" in str(raised.value)


def test_client_other_graphql_errors_are_channel_errors_with_code_and_path() -> None:
    error = {
        "errors": [
            {
                "message": 'Cannot query field "stockLevels" on type "ProductVariant".',
                "extensions": {"code": "GRAPHQL_VALIDATION_FAILED"},
            }
        ]
    }
    script = Script().login().then("SellableVariants", error)

    with connector(script) as vendure, pytest.raises(ChannelError) as raised:
        vendure.client.variants(0, 100)

    assert not isinstance(raised.value, AuthenticationError)
    assert str(raised.value) == (
        "vendure: Vendure: GRAPHQL_VALIDATION_FAILED: Cannot query field "
        '"stockLevels" on type "ProductVariant".'
    )


def updated(id_: str, location: str, on_hand: int) -> list[dict[str, object]]:
    return [{"id": id_, "stockLevels": [{"stockLocationId": location, "stockOnHand": on_hand}]}]


def test_client_stock_update_applies_what_ran_before_an_error_and_resends_the_rest() -> None:
    # Recorded from Vendure 3.7.3: the failing field nulls `data` and stops the fields after it.
    not_found = {
        "errors": [
            {
                "message": 'No ProductVariant with the id "999" could be found',
                "locations": [{"line": 3, "column": 2}],
                "path": ["v1"],
                "extensions": {"code": "ENTITY_NOT_FOUND"},
            }
        ],
        "data": None,
    }
    script = Script().login().then("SellableSetStock", not_found)
    script.then("SellableSetStock", {"data": {"v0": updated("3", "1", 7)}})

    with connector(script) as vendure:
        outcomes = vendure.client.set_stock_levels_one_by_one(
            [
                StockUpdate("1", (("1", 5),)),
                StockUpdate("999", (("1", 6),)),
                StockUpdate("3", (("1", 7),)),
            ]
        )

    assert outcomes == [
        StockUpdateOutcome("1", {"1": 5}),
        StockUpdateOutcome(
            "999",
            None,
            'ENTITY_NOT_FOUND: No ProductVariant with the id "999" could be found at v1',
        ),
        StockUpdateOutcome("3", {"1": 7}),
    ]
    first, second = script.sent[1:]
    assert first.variables == {
        "v0": [{"id": "1", "stockLevels": [{"stockLocationId": "1", "stockOnHand": 5}]}],
        "v1": [{"id": "999", "stockLevels": [{"stockLocationId": "1", "stockOnHand": 6}]}],
        "v2": [{"id": "3", "stockLevels": [{"stockLocationId": "1", "stockOnHand": 7}]}],
    }
    assert second.variables == {
        "v0": [{"id": "3", "stockLevels": [{"stockLocationId": "1", "stockOnHand": 7}]}]
    }
    assert "v0: updateProductVariants(input: $v0)" in second.body["query"]


def test_client_stock_update_rejected_as_a_whole_fails_every_variant() -> None:
    invalid = {
        "errors": [{"message": "Syntax Error", "extensions": {"code": "GRAPHQL_PARSE_FAILED"}}]
    }
    script = Script().login().then("SellableSetStock", invalid)

    with connector(script) as vendure:
        outcomes = vendure.client.set_stock_levels_one_by_one(
            [StockUpdate("1", (("1", 5),)), StockUpdate("2", (("1", 6),))]
        )

    reason = "GRAPHQL_PARSE_FAILED: Syntax Error"
    assert outcomes == [
        StockUpdateOutcome("1", None, reason),
        StockUpdateOutcome("2", None, reason),
    ]


def test_client_stock_update_sends_every_variant_in_one_field_and_reads_each_answer() -> None:
    answer = {"data": {"updateProductVariants": updated("3", "1", 7) + updated("1", "1", 5)}}
    script = Script().login().then("SellableSetStockTogether", answer)

    with connector(script) as vendure:
        outcomes = vendure.client.set_stock_levels(
            [StockUpdate("1", (("1", 5),)), StockUpdate("3", (("1", 7),))]
        )

    assert outcomes == [StockUpdateOutcome("1", {"1": 5}), StockUpdateOutcome("3", {"1": 7})]
    assert script.sent[1].variables == {
        "input": [
            {"id": "1", "stockLevels": [{"stockLocationId": "1", "stockOnHand": 5}]},
            {"id": "3", "stockLevels": [{"stockLocationId": "1", "stockOnHand": 7}]},
        ]
    }
    assert "updateProductVariants(input: $input)" in script.sent[1].body["query"]


def test_client_stock_update_refused_together_is_sent_again_one_field_per_variant() -> None:
    # One unknown id fails the whole field, which Vendure's @Transaction() rolls back, so
    # nothing was applied (test_vendure_contract.py runs this against Vendure 3.7.3).
    not_found = {
        "errors": [
            {
                "message": 'No ProductVariant with the id "999" could be found',
                "locations": [{"line": 2, "column": 3}],
                "path": ["updateProductVariants"],
                "extensions": {"code": "ENTITY_NOT_FOUND"},
            }
        ],
        "data": None,
    }
    aliased = {
        "errors": [{**not_found["errors"][0], "path": ["v1"]}],  # type: ignore[index]
        "data": None,
    }
    script = Script().login().then("SellableSetStockTogether", not_found)
    script.then("SellableSetStock", aliased)
    script.then("SellableSetStock", {"data": {"v0": updated("3", "1", 7)}})

    with connector(script) as vendure:
        outcomes = vendure.client.set_stock_levels(
            [
                StockUpdate("1", (("1", 5),)),
                StockUpdate("999", (("1", 6),)),
                StockUpdate("3", (("1", 7),)),
            ]
        )

    assert outcomes == [
        StockUpdateOutcome("1", {"1": 5}),
        StockUpdateOutcome(
            "999",
            None,
            'ENTITY_NOT_FOUND: No ProductVariant with the id "999" could be found at v1',
        ),
        StockUpdateOutcome("3", {"1": 7}),
    ]
    assert script.operations() == [
        "SellableLogin",
        "SellableSetStockTogether",
        "SellableSetStock",
        "SellableSetStock",
    ]


def test_client_stock_update_without_the_answer_of_a_variant_fails_that_variant() -> None:
    answer = {"data": {"updateProductVariants": updated("1", "1", 5)}}
    script = Script().login().then("SellableSetStockTogether", answer)

    with connector(script) as vendure:
        outcomes = vendure.client.set_stock_levels(
            [StockUpdate("1", (("1", 5),)), StockUpdate("3", (("1", 7),))]
        )

    assert outcomes == [
        StockUpdateOutcome("1", {"1": 5}),
        StockUpdateOutcome("3", None, "unexpected answer to updateProductVariants: [None]"),
    ]
