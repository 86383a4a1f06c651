"""The Vendure connector's keep-selling flag: the variant's own ``outOfStockThreshold``
(minus ``backorder_limit`` to keep selling, 0 to stop; ``useGlobalOutOfStockThreshold``
false), sent in the same ``updateProductVariants`` input only where the flag changes; a
negative threshold is never made up for in stockOnHand nor counted in what is read back."""

from __future__ import annotations

from sellable_vendure.connector import VendureConnector

from sellable.sdk import Listing, PushItem, PushResult
from tests.connectors.vendure.payloads import Script, connector, variant, variants_by_id

ON = variant("1", "BEANS-12OZ", [("1", 0, 2)])  # uses the global threshold 1
BACKORDERING = variant("2", "MUG-CERAMIC", [("1", 3, 0)], threshold=-1000, use_global=False)


def listing(variant_id: str, sku: str) -> Listing:
    return Listing(
        f"{variant_id}@1",
        sku,
        variant_id,
        extra={"variant_id": variant_id, "stock_location_id": "1"},
    )


def updated(variant_id: str, on_hand: int, threshold: int) -> list[dict[str, object]]:
    return [
        {
            "id": variant_id,
            "stockLevels": [{"stockLocationId": "1", "stockOnHand": on_hand}],
            "outOfStockThreshold": threshold,
            "useGlobalOutOfStockThreshold": False,
        }
    ]


def test_push_sets_the_threshold_where_the_flag_changes_and_makes_up_for_none() -> None:
    script = Script().login().then("SellableVariantsById", variants_by_id([ON, BACKORDERING]))
    script.then(
        "SellableSetStockTogether",
        {"data": {"updateProductVariants": updated("1", 2, -1000) + updated("2", 0, 0)}},
    )
    items = [
        PushItem(listing("1", "BEANS-12OZ"), 0, backorders=True, previous_backorders=False),
        PushItem(listing("2", "MUG-CERAMIC"), 0, backorders=False, previous_backorders=True),
    ]

    with connector(script, backorder_limit=1000) as vendure:
        results = vendure.push_quantities(items)

    assert script.sent[2].variables == {
        "input": [
            {
                "id": "1",
                # 0 + 2 allocated; the global threshold 1 no longer applies to the variant
                "stockLevels": [{"stockLocationId": "1", "stockOnHand": 2}],
                "outOfStockThreshold": -1000,
                "useGlobalOutOfStockThreshold": False,
            },
            {
                "id": "2",
                "stockLevels": [{"stockLocationId": "1", "stockOnHand": 0}],
                "outOfStockThreshold": 0,
                "useGlobalOutOfStockThreshold": False,
            },
        ]
    }
    assert "outOfStockThreshold useGlobalOutOfStockThreshold }" in script.sent[2].body["query"]
    assert sorted(results, key=lambda r: r.listing_id) == [
        PushResult.ok("1@1"),
        PushResult.ok("2@1"),
    ]


def test_push_without_a_flag_change_sends_no_threshold_and_ignores_a_negative_one() -> None:
    script = Script().login().then("SellableVariantsById", variants_by_id([BACKORDERING]))
    answer = {
        "data": {
            "updateProductVariants": [
                {"id": "2", "stockLevels": [{"stockLocationId": "1", "stockOnHand": 4}]}
            ]
        }
    }
    script.then("SellableSetStockTogether", answer)

    with connector(script) as vendure:
        results = vendure.push_quantities(
            [PushItem(listing("2", "MUG-CERAMIC"), 4, backorders=True, previous_backorders=True)]
        )

    assert script.sent[2].variables == {
        "input": [{"id": "2", "stockLevels": [{"stockLocationId": "1", "stockOnHand": 4}]}]
    }
    assert "outOfStockThreshold" not in script.sent[2].body["query"]
    assert results == [PushResult.ok("2@1")]


def test_push_fails_a_listing_whose_threshold_was_not_applied() -> None:
    script = Script().login().then("SellableVariantsById", variants_by_id([ON]))
    script.then("SellableSetStockTogether", {"data": {"updateProductVariants": updated("1", 2, 0)}})

    with connector(script, backorder_limit=1000) as vendure:
        results = vendure.push_quantities(
            [PushItem(listing("1", "BEANS-12OZ"), 0, backorders=True, previous_backorders=False)]
        )

    assert results == [
        PushResult.failed("1@1", "Vendure holds outOfStockThreshold 0, not the -1000 sent")
    ]


def test_read_back_leaves_out_what_a_negative_threshold_lets_vendure_sell() -> None:
    script = Script().login().then("SellableVariantsById", variants_by_id([BACKORDERING]))

    with connector(script) as vendure:
        assert vendure.read_quantities([listing("2", "MUG-CERAMIC")]) == {"2@1": 3}


def test_vendure_declares_its_keep_selling_flag() -> None:
    assert VendureConnector.supports_backorders is True
