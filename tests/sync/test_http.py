"""The HTTP policy every connector gets (sellable.sdk's ChannelHttp): retries, Retry-After,
the token bucket, stopping at shutdown (per-job health is tested in test_health.py).

HTTP is faked with respx at the transport; time is a fake clock whose ``sleep`` records the
duration and moves the clock on, so no test ever sleeps.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import httpx
import pytest
import respx

from sellable.errors import (
    AuthenticationError,
    ChannelError,
    ChannelPayloadError,
    TemporaryChannelError,
)
from sellable.sdk import (
    USER_AGENT,
    ChannelHttp,
    RateLimit,
    TokenBucket,
    parse_retry_after,
)

BASE_URL = "https://shop.example.com/api"
CHANNEL = "shop"
TOKEN = "tok-5ecr3t-c0ffee"
WALL = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


class FakeTime:
    """A monotonic clock that only moves when something sleeps (or a test advances it)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds


def constant(value: float) -> Callable[[], float]:
    return lambda: value


def bearer(headers: dict[str, str]) -> None:
    headers["Authorization"] = f"Bearer {TOKEN}"


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    """The channel's API: every route a test declares must be called, nothing else may be."""
    with respx.mock(base_url=BASE_URL, assert_all_called=True) as router:
        yield router


@pytest.fixture
def make_http(fake_time: FakeTime) -> Iterator[Callable[..., ChannelHttp]]:
    """Build a ChannelHttp on the fake clock; jitter 0.5 makes the backoff factor exactly 1."""
    made: list[ChannelHttp] = []

    def make(**options: object) -> ChannelHttp:
        arguments: dict[str, object] = {
            "base_url": BASE_URL,
            "clock": fake_time.clock,
            "sleep": fake_time.sleep,
            "jitter": constant(0.5),
        }
        arguments.update(options)
        http = ChannelHttp(CHANNEL, **arguments)  # type: ignore[arg-type]
        made.append(http)
        return http

    yield make
    for http in made:
        http.close()


# -- the client ---------------------------------------------------------------------------------


def test_http_request_returns_response_with_user_agent(
    api: respx.MockRouter, make_http: Callable[..., ChannelHttp], fake_time: FakeTime
) -> None:
    route = api.get("/orders", params={"page": "2"}).respond(200, json={"orders": []})
    http = make_http()

    response = http.request("GET", "/orders", params={"page": 2})

    assert response.json() == {"orders": []}
    assert route.call_count == 1
    request = route.calls.last.request
    assert request.url == "https://shop.example.com/api/orders?page=2"
    assert request.headers["User-Agent"] == USER_AGENT
    assert (http.requests, http.retries, http.throttled) == (1, 0, 0)
    assert fake_time.sleeps == []


@pytest.mark.parametrize(
    ("timeout", "expected"),
    [
        pytest.param(
            30.0,
            {"connect": 10.0, "read": 30.0, "write": 30.0, "pool": 30.0},
            id="connect-capped-at-10s",
        ),
        pytest.param(
            4.0, {"connect": 4.0, "read": 4.0, "write": 4.0, "pool": 4.0}, id="short-timeout"
        ),
    ],
)
def test_http_request_has_timeouts(
    api: respx.MockRouter,
    make_http: Callable[..., ChannelHttp],
    timeout: float,
    expected: dict[str, float],
) -> None:
    route = api.get("/orders").respond(200)
    make_http(timeout=timeout).request("GET", "/orders")
    assert route.calls.last.request.extensions["timeout"] == expected


def test_http_set_base_url_moves_every_later_request(
    make_http: Callable[..., ChannelHttp],
) -> None:
    http = make_http(base_url="")
    http.set_base_url("https://other.example.com/v2")
    with respx.mock(base_url="https://other.example.com/v2") as router:
        route = router.get("/listings").respond(200)
        http.request("GET", "/listings")
    assert route.call_count == 1


def test_http_authenticate_runs_on_every_attempt_and_leaves_caller_headers_alone(
    api: respx.MockRouter, make_http: Callable[..., ChannelHttp]
) -> None:
    route = api.post("/quantities").mock(side_effect=[httpx.Response(503), httpx.Response(200)])
    http = make_http(authenticate=bearer)
    headers = {"X-Request-Id": "abc"}

    http.request("POST", "/quantities", json={"items": []}, headers=headers)

    assert route.call_count == 2
    for call in route.calls:
        assert call.request.headers["Authorization"] == f"Bearer {TOKEN}"
        assert call.request.headers["X-Request-Id"] == "abc"
    assert headers == {"X-Request-Id": "abc"}


def test_http_on_response_sees_every_answer(
    api: respx.MockRouter, make_http: Callable[..., ChannelHttp]
) -> None:
    api.get("/orders").mock(side_effect=[httpx.Response(500), httpx.Response(200)])
    seen: list[int] = []
    http = make_http(on_response=lambda response: seen.append(response.status_code))
    http.request("GET", "/orders")
    assert seen == [500, 200]


