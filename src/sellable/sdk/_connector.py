"""The connector base class and what it declares (private; import from sellable.sdk)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from sellable.sdk._fulfilment import (
    CancelResult,
    FulfilmentPage,
    FulfilmentRequest,
    FulfilmentUpdate,
    SubmitResult,
)
from sellable.sdk._http import ChannelHttp, RateLimit
from sellable.sdk._models import (
    Listing,
    ListingPage,
    OrderPage,
    PushesInFlight,
    PushItem,
    PushResult,
    StockCount,
)
from sellable.sdk._webhooks import WebhookEvent, WebhookSubscriptions


class Capability(StrEnum):
    PULL_ORDERS = "pull_orders"
    PULL_STOCK = "pull_stock"
    PUSH_QUANTITIES = "push_quantities"
    LIST_LISTINGS = "list_listings"
    READ_QUANTITIES = "read_quantities"
    #: Ships orders allocated in the channel's warehouses (a 3PL): see sellable.sdk._fulfilment.
    FULFIL_ORDERS = "fulfil_orders"


class ConnectorSettings(BaseModel):
    """Base of a connector's settings model (``[channels.settings]``). Unknown keys are
    errors; use ``SecretStr`` for secrets so that they never reach a log."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True, slots=True)
class ConnectorContext:
    """What the framework hands a connector: its channel code, warehouses and HTTP client."""

    channel: str
    warehouses: tuple[str, ...]
    http: ChannelHttp


