"""The HTTP policy every connector gets: one httpx client per channel with timeouts,
a token-bucket rate limiter, retries with tenacity, and ``Retry-After``.

Connectors call :meth:`ChannelHttp.request` and get a response or a
:class:`~sellable.errors.ChannelError`; they never sleep or retry themselves.

The token bucket is ours rather than a library's because it must run on an injected
clock (tests use a fake one, never sleeps) and change its rate when a channel announces
a new limit in a response header (Amazon's ``x-amzn-RateLimit-Limit``).
"""

from __future__ import annotations

import email.utils
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
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
    ChannelPayloadError,
    TemporaryChannelError,
)

log = logging.getLogger("sellable.http")

T = TypeVar("T")
Clock = Callable[[], float]
Sleep = Callable[[float], None]

USER_AGENT = f"sellable/{__version__} (+https://github.com/sellable)"


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


class CircuitBreaker:
    """Opens after ``threshold`` failed jobs in a row; while open, the channel's jobs are
    skipped until ``cooldown`` seconds passed (doubling up to ``max_cooldown``)."""

    def __init__(
        self,
        threshold: int = 5,
        cooldown: float = 30.0,
        max_cooldown: float = 900.0,
        clock: Clock = time.monotonic,
    ) -> None:
        self.threshold = threshold
        self.base_cooldown = cooldown
        self.max_cooldown = max_cooldown
        self._clock = clock
        self.failures = 0
        self.opened_at: float | None = None
        self.cooldown = cooldown

    @property
    def is_open(self) -> bool:
        if self.opened_at is None:
            return False
        return self._clock() - self.opened_at < self.cooldown

    def record_success(self) -> bool:
        """Returns True when this success closed an open breaker (the channel recovered)."""
        was_failing = self.failures >= self.threshold
        self.failures = 0
        self.opened_at = None
        self.cooldown = self.base_cooldown
        return was_failing

    def record_failure(self) -> bool:
        """Returns True when this failure opened the breaker."""
        self.failures += 1
        if self.failures < self.threshold:
            return False
        first = self.opened_at is None
        if not first:
            self.cooldown = min(self.max_cooldown, self.cooldown * 2)
        self.opened_at = self._clock()
        return first


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


class _StopAtShutdown(stop_base):
    """Start no retry once the daemon is stopping: the job fails now and the work is
    picked up at the next start (cursors and confirmed pushes are in the store)."""

    def __init__(self, http: ChannelHttp) -> None:
        self.http = http

    def __call__(self, state: RetryCallState) -> bool:
        return self.http.stopping is not None and self.http.stopping.is_set()