# -- retries ------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_http_retries_throttling_and_server_errors(
    api: respx.MockRouter,
    make_http: Callable[..., ChannelHttp],
    fake_time: FakeTime,
    status: int,
) -> None:
    route = api.get("/orders").mock(
        side_effect=[httpx.Response(status), httpx.Response(200, json={"ok": True})]
    )
    http = make_http()

    response = http.request("GET", "/orders")

    assert response.status_code == 200
    assert route.call_count == 2
    assert fake_time.sleeps == [0.5]
    assert (http.requests, http.retries) == (2, 1)
    assert http.throttled == (1 if status == 429 else 0)


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(httpx.ConnectError("connection refused"), id="connect-refused"),
        pytest.param(httpx.ConnectTimeout("connect timed out"), id="connect-timeout"),
        pytest.param(httpx.ReadTimeout("read timed out"), id="read-timeout"),
        pytest.param(httpx.ReadError("connection reset by peer"), id="connection-reset"),
        pytest.param(
            httpx.RemoteProtocolError("server disconnected without sending a response"),
            id="server-disconnected",
        ),
    ],
)
def test_http_retries_transport_errors(
    api: respx.MockRouter,
    make_http: Callable[..., ChannelHttp],
    fake_time: FakeTime,
    error: httpx.TransportError,
) -> None:
    route = api.get("/orders").mock(side_effect=[error, httpx.Response(200)])
    assert make_http().request("GET", "/orders").status_code == 200
    assert route.call_count == 2
    assert fake_time.sleeps == [0.5]


@pytest.mark.parametrize(
    ("error", "message"),
    [
        pytest.param(
            httpx.ReadTimeout("read timed out"),
            "shop: GET /orders: timed out (ReadTimeout)",
            id="timeout",
        ),
        pytest.param(
            httpx.ConnectError("connection refused"),
            "shop: GET /orders: ConnectError: connection refused",
            id="connect-error",
        ),
    ],
)
def test_http_transport_error_after_last_attempt_is_temporary_and_chained(
    api: respx.MockRouter,
    make_http: Callable[..., ChannelHttp],
    fake_time: FakeTime,
    error: httpx.TransportError,
    message: str,
) -> None:
    route = api.get("/orders").mock(side_effect=error)

    with pytest.raises(TemporaryChannelError) as excinfo:
        make_http(max_attempts=3).request("GET", "/orders")

    assert route.call_count == 3
    assert fake_time.sleeps == [0.5, 1.0]
    assert str(excinfo.value) == message
    assert excinfo.value.channel == CHANNEL
    assert isinstance(excinfo.value.__cause__, type(error))


def test_http_gives_up_after_max_attempts(
    api: respx.MockRouter, make_http: Callable[..., ChannelHttp], fake_time: FakeTime
) -> None:
    route = api.get("/orders").respond(503)
    http = make_http(max_attempts=4)

    with pytest.raises(TemporaryChannelError) as excinfo:
        http.request("GET", "/orders")

    assert route.call_count == 4
    assert fake_time.sleeps == [0.5, 1.0, 2.0]
    assert str(excinfo.value) == "shop: GET /api/orders: HTTP 503"
    assert excinfo.value.retry_after is None
    assert (http.requests, http.retries) == (4, 3)


def test_http_retry_false_sends_once(
    api: respx.MockRouter, make_http: Callable[..., ChannelHttp], fake_time: FakeTime
) -> None:
    route = api.post("/quantities").respond(503)
    with pytest.raises(TemporaryChannelError):
        make_http().request("POST", "/quantities", json={}, retry=False)
    assert route.call_count == 1
    assert fake_time.sleeps == []


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        pytest.param(
            {"jitter": constant(0.5)}, [0.5, 1.0, 2.0, 4.0], id="doubling-with-factor-one"
        ),
        pytest.param({"jitter": constant(0.0)}, [0.25, 0.5, 1.0, 2.0], id="least-jitter"),
        pytest.param({"jitter": constant(1.0)}, [0.75, 1.5, 3.0, 6.0], id="most-jitter"),
        pytest.param(
            # tenacity also asks for the wait after the last attempt, before it stops.
            {"jitter": iter([0.0, 1.0, 0.5, 0.25, 0.5]).__next__},
            [0.25, 1.5, 2.0, 3.0],
            id="fresh-jitter-per-attempt",
        ),
        pytest.param(
            {"backoff_base": 10.0, "backoff_max": 15.0}, [10.0, 15.0, 15.0, 15.0], id="capped"
        ),
    ],
)
def test_http_backoff_is_exponential_with_jitter(
    api: respx.MockRouter,
    make_http: Callable[..., ChannelHttp],
    fake_time: FakeTime,
    options: dict[str, object],
    expected: list[float],
) -> None:
    api.get("/orders").respond(500)
    with pytest.raises(TemporaryChannelError):
        make_http(max_attempts=5, **options).request("GET", "/orders")
    assert fake_time.sleeps == expected


def test_http_logs_each_retry_with_channel_and_reason(
    api: respx.MockRouter,
    make_http: Callable[..., ChannelHttp],
    caplog: pytest.LogCaptureFixture,
) -> None:
    api.get("/orders").mock(side_effect=[httpx.Response(502), httpx.Response(200)])
    with caplog.at_level(logging.DEBUG, logger="sellable.http"):
        make_http().request("GET", "/orders")
    # DEBUG: a failing channel is logged by the engine, once when it breaks
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (
            logging.DEBUG,
            "channel shop: attempt 1 failed (shop: GET /api/orders: HTTP 502); retrying in 0.50s",
        )
    ]


