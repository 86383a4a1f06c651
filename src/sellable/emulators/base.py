"""What every channel emulator shares: a threaded HTTP/1.1 server on loopback, a clock
that tests can drive, token buckets, fault injection and a small control API.

An emulator is a subclass of :class:`EmulatorServer` that implements :meth:`handle` (the
channel's own API) and the three demo hooks (:meth:`add_listing`, :meth:`place_order`,
:meth:`quantities`). Everything under ``/_emulator/`` is the control API, without auth:

``POST /_emulator/faults``    a JSON list of faults, each applied to one later request:
    ``{"status": 429}`` (the channel's own throttling answer, see :meth:`throttled`),
    ``{"status": 503}``, ``{"kind": "reset"}`` (connection dropped, no answer),
    ``{"kind": "malformed"}`` (HTTP 200 with a body that is not JSON),
    ``{"kind": "slow", "seconds": 2}`` (answer after a delay). Optional ``"path"``: only
    requests whose path starts with it take the fault. Optional ``"retry_after"`` (a 429 or
    5xx): the ``Retry-After`` header sent, seconds or an HTTP date, as given. Optional
    ``"for": 40``: the fault answers every matching request for 40 s of the emulator's
    clock instead of one (a 500 stretch; ``{"status": 401, "for": 30}`` is credentials
    revoked, then restored).

Connections refused: :meth:`EmulatorServer.go_offline` closes the port and drops open
connections; :meth:`EmulatorServer.go_online` listens on the same port again.
``POST /_emulator/listings``  ``{"sku": "MUG", "quantity": 0, "title": "Mug"}``
``POST /_emulator/orders``    ``{"lines": [["MUG", 2]]}`` places an order, answers its id
``GET  /_emulator/state``     ``{"quantities": {sku: n}, "requests": n, "throttled": n}``
``POST /_emulator/webhooks/faults``  ``["drop", "duplicate", "reorder", "bad_signature",
    "slow"]``: faults of the next webhook deliveries, one each (:class:`WebhookSender`)
``POST /_emulator/webhooks/flush``   send the queued webhook deliveries now

The emulators' own dependencies (graphql-core for Shopify, jsonschema for Amazon) are the
``emulators`` extra, not needed by a production install: an emulator module imported
without them raises :class:`~sellable.errors.ConfigError` saying how to install them.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

from sellable.errors import ConfigError

CONTROL_PREFIX = "/_emulator/"


#: How to install what the emulators need (the ``emulators`` extra of pyproject.toml).
INSTALL_HINT = "pip install 'sellable[emulators]'"


def missing_dependency(emulator: str, package: str) -> ConfigError:
    """The error an emulator module raises when ``package`` is not installed."""
    return ConfigError(
        f"the {emulator} emulator needs {package}, which is not installed: {INSTALL_HINT}"
    )


class Clock:
    """Wall time for timestamps and a monotonic reading for buckets and expiries."""

    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock(Clock):
    """A clock that only moves when told to: deterministic expiry and refill in tests."""

    def __init__(self, start: datetime | None = None) -> None:
        self._start = start or datetime(2026, 1, 1, tzinfo=UTC)
        self._elapsed = 0.0
        self._lock = threading.Lock()

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._elapsed += seconds

    def monotonic(self) -> float:
        return self._elapsed

    def now(self) -> datetime:
        return self._start + timedelta(seconds=self._elapsed)


class Bucket:
    """A token bucket of ``capacity`` tokens refilled at ``rate`` per second (leaky bucket
    of the same shape). ``take(cost)`` spends tokens or refuses without spending."""

    def __init__(self, capacity: float, rate: float, clock: Clock) -> None:
        self.capacity = capacity
        self.rate = rate
        self.clock = clock
        self._tokens = capacity
        self._at = clock.monotonic()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self.clock.monotonic()
        self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.rate)
        self._at = now

    def available(self) -> float:
        with self._lock:
            self._refill()
            return self._tokens

    def take(self, cost: float = 1.0) -> bool:
        with self._lock:
            self._refill()
            if self._tokens + 1e-9 < cost:
                return False
            self._tokens -= cost
            return True

    def wait_time(self, cost: float = 1.0) -> float:
        """Seconds until ``cost`` tokens will be there."""
        with self._lock:
            self._refill()
            return max(0.0, (cost - self._tokens) / self.rate) if self.rate else float("inf")


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: Mapping[str, str]  # lower-case names
    body: bytes

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def json(self) -> Any:
        """The body as JSON; :class:`HttpError` 400 when it is not."""
        try:
            return json.loads(self.body or b"null")
        except ValueError as err:
            raise HttpError(400, {"error": f"invalid JSON body: {err}"}) from err


@dataclass
class Response:
    status: int = 200
    body: Any = None  # JSON-serialisable, or bytes sent as they are
    headers: dict[str, str] = field(default_factory=dict)


class HttpError(Exception):
    """Raised by handlers to answer with ``status`` and a JSON ``body``."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"HTTP {status}")
        self.response = Response(status, body, headers or {})


