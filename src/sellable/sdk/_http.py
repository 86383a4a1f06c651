"""The HTTP policy every connector gets: one httpx client per channel with timeouts,
a token-bucket rate limiter, retries with tenacity, and ``Retry-After``.

Private: connectors import :class:`ChannelHttp` and friends from :mod:`sellable.sdk`.
They call :meth:`ChannelHttp.request` and get a response or a
:class:`~sellable.errors.ChannelError` (carrying the HTTP status); they never sleep or
retry themselves.

Every wait (backoff, ``Retry-After``, a limiter's pace) waits on the ``stopping`` event
rather than sleeping: once the daemon sets it, the wait ends at once and no new attempt
starts (:class:`TemporaryChannelError` "... abandoned at shutdown").

A ``Retry-After`` (on a 429 or a 5xx, in seconds or as an HTTP date; ShipBob's
``x-retry-after`` alike) is the channel's, not one request's: the client holds every
request of the channel, from every job, until the time the server named. A wait no longer
than ``backoff_max`` is waited; a longer one fails the request at once, without sending
it, with "waiting until … (Retry-After)".

The token bucket is ours rather than a library's because it must run on an injected
clock (tests use a fake one, never sleeps) and change its rate when a channel announces
a new limit in a response header (Amazon's ``x-amzn-RateLimit-Limit``).
"""

from __future__ import annotations

import email.utils
import ipaddress
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_any,
)
from tenacity.stop import stop_base

from sellable import __version__
from sellable.errors import (
    AuthenticationError,
    ChannelError,
    TemporaryChannelError,
)

log = logging.getLogger("sellable.http")

T = TypeVar("T")
Clock = Callable[[], float]
Sleep = Callable[[float], None]

USER_AGENT = f"sellable/{__version__} (+https://github.com/sellable)"


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A token bucket: ``rate`` requests per second on average, bursts up to ``burst``."""

    rate: float
    burst: int = 1


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up. :meth:`acquire` waits."""

    def __init__(
        self, rate: float, burst: int, clock: Clock = time.monotonic, sleep: Sleep = time.sleep
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"rate must be > 0 and burst >= 1, got {rate}, {burst}")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(burst)
        self._stamp = clock()
        self._lock = threading.Lock()
        self.waited = 0.0  # total seconds spent waiting, for metrics

    def set_rate(self, rate: float, burst: int | None = None) -> None:
        if rate <= 0 or (burst is not None and burst < 1):
            raise ValueError(f"rate must be > 0 and burst >= 1, got {rate}, {burst}")
        with self._lock:
            self._refill()
            self.rate = rate
            if burst is not None:
                self.burst = burst
                self._tokens = min(self._tokens, burst)

    def observe(self, tokens: float) -> None:
        """Take the channel's own count of what is left (e.g. Shopify's
        ``throttleStatus.currentlyAvailable``) as the truth from now on."""
        with self._lock:
            self._refill()
            self._tokens = min(float(self.burst), tokens)

    def drain(self) -> None:
        """Forget saved tokens (after the channel said we were too fast)."""
        with self._lock:
            self._refill()
            self._tokens = min(self._tokens, 0.0)

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def acquire(self, tokens: float = 1.0) -> float:
        """Take ``tokens``, waiting as long as needed; returns the seconds waited."""
        with self._lock:
            self._refill()
            self._tokens -= tokens
            wait = 0.0 if self._tokens >= 0 else -self._tokens / self.rate
        if wait > 0:
            self.waited += wait
            self._sleep(wait)
        return wait