# -- Retry-After --------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 503])
def test_http_retry_after_seconds_is_the_wait(
    api: respx.MockRouter,
    make_http: Callable[..., ChannelHttp],
    fake_time: FakeTime,
    status: int,
) -> None:
    route = api.get("/orders").mock(
        side_effect=[httpx.Response(status, headers={"Retry-After": "7"}), httpx.Response(200)]
    )
    make_http().request("GET", "/orders")
    assert route.call_count == 2
    assert fake_time.sleeps == [7.0]


def test_http_retry_after_is_kept_on_the_error(
    api: respx.MockRouter, make_http: Callable[..., ChannelHttp], fake_time: FakeTime
) -> None:
    route = api.get("/orders").respond(429, headers={"Retry-After": "3"})
    with pytest.raises(TemporaryChannelError) as excinfo:
        make_http(max_attempts=2, wall=lambda: WALL).request("GET", "/orders")
    assert route.call_count == 2
    assert fake_time.sleeps == [3.0]
    assert excinfo.value.retry_after == 3.0
    assert str(excinfo.value) == (
        "shop: GET /api/orders: HTTP 429 (throttled); Retry-After: waiting until "
        f"{(WALL + timedelta(seconds=3)).isoformat()}"
    )


def test_http_retry_after_longer_than_backoff_max_fails_the_call_at_once(
    api: respx.MockRouter, make_http: Callable[..., ChannelHttp], fake_time: FakeTime
) -> None:
    # A header asking for ten minutes must not stall a worker thread, nor be ignored: the
    # call fails now (the job runs again at its next interval); no request before then.
    route = api.get("/orders").mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": "600"}), httpx.Response(200)]
    )
    with pytest.raises(TemporaryChannelError) as excinfo:
        make_http(backoff_max=60.0).request("GET", "/orders")
    assert excinfo.value.retry_after == 600.0
    assert route.call_count == 1
    assert fake_time.sleeps == []


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        pytest.param(datetime(2015, 10, 21, 7, 28, tzinfo=UTC), 0.0, id="date-in-the-past"),
    ],
)
def test_http_retry_after_http_date(
    api: respx.MockRouter,
    make_http: Callable[..., ChannelHttp],
    fake_time: FakeTime,
    when: datetime,
    expected: float,
) -> None:
    header = format_datetime(when, usegmt=True)
    route = api.get("/orders").mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": header}), httpx.Response(200)]
    )
    make_http(backoff_max=45.0).request("GET", "/orders")
    assert route.call_count == 2
    assert fake_time.sleeps == [expected]


def test_http_unreadable_retry_after_falls_back_to_backoff(
    api: respx.MockRouter, make_http: Callable[..., ChannelHttp], fake_time: FakeTime
) -> None:
    api.get("/orders").mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": "soon"}), httpx.Response(200)]
    )
    make_http().request("GET", "/orders")
    assert fake_time.sleeps == [0.5]


def test_http_retry_after_asctime_date_is_honoured(
    api: respx.MockRouter, make_http: Callable[..., ChannelHttp], fake_time: FakeTime
) -> None:
    route = api.get("/orders").mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "Sun Nov  6 08:49:37 1994"}),
            httpx.Response(200),
        ]
    )
    make_http().request("GET", "/orders")
    assert route.call_count == 2
    assert fake_time.sleeps == [0.0]


NOW = datetime(1994, 11, 6, 8, 48, 37, tzinfo=UTC)


def test_http_retry_after_holds_every_request_of_the_channel_until_the_time_given(
    api: respx.MockRouter, make_http: Callable[..., ChannelHttp], fake_time: FakeTime
) -> None:
    # One job is throttled for 90 s; no job of the channel sends anything before then.
    orders = api.get("/orders").mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": "90"}), httpx.Response(200)]
    )
    products = api.put("/products").respond(200)
    http = make_http(backoff_max=60.0, wall=lambda: WALL + timedelta(seconds=fake_time.now))

    with pytest.raises(TemporaryChannelError) as throttled:
        http.request("GET", "/orders")
    refusals = []
    for wait in (0.0, 29.0):  # other jobs, at once and 29 s later: longer than backoff_max
        fake_time.advance(wait)
        with pytest.raises(TemporaryChannelError) as held:
            http.request("PUT", "/products")
        refusals.append(held.value)
    fake_time.advance(60.0)  # 89 s after the 429: the last second is waited, then it sends
    http.request("PUT", "/products")
    sent_at = fake_time.now
    http.request("GET", "/orders")

    assert throttled.value.retry_after == 90.0
    assert str(refusals[0]) == (
        f"shop: waiting until {(WALL + timedelta(seconds=1090)).isoformat()} (Retry-After): "
        "the channel asked for 90s more without requests; nothing was sent"
    )
    assert [r.retry_after for r in refusals] == [90.0, 61.0]
    assert (orders.call_count, products.call_count) == (2, 1)
    assert (http.requests, http.held, fake_time.sleeps, sent_at) == (3, 2, [1.0], 1090.0)


def test_http_retry_after_short_wait_is_waited_by_the_next_request_too(
    api: respx.MockRouter, make_http: Callable[..., ChannelHttp], fake_time: FakeTime
) -> None:
    api.get("/orders").respond(429, headers={"Retry-After": "20"})
    products = api.put("/products").respond(200)
    http = make_http(backoff_max=60.0, max_attempts=1)
    with pytest.raises(TemporaryChannelError):
        http.request("GET", "/orders")
    fake_time.advance(5)

    http.request("PUT", "/products")

    assert fake_time.sleeps == [15.0]  # the rest of the channel's wait, then it sends
    assert products.call_count == 1