@dataclass
class Fault:
    kind: str  # "status" | "reset" | "malformed" | "slow"
    status: int = 0
    seconds: float = 0.0
    path: str = ""
    retry_after: str | None = None  # the Retry-After header of a status fault
    lasting: float | None = None  # seconds of the emulator's clock; None: one request
    until: float | None = None  # set when queued: the clock reading it ends at
    hits: int = 0  # requests it answered

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> Fault:
        lasting = float(raw["for"]) if raw.get("for") is not None else None
        path = str(raw.get("path", ""))
        if "status" in raw:
            retry_after = raw.get("retry_after")
            return cls(
                "status",
                status=int(raw["status"]),
                path=path,
                retry_after=None if retry_after is None else str(retry_after),
                lasting=lasting,
            )
        kind = str(raw.get("kind", ""))
        if kind not in {"reset", "malformed", "slow"}:
            raise ValueError(f"unknown fault {dict(raw)!r}")
        return cls(kind, seconds=float(raw.get("seconds", 0)), path=path, lasting=lasting)


@dataclass
class Delivery:
    """One webhook delivery an emulator sends: to ``url``, signed in ``headers``."""

    url: str
    headers: dict[str, str]
    body: bytes
    #: The emulator's id of the subscription it is for.
    subscription: Any = None
    attempts: int = 0
    #: The receiver answers after the channel stopped waiting (the "slow" fault): the
    #: delivery arrives, but the channel counts it as failed.
    late: bool = False


#: The faults a webhook delivery can be given (``WebhookSender.inject``).
WEBHOOK_FAULTS = frozenset({"drop", "duplicate", "reorder", "bad_signature", "slow"})


