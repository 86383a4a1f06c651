"""The order cursor: where an order pull starts and where its bookmark may move.

Pure (no HTTP, no database), like singer-sdk keeps bookmarks apart from streams:

* the first pull starts ``initial_lookback`` before the run's start; later pulls start
  ``order_overlap`` before the stored cursor, so an order the channel dated late is read
  again (and counted once, because applying an order twice changes nothing);
* the cursor moves to the newest update seen, never past the run's start (orders that
  changed while we paged are read again next time), and never backwards;
* an order refused while being read (its payload is corrupt) holds the cursor at its
  modification time, or where the cursor stood when that time cannot be read, so that the
  next pulls read it again until it parses; see :meth:`Bookmark.hold`;
* a connector does not promise its pages sorted by update time, so the cursor moves only
  when the pull read every page: a pull broken off (an error, a shutdown, or the page limit
  running out) keeps the stored cursor, and the next pull reads the window again.

Usage::

    window = OrderWindow.open(stored, run_start, initial_lookback, overlap)
    bookmark = Bookmark(window)
    for order in pages:
        bookmark.see(order.updated_at)
    bookmark.hold(refused.updated_at)               # an order that could not be read
    new_cursor = bookmark.advance(complete=True)   # None: keep the stored cursor
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


def as_utc(moment: datetime) -> datetime:
    """A channel time without a zone is UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class OrderWindow:
    """One pull's window: orders updated at or after ``since`` are asked for."""

    since: datetime
    run_start: datetime
    stored: datetime | None  # the cursor stored before this run (None: the first pull)

    @classmethod
    def open(
        cls,
        stored: datetime | None,
        run_start: datetime,
        initial_lookback: timedelta,
        overlap: timedelta,
    ) -> OrderWindow:
        stored = None if stored is None else as_utc(stored)
        since = run_start - initial_lookback if stored is None else stored - overlap
        return cls(since=since, run_start=run_start, stored=stored)


class Bookmark:
    """The newest update a pull saw, and the cursor it leaves behind."""

    def __init__(self, window: OrderWindow) -> None:
        self.window = window
        self.newest: datetime | None = None
        self.held: datetime | None = None

    def hold(self, updated_at: datetime | None) -> None:
        """Keep the cursor from passing a refused order changed at ``updated_at`` (None:
        its time is unknown, so the cursor stays where the pull started)."""
        window = self.window
        if updated_at is None:
            moment = window.stored if window.stored is not None else window.since
        else:
            moment = as_utc(updated_at)
        if self.held is None or moment < self.held:
            self.held = moment

    def see(self, updated_at: datetime) -> None:
        moment = as_utc(updated_at)
        if self.newest is None or moment > self.newest:
            self.newest = moment

    def advance(self, *, complete: bool) -> datetime | None:
        """The cursor to store after the pull, or None to keep the stored one.

        ``complete`` is False when the pull stopped before the channel's last page (the page
        limit ran out): what was read is applied, but the cursor stays, since orders on the
        pages not read may be older than those seen."""
        window = self.window
        if not complete:
            return None
        if self.newest is None:
            # Nothing in the window: a first pull still records where it looked from, so
            # the next one does not look back the whole initial lookback again.
            return window.since if window.stored is None else None
        moved = min(self.newest, window.run_start)
        if self.held is not None:
            moved = min(moved, self.held)
        if window.stored is not None and moved <= window.stored:
            return None
        return moved


__all__ = ["Bookmark", "OrderWindow", "as_utc"]