def test_http_retry_after_http_date_holds_the_channel_on_the_wall_clock(
    api: respx.MockRouter, make_http: Callable[..., ChannelHttp], fake_time: FakeTime
) -> None:
    api.get("/orders").respond(
        503, headers={"Retry-After": format_datetime(NOW + timedelta(seconds=120), usegmt=True)}
    )
    http = make_http(backoff_max=60.0, wall=lambda: NOW + timedelta(seconds=fake_time.now - 1000))
    with pytest.raises(TemporaryChannelError):
        http.request("GET", "/orders")
    later = api.get("/later").respond(200)
    fake_time.advance(30)  # a shorter wait asked later never shortens the channel's
    http.hold(10)

    assert http.holding() == 90.0
    fake_time.advance(90)
    http.request("GET", "/later")
    assert later.call_count == 1


def test_http_throttle_reported_inside_http_200_holds_the_channel_too(
    api: respx.MockRouter, make_http: Callable[..., ChannelHttp], fake_time: FakeTime
) -> None:
    # Shopify's THROTTLED arrives in HTTP 200; its wait is the channel's like a Retry-After.
    graphql = api.post("/graphql").respond(200, json={"errors": [{"code": "THROTTLED"}]})
    http = make_http(backoff_max=60.0)

    def throttled(_response: httpx.Response, _data: object) -> None:
        raise TemporaryChannelError("THROTTLED", channel=CHANNEL, retry_after=120.0)

    with pytest.raises(TemporaryChannelError):
        http.request_json("POST", "/graphql", check=throttled)
    with pytest.raises(TemporaryChannelError, match=r"\(Retry-After\).*nothing was sent"):
        http.request("POST", "/graphql")

    assert (graphql.call_count, http.held, http.holding()) == (1, 1, 120.0)


def test_http_single_attempt_sends_once_while_the_channel_fails(
    api: respx.MockRouter, make_http: Callable[..., ChannelHttp], fake_time: FakeTime
) -> None:
    route = api.get("/orders").respond(500)
    http = make_http(max_attempts=5)
    http.single_attempt = True
    with pytest.raises(TemporaryChannelError):
        http.request("GET", "/orders")
    assert (route.call_count, fake_time.sleeps) == (1, [])


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param(None, None, id="absent"),
        pytest.param("", None, id="empty"),
        pytest.param("120", 120.0, id="seconds"),
        pytest.param(" 120 ", 120.0, id="seconds-with-spaces"),
        pytest.param("1.5", 1.5, id="fractional-seconds"),
        pytest.param("0", 0.0, id="zero"),
        pytest.param("-3", 0.0, id="negative-is-now"),
        pytest.param("Sun, 06 Nov 1994 08:49:37 GMT", 60.0, id="imf-fixdate"),
        pytest.param("Sunday, 06-Nov-94 08:49:37 GMT", 60.0, id="rfc850-date"),
        pytest.param("Sun, 06 Nov 1994 08:47:37 GMT", 0.0, id="date-in-the-past"),
        pytest.param("in a while", None, id="unreadable"),
    ],
)
def test_http_parse_retry_after(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header, now=lambda: NOW) == expected


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("Sun Nov  6 08:49:37 1994", id="asctime"),
        pytest.param("Sun, 06 Nov 1994 08:49:37 -0000", id="minus-zero-zone"),
    ],
)
def test_http_parse_retry_after_dates_without_zone_are_utc(header: str) -> None:
    assert parse_retry_after(header, now=lambda: NOW) == 60.0


# -- errors that are not retried ----------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 403])
def test_http_refused_credentials_raise_authentication_error_at_once(
    api: respx.MockRouter,
    make_http: Callable[..., ChannelHttp],
    fake_time: FakeTime,
    status: int,
) -> None:
    route = api.get("/orders").respond(status, text='{"error": "invalid token"}')

    with pytest.raises(AuthenticationError) as excinfo:
        make_http(authenticate=bearer).request("GET", "/orders")

    assert route.call_count == 1
    assert fake_time.sleeps == []
    assert not isinstance(excinfo.value, TemporaryChannelError)
    assert str(excinfo.value) == (
        f'shop: GET /api/orders: HTTP {status}: credentials refused ({{"error": "invalid token"}})'
    )
    assert excinfo.value.exit_code == 5


@pytest.mark.parametrize("status", [400, 404, 409, 422])
def test_http_other_client_errors_raise_channel_error_at_once(
    api: respx.MockRouter,
    make_http: Callable[..., ChannelHttp],
    fake_time: FakeTime,
    status: int,
) -> None:
    route = api.post("/quantities").respond(status, text="sku ABC is archived")

    with pytest.raises(ChannelError) as excinfo:
        make_http().request("POST", "/quantities", json={})

    assert route.call_count == 1
    assert fake_time.sleeps == []
    assert type(excinfo.value) is ChannelError
    assert str(excinfo.value) == f"shop: POST /api/quantities: HTTP {status}: sku ABC is archived"