class Connector:
    """Base class of every connector.

    Usage::

        class MyShop(Connector):
            name = "myshop"
            capabilities = frozenset({Capability.PULL_ORDERS, Capability.PUSH_QUANTITIES})
            Settings = MyShopSettings
            rate_limit = RateLimit(rate=2, burst=10)

            def push_quantities(self, items): ...
    """

    name: ClassVar[str] = ""
    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    Settings: ClassVar[type[ConnectorSettings]] = ConnectorSettings
    #: Published request rate of the channel's API; the framework paces requests by it
    #: (see :meth:`rate_limits` for named limiters or a rate taken from the settings).
    rate_limit: ClassVar[RateLimit | None] = None
    #: Most items one push_quantities call may carry.
    max_push_batch: ClassVar[int] = 100
    #: Most listings one read_quantities call is given (reconcile); None: the framework's
    #: default (250). Set it to what one request of the channel reads, so that no call
    #: ends in a short request.
    max_read_batch: ClassVar[int | None] = None
    #: Whether the channel has a flag that keeps a listing on sale at 0 and
    #: :meth:`push_quantities` sets it from :attr:`PushItem.backorders`. Without it
    #: ``backorders = "continue"`` is refused for the channel (``sellable check-config``).
    supports_backorders: ClassVar[bool] = False
    #: How that flag reads on the channel when on, for ``sellable explain --channel``
    #: (e.g. ``"WooCommerce backorders=notify"``).
    backorders_flag: ClassVar[str] = ""
    #: Whether the channel sends webhooks this connector can verify
    #: (:meth:`verify_webhook`) and subscribe to (:meth:`sync_webhooks`). A verified
    #: delivery only makes the daemon pull the channel's orders now: the pull stays the
    #: source of truth.
    webhooks: ClassVar[bool] = False
    #: Keys of a listing's stored ``extra`` that a listing refresh keeps when the fresh
    #: listing lacks them: facts the connector learned from other calls than its listing
    #: call, which would otherwise be lost at each refresh after a restart (Amazon's
    #: ``productType``: its listings report has none, and reading it costs 1,000 s per
    #: 100,000 listings). A key the fresh listing carries replaces the stored one.
    kept_extra: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, settings: ConnectorSettings, context: ConnectorContext) -> None:
        self.settings = settings
        self.context = context
        self.http = context.http
        self.http.set_limits(type(self).rate_limits(settings))

    @classmethod
    def rate_limits(cls, settings: ConnectorSettings) -> dict[str | None, RateLimit]:
        """The request rates the framework paces this connector by, applied to ``self.http``
        before any request: the key None is the default bucket (requests without
        ``limiter=``), any other key a named limiter (``request(..., limiter=name)``).

        The default is ``{None: cls.rate_limit}`` (nothing when that is None). Override it to
        declare per-operation limits, or to take a rate from the settings::

            @classmethod
            def rate_limits(cls, settings):
                rate = settings.requests_per_second or 2.5
                return {None: RateLimit(rate, burst=20), "feeds": RateLimit(0.0083, 15)}

        A request naming a limiter declared nowhere fails with a ChannelError naming it."""
        return {None: cls.rate_limit} if cls.rate_limit is not None else {}

    # Hooks: override those your capabilities name. -------------------------------------------

    def base_url(self) -> str:
        """The URL every request path is relative to. Called once, before any request."""
        return ""

    def authenticate(self, request_headers: dict[str, str]) -> None:
        """Add credentials to the headers of every request (called per request)."""

    def pull_orders(self, since: datetime, cursor: str | None) -> OrderPage:
        """One page of orders updated at or after ``since``; ``cursor`` is the previous
        page's ``next_cursor`` (None for the first page)."""
        raise NotImplementedError

    def list_listings(self, cursor: str | None) -> ListingPage:
        """One page of the channel's listings."""
        raise NotImplementedError

    def push_quantities(self, items: Sequence[PushItem]) -> list[PushResult]:
        """Set the quantities; one result per item, in any order."""
        raise NotImplementedError

    def pushes_in_flight(self) -> PushesInFlight | None:
        """For a channel that confirms pushes later (a queued feed): look once, cheaply,
        at what is in flight and say what settled since the last call and what still
        waits. The push job calls it at each run before handing items over: it records
        the settled outcomes, and a listing still waiting with the quantity it should
        show is not handed over again (it counts as a retry). Nothing in flight outlives
        the instance: after a restart the listings are simply pushed again. The default,
        None, tracks nothing: every pending listing goes to :meth:`push_quantities`."""
        return None

    def read_quantities(self, listings: Sequence[Listing]) -> dict[str, int]:
        """The channel's current quantity per listing id (for reconcile)."""
        raise NotImplementedError

    def pull_stock(self) -> list[StockCount]:
        """The warehouse's counts, for a warehouse connector."""
        raise NotImplementedError

    def fulfil_orders(self, requests: Sequence[FulfilmentRequest]) -> list[SubmitResult]:
        """Send each request to the provider; one result per request, in any order. A
        reference the provider already holds is :attr:`SubmitOutcome.EXISTED` (never a
        second order); no answer is :attr:`SubmitOutcome.UNKNOWN`."""
        raise NotImplementedError

    def find_fulfilments(self, references: Sequence[str]) -> dict[str, FulfilmentUpdate]:
        """The provider's orders with these references (absent: the provider has none).
        Called before a request whose answer was lost is sent again."""
        raise NotImplementedError

    def pull_fulfilments(self, since: datetime, cursor: str | None) -> FulfilmentPage:
        """One page of the provider's orders updated at or after ``since``, with their
        shipments; ``cursor`` is the previous page's ``next_cursor``."""
        raise NotImplementedError

    def cancel_fulfilment(self, remote_id: str) -> CancelResult:
        """Cancel the provider's order ``remote_id`` (the sales channel cancelled it)."""
        raise NotImplementedError

    def webhook_url(self) -> str | None:
        """The address the channel should deliver webhooks to (the ``webhook_url``
        setting), or None when webhooks are off for this channel."""
        return None

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        """Check one delivery before any work: the signature over the raw ``body``
        (``headers`` have lower-case names), then what it is. Raise
        :class:`WebhookRejected` when it is not the channel's."""
        raise NotImplementedError

    def sync_webhooks(self) -> WebhookSubscriptions:
        """Make the channel's subscriptions what :meth:`webhook_url` wants: create the
        missing ones, repair (re-enable, re-point) the broken ones, remove the stale ones
        this connector owns. Called at start-up and at each listing refresh; with
        :meth:`webhook_url` None (webhooks turned off after being on), every one it owns is
        stale and removed."""
        raise NotImplementedError

    def take_learned_extra(self) -> dict[str, dict[str, str]]:
        """What the connector learned about listings since the last call, to keep in their
        stored ``extra`` (listing id -> keys and values; the other keys stay): a fact read by
        a push or a read-back that the listing call lacks, so that it outlives a restart.
        The framework calls this after each job; the default learns nothing."""
        return {}

    def close(self) -> None:
        """Release what the connector holds; the HTTP client is closed by the framework."""