class ChannelHttp:
    """One channel's HTTP client.

    Usage (inside a connector)::

        response = self.http.request("GET", "/orders", params={"page": 2})
        data = self.http.json(response)
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
        sleep: Sleep = time.sleep,
        jitter: Callable[[], float] = random.random,
        on_response: Callable[[httpx.Response], None] | None = None,
        stopping: threading.Event | None = None,
    ) -> None:
        self.channel = channel
        #: Set at shutdown: no further retry is started (the engine's event).
        self.stopping = stopping
        self._client = httpx.Client(
            base_url=base_url,
            timeout=httpx.Timeout(timeout, connect=min(10.0, timeout)),
            headers={"User-Agent": USER_AGENT},
            transport=transport,
            auth=auth,
            follow_redirects=False,
        )
        self.bucket = TokenBucket(rate, burst, clock, sleep) if rate else None
        self.limiters: dict[str, TokenBucket] = {}
        self._clock = clock
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.authenticate = authenticate
        self._sleep = sleep
        self._jitter = jitter
        self.on_response = on_response
        self.requests = 0
        self.retries = 0
        self.throttled = 0  # 429 answers seen

    @property
    def clock(self) -> Clock:
        """The monotonic clock the client paces by (a fake one in tests): connectors that
        track expiries (tokens, queued work) should read time from it."""
        return self._clock

    def limiter(self, name: str, rate: float, burst: int) -> TokenBucket:
        """A named token bucket for requests that pass ``limiter=name`` (e.g. one per API
        operation, as Amazon publishes them), created on first use; a later call with other
        figures (the channel announced new ones) updates it."""
        bucket = self.limiters.get(name)
        if bucket is None:
            bucket = self.limiters[name] = TokenBucket(rate, burst, self._clock, self._sleep)
        elif bucket.rate != rate or bucket.burst != burst:
            bucket.set_rate(rate, burst)
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
    ) -> httpx.Response:
        """Send a request, retrying transport errors, 429 and 5xx. Raises ChannelError.

        Each attempt first takes ``cost`` tokens from the named ``limiter`` (see
        :meth:`limiter`), else from the connector's ``rate_limit`` bucket."""
        return self._retrying(
            lambda: self._send(method, url, params, json, content, headers, limiter, cost), retry
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
                check(response, data)
            return response, data

        return self._retrying(once, retry)

    def _retrying(self, send: Callable[[], T], retry: bool) -> T:
        for attempt in Retrying(
            retry=retry_if_exception_type(TemporaryChannelError),
            stop=stop_any(
                stop_after_attempt(self.max_attempts if retry else 1),
                _StopWhenTooLong(self),
                _StopAtShutdown(self),
            ),
            wait=self._wait,
            sleep=self._backoff,
            before_sleep=self._log_retry,
            reraise=True,
        ):
            with attempt:
                if attempt.retry_state.attempt_number > 1 and self._stopped():
                    raise TemporaryChannelError(
                        "request abandoned at shutdown", channel=self.channel
                    )
                return send()
        raise AssertionError("unreachable")  # pragma: no cover

    def _stopped(self) -> bool:
        return self.stopping is not None and self.stopping.is_set()

    def _backoff(self, seconds: float) -> None:
        """Sleep between attempts; with the real clock, wake up at once at shutdown."""
        if self.stopping is not None and self._sleep is time.sleep:
            self.stopping.wait(seconds)
        else:
            self._sleep(seconds)

    def json(self, response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError as err:
            raise ChannelPayloadError(
                f"malformed JSON from {response.request.method} {_path(response)}: {err}",
                channel=self.channel,
            ) from err

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
    ) -> httpx.Response:
        bucket = self.limiters[limiter] if limiter is not None else self.bucket
        if bucket is not None:
            bucket.acquire(cost)
        merged = dict(headers or {})
        if self.authenticate is not None:
            self.authenticate(merged)
        secrets = _secrets_in(merged, self._client.auth)
        self.requests += 1
        try:
            response = self._client.request(
                method, url, params=params, json=json, content=content, headers=merged
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
            raise TemporaryChannelError(
                f"{method} {_path(response)}: HTTP 429 (throttled)",
                channel=self.channel,
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
            )
        if status >= 500:
            raise TemporaryChannelError(
                f"{method} {_path(response)}: HTTP {status}",
                channel=self.channel,
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
            )
        if status in (401, 403):
            raise AuthenticationError(
                f"{method} {_path(response)}: HTTP {status}: credentials refused "
                f"({_snippet(response, secrets)})",
                channel=self.channel,
            )
        if status >= 400 and status != 413:
            raise ChannelError(
                f"{method} {_path(response)}: HTTP {status}: {_snippet(response, secrets)}",
                channel=self.channel,
            )
        return response

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, TemporaryChannelError) and error.retry_after is not None:
            return error.retry_after
        exponential: float = self.backoff_base * 2.0 ** (state.attempt_number - 1)
        return min(self.backoff_max, exponential * (0.5 + self._jitter()))

    def _log_retry(self, state: RetryCallState) -> None:
        self.retries += 1
        error = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.info(
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


def _secrets_in(headers: Mapping[str, str], auth: httpx.Auth | None) -> list[str]:
    """Credential values a response might echo back, to keep them out of our messages."""
    found: list[str] = []
    for key, value in headers.items():
        if key.lower() in SECRET_HEADERS and value:
            found.append(value)
            found.extend(part for part in value.split() if len(part) >= 6)
    if isinstance(auth, httpx.BasicAuth):
        header = auth._auth_header  # "Basic base64(user:password)"
        found.extend(part for part in header.split() if len(part) >= 6)
    return sorted(set(found), key=len, reverse=True)


def _snippet(response: httpx.Response, secrets: Sequence[str] = (), limit: int = 300) -> str:
    text = response.text.strip().replace("\n", " ")
    for secret in secrets:
        text = text.replace(secret, "[redacted]")
    return text[:limit] + ("…" if len(text) > limit else "")