def test_http_error_body_is_one_line_and_shortened(
    api: respx.MockRouter, make_http: Callable[..., ChannelHttp]
) -> None:
    api.get("/orders").respond(400, text="  bad\nrequest " + "x" * 400)
    with pytest.raises(ChannelError) as excinfo:
        make_http().request("GET", "/orders")
    snippet = str(excinfo.value).removeprefix("shop: GET /api/orders: HTTP 400: ")
    assert snippet == ("bad request " + "x" * 400)[:300] + "…"


def test_http_payload_too_large_is_a_channel_error_carrying_413(
    api: respx.MockRouter, make_http: Callable[..., ChannelHttp], fake_time: FakeTime
) -> None:
    # docs/writing-a-connector.md: "413 raises ChannelError with status_code 413 (split the
    # batch)"; it was once the one 4xx returned as a response.
    route = api.post("/quantities").respond(413, text="too many items")
    with pytest.raises(ChannelError) as excinfo:
        make_http().request("POST", "/quantities", json={})
    assert type(excinfo.value) is ChannelError
    assert excinfo.value.status_code == 413
    assert str(excinfo.value) == "shop: POST /api/quantities: HTTP 413: too many items"
    assert route.call_count == 1
    assert fake_time.sleeps == []


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, ChannelError),
        (401, AuthenticationError),
        (403, AuthenticationError),
        (404, ChannelError),
        (429, TemporaryChannelError),
        (503, TemporaryChannelError),
    ],
)
def test_http_errors_carry_the_status_code(
    api: respx.MockRouter,
    make_http: Callable[..., ChannelHttp],
    status: int,
    error: type[ChannelError],
) -> None:
    api.get("/orders").respond(status)
    with pytest.raises(error) as excinfo:
        make_http(max_attempts=1).request("GET", "/orders")
    assert excinfo.value.status_code == status


def test_http_transport_errors_carry_no_status_code(
    api: respx.MockRouter, make_http: Callable[..., ChannelHttp]
) -> None:
    api.get("/orders").mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(TemporaryChannelError) as excinfo:
        make_http(max_attempts=1).request("GET", "/orders")
    assert excinfo.value.status_code is None


# -- JSON -----------------------------------------------------------------------------------------


def test_http_request_json_returns_response_and_data(
    api: respx.MockRouter, make_http: Callable[..., ChannelHttp]
) -> None:
    api.get("/listings").respond(200, json={"listings": [{"id": 1}]})
    response, data = make_http().request_json("GET", "/listings")
    assert response.status_code == 200
    assert data == {"listings": [{"id": 1}]}


def test_http_request_json_retries_malformed_body(
    api: respx.MockRouter, make_http: Callable[..., ChannelHttp], fake_time: FakeTime
) -> None:
    route = api.get("/listings").mock(
        side_effect=[httpx.Response(200, text='{"listings": ['), httpx.Response(200, json=[])]
    )
    _, data = make_http().request_json("GET", "/listings")
    assert data == []
    assert route.call_count == 2
    assert fake_time.sleeps == [0.5]


def test_http_request_json_gives_up_on_malformed_body(
    api: respx.MockRouter, make_http: Callable[..., ChannelHttp], fake_time: FakeTime
) -> None:
    route = api.get("/listings").respond(200, text="<html>maintenance</html>")

    with pytest.raises((ChannelPayloadError, TemporaryChannelError)) as excinfo:
        make_http(max_attempts=3).request_json("GET", "/listings")

    assert route.call_count == 3
    assert fake_time.sleeps == [0.5, 1.0]
    assert str(excinfo.value).startswith("shop: malformed JSON from GET /api/listings: ")
    assert isinstance(excinfo.value.__cause__, ValueError)


def test_http_request_json_does_not_retry_refused_credentials(
    api: respx.MockRouter, make_http: Callable[..., ChannelHttp], fake_time: FakeTime
) -> None:
    route = api.get("/listings").respond(401)
    with pytest.raises(AuthenticationError):
        make_http().request_json("GET", "/listings")
    assert route.call_count == 1
    assert fake_time.sleeps == []


def test_http_request_json_server_errors_use_one_retry_budget(
    api: respx.MockRouter, make_http: Callable[..., ChannelHttp], fake_time: FakeTime
) -> None:
    route = api.get("/listings").respond(503)
    with pytest.raises(TemporaryChannelError):
        make_http(max_attempts=3).request_json("GET", "/listings")
    assert route.call_count == 3
    assert fake_time.sleeps == [0.5, 1.0]


def test_http_malformed_body_names_the_channel_and_path(
    api: respx.MockRouter, make_http: Callable[..., ChannelHttp]
) -> None:
    # Was a test of ChannelHttp.json, which only that test used (issue 10, defect 4):
    # request_json is the one way to read JSON.
    api.get("/orders").respond(200, text="not json")
    with pytest.raises(TemporaryChannelError) as excinfo:
        make_http(max_attempts=1).request_json("GET", "/orders")
    assert excinfo.value.channel == CHANNEL
    assert str(excinfo.value).startswith("shop: malformed JSON from GET /api/orders: ")
    assert not hasattr(ChannelHttp, "json")


