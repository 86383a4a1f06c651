"""The order cursor on its own: no HTTP, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sellable.sync.cursor import Bookmark, OrderWindow, as_utc

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LOOKBACK = timedelta(days=7)
OVERLAP = timedelta(minutes=10)


def window(stored: datetime | None) -> OrderWindow:
    return OrderWindow.open(stored, START, LOOKBACK, OVERLAP)


def test_cursor_first_pull_starts_initial_lookback_before_the_run() -> None:
    opened = window(None)

    assert (opened.since, opened.stored, opened.run_start) == (START - LOOKBACK, None, START)


def test_cursor_later_pull_starts_the_overlap_before_the_stored_cursor() -> None:
    stored = START - timedelta(hours=1)

    assert window(stored).since == stored - OVERLAP


def test_cursor_stored_without_zone_is_read_as_utc() -> None:
    naive = datetime(2026, 3, 1, 11, 0)

    assert window(naive).since == naive.replace(tzinfo=UTC) - OVERLAP


@pytest.mark.parametrize(
    ("stored", "seen", "expected"),
    [
        pytest.param(None, [-3, -1, -2], -1, id="first-pull-newest-seen"),
        pytest.param(-60, [-30, -5], -5, id="moves-forward-to-newest"),
        pytest.param(None, [-5, 30], 0, id="capped-at-the-runs-start"),
        pytest.param(-60, [-65, -61], None, id="never-backwards"),
        pytest.param(-60, [-60], None, id="equal-is-kept"),
        pytest.param(-60, [], None, id="nothing-seen-keeps-the-cursor"),
    ],
)
def test_cursor_advances_to_the_newest_update_seen_never_past_the_run_start(
    stored: int | None, seen: list[int], expected: int | None
) -> None:
    bookmark = Bookmark(window(None if stored is None else START + timedelta(minutes=stored)))
    for minutes in seen:
        bookmark.see(START + timedelta(minutes=minutes))

    moved = bookmark.advance(complete=True)

    assert moved == (None if expected is None else START + timedelta(minutes=expected))


def test_cursor_first_pull_that_saw_nothing_records_where_it_looked_from() -> None:
    assert Bookmark(window(None)).advance(complete=True) == START - LOOKBACK


@pytest.mark.parametrize("stored", [None, START - timedelta(hours=1)], ids=["first", "later"])
def test_cursor_stays_when_the_page_limit_ran_out(stored: datetime | None) -> None:
    bookmark = Bookmark(window(stored))
    bookmark.see(START - timedelta(minutes=1))

    assert bookmark.advance(complete=False) is None


def test_cursor_update_time_without_zone_counts_as_utc() -> None:
    bookmark = Bookmark(window(None))
    bookmark.see(datetime(2026, 3, 1, 11, 30))
    bookmark.see(datetime(2026, 3, 1, 11, 0, tzinfo=UTC))

    assert bookmark.newest == datetime(2026, 3, 1, 11, 30, tzinfo=UTC)
    assert as_utc(datetime(2026, 1, 1)) == datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("held", "expected"),
    [
        (START - timedelta(hours=2), START - timedelta(hours=2)),  # waits at the refused order
        (START - timedelta(minutes=5), START - timedelta(minutes=10)),  # newer: the newest seen
        (None, None),  # its time unknown: the cursor stays where it stood
        (START - timedelta(days=2), None),  # older than the stored cursor: never backwards
    ],
    ids=["at-refused", "newest-first", "unknown-time", "never-backwards"],
)
def test_cursor_waits_at_a_refused_order(held: datetime | None, expected: datetime | None) -> None:
    stored = START - timedelta(days=1)
    bookmark = Bookmark(OrderWindow.open(stored, START, LOOKBACK, OVERLAP))
    bookmark.see(START - timedelta(minutes=10))
    bookmark.hold(held)
    assert bookmark.advance(complete=True) == expected


def test_cursor_first_pull_with_a_refused_order_of_unknown_time_stays_at_its_start() -> None:
    bookmark = Bookmark(OrderWindow.open(None, START, LOOKBACK, OVERLAP))
    bookmark.see(START - timedelta(minutes=10))
    bookmark.hold(None)
    assert bookmark.advance(complete=True) == START - LOOKBACK