class WebhookSender:
    """The webhooks an emulator sends when its shop changes.

    Deliveries are queued when the shop changes and sent by :meth:`flush`, in order, one at
    a time: tests call it (deterministic, no timing), or :meth:`start` sends them from a
    thread as soon as they are queued (the demo, the benchmarks). Faults apply to the
    next deliveries queued, one each (``POST /_emulator/webhooks/faults``)::

        drop           never sent (a lost delivery)
        duplicate      sent twice, with the same delivery id
        reorder        held back and sent after the next delivery
        bad_signature  sent with a signature that does not match
        slow           the receiver answers after the channel stopped waiting: the
                       delivery arrives, and the channel counts it as failed

    ``on_result(delivery, status)`` hears every attempt: status None when no answer came
    in time (the channel's own failure accounting lives there). A delivery it returns
    True for is queued again (a channel that retries)."""

    def __init__(
        self,
        signature_header: str,
        *,
        timeout: float = 5.0,
        on_result: Callable[[Delivery, int | None], bool] | None = None,
    ) -> None:
        self.signature_header = signature_header
        self.timeout = timeout
        self.on_result = on_result
        self.queue: deque[Delivery] = deque()
        self.faults: deque[str] = deque()
        self.retries: deque[Delivery] = deque()
        self.sent: list[tuple[Delivery, int | None]] = []
        self.dropped = 0
        self._held: Delivery | None = None
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def inject(self, *kinds: str) -> None:
        for kind in kinds:
            if kind not in WEBHOOK_FAULTS:
                raise ValueError(
                    f"unknown webhook fault {kind!r} (known: {', '.join(sorted(WEBHOOK_FAULTS))})"
                )
        with self._lock:
            self.faults.extend(kinds)

    def enqueue(self, delivery: Delivery) -> None:
        with self._lock:
            fault = self.faults.popleft() if self.faults else None
            if fault == "drop":
                self.dropped += 1
                return
            if fault == "bad_signature":
                given = delivery.headers.get(self.signature_header, "")
                delivery.headers[self.signature_header] = "AAAA" + given[4:]
            if fault == "slow":
                delivery.late = True
            if fault == "reorder":
                self._held = delivery
                return
            self.queue.append(delivery)
            if fault == "duplicate":
                self.queue.append(replace(delivery, headers=dict(delivery.headers)))
            if self._held is not None:
                self.queue.append(self._held)
                self._held = None
        self._wake.set()

    def pending(self) -> int:
        with self._lock:
            return len(self.queue) + len(self.retries) + (self._held is not None)

    def flush(self, *, retries: bool = True) -> list[int | None]:
        """Send every queued delivery now (and, with ``retries``, those queued again after
        a failure, once each); the statuses, in order."""
        with self._flushing:
            with self._lock:
                batch = list(self.queue)
                self.queue.clear()
                if self._held is not None and not self.faults:
                    batch.append(self._held)  # nothing came after it: it goes last
                    self._held = None
                if retries:
                    batch.extend(self.retries)
                    self.retries.clear()
            statuses = [self._send(delivery) for delivery in batch]
        return statuses

    def _send(self, delivery: Delivery) -> int | None:
        import httpx  # a dependency of sellable itself

        delivery.attempts += 1
        status: int | None
        try:
            answer = httpx.post(
                delivery.url,
                content=delivery.body,
                headers=delivery.headers,
                timeout=self.timeout,
            )
            status = None if delivery.late else answer.status_code
        except httpx.HTTPError:
            status = None
        delivery.late = False
        with self._lock:
            self.sent.append((delivery, status))
        again = self.on_result(delivery, status) if self.on_result is not None else False
        if again:
            with self._lock:
                self.retries.append(delivery)
        return status

    def start(self) -> None:
        """Send from a thread as soon as deliveries are queued (retries are left for
        :meth:`flush`)."""
        if self._thread is not None:
            return
        self._stop.clear()

        def run() -> None:
            while not self._stop.is_set():
                self._wake.wait(0.5)
                self._wake.clear()
                if not self._stop.is_set():
                    self.flush(retries=False)

        self._thread = threading.Thread(target=run, name="emulator-webhooks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._wake.set()
            self._thread.join(timeout=5)
            self._thread = None


class EmulatorServer:
    """Base of the channel emulators. Use as a context manager or call ``start``/``stop``;
    ``serve_forever`` runs it in the foreground (``sellable emulate``)."""

    #: Name under ``sellable emulate``.
    name: ClassVar[str] = ""
    #: The connector (entry-point name) that talks to this channel.
    connector: ClassVar[str] = ""

    def __init__(self, *, port: int = 0, clock: Clock | None = None) -> None:
        self.clock = clock or Clock()
        self.lock = threading.RLock()  # guards the emulator's state
        self.faults: deque[Fault] = deque()
        self.request_count = 0
        self.throttled_count = 0
        self.request_log: deque[tuple[str, str, int]] = deque(maxlen=10_000)
        #: The emulator clock's monotonic reading at each request of the channel's API.
        self.request_times: deque[float] = deque(maxlen=10_000)
        self.offline = False
        self._httpd = _Server(("127.0.0.1", port), _handler_for(self))
        self._port: int = self._httpd.server_address[1]
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> EmulatorServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name=f"emulator-{self.name}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        sender = getattr(self, "webhooks", None)
        if isinstance(sender, WebhookSender):
            sender.stop()
        if self._thread is not None:  # shutdown() waits for a serve_forever that never ran
            self._httpd.shutdown()
        self._httpd.server_close()
        self._httpd.drop_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def serve_forever(self) -> None:
        sender = getattr(self, "webhooks", None)
        if isinstance(sender, WebhookSender):
            sender.start()  # sellable emulate: webhooks go out as the shop changes
        try:
            self._httpd.serve_forever()
        finally:
            self._httpd.server_close()

    def shutdown(self) -> None:
        """Stop ``serve_forever`` from another thread (a signal handler)."""
        threading.Thread(target=self._httpd.shutdown, daemon=True).start()

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- faults -----------------------------------------------------------------------------

    def inject(self, *faults: Mapping[str, Any] | Fault) -> None:
        """Queue faults; each is applied to one later request (in order), or to every
        request for its ``lasting`` seconds of the emulator's clock."""
        with self.lock:
            for raw in faults:
                fault = raw if isinstance(raw, Fault) else Fault.parse(raw)
                if fault.lasting is not None:
                    fault.until = self.clock.monotonic() + fault.lasting
                self.faults.append(fault)

    def _take_fault(self, path: str) -> Fault | None:
        with self.lock:
            now = self.clock.monotonic()
            for fault in list(self.faults):
                if fault.until is not None and now >= fault.until:
                    self.faults.remove(fault)  # the stretch is over
                    continue
                if path.startswith(fault.path):
                    if fault.until is None:
                        self.faults.remove(fault)
                    fault.hits += 1
                    return fault
        return None

    # -- connection refused -----------------------------------------------------------------

    def go_offline(self) -> None:
        """Refuse connections: close the listening port and drop open connections, until
        :meth:`go_online`."""
        with self.lock:
            if self.offline:
                return
            self.offline = True
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()
        self._httpd.drop_connections()

    def go_online(self) -> None:
        """Listen again on the same port (state is kept)."""
        with self.lock:
            if not self.offline:
                return
            self.offline = False
        self._httpd = _Server(("127.0.0.1", self._port), _handler_for(self))
        self.start()

    # -- what subclasses implement ----------------------------------------------------------

    def handle(self, request: Request) -> Response:
        """Answer one request of the channel's API."""
        raise NotImplementedError

    def throttled(self, request: Request, retry_after: float = 1.0) -> Response:
        """The channel's answer when a request is over its rate limit (an injected 429
        too). Subclasses answer in the channel's own words."""
        return Response(
            429, {"error": "Too Many Requests"}, {"Retry-After": str(max(1, round(retry_after)))}
        )

    def add_listing(self, sku: str, quantity: int = 0, title: str | None = None) -> str:
        """Create something sellable with this SKU; returns the channel's id for it."""
        raise NotImplementedError

    def place_order(self, lines: list[tuple[str, int]]) -> str:
        """Place an order as a customer would; returns the channel's order id."""
        raise NotImplementedError

    def connector_settings(self) -> dict[str, Any]:
        """The ``[channels.settings]`` table of :attr:`connector` pointed at this emulator
        (its URL and the credentials it accepts)."""
        raise NotImplementedError

    def quantities(self) -> dict[str, int]:
        """The quantity the channel shows per SKU now (summed over locations)."""
        raise NotImplementedError

    # -- dispatch ---------------------------------------------------------------------------

    def dispatch(self, request: Request) -> Response | None:
        """The answer to one request, or None to drop the connection."""
        with self.lock:
            self.request_count += 1
        if request.path.startswith(CONTROL_PREFIX):
            return self._control(request)
        with self.lock:
            self.request_times.append(self.clock.monotonic())
        fault = self._take_fault(request.path)
        if fault is not None:
            if fault.kind == "reset":
                return None
            if fault.kind == "malformed":
                return Response(200, b'{"truncated": [1, 2', {"Content-Type": "application/json"})
            if fault.kind == "slow":
                time.sleep(fault.seconds)  # an emulated slow channel, not test timing
            elif fault.status == 429:
                with self.lock:
                    self.throttled_count += 1
                answer = self.throttled(request)
                if fault.retry_after is not None:
                    answer.headers["Retry-After"] = fault.retry_after
                return answer
            else:
                headers = {} if fault.retry_after is None else {"Retry-After": fault.retry_after}
                return Response(fault.status, {"error": f"injected HTTP {fault.status}"}, headers)
        try:
            return self.handle(request)
        except HttpError as err:
            if err.response.status == 429:
                with self.lock:
                    self.throttled_count += 1
            return err.response

    def _control(self, request: Request) -> Response:
        action = request.path[len(CONTROL_PREFIX) :].strip("/")
        try:
            if request.method == "POST" and action == "faults":
                raw = request.json()
                self.inject(*(raw if isinstance(raw, list) else [raw]))
                return Response(200, {"queued": len(self.faults)})
            if request.method == "POST" and action == "listings":
                raw = request.json()
                listing_id = self.add_listing(
                    str(raw["sku"]), int(raw.get("quantity", 0)), raw.get("title")
                )
                return Response(201, {"id": listing_id})
            if request.method == "POST" and action == "orders":
                raw = request.json()
                order_id = self.place_order([(str(s), int(q)) for s, q in raw["lines"]])
                return Response(201, {"id": order_id})
            sender = getattr(self, "webhooks", None)
            if isinstance(sender, WebhookSender) and request.method == "POST":
                if action == "webhooks/faults":
                    raw = request.json()
                    sender.inject(*(raw if isinstance(raw, list) else [raw]))
                    return Response(200, {"queued": len(sender.faults)})
                if action == "webhooks/flush":
                    return Response(200, {"statuses": sender.flush()})
            if request.method == "GET" and action == "state":
                return Response(
                    200,
                    {
                        "quantities": self.quantities(),
                        "requests": self.request_count,
                        "throttled": self.throttled_count,
                    },
                )
        except (KeyError, TypeError, ValueError) as err:
            return Response(400, {"error": f"bad control request: {err!r}"})
        return Response(404, {"error": f"no control action {request.method} {action}"})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        """Close every open (keep-alive) connection: the client sees the port gone."""
        with self._open_lock:
            open_ = list(self._open)
        for sock in open_:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def _handler_for(emulator: EmulatorServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real APIs and httpx's pool expect
        # headers and body go out in two writes: without TCP_NODELAY each keep-alive
        # answer waits ~40 ms for the delayed ACK on loopback
        disable_nagle_algorithm = True
        server_version = f"sellable-emulator-{emulator.name}"

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the emulator's request log is request_log

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            request = Request(
                method=self.command,
                path=parts.path,
                query=parse_qs(parts.query, keep_blank_values=True),
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
            )
            response = emulator.dispatch(request)
            if response is None:  # an injected dropped connection
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)
                return
            emulator.request_log.append((request.method, request.path, response.status))
            if isinstance(response.body, bytes):
                payload = response.body
            elif response.body is None:
                payload = b""
            else:
                payload = json.dumps(response.body, separators=(",", ":")).encode()
            self.send_response(response.status)
            headers = {"Content-Type": "application/json; charset=utf-8", **response.headers}
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

    return Handler