# -- secrets --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(lambda: httpx.Response(401, json={"error": "invalid token"}), id="401"),
        pytest.param(lambda: httpx.Response(403, text="forbidden"), id="403"),
        pytest.param(lambda: httpx.Response(400, text="bad request"), id="400"),
        pytest.param(lambda: httpx.Response(503, headers={"Retry-After": "1"}), id="503"),
        pytest.param(lambda: httpx.Response(200, text="{oops"), id="malformed-json"),
        pytest.param(lambda: httpx.ConnectError("connection refused"), id="transport-error"),
        pytest.param(lambda: httpx.ReadTimeout("timed out"), id="timeout"),
    ],
)
def test_http_errors_never_show_the_authorization_header(
    api: respx.MockRouter,
    make_http: Callable[..., ChannelHttp],
    caplog: pytest.LogCaptureFixture,
    answer: Callable[[], httpx.Response | Exception],
) -> None:
    def channel(request: httpx.Request) -> httpx.Response:
        outcome = answer()
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    api.get("/orders").mock(side_effect=channel)
    with caplog.at_level(logging.DEBUG), pytest.raises(ChannelError) as excinfo:
        make_http(authenticate=bearer, max_attempts=2).request_json("GET", "/orders")
    assert TOKEN not in str(excinfo.value)
    assert TOKEN not in caplog.text


@pytest.mark.parametrize("status", [400, 401])
def test_http_errors_never_show_the_token_echoed_by_the_channel(
    api: respx.MockRouter, make_http: Callable[..., ChannelHttp], status: int
) -> None:
    api.get("/orders").mock(
        side_effect=lambda request: httpx.Response(
            status, json={"error": f"invalid credential {request.headers['Authorization']}"}
        )
    )
    with pytest.raises(ChannelError) as excinfo:
        make_http(authenticate=bearer).request("GET", "/orders")
    assert TOKEN not in str(excinfo.value)


def test_http_basic_auth_echoed_by_the_channel_is_redacted(
    api: respx.MockRouter, make_http: Callable[..., ChannelHttp]
) -> None:
    # The header an httpx.Auth flow adds is read from the request sent, not from the private
    # httpx.BasicAuth._auth_header (issue 10, defect 3).
    api.get("/orders").mock(
        side_effect=lambda request: httpx.Response(
            400, text=f"bad credential {request.headers['Authorization']}"
        )
    )
    http = make_http(auth=httpx.BasicAuth("ck_user", "cs_5ecr3t-password"))
    with pytest.raises(ChannelError) as excinfo:
        http.request("GET", "/orders")
    message = str(excinfo.value)
    assert "[redacted]" in message
    encoded = httpx.BasicAuth("ck_user", "cs_5ecr3t-password")._auth_header.split()[1]
    assert encoded not in message


def test_http_source_reads_no_private_httpx_attribute() -> None:
    import sellable.sdk._http as module

    assert "_auth_header" not in Path(module.__file__).read_text(encoding="utf-8")


# -- stopping (issue 10, defect 12) ---------------------------------------------------------------


def test_http_stopping_set_before_a_request_sends_nothing(
    api: respx.MockRouter, make_http: Callable[..., ChannelHttp], fake_time: FakeTime
) -> None:
    ping = api.get("/ping").respond(200)  # no /orders route: sending it would fail the test
    stopping = threading.Event()
    http = make_http(stopping=stopping)
    http.request("GET", "/ping")
    stopping.set()
    with pytest.raises(TemporaryChannelError, match="abandoned at shutdown"):
        http.request("GET", "/orders")
    assert ping.call_count == 1
    assert fake_time.sleeps == []


def test_http_stopping_during_a_backoff_starts_no_retry(
    api: respx.MockRouter,
    make_http: Callable[..., ChannelHttp],
    fake_time: FakeTime,
    caplog: pytest.LogCaptureFixture,
) -> None:
    stopping = threading.Event()

    def sleep(seconds: float) -> None:  # SIGTERM arrives during the first backoff
        fake_time.sleep(seconds)
        stopping.set()

    route = api.get("/orders").respond(503)
    http = make_http(stopping=stopping, sleep=sleep, max_attempts=5)
    with caplog.at_level(logging.INFO), pytest.raises(TemporaryChannelError) as excinfo:
        http.request("GET", "/orders")
    assert str(excinfo.value) == "shop: request abandoned at shutdown"
    assert route.call_count == 1
    assert fake_time.sleeps == [0.5]


def test_http_stopping_ends_the_backoff_wait_at_once(
    api: respx.MockRouter, make_http: Callable[..., ChannelHttp]
) -> None:
    # No fake sleep: the client waits on the event itself. The channel answers 503 and the
    # daemon stops while that request is in flight; the 60 s backoff must not be waited.
    stopping = threading.Event()

    def dead(request: httpx.Request) -> httpx.Response:
        stopping.set()
        return httpx.Response(503, headers={"Retry-After": "60"})

    route = api.get("/orders").mock(side_effect=dead)
    http = make_http(stopping=stopping, sleep=None, clock=time.monotonic, backoff_max=120)
    started = time.monotonic()
    with pytest.raises(TemporaryChannelError, match="abandoned at shutdown"):
        http.request("GET", "/orders")
    assert time.monotonic() - started < 5  # not 60: the wait ended when the event was set
    assert route.call_count == 1
    assert http.retries == 0


