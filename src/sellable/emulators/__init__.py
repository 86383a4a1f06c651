"""Local emulators of the sales channels: stateful HTTP servers on loopback that follow
each channel's official API contract, for the demo, the tests and connector authors.

``sellable emulate NAME --port N`` runs one in the foreground; tests import the classes.
"""

from __future__ import annotations

import importlib

from sellable.emulators.base import (
    Bucket,
    Clock,
    EmulatorServer,
    Fault,
    HttpError,
    ManualClock,
    Request,
    Response,
)

#: name -> "module:class" of every emulator shipped with Sellable.
EMULATORS: dict[str, str] = {
    "woocommerce": "sellable.emulators.woocommerce:WooCommerceEmulator",
    "shopify": "sellable.emulators.shopify:ShopifyEmulator",
    "amazon": "sellable.emulators.amazon:AmazonEmulator",
}


def emulator_class(name: str) -> type[EmulatorServer]:
    """The emulator class registered as ``name``; KeyError names the known ones."""
    try:
        target = EMULATORS[name]
    except KeyError:
        raise KeyError(f"no emulator {name!r}; known: {', '.join(sorted(EMULATORS))}") from None
    module_name, _, class_name = target.partition(":")
    cls: type[EmulatorServer] = getattr(importlib.import_module(module_name), class_name)
    return cls


__all__ = [
    "EMULATORS",
    "Bucket",
    "Clock",
    "EmulatorServer",
    "Fault",
    "HttpError",
    "ManualClock",
    "Request",
    "Response",
    "emulator_class",
]
