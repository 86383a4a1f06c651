"""Connector discovery through the ``sellable.connectors`` entry-point group.

Entry points are listed cheaply and loaded lazily, once; what they load must be a
:class:`~sellable.sdk.Connector` subclass.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from importlib.metadata import EntryPoint, entry_points

from pydantic import ValidationError

from sellable.config import ChannelSettings, Settings, format_validation_error
from sellable.core.rules import BACKORDERS_CONTINUE
from sellable.errors import ConfigError
from sellable.sdk import Connector, ConnectorSettings

GROUP = "sellable.connectors"


def installed_connectors() -> dict[str, EntryPoint]:
    """Entry-point name -> entry point, for every installed connector."""
    return {ep.name: ep for ep in entry_points(group=GROUP)}


@cache
def load_connector(name: str) -> type[Connector]:
    """The connector class registered as ``name``. Raises ConfigError naming the installed."""
    available = installed_connectors()
    entry = available.get(name)
    if entry is None:
        known = f"installed: {', '.join(sorted(available))}" if available else "none installed"
        raise ConfigError(f"unknown connector {name!r} ({known})")
    try:
        loaded = entry.load()
    except Exception as err:  # a broken plugin must not take the daemon down
        raise ConfigError(
            f"connector {name!r} ({entry.value}) failed to load: {type(err).__name__}: {err}"
        ) from err
    if not (isinstance(loaded, type) and issubclass(loaded, Connector)):
        raise ConfigError(
            f"connector {name!r} ({entry.value}) is not a sellable.sdk.Connector subclass"
        )
    return loaded


def validate_channel_settings(
    index: int, channel: ChannelSettings, label: str, warehouses: Sequence[str] | None = None
) -> ConnectorSettings:
    """The channel's ``settings`` table validated by its connector's model.

    ``warehouses``, the configured ``[[warehouses]]`` codes, is handed to the model as the
    validation context (``{"warehouses": (...)}``), so that a setting naming a warehouse
    (Amazon's ``fba_warehouse``) can be refused when it names none of them. The context's
    ``"channel_warehouses"`` are the channel's own ``warehouses``, so that a setting that
    must map each of them (ShipBob's ``locations``) can name one it lacks."""
    try:
        connector = load_connector(channel.connector)
    except ConfigError as err:
        raise ConfigError(
            f"{label}: channels[{index}].connector: {err} (channel {channel.code!r})"
        ) from err
    if channel.backorders == BACKORDERS_CONTINUE and not connector.supports_backorders:
        raise ConfigError(
            f'{label}: channels[{index}].backorders: "continue" needs a channel flag that keeps '
            f"selling at 0, and connector {channel.connector!r} has none (channel "
            f'{channel.code!r}); use "off" or a number of units to offer at least'
        )
    try:
        context: dict[str, tuple[str, ...]] = {"channel_warehouses": tuple(channel.warehouses)}
        if warehouses is not None:
            context["warehouses"] = tuple(warehouses)
        return connector.Settings.model_validate(channel.settings, context=context)
    except ValidationError as err:
        message = format_validation_error(label, err, connector.Settings)
        prefix = f"{label}: "
        lines = [
            f"{prefix}channels[{index}].settings.{line.removeprefix(prefix)} "
            f"(channel {channel.code!r}, connector {channel.connector!r})"
            for line in message.splitlines()
        ]
        raise ConfigError("\n".join(lines)) from err


def check_channels(settings: Settings, label: str) -> None:
    """Every channel's connector and connector settings, checked as a channel is opened;
    all problems at once in one :class:`ConfigError`. Manual channels have no connector."""
    warehouses = [w.code for w in settings.warehouses]
    problems = []
    for index, channel in enumerate(settings.channels):
        if channel.is_manual:
            continue
        try:
            validate_channel_settings(index, channel, label, warehouses=warehouses)
        except ConfigError as err:
            problems.append(str(err))
    if problems:
        raise ConfigError("\n".join(problems))