def test_http_stopping_ends_a_limiter_wait_at_once(
    api: respx.MockRouter, make_http: Callable[..., ChannelHttp]
) -> None:
    stopping = threading.Event()

    def answer(request: httpx.Request) -> httpx.Response:
        stopping.set()
        return httpx.Response(200, json=[])

    route = api.get("/orders").mock(side_effect=answer)
    http = make_http(stopping=stopping, sleep=None, clock=time.monotonic)
    http.limiter("slow", rate=0.001, burst=1)  # the next token in 1000 s
    http.request("GET", "/orders", limiter="slow")
    started = time.monotonic()
    with pytest.raises(TemporaryChannelError, match="abandoned at shutdown"):
        http.limiters["slow"].acquire()
    assert time.monotonic() - started < 5
    assert route.call_count == 1


def test_http_without_stopping_event_waits_through_the_fake_sleep(
    api: respx.MockRouter, make_http: Callable[..., ChannelHttp], fake_time: FakeTime
) -> None:
    api.get("/orders").mock(side_effect=[httpx.Response(503), httpx.Response(200, json=[])])
    _, data = make_http().request_json("GET", "/orders")
    assert data == []
    assert fake_time.sleeps == [0.5]


# -- declared limits ------------------------------------------------------------------------------


def test_http_unregistered_limiter_is_a_channel_error_naming_it(
    api: respx.MockRouter, make_http: Callable[..., ChannelHttp]
) -> None:
    # Was a KeyError that surfaced as "job crashed" (issue 10, defect 3).
    ping = api.get("/ping").respond(200)  # no /orders route: sending it would fail the test
    http = make_http()
    http.request("GET", "/ping")
    http.limiter("getOrders", rate=1, burst=2)
    http.limiter("getFeed", rate=1, burst=2)
    with pytest.raises(ChannelError) as excinfo:
        http.request("GET", "/orders", limiter="getOrdres")
    assert not isinstance(excinfo.value, TemporaryChannelError)
    assert str(excinfo.value) == (
        "shop: no rate limiter named 'getOrdres' (registered: getFeed, getOrders); "
        "declare it in the connector's rate_limits()"
    )
    assert ping.call_count == 1


def test_http_limits_declare_the_default_bucket_and_named_limiters(
    make_http: Callable[..., ChannelHttp],
) -> None:
    http = make_http(limits={None: RateLimit(2, 10), "feeds": RateLimit(0.5, 3)})
    assert http.bucket is not None
    assert (http.bucket.rate, http.bucket.burst) == (2, 10)
    assert (http.limiters["feeds"].rate, http.limiters["feeds"].burst) == (0.5, 3)
    http.set_limits({None: RateLimit(4, 10)})
    assert http.bucket.rate == 4


# -- the token bucket -----------------------------------------------------------------------------


def test_http_requests_are_paced_by_the_rate(
    api: respx.MockRouter, make_http: Callable[..., ChannelHttp], fake_time: FakeTime
) -> None:
    route = api.get("/orders").respond(200)
    http = make_http(rate=4, burst=2)
    for _ in range(5):
        http.request("GET", "/orders")
    assert route.call_count == 5
    assert fake_time.sleeps == [0.25, 0.25, 0.25]
    assert http.bucket is not None
    assert http.bucket.waited == 0.75


def test_http_without_rate_has_no_bucket(
    api: respx.MockRouter, make_http: Callable[..., ChannelHttp], fake_time: FakeTime
) -> None:
    api.get("/orders").respond(200)
    http = make_http()
    for _ in range(10):
        http.request("GET", "/orders")
    assert http.bucket is None
    assert fake_time.sleeps == []


def test_http_throttled_answer_drains_the_bucket(
    api: respx.MockRouter, make_http: Callable[..., ChannelHttp], fake_time: FakeTime
) -> None:
    api.get("/orders").mock(side_effect=[httpx.Response(429), httpx.Response(200)])
    http = make_http(rate=1, burst=5)
    http.request("GET", "/orders")
    # The retry waits 0.5 s (backoff) and refills half a token; without the drain the four
    # saved tokens would have let the retry go at once.
    assert fake_time.sleeps == [0.5, 0.5]


@pytest.mark.parametrize(
    ("rate", "burst"),
    [
        pytest.param(0, 1, id="zero-rate"),
        pytest.param(-1, 1, id="negative-rate"),
        pytest.param(1, 0, id="zero-burst"),
    ],
)
def test_bucket_rejects_impossible_limits(rate: float, burst: int) -> None:
    with pytest.raises(ValueError, match="rate must be > 0 and burst >= 1"):
        TokenBucket(rate, burst)


def test_bucket_paces_to_the_rate(fake_time: FakeTime) -> None:
    bucket = TokenBucket(2, 1, clock=fake_time.clock, sleep=fake_time.sleep)
    waits = [bucket.acquire() for _ in range(4)]
    assert waits == [0.0, 0.5, 0.5, 0.5]
    assert fake_time.sleeps == [0.5, 0.5, 0.5]
    assert bucket.waited == 1.5


def test_bucket_allows_a_burst_then_paces(fake_time: FakeTime) -> None:
    bucket = TokenBucket(1, 3, clock=fake_time.clock, sleep=fake_time.sleep)
    for _ in range(5):
        bucket.acquire()
    assert fake_time.sleeps == [1.0, 1.0]


