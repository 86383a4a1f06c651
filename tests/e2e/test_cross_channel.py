"""End to end across channels: the WooCommerce, Shopify and Amazon connectors (installed
plugins) against their emulators over real loopback HTTP, driven by the daemon's own sync
pass, with the example catalog on SQLite and PostgreSQL. Amazon sells merchant-fulfilled
from ``main`` and books FBA stock in ``fba-us``.

An order placed on one channel must lower the quantity pushed to every other channel by
exactly the right amount, through an assembly (with an on-demand build), a virtual kit
and their shared components, whichever channel it was placed on.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from sqlalchemy import select

from sellable.demo import DEMO_SETTINGS, EMULATOR_OPTIONS, toml_value
from sellable.emulators import EmulatorServer, emulator_class
from sellable.store import schema
from sellable.sync.engine import SyncEngine
from tests.imports import Store, open_store

LISTED = (
    "GIFT-SET-COFFEE",
    "GIFT-KIT-COFFEE",
    "BEANS-12OZ",
    "MUG-CERAMIC",
    "SCOOP-WOOD",
)
CHANNELS = {"woo": "woocommerce", "shop": "shopify", "amz": "amazon"}
WAREHOUSES = {"amazon": '["fba-us", "main"]'}
#: The demo's emulator options: Amazon's reports and feeds in tenths of a second and a
#: WooCommerce that takes 25 requests a second (the test is about propagation, not limits).
OPTIONS = EMULATOR_OPTIONS


@pytest.fixture
def channels(config_file: Path) -> Iterator[tuple[Store, dict[str, EmulatorServer]]]:
    with ExitStack() as stack:
        emulators: dict[str, EmulatorServer] = {}
        with config_file.open("a") as handle:
            for code, name in CHANNELS.items():
                emulator = emulator_class(name)(port=0, **OPTIONS.get(name, {}))
                stack.enter_context(emulator)
                emulators[code] = emulator
                warehouses = WAREHOUSES.get(name, '["main"]')
                handle.write(
                    f'\n[[channels]]\ncode = "{code}"\nconnector = "{name}"\n'
                    f"warehouses = {warehouses}\n\n[channels.settings]\n"
                )
                settings = emulator.connector_settings() | DEMO_SETTINGS.get(name, {})
                for key, value in settings.items():
                    handle.write(f"{key} = {toml_value(value)}\n")
        store = open_store(config_file)
        store.load_examples()
        for emulator in emulators.values():
            for sku in LISTED:
                emulator.add_listing(sku, 0, sku.title())
        try:
            yield store, emulators
        finally:
            store.engine.dispose()


def shown(emulators: dict[str, EmulatorServer]) -> dict[str, dict[str, int]]:
    return {
        code: {sku: q for sku, q in emulator.quantities().items() if sku in LISTED}
        for code, emulator in emulators.items()
    }


def everywhere(**quantities: int) -> dict[str, dict[str, int]]:
    figures = {sku.replace("_", "-"): q for sku, q in quantities.items()}
    return {code: dict(figures) for code in CHANNELS}


def test_order_on_one_channel_lowers_every_other_channel_through_kits_and_assemblies(
    channels: tuple[Store, dict[str, EmulatorServer]],
) -> None:
    store, emulators = channels
    engine = SyncEngine(store.engine, store.settings)
    try:
        first = engine.run_once()
        assert [r for r in first if not r.ok] == []
        # 10 assembled + min(50, 30, 100) from components; the kit: min(50, 30, 100)
        assert shown(emulators) == everywhere(
            GIFT_SET_COFFEE=40, GIFT_KIT_COFFEE=30, BEANS_12OZ=50, MUG_CERAMIC=30, SCOOP_WOOD=100
        )

        # 12 sets on WooCommerce: 10 from the shelf, 2 built on demand from components
        emulators["woo"].place_order([("GIFT-SET-COFFEE", 12)])
        second = engine.run_once()
        assert [r for r in second if not r.ok] == []
        assert shown(emulators) == everywhere(
            GIFT_SET_COFFEE=28, GIFT_KIT_COFFEE=28, BEANS_12OZ=48, MUG_CERAMIC=28, SCOOP_WOOD=98
        )
        with store.engine.connect() as connection:
            builds = connection.execute(
                select(schema.assembly_orders.c.quantity, schema.assembly_orders.c.origin)
            ).all()
        assert [tuple(b) for b in builds] == [(2, "on-demand")]

        # 3 kits on Shopify: each takes one of every component, never a kit unit
        emulators["shop"].place_order([("GIFT-KIT-COFFEE", 3)])
        third = engine.run_once()
        assert [r for r in third if not r.ok] == []
        assert shown(emulators) == everywhere(
            GIFT_SET_COFFEE=25, GIFT_KIT_COFFEE=25, BEANS_12OZ=45, MUG_CERAMIC=25, SCOOP_WOOD=95
        )

        # 5 mugs sold merchant-fulfilled on Amazon: from main, like the storefronts
        emulators["amz"].place_order([("MUG-CERAMIC", 5)])
        fourth = engine.run_once()
        assert [r for r in fourth if not r.ok] == []
        assert shown(emulators) == everywhere(
            GIFT_SET_COFFEE=20, GIFT_KIT_COFFEE=20, BEANS_12OZ=45, MUG_CERAMIC=20, SCOOP_WOOD=95
        )
    finally:
        engine.close()
