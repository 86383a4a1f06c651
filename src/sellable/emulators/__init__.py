"""Local emulators of the sales channels: stateful HTTP servers on loopback that follow
each channel's official API contract, for the demo, the tests and connector authors.

``sellable emulate NAME --port N`` runs one in the foreground; tests import the classes.
Emulators register under the ``sellable.emulators`` entry-point group; their dependencies
are the ``emulators`` extra (``pip install 'sellable[emulators]'``).
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points

from sellable.emulators.base import (
    INSTALL_HINT,
    Bucket,
    Clock,
    EmulatorServer,
    Fault,
    HttpError,
    ManualClock,
    Request,
    Response,
)
from sellable.errors import ConfigError

#: The entry-point group emulators register under (pyproject.toml), as connectors do under
#: ``sellable.connectors``: a plugin package may ship the emulator of its channel.
GROUP = "sellable.emulators"


def installed_emulators() -> dict[str, EntryPoint]:
    """Entry-point name -> entry point, for every installed emulator."""
    return {entry.name: entry for entry in entry_points(group=GROUP)}


def emulator_class(name: str) -> type[EmulatorServer]:
    """The emulator class registered as ``name``. KeyError names the installed ones;
    ConfigError says how to install an emulator's missing dependencies."""
    installed = installed_emulators()
    entry = installed.get(name)
    if entry is None:
        known = ", ".join(sorted(installed)) or "none"
        raise KeyError(f"no emulator {name!r}; installed: {known}")
    loaded = entry.load()
    if not (isinstance(loaded, type) and issubclass(loaded, EmulatorServer)):
        raise ConfigError(f"emulator {name!r} ({entry.value}) is not an EmulatorServer subclass")
    return loaded


__all__ = [
    "GROUP",
    "INSTALL_HINT",
    "Bucket",
    "Clock",
    "EmulatorServer",
    "Fault",
    "HttpError",
    "ManualClock",
    "Request",
    "Response",
    "emulator_class",
    "installed_emulators",
]