def test_bucket_saves_up_to_burst_while_idle(fake_time: FakeTime) -> None:
    bucket = TokenBucket(1, 3, clock=fake_time.clock, sleep=fake_time.sleep)
    for _ in range(3):
        bucket.acquire()
    fake_time.advance(100)
    for _ in range(4):
        bucket.acquire()
    assert fake_time.sleeps == [1.0]


def test_bucket_waits_only_for_the_missing_part(fake_time: FakeTime) -> None:
    bucket = TokenBucket(2, 1, clock=fake_time.clock, sleep=fake_time.sleep)
    bucket.acquire()
    fake_time.advance(0.25)
    assert bucket.acquire() == 0.25
    assert bucket.acquire(tokens=3) == 1.5
    assert fake_time.sleeps == [0.25, 1.5]


def test_bucket_set_rate_changes_the_pace(fake_time: FakeTime) -> None:
    bucket = TokenBucket(1, 1, clock=fake_time.clock, sleep=fake_time.sleep)
    bucket.acquire()
    bucket.set_rate(4)
    bucket.acquire()
    bucket.acquire()
    assert fake_time.sleeps == [0.25, 0.25]
    assert bucket.rate == 4


def test_bucket_set_rate_keeps_tokens_earned_at_the_old_rate(fake_time: FakeTime) -> None:
    bucket = TokenBucket(1, 4, clock=fake_time.clock, sleep=fake_time.sleep)
    for _ in range(4):
        bucket.acquire()
    fake_time.advance(2)  # two tokens at the old rate
    bucket.set_rate(10)
    for _ in range(3):
        bucket.acquire()
    assert fake_time.sleeps == [0.1]


def test_bucket_set_rate_with_smaller_burst_forgets_extra_tokens(fake_time: FakeTime) -> None:
    bucket = TokenBucket(1, 10, clock=fake_time.clock, sleep=fake_time.sleep)
    bucket.set_rate(1, burst=2)
    for _ in range(3):
        bucket.acquire()
    assert fake_time.sleeps == [1.0]
    assert bucket.burst == 2


@pytest.mark.parametrize("rate", [pytest.param(0, id="zero"), pytest.param(-2, id="negative")])
def test_bucket_set_rate_rejects_impossible_rates(fake_time: FakeTime, rate: float) -> None:
    bucket = TokenBucket(1, 1, clock=fake_time.clock, sleep=fake_time.sleep)
    try:
        bucket.set_rate(rate)
    except ValueError:
        return
    raise AssertionError(f"set_rate({rate}) was accepted")


def test_bucket_drain_forgets_saved_tokens(fake_time: FakeTime) -> None:
    bucket = TokenBucket(1, 5, clock=fake_time.clock, sleep=fake_time.sleep)
    bucket.acquire()
    bucket.drain()
    assert bucket.acquire() == 1.0
    assert fake_time.sleeps == [1.0]


def test_bucket_drain_keeps_a_debt(fake_time: FakeTime) -> None:
    bucket = TokenBucket(1, 1, clock=fake_time.clock, sleep=lambda seconds: None)
    bucket.acquire()
    bucket.acquire()  # owes one token; the no-op sleep did not pay it off
    bucket.drain()
    assert bucket.acquire() == 2.0


def test_http_named_limiter_paces_by_cost_apart_from_the_default_bucket(
    api: respx.MockRouter, make_http: Callable[..., ChannelHttp], fake_time: FakeTime
) -> None:
    api.post("/feeds").respond(200, json={})
    http = make_http(rate=100, burst=100)
    feeds = http.limiter("createFeed", rate=0.5, burst=1)

    http.request("POST", "/feeds", limiter="createFeed")
    http.request("POST", "/feeds", limiter="createFeed")
    http.request("POST", "/feeds", limiter="createFeed", cost=2)

    # burst 1 at 0.5/s: the second waits 2 s, the third (cost 2) 4 s
    assert fake_time.sleeps == [2.0, 4.0]
    assert http.limiter("createFeed", rate=0.5, burst=1) is feeds
    assert http.bucket is not None and http.bucket.waited == 0.0


def test_http_limiter_takes_new_figures_and_observe_sets_what_is_left(
    make_http: Callable[..., ChannelHttp], fake_time: FakeTime
) -> None:
    http = make_http()
    bucket = http.limiter("graphql", rate=50, burst=1000)
    bucket.observe(40)
    bucket.acquire(100)  # 60 points short at 50/s
    assert fake_time.sleeps == [1.2]
    assert http.limiter("graphql", rate=100, burst=2000).rate == 100


def test_http_check_turns_a_throttle_inside_200_into_a_retry(
    api: respx.MockRouter, make_http: Callable[..., ChannelHttp], fake_time: FakeTime
) -> None:
    route = api.post("/graphql.json").mock(
        side_effect=[
            httpx.Response(200, json={"errors": [{"extensions": {"code": "THROTTLED"}}]}),
            httpx.Response(200, json={"data": {"ok": True}}),
        ]
    )
    http = make_http()

    def check(_response: httpx.Response, data: object) -> None:
        if isinstance(data, dict) and "errors" in data:
            raise TemporaryChannelError("THROTTLED", channel=CHANNEL, retry_after=3.0)

    _, data = http.request_json("POST", "/graphql.json", json={}, check=check)

    assert data == {"data": {"ok": True}}
    assert route.call_count == 2
    assert fake_time.sleeps == [3.0]
