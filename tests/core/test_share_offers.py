"""``[allocation] mode = "shared"`` in the sync engine: every channel's listings are read
once per listing refresh, not once per channel per push (issue 15)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from sellable.sync.engine import SyncEngine
from tests.e2e.test_shared_allocation import CHANNELS, FIXED, open_channels


def counting(reads: Counter[str], read: Callable[[str], list[dict[str, Any]]]) -> Any:
    """The store's own ``matched_listings``, counting its reads per channel."""

    def matched_listings(code: str) -> list[dict[str, Any]]:
        reads[code] += 1
        return read(code)

    return matched_listings


def test_shared_offers_read_every_channels_listings_once_per_listing_refresh(
    config_file: Path,
) -> None:
    with ExitStack() as stack:
        store, emulators = open_channels(config_file, FIXED, stack)
        engine = SyncEngine(store.engine, store.settings)
        reads: Counter[str] = Counter()
        engine.state.matched_listings = counting(reads, engine.state.matched_listings)  # type: ignore[method-assign]
        try:
            assert [r for r in engine.run_once() if not r.ok] == []
            before = {code: engine.desired_quantities(code) for code in CHANNELS}
            # A round of pushes with no listing refresh: each channel reads its own
            # listings, and the split reads nobody's again.
            reads.clear()
            again = {code: engine.desired_quantities(code) for code in CHANNELS}
            assert again == before
            assert reads == Counter(dict.fromkeys(CHANNELS, 1))
            # A refresh that brings a new listing: the next call reads every channel once,
            # and the new listing takes part in the split.
            new = emulators["woo"].add_listing("SCOOP-WOOD", 0, "Scoop")
            assert engine.run_job("woo", "listings").ok
            reads.clear()
            woo = engine.desired_quantities("woo")
            assert reads == Counter({"woo": 2, "shop": 1})
            allocation = engine.shared_allocation()
            assert allocation is not None
            assert ("woo", new) in allocation
            assert woo[new] == allocation.share(("woo", new))
            assert sorted(x.key for x in allocation.listings if x.sku == "SCOOP-WOOD") == [
                ("woo", new)
            ]
            reads.clear()
            engine.desired_quantities("shop")
            assert reads == Counter({"shop": 1})
        finally:
            engine.close()
            store.engine.dispose()
