"""Bulk operations: every variant's inventory levels in one background query of Shopify's,
read back as a JSONL file (https://shopify.dev/docs/api/usage/bulk-operations/queries).

Three parts, each with one job:

* :data:`LEVELS_QUERY`, the bulk query: every variant with its SKU and inventory item, and
  the item's inventory levels (a nested connection: one JSONL line per level, after a line
  per variant, tied to it by ``__parentId``);
* :class:`BulkLevelsReader`, the parser: fed the file in pieces of any size (a line may be
  cut anywhere), it gives a :class:`~sellable.sdk.Listing` per level at a wanted location
  as soon as both its variant's line and its own have been read. It relies on no order
  between the lines (Shopify promises none without ``groupObjects``), so it keeps one small
  entry per variant (SKU, inventory item) and the levels read before their variant; never
  the file;
* :class:`ShopifyBulk`, the calls: start the operation (or join ours already running),
  wait for it by polling ``bulkOperation(id:)`` at :data:`POLL_LIMITER`'s pace (the
  framework's wait, which shutdown interrupts), and download the result in ranges of
  :data:`CHUNK_BYTES` through the channel's HTTP client, without the access token (the URL
  is pre-signed and on another host).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sellable.sdk import (
    AuthenticationError,
    ChannelError,
    ChannelHttp,
    ChannelPayloadError,
    Listing,
    TemporaryChannelError,
)
from sellable_shopify.client import ShopifyGraphQL, available_of

#: The named limiter that paces status polls: one a second. A poll costs 1 query point of
#: the 50 restored each second; the wait is the framework's (interrupted at shutdown).
POLL_LIMITER = "shopify-bulk-poll"
POLL_RATE = 1.0
#: Give up on an operation still running after this long (seconds): it is cancelled and the
#: job fails, to run again at its next interval.
WAIT_LIMIT = 3600.0
#: Bytes per ranged download of the result: about 2,500 listings (one location).
CHUNK_BYTES = 1 << 20
#: Statuses of an operation still under way (BulkOperationStatus).
UNDER_WAY = frozenset({"CREATED", "RUNNING", "CANCELING"})
SEPARATOR = "|"  # listing id: "<inventory item gid>|<location gid>"

#: Every variant with its inventory levels. Connections in a bulk query take no ``first``;
#: nesting is at most two connections deep (bulk operations guide, "Operation
#: restrictions"). ``inventoryLevels`` lists only the locations where the item is stocked,
#: as ``inventoryLevel(locationId:)`` of the paged query answers null elsewhere.
LEVELS_QUERY = """{
  productVariants(sortKey: ID) {
    edges {
      node {
        id
        sku
        inventoryItem {
          id
          inventoryLevels {
            edges {
              node {
                location { id }
                quantities(names: ["available"]) { quantity }
              }
            }
          }
        }
      }
    }
  }
}"""

OPERATION_FIELDS = "id status errorCode objectCount url partialDataUrl query"
RUN = f"""
mutation SellableBulkRun($query: String!) {{
  bulkOperationRunQuery(query: $query) {{
    bulkOperation {{ {OPERATION_FIELDS} }}
    userErrors {{ field message code }}
  }}
}}"""
#: ``bulkOperation(id:)`` is new in 2026-01, when up to five bulk queries may run at once
#: and ``currentBulkOperation`` (the most recent) may be another's
#: (https://shopify.dev/changelog/new-queries-for-bulk-operations).
POLL = f"""
query SellableBulkOperation($id: ID!) {{
  bulkOperation(id: $id) {{ {OPERATION_FIELDS} }}
}}"""
CURRENT = f"""
query SellableCurrentBulkOperation {{
  currentBulkOperation(type: QUERY) {{ {OPERATION_FIELDS} }}
}}"""
CANCEL = """
mutation SellableBulkCancel($id: ID!) {
  bulkOperationCancel(id: $id) { bulkOperation { id status } userErrors { field message } }
}"""
CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")


@dataclass(frozen=True, slots=True)
class BulkOperation:
    """What ``bulkOperation(id:)`` says of one operation."""

    id: str
    status: str
    error_code: str | None = None
    object_count: int = 0
    url: str | None = None
    partial_url: str | None = None
    query: str | None = None

    @classmethod
    def of(cls, node: Any, channel: str) -> BulkOperation:
        if not isinstance(node, dict) or not node.get("id") or not node.get("status"):
            raise ChannelPayloadError(f"unexpected BulkOperation: {node!r:.200}", channel=channel)
        return cls(
            id=str(node["id"]),
            status=str(node["status"]),
            error_code=node.get("errorCode"),
            object_count=int(node.get("objectCount") or 0),  # UnsignedInt64: a string
            url=node.get("url"),
            partial_url=node.get("partialDataUrl"),
            query=node.get("query"),
        )


@dataclass
class BulkLevelsReader:
    """Listings from the JSONL of :data:`LEVELS_QUERY`, fed in pieces.

    Usage::

        reader = BulkLevelsReader({"gid://shopify/Location/1": None})
        for piece in pieces:
            listings.extend(reader.feed(piece))
        listings.extend(reader.finish())

    ``locations``: location gid -> warehouse code (None: the channel's total); levels at
    other locations are skipped. ``partial``: the file of a failed operation, whose levels
    without their variant are dropped instead of refused."""

    locations: Mapping[str, str | None]
    partial: bool = False
    channel: str = ""
    lines: int = 0
    #: variant gid -> (SKU, inventory item gid), and inventory item gid -> variant gid
    #: (a level names its parent by either, whichever Shopify counts as the parent).
    _variants: dict[str, tuple[str | None, str]] = field(default_factory=dict)
    _items: dict[str, str] = field(default_factory=dict)
    #: Levels read before their variant: parent gid -> [(location gid, available)].
    _waiting: dict[str, list[tuple[str, int | None]]] = field(default_factory=dict)
    _carry: bytes = b""

    def feed(self, piece: bytes) -> list[Listing]:
        """The listings completed by this piece of the file."""
        data = self._carry + piece
        cut = data.rfind(b"\n")
        if cut < 0:
            self._carry = data
            return []
        self._carry = data[cut + 1 :]
        found: list[Listing] = []
        for raw in data[:cut].split(b"\n"):
            self._line(raw, found)
        return found

    def finish(self) -> list[Listing]:
        """The listings of the last line (a file may end without a newline); refuses levels
        whose variant never came, unless the file is partial."""
        found: list[Listing] = []
        if self._carry:
            self._line(self._carry, found)
            self._carry = b""
        if self._waiting and not self.partial:
            orphans = sum(len(levels) for levels in self._waiting.values())
            parent = next(iter(self._waiting))
            raise ChannelPayloadError(
                f"bulk result: {orphans} inventory level(s) name a parent that is not in the "
                f"file (first: {parent})",
                channel=self.channel,
            )
        self._waiting.clear()
        return found

    def _line(self, raw: bytes, found: list[Listing]) -> None:
        if not raw.strip():
            return
        self.lines += 1
        try:
            row = json.loads(raw)
        except ValueError as err:
            raise ChannelPayloadError(
                f"bulk result line {self.lines} is not JSON: {err}", channel=self.channel
            ) from err
        if not isinstance(row, dict):
            raise ChannelPayloadError(
                f"bulk result line {self.lines} is not an object", channel=self.channel
            )
        parent = row.get("__parentId")
        if parent is None:
            self._variant(row, found)
            return
        location = (row.get("location") or {}).get("id")
        if not isinstance(location, str):
            raise ChannelPayloadError(
                f"bulk result line {self.lines}: an inventory level without location.id",
                channel=self.channel,
            )
        if location not in self.locations:
            return  # a location the channel does not map: not ours to set
        quantity = available_of(row)
        variant = self._items.get(str(parent), str(parent))
        if variant in self._variants:
            found.append(self._listing(variant, location, quantity))
        else:
            self._waiting.setdefault(str(parent), []).append((location, quantity))

    def _variant(self, row: dict[str, Any], found: list[Listing]) -> None:
        variant, item = row.get("id"), (row.get("inventoryItem") or {}).get("id")
        if not isinstance(variant, str) or not isinstance(item, str):
            raise ChannelPayloadError(
                f"bulk result line {self.lines}: a variant without id or inventoryItem.id",
                channel=self.channel,
            )
        self._variants[variant] = (row.get("sku") or None, item)
        self._items[item] = variant
        for parent in (variant, item):
            for location, quantity in self._waiting.pop(parent, ()):
                found.append(self._listing(variant, location, quantity))

    def _listing(self, variant: str, location: str, quantity: int | None) -> Listing:
        sku, item = self._variants[variant]
        warehouse = self.locations[location]
        return Listing(
            listing_id=f"{item}{SEPARATOR}{location}",
            sku=sku,
            parent_id=variant,
            warehouses=(warehouse,) if warehouse else None,
            quantity=quantity,
        )


class ShopifyBulk:
    """Run :data:`LEVELS_QUERY` as a bulk operation and fetch its result.

    Usage::

        bulk = ShopifyBulk(api, http, channel)
        operation = bulk.finished(bulk.start())
        piece, next_offset = bulk.download(operation.url, 0)
    """

    def __init__(self, api: ShopifyGraphQL, http: ChannelHttp, channel: str) -> None:
        self.api = api
        self.http = http
        self.channel = channel
        if POLL_LIMITER not in http.limiters:
            http.limiter(POLL_LIMITER, rate=POLL_RATE, burst=1)
        self.polls = 0

    def start(self, query: str = LEVELS_QUERY) -> BulkOperation:
        """A new operation, or ours already running (the same query, started by a run that
        gave up waiting or by another Sellable with this app's token). Another of the
        app's queries filling the shop's slots fails the job: it runs again at its next
        interval."""
        data = self.api.execute("SellableBulkRun", RUN, {"query": query}, 10)
        payload = data.get("bulkOperationRunQuery") or {}
        errors = payload.get("userErrors") or []
        if not errors:
            return BulkOperation.of(payload.get("bulkOperation"), self.channel)
        codes = {str(e.get("code")) for e in errors if isinstance(e, dict)}
        message = "; ".join(str(e.get("message", e)) for e in errors if isinstance(e, dict))
        if "OPERATION_IN_PROGRESS" in codes:
            current = self.api.execute("SellableCurrentBulkOperation", CURRENT, {}, 1)
            node = current.get("currentBulkOperation")
            if node is not None:
                running = BulkOperation.of(node, self.channel)
                if running.status in UNDER_WAY and (running.query or "").split() == query.split():
                    return running
            raise TemporaryChannelError(
                f"bulkOperationRunQuery: {message} (another bulk query of this app is running "
                "on the shop; tried again at the next run)",
                channel=self.channel,
            )
        raise ChannelError(f"bulkOperationRunQuery: {message}", channel=self.channel)

    def poll(self, operation_id: str) -> BulkOperation:
        self.http.limiters[POLL_LIMITER].acquire()
        self.polls += 1
        data = self.api.execute("SellableBulkOperation", POLL, {"id": operation_id}, 1)
        node = data.get("bulkOperation")
        if node is None:
            raise ChannelError(f"bulk operation {operation_id} not found", channel=self.channel)
        return BulkOperation.of(node, self.channel)

    def finished(self, operation: BulkOperation) -> BulkOperation:
        """Poll until the operation is no longer under way (cancelled after
        :data:`WAIT_LIMIT` seconds, failing the job)."""
        started = self.http.clock()
        while operation.status in UNDER_WAY:
            if self.http.clock() - started > WAIT_LIMIT:
                self.api.execute("SellableBulkCancel", CANCEL, {"id": operation.id}, 10)
                raise TemporaryChannelError(
                    f"bulk operation {operation.id} still {operation.status} after "
                    f"{WAIT_LIMIT / 60:.0f} min ({operation.object_count} objects); cancelled",
                    channel=self.channel,
                )
            operation = self.poll(operation.id)
        return operation

    def download(self, url: str, offset: int) -> tuple[bytes, int | None]:
        """Up to :data:`CHUNK_BYTES` of the file from ``offset``, and where the next piece
        starts (None at the end). The URL is pre-signed: the request carries no access
        token. A server that ignores ``Range`` sends the whole file at once."""
        end = offset + CHUNK_BYTES - 1
        try:
            response = self.http.request(
                "GET", url, headers={"Range": f"bytes={offset}-{end}"}, credentials=False
            )
        except AuthenticationError as err:
            # 403 from the storage host: the signed URL expired (after seven days).
            raise TemporaryChannelError(
                f"the bulk result URL was refused ({err}); it expires seven days after the "
                "operation: the next run starts a new one",
                channel=self.channel,
            ) from err
        except ChannelError as err:
            if err.status_code == 416:  # nothing at or after offset: the end
                return b"", None
            raise
        if response.status_code != 206:
            return response.content, None
        found = CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
        piece = response.content
        if found is None or found[3] == "*":
            return piece, (offset + len(piece)) if len(piece) == CHUNK_BYTES else None
        following = int(found[2]) + 1
        return piece, following if following < int(found[3]) else None


__all__ = [
    "CHUNK_BYTES",
    "LEVELS_QUERY",
    "POLL_LIMITER",
    "BulkLevelsReader",
    "BulkOperation",
    "ShopifyBulk",
]