class _Pause:
    """The one way a :class:`ChannelHttp` waits: ``sleep`` (a test's fake one), or a wait
    on the ``stopping`` event; either way, a set event abandons the call."""

    def __init__(self, channel: str, stopping: threading.Event, sleep: Sleep | None) -> None:
        self.channel = channel
        self.stopping = stopping
        self._sleep = sleep

    def check(self) -> None:
        if self.stopping.is_set():
            raise TemporaryChannelError("request abandoned at shutdown", channel=self.channel)

    def __call__(self, seconds: float) -> None:
        self.check()
        if self._sleep is not None:
            self._sleep(seconds)
        else:
            self.stopping.wait(seconds)
        self.check()


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` (a URL's host name or address) is this machine: ``localhost`` in any
    case, or a loopback address (127.0.0.0/8, ::1). A connector allows plain HTTP only to
    such a host (an emulator, a local site), so that credentials never travel in clear."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_retry_after(value: str | None, now: Callable[[], datetime] | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP date (RFC 9110)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # asctime and "-0000" dates carry no zone: they are UTC
        when = when.replace(tzinfo=UTC)
    current = now() if now is not None else datetime.now(UTC)
    return max(0.0, (when - current).total_seconds())


class _StopWhenTooLong(stop_base):
    """Stop when the channel asks us to wait longer than ``backoff_max``: the job fails now
    and runs again at its next interval, instead of holding a worker thread."""

    def __init__(self, http: ChannelHttp) -> None:
        self.http = http

    def __call__(self, state: RetryCallState) -> bool:
        error = state.outcome.exception() if state.outcome else None
        return (
            isinstance(error, TemporaryChannelError)
            and error.retry_after is not None
            and error.retry_after > self.http.backoff_max
        )


class ChannelHttp:
    """One channel's HTTP client.

    Usage (inside a connector)::

        response, data = self.http.request_json("GET", "/orders", params={"page": 2})

    ``stopping``: the daemon's shutdown event. Once it is set no retry starts and any
    backoff or limiter wait ends at once with :class:`TemporaryChannelError`. ``sleep``
    replaces the wait on that event (tests pass a fake clock's).
    """

    def __init__(
        self,
        channel: str,
        *,
        base_url: str = "",
        rate: float | None = None,
        burst: int = 1,
        timeout: float = 30.0,
        max_attempts: int = 5,
        backoff_base: float = 0.5,
        backoff_max: float = 60.0,
        authenticate: Callable[[dict[str, str]], None] | None = None,
        auth: httpx.Auth | None = None,
        transport: httpx.BaseTransport | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep | None = None,
        jitter: Callable[[], float] = random.random,
        on_response: Callable[[httpx.Response], None] | None = None,
        stopping: threading.Event | None = None,
        limits: Mapping[str | None, RateLimit] | None = None,
        wall: Callable[[], datetime] | None = None,
    ) -> None:
        self.channel = channel
        self.stopping = stopping if stopping is not None else threading.Event()
        self._pause = _Pause(channel, self.stopping, sleep)
        self._client = httpx.Client(
            base_url=base_url,
            timeout=httpx.Timeout(timeout, connect=min(10.0, timeout)),
            headers={"User-Agent": USER_AGENT},
            transport=transport,
            auth=auth,
            follow_redirects=False,
        )
        self.bucket = TokenBucket(rate, burst, clock, self._pause) if rate else None
        self.limiters: dict[str, TokenBucket] = {}
        self._clock = clock
        self._wall = wall or (lambda: datetime.now(UTC))
        #: The channel's own wait (``Retry-After``): no request before this clock reading.
        self.hold_until: float | None = None
        self._hold_lock = threading.Lock()
        #: One attempt per request, no retries: set by the engine while the channel fails,
        #: so that a sick channel sees one request per job run.
        self.single_attempt = False
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.authenticate = authenticate
        self._jitter = jitter
        self.on_response = on_response
        self.requests = 0
        self.retries = 0
        self.throttled = 0  # 429 answers seen
        self.held = 0  # requests refused unsent because the channel asked us to wait
        self.set_limits(limits or {})

    @property
    def clock(self) -> Clock:
        """The monotonic clock the client paces by (a fake one in tests): connectors that
        track expiries (tokens, queued work) should read time from it."""
        return self._clock

    @property
    def wall(self) -> Callable[[], datetime]:
        """The wall clock (UTC) the client reads dates by (a fake one in tests): connectors
        that compare a channel's timestamps with now (a webhook's age) should read it."""
        return self._wall

    def limiter(self, name: str, rate: float, burst: int) -> TokenBucket:
        """A named token bucket for requests that pass ``limiter=name`` (e.g. one per API
        operation, as Amazon publishes them), created on first use; a later call with other
        figures (the channel announced new ones) updates it."""
        bucket = self.limiters.get(name)
        if bucket is None:
            bucket = self.limiters[name] = TokenBucket(rate, burst, self._clock, self._pause)
        elif bucket.rate != rate or bucket.burst != burst:
            bucket.set_rate(rate, burst)
        return bucket

    def set_limits(self, limits: Mapping[str | None, RateLimit]) -> None:
        """Apply a connector's declared limits (:meth:`Connector.rate_limits`): the key None
        is the default bucket, every other key a named :meth:`limiter`."""
        for name, limit in limits.items():
            if name is not None:
                self.limiter(name, limit.rate, limit.burst)
            elif self.bucket is None:
                self.bucket = TokenBucket(limit.rate, limit.burst, self._clock, self._pause)
            elif self.bucket.rate != limit.rate or self.bucket.burst != limit.burst:
                self.bucket.set_rate(limit.rate, limit.burst)

    def _bucket(self, limiter: str | None) -> TokenBucket | None:
        if limiter is None:
            return self.bucket
        bucket = self.limiters.get(limiter)
        if bucket is None:
            known = ", ".join(sorted(self.limiters)) or "none"
            raise ChannelError(
                f"no rate limiter named {limiter!r} (registered: {known}); declare it in "
                "the connector's rate_limits()",
                channel=self.channel,
            )
        return bucket

    def set_base_url(self, url: str) -> None:
        self._client.base_url = httpx.URL(url)

    def close(self) -> None:
        self._client.close()

    # -- requests -------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        content: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        retry: bool = True,
        limiter: str | None = None,
        cost: float = 1.0,
        credentials: bool = True,
    ) -> httpx.Response:
        """Send a request, retrying transport errors, 429 and 5xx. Raises ChannelError.

        Each attempt first takes ``cost`` tokens from the named ``limiter`` (see
        :meth:`limiter`), else from the connector's ``rate_limit`` bucket.
        ``credentials=False`` skips the connector's ``authenticate`` hook and the client's
        ``auth``: for a pre-signed URL on another host (a download link the channel handed
        out, e.g. Shopify's bulk results), which must not receive the channel's
        credentials."""
        return self._retrying(
            lambda: self._send(
                method, url, params, json, content, headers, limiter, cost, credentials
            ),
            retry,
        )

    def request_json(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        content: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        retry: bool = True,
        limiter: str | None = None,
        cost: float = 1.0,
        check: Callable[[httpx.Response, Any], None] | None = None,
    ) -> tuple[httpx.Response, Any]:
        """:meth:`request` and parse JSON; a malformed body is retried like a 5xx, within
        the same attempts. ``check(response, data)`` may raise
        :class:`~sellable.errors.TemporaryChannelError` (with ``retry_after``) for a
        throttle or outage the channel reports inside HTTP 200 (Shopify's ``THROTTLED``),
        which is then retried with the same backoff and attempts."""

        def once() -> tuple[httpx.Response, Any]:
            response = self._send(method, url, params, json, content, headers, limiter, cost)
            try:
                data = response.json()
            except ValueError as err:
                raise TemporaryChannelError(
                    f"malformed JSON from {method} {_path(response)}: {err}",
                    channel=self.channel,
                ) from err
            if check is not None:
                try:
                    check(response, data)
                except TemporaryChannelError as err:
                    if err.retry_after is not None:  # a throttle inside HTTP 200: the channel's
                        self.hold(err.retry_after)
                    raise
            return response, data

        return self._retrying(once, retry)

    # -- the channel's wait ----------------------------------------------------------------------

    def hold(self, seconds: float) -> None:
        """The channel asked for ``seconds`` of quiet: no request of any job before then
        (a later, longer wait extends it; a shorter one never shortens it)."""
        until = self._clock() + seconds
        with self._hold_lock:
            if self.hold_until is None or until > self.hold_until:
                self.hold_until = until

    def holding(self) -> float:
        """Seconds left of the channel's wait (0 when there is none)."""
        with self._hold_lock:
            if self.hold_until is None:
                return 0.0
            left = self.hold_until - self._clock()
            if left <= 0:
                self.hold_until = None
                return 0.0
            return left

    def _respect_hold(self) -> None:
        """Wait out the channel's wait when it is short; refuse to send when it is long."""
        left = self.holding()
        if left <= 0:
            return
        if left > self.backoff_max:
            self.held += 1
            until = self._wall() + timedelta(seconds=left)
            raise TemporaryChannelError(
                f"waiting until {until.isoformat(timespec='seconds')} (Retry-After): the "
                f"channel asked for {left:.0f}s more without requests; nothing was sent",
                channel=self.channel,
                retry_after=left,
            )
        self._pause(left)

    def _retrying(self, send: Callable[[], T], retry: bool) -> T:
        self._pause.check()
        attempts = self.max_attempts if retry and not self.single_attempt else 1
        for attempt in Retrying(
            retry=retry_if_exception_type(TemporaryChannelError),
            stop=stop_any(
                stop_after_attempt(attempts),
                _StopWhenTooLong(self),
            ),
            wait=self._wait,
            sleep=self._pause,
            before_sleep=self._log_retry,
            reraise=True,
        ):
            with attempt:
                return send()
        raise AssertionError("unreachable")  # pragma: no cover

    def _send(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None,
        json: Any,
        content: bytes | str | None,
        headers: Mapping[str, str] | None,
        limiter: str | None = None,
        cost: float = 1.0,
        credentials: bool = True,
    ) -> httpx.Response:
        bucket = self._bucket(limiter)
        self._respect_hold()
        if bucket is not None:
            bucket.acquire(cost)
        merged = dict(headers or {})
        if self.authenticate is not None and credentials:
            self.authenticate(merged)
        self.requests += 1
        try:
            response = self._client.request(
                method,
                url,
                params=params,
                json=json,
                content=content,
                headers=merged,
                auth=httpx.USE_CLIENT_DEFAULT if credentials else None,
            )
        except httpx.TimeoutException as err:
            raise TemporaryChannelError(
                f"{method} {url}: timed out ({type(err).__name__})", channel=self.channel
            ) from err
        except httpx.TransportError as err:
            raise TemporaryChannelError(
                f"{method} {url}: {type(err).__name__}: {err}", channel=self.channel
            ) from err
        if self.on_response is not None:
            self.on_response(response)
        status = response.status_code
        if status == 429:
            self.throttled += 1
            if bucket is not None:
                bucket.drain()
            raise self._asked_to_wait(response, f"{method} {_path(response)}: HTTP 429 (throttled)")
        if status >= 500:
            raise self._asked_to_wait(response, f"{method} {_path(response)}: HTTP {status}")
        # What was sent (the auth flow's header too), to keep an echo of it out of messages.
        secrets = _secrets_in(response.request.headers.items(), merged.items())
        if status in (401, 403):
            raise AuthenticationError(
                f"{method} {_path(response)}: HTTP {status}: credentials refused "
                f"({_snippet(response, secrets)})",
                channel=self.channel,
                status_code=status,
            )
        if status >= 400:
            raise ChannelError(
                f"{method} {_path(response)}: HTTP {status}: {_snippet(response, secrets)}",
                channel=self.channel,
                status_code=status,
            )
        return response

    def _asked_to_wait(self, response: httpx.Response, message: str) -> TemporaryChannelError:
        """The error for a 429 or 5xx; its ``Retry-After`` becomes the channel's wait."""
        # ShipBob names it x-retry-after (seconds) on its 429s.
        retry_after = parse_retry_after(
            response.headers.get("Retry-After") or response.headers.get("x-retry-after"),
            self._wall,
        )
        if retry_after is not None:
            self.hold(retry_after)
            until = self._wall() + timedelta(seconds=retry_after)
            message += f"; Retry-After: waiting until {until.isoformat(timespec='seconds')}"
        return TemporaryChannelError(
            message,
            channel=self.channel,
            status_code=response.status_code,
            retry_after=retry_after,
        )

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, TemporaryChannelError) and error.retry_after is not None:
            return error.retry_after
        exponential: float = self.backoff_base * 2.0 ** (state.attempt_number - 1)
        return min(self.backoff_max, exponential * (0.5 + self._jitter()))

    def _log_retry(self, state: RetryCallState) -> None:
        if self.stopping.is_set():
            return  # the wait that follows abandons the call; no retry to announce
        self.retries += 1
        error = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        # DEBUG: the engine logs a failing channel once, and once when it recovers
        log.debug(
            "channel %s: attempt %d failed (%s); retrying in %.2fs",
            self.channel,
            state.attempt_number,
            error,
            wait,
        )


def _path(response: httpx.Response) -> str:
    return response.request.url.path


SECRET_HEADERS = (
    "authorization",
    "x-access-token",
    "x-shopify-access-token",
    "x-amz-access-token",
    "api-key",
    "x-api-key",
    "cookie",
)


def _secrets_in(*headers: Iterable[tuple[str, str]]) -> list[str]:
    """Credential values a response might echo back, to keep them out of our messages:
    those of the headers sent (read from the request httpx sent, so that an
    ``httpx.Auth`` flow's ``Authorization`` is included without reading its internals)."""
    found: list[str] = []
    for items in headers:
        for key, value in items:
            if key.lower() in SECRET_HEADERS and value:
                found.append(value)
                found.extend(part for part in value.split() if len(part) >= 6)
    return sorted(set(found), key=len, reverse=True)


def _snippet(response: httpx.Response, secrets: Sequence[str] = (), limit: int = 300) -> str:
    text = response.text.strip().replace("\n", " ")
    for secret in secrets:
        text = text.replace(secret, "[redacted]")
    return text[:limit] + ("…" if len(text) > limit else "")
