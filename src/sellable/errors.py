"""Every error Sellable raises on purpose, grouped by what the caller should do.

    SellableError
    ├── ConfigError        fix the configuration file or environment, then start again
    ├── InputError         a file or record was rejected whole; nothing was written
    │   └── CatalogError   the catalog itself is inconsistent (BOM cycle, component of a simple SKU)
    ├── StoreError         the database is unreachable or its schema is not what we expect
    └── ChannelError       a channel API failed; the job fails, the daemon goes on
        │                  (``status_code``: the HTTP status when one was answered)
        ├── TemporaryChannelError   worth retrying later (timeouts, 429, 5xx, resets,
        │                           a request abandoned at shutdown)
        ├── AuthenticationError     credentials refused: fix the channel's settings
        └── ChannelPayloadError     the channel sent something we cannot read
            └── OrderPayloadError   one order of a page cannot be read: that order is
                                    refused (by id and field), the rest is imported

Connectors import the channel errors from :mod:`sellable.sdk`, which re-exports them.

Messages name the thing and the value, e.g.
``products.csv line 7, column 'kind': unknown kind 'kitt' (expected one of: ...)``.
"""

from __future__ import annotations


class SellableError(Exception):
    """Base of every error raised on purpose by Sellable."""

    exit_code = 1


class ConfigError(SellableError):
    """The configuration is invalid; the message names the file, the key path and the reason."""

    exit_code = 2


class InputError(SellableError):
    """Input was rejected as a whole; nothing of it was written."""

    exit_code = 3


class CatalogError(InputError):
    """The catalog is inconsistent: a BOM cycle, a component of a simple SKU, an unknown SKU."""


class StoreError(SellableError):
    """The database cannot be used: unreachable, or its schema is behind the code."""

    exit_code = 4


class ChannelError(SellableError):
    """A channel's API failed. The job fails and is tried again at its next run.

    ``status_code`` is the HTTP status the channel answered (None: no answer, or an error
    not of HTTP), as on ``httpx.HTTPStatusError``: e.g. ``err.status_code == 413`` means
    the batch was too large."""

    exit_code = 5

    def __init__(
        self, message: str, *, channel: str | None = None, status_code: int | None = None
    ) -> None:
        super().__init__(f"{channel}: {message}" if channel else message)
        self.channel = channel
        self.status_code = status_code


class TemporaryChannelError(ChannelError):
    """Worth retrying: a timeout, a connection reset, HTTP 429 or 5xx."""

    def __init__(
        self,
        message: str,
        *,
        channel: str | None = None,
        status_code: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, channel=channel, status_code=status_code)
        self.retry_after = retry_after


class AuthenticationError(ChannelError):
    """The channel refused our credentials (HTTP 401/403)."""


class ChannelPayloadError(ChannelError):
    """The channel answered with something we cannot read (malformed JSON, missing fields)."""


class OrderPayloadError(ChannelPayloadError):
    """One order cannot be read: ``order_id`` (None while a line is being read, before the
    order's id is known to the code raising it), the ``field`` at fault in the channel's
    own terms (``line_items[2].quantity``) and the ``reason``. The order is refused and
    reported; the other orders of its page are imported."""

    def __init__(self, field: str, reason: str, *, order_id: str | None = None) -> None:
        self.field = field
        self.reason = reason
        self.order_id = order_id
        where = f"order {order_id!r}, " if order_id is not None else ""
        super().__init__(f"{where}field {field}: {reason}")
