"""The SDK listing a push hands over, from a row of the listing map (push.listing_of):
the stored extra and warehouses are parsed once per distinct text, and no two listings
share anything they could change."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sellable.core.rules import Offer
from sellable.sync.jobs.push import listing_of, push_item


def _row(lid: str, extra: str | None, warehouses: str | None = "main,fba") -> dict[str, Any]:
    return {
        "listing_id": lid,
        "channel_sku": f"SKU-{lid}",
        "parent_id": None,
        "warehouses": warehouses,
        "channel_quantity": 3,
        "extra": extra,
    }


@pytest.mark.parametrize(
    "extra",
    [
        '{"productType": "PRODUCT"}',
        '{"inventoryItemId": 7, "tracked": true, "note": null}',
        '{"locations": ["a", "b"], "meta": {"k": "v"}}',
    ],
    ids=["strings", "scalars", "nested"],
)
def test_listing_of_gives_each_listing_its_own_extra_equal_to_the_stored_one(extra: str) -> None:
    first, second = listing_of(_row("L1", extra)), listing_of(_row("L2", extra))

    assert first.extra == second.extra == json.loads(extra)
    assert first.extra is not second.extra
    for key, value in first.extra.items():
        if isinstance(value, dict | list):
            assert value is not second.extra[key]


def test_listing_of_a_changed_extra_leaves_the_next_listing_as_stored() -> None:
    stored = '{"productType": "PRODUCT"}'
    first = listing_of(_row("L1", stored))
    first.extra["productType"] = "SHOES"

    assert listing_of(_row("L2", stored)).extra == {"productType": "PRODUCT"}


@pytest.mark.parametrize(
    ("warehouses", "expected"),
    [("main,fba", ("main", "fba")), ("main", ("main",)), (None, None), ("", None)],
    ids=["two", "one", "none", "empty"],
)
def test_listing_of_reads_the_listings_own_warehouses(
    warehouses: str | None, expected: tuple[str, ...] | None
) -> None:
    listing = listing_of(_row("L1", None, warehouses))

    assert listing.warehouses == expected
    assert listing.extra == {}
    assert (listing.listing_id, listing.sku, listing.quantity) == ("L1", "SKU-L1", 3)


def test_push_item_reuses_a_listing_built_from_the_row_while_it_reads_the_same() -> None:
    row = {**_row("L1", '{"productType": "PRODUCT"}'), "last_pushed": 3, "last_backorders": False}
    built = listing_of(row)

    item = push_item(row, Offer(5), built)

    assert item.listing is built
    assert (item.quantity, item.previous) == (5, 3)


def test_push_item_builds_the_listing_again_once_the_read_back_replaced_its_quantity() -> None:
    row = {**_row("L1", '{"productType": "PRODUCT"}'), "last_pushed": 3, "last_backorders": False}
    built = listing_of(row)
    row.update(channel_quantity=4, last_pushed=None)  # as the reconcile's read-back does

    item = push_item(row, Offer(5), built)

    assert item.listing is not built
    assert item.listing.quantity == 4
    assert item.listing.extra == {"productType": "PRODUCT"}
    assert (item.quantity, item.previous) == (5, 4)
