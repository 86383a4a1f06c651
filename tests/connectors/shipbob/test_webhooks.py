"""ShipBob's signed webhooks (Standard Webhooks: HMAC-SHA256 over ``id.timestamp.body``
keyed with the base64-decoded secret after ``whsec_``) and the subscription we keep."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import respx
from sellable_shipbob.connector import WEBHOOK_TOPICS, ShipBobConnector, ShipBobSettings

from sellable.sdk import ChannelHttp, ConnectorContext, WebhookKind, WebhookRejected
from tests.connectors.shipbob.spec import check_request

V = "https://api.shipbob.com/2026-01"
SECRET = "whsec_" + base64.b64encode(b"twenty-four-bytes-secret").decode()
URL = "https://hooks.example.com/webhooks/sb"
BODY = json.dumps({"id": 5001, "reference_id": "woo:1001", "status": "Fulfilled"}).encode()


def connector(wall: Callable[[], datetime] | None = None, **settings: Any) -> ShipBobConnector:
    values: dict[str, Any] = {
        "token": "pat-token",
        "channel_id": 1,
        "locations": {"sb-chicago": 10},
        "webhook_secret": SECRET,
        "webhook_url": URL,
        **settings,
    }
    http = ChannelHttp("sb", sleep=lambda _s: None, backoff_base=0.0, wall=wall)
    made = ShipBobConnector(
        ShipBobSettings.model_validate(values), ConnectorContext("sb", ("sb-chicago",), http)
    )
    http.set_base_url(made.base_url())
    http.authenticate = made.authenticate
    return made


def signed(
    body: bytes = BODY,
    *,
    delivery: str = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W",
    stamp: int | None = None,
    secret: str = SECRET,
    topic: str = "order.shipped",
) -> dict[str, str]:
    """The headers ShipBob sends with a delivery (lower-case, as the receiver hands them)."""
    stamp = int(time.time()) if stamp is None else stamp
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signature = base64.b64encode(
        hmac.new(key, f"{delivery}.{stamp}.".encode() + body, hashlib.sha256).digest()
    ).decode()
    return {
        "webhook-id": delivery,
        "webhook-timestamp": str(stamp),
        "webhook-signature": f"v1,{signature}",
        "x-webhook-topic": topic,
        "content-type": "application/json",
    }


@pytest.mark.parametrize("topic", WEBHOOK_TOPICS)
def test_a_signed_shipment_delivery_pokes_the_fulfilment_poll(topic: str) -> None:
    headers = signed(topic=topic)
    event = connector().verify_webhook(headers, BODY)
    assert (event.kind, event.topic) == (WebhookKind.FULFILMENTS, topic)
    assert event.delivery_id == event.dedupe_key == "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"


def test_a_retry_of_a_delivery_has_the_same_dedupe_key_and_another_delivery_not() -> None:
    shipbob = connector()
    first = shipbob.verify_webhook(signed(delivery="msg_1"), BODY)
    retry = shipbob.verify_webhook(signed(delivery="msg_1", stamp=int(time.time()) - 30), BODY)
    other = shipbob.verify_webhook(signed(delivery="msg_2"), BODY)
    assert first.dedupe_key == retry.dedupe_key == "msg_1"
    assert other.dedupe_key == "msg_2"


def test_one_good_signature_among_several_verifies() -> None:
    headers = signed()
    headers["webhook-signature"] = "v1,Zm9yZ2VkIHNpZ25hdHVyZQ== " + headers["webhook-signature"]
    assert connector().verify_webhook(headers, BODY).kind is WebhookKind.FULFILMENTS


def test_a_topic_we_do_not_take_is_ignored() -> None:
    event = connector().verify_webhook(signed(topic="return.created"), BODY)
    assert event.kind is WebhookKind.IGNORED


@pytest.mark.parametrize(
    ("headers", "body", "error"),
    [
        (signed(), BODY + b" ", "does not match the body"),
        (signed(secret="whsec_" + "A" * 32), BODY, "does not match the body"),
        ({**signed(), "webhook-signature": "v2,abc"}, BODY, "does not match the body"),
        ({k: v for k, v in signed().items() if k != "webhook-id"}, BODY, "missing"),
        ({**signed(), "webhook-timestamp": "soon"}, BODY, "is not a number"),
    ],
    ids=["changed body", "other secret", "unknown version", "no id", "bad timestamp"],
)
def test_a_delivery_that_does_not_verify_is_rejected(
    headers: dict[str, str], body: bytes, error: str
) -> None:
    with pytest.raises(WebhookRejected, match=error):
        connector().verify_webhook(headers, body)


@pytest.mark.parametrize("age", [-301, 301, 3600])
def test_a_delivery_more_than_five_minutes_away_is_rejected_as_a_replay(age: int) -> None:
    now = datetime(2026, 12, 7, 10, tzinfo=UTC)  # the client's wall clock, fixed
    headers = signed(stamp=int(now.timestamp()) - age)
    with pytest.raises(WebhookRejected, match="more than 5 minutes away"):
        connector(wall=lambda: now).verify_webhook(headers, BODY)
    accepted = signed(stamp=int(now.timestamp()) - (300 if age > 0 else -300))
    assert connector(wall=lambda: now).verify_webhook(accepted, BODY).dedupe_key is not None


def test_without_a_secret_every_delivery_is_rejected() -> None:
    shipbob = connector(webhook_secret=None, webhook_url=None)
    with pytest.raises(WebhookRejected, match="no webhook_secret"):
        shipbob.verify_webhook(signed(), BODY)


# -- subscriptions -------------------------------------------------------------------------------


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as mock:
        yield mock
        problems = []
        for call in mock.calls:
            request = call.request
            problems += check_request(
                request.method,
                request.url.path,
                dict(request.url.params),
                dict(request.headers),
                request.content or None,
            )
        assert problems == []


def fingerprint(secret: str = SECRET) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[:12]


def hook(hook_id: str, description: str, url: str = URL, **extra: Any) -> dict[str, Any]:
    return {
        "id": hook_id,
        "description": description,
        "url": url,
        "topics": list(WEBHOOK_TOPICS),
        "enabled": True,
        "created_at": "2026-12-01T00:00:00Z",
        **extra,
    }


def test_sync_creates_our_subscription_with_the_secret(router: respx.MockRouter) -> None:
    router.get(f"{V}/webhook").respond(
        200, json={"items": [hook("h-9", "someone else's", "https://other.example")]}
    )
    create = router.post(f"{V}/webhook").respond(200, json={"id": "h-1", "url": URL})

    found = connector().sync_webhooks()

    assert json.loads(create.calls[0].request.content) == {
        "topics": list(WEBHOOK_TOPICS),
        "url": URL,
        "secret": SECRET,
        "description": f"sellable sb {fingerprint()}",
    }
    assert (found.created, found.removed, found.healthy) == (1, 0, True)
    assert found.subscriptions == [
        {"id": "h-1", "topic": topic, "url": URL, "status": "active"} for topic in WEBHOOK_TOPICS
    ]
    assert dict(router.calls[0].request.url.params) == {"RecordsPerPage": "250"}


def test_sync_keeps_ours_and_remakes_a_stale_or_disabled_one(router: respx.MockRouter) -> None:
    mine = f"sellable sb {fingerprint()}"
    router.get(f"{V}/webhook").respond(
        200,
        json={
            "items": [
                hook("h-1", mine),
                hook("h-2", mine, "https://old.example/webhooks/sb"),
                hook("h-3", "sellable sb 000000000000"),  # made with an old secret
                hook("h-4", "sellable other-channel 111"),  # another channel's
            ]
        },
    )
    deleted = router.delete(url__regex=rf"{V}/webhook/h-\d").respond(204)
    create = router.post(f"{V}/webhook")

    found = connector().sync_webhooks()

    assert sorted(c.request.url.path.rsplit("/", 1)[1] for c in deleted.calls) == ["h-2", "h-3"]
    assert create.calls.call_count == 0
    assert (found.created, found.removed) == (0, 2)
    assert {s["id"] for s in found.subscriptions} == {"h-1"}


def test_sync_without_webhook_url_removes_ours(router: respx.MockRouter) -> None:
    router.get(f"{V}/webhook").respond(
        200, json={"items": [hook("h-1", f"sellable sb {fingerprint()}"), hook("h-9", "x")]}
    )
    deleted = router.delete(f"{V}/webhook/h-1").respond(204)

    found = connector(webhook_url=None).sync_webhooks()

    assert deleted.calls.call_count == 1
    assert (found.created, found.removed, found.subscriptions) == (0, 1, [])
