"""The configuration: one TOML file, validated by pydantic-settings, overridable by environment.

Where the file is found: ``--config FILE``; else ``./sellable.toml`` when it exists; else
``$SELLABLE_CONFIG``. Environment variables ``SELLABLE_<SECTION>__<KEY>`` override the
file (``SELLABLE_DATABASE__URL=postgresql+psycopg://...``). A relative SQLite path in the
file is relative to the file's folder, wherever the command runs (:attr:`Settings.source`).
"""

from __future__ import annotations

import difflib
import math
import os
import re
import tomllib
from contextvars import ContextVar
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)
from pytimeparse2 import parse as parse_duration

from sellable.core.rules import BACKORDERS_CONTINUE, BACKORDERS_OFF, Backorders, ChannelRules
from sellable.errors import ConfigError

DEFAULT_CONFIG_FILE = Path("sellable.toml")
CONFIG_ENV_VAR = "SELLABLE_CONFIG"
#: ``connector = "manual"``: a channel whose orders arrive by CSV only (no connector, no jobs).
MANUAL_CONNECTOR = "manual"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")

#: The longest duration any setting takes: a year. Longer is a typo (``"3650000d"``), and
#: would overflow the dates computed from it.
MAX_DURATION = timedelta(days=365)
#: The most units a quantity setting takes (as a CSV quantity): more is a typo.
MAX_UNITS = 1_000_000_000
#: The longest SQLite busy timeout, in seconds (an hour).
MAX_BUSY_TIMEOUT_SECONDS = 3600.0

_toml_file: ContextVar[Path | None] = ContextVar("sellable_toml_file", default=None)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _parse_duration(value: Any, allow_zero: bool) -> timedelta:
    """``"30s"``, ``"2m"``, ``"24h"``, ``"7d"`` (a number of seconds is accepted too)."""
    if isinstance(value, timedelta):
        seconds: float | None = value.total_seconds()
    elif isinstance(value, bool) or not isinstance(value, str | int | float):
        seconds = None
    else:
        seconds = parse_duration(str(value))
    if seconds is None or not math.isfinite(seconds):
        raise ValueError('not a duration (write e.g. "30s", "2m", "24h", "7d")')
    if seconds > MAX_DURATION.total_seconds():
        raise ValueError(f"duration is too long (at most {MAX_DURATION.days}d)")
    if seconds < 0 or (seconds == 0 and not allow_zero):
        raise ValueError(
            "duration must be positive" if not allow_zero else "duration must not be negative"
        )
    return timedelta(seconds=seconds)


def _format_duration(value: timedelta) -> str:
    return f"{value.total_seconds():g}s"


Duration = Annotated[
    timedelta,
    BeforeValidator(lambda v: _parse_duration(v, allow_zero=False)),
    PlainSerializer(_format_duration, return_type=str),
]
NonNegativeDuration = Annotated[
    timedelta,
    BeforeValidator(lambda v: _parse_duration(v, allow_zero=True)),
    PlainSerializer(_format_duration, return_type=str),
]


class DatabaseSettings(_Section):
    """``[database]``: where the store lives."""

    url: SecretStr = Field(
        default=SecretStr("sqlite:///sellable.db"),
        description="SQLAlchemy URL: sqlite:///file.db or postgresql+psycopg://user@host/db",
    )

    @field_validator("url")
    @classmethod
    def _known_database(cls, url: SecretStr) -> SecretStr:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            backend = make_url(url.get_secret_value()).get_backend_name()
        except ArgumentError:
            raise ValueError(
                "not a database URL (write sqlite:///FILE or postgresql+psycopg://...)"
            ) from None
        if backend not in ("sqlite", "postgresql"):
            raise ValueError(
                f"unsupported database {backend!r} (use sqlite:///FILE or postgresql+psycopg://...)"
            )
        return url

    busy_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        le=MAX_BUSY_TIMEOUT_SECONDS,
        allow_inf_nan=False,
        description="how long SQLite writers wait for each other",
    )


WarehouseKind = Literal["own", "fba", "3pl"]


class WarehouseSettings(_Section):
    """``[[warehouses]]``: a place that holds stock."""

    code: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    kind: WarehouseKind = "own"
    name: str | None = None
    use_component_inventory: bool | None = Field(
        default=None, description="default: true for own, false for fba and 3pl"
    )
    assembly_on_demand: bool = False

    @model_validator(mode="after")
    def _defaults_by_kind(self) -> WarehouseSettings:
        if self.use_component_inventory is None:
            object.__setattr__(self, "use_component_inventory", self.kind == "own")
        if self.assembly_on_demand and not self.use_component_inventory:
            raise ValueError(
                f"warehouse {self.code!r} cannot assemble on demand without component "
                "inventory (set use_component_inventory = true or assembly_on_demand = false)"
            )
        return self

    @property
    def uses_components(self) -> bool:
        return bool(self.use_component_inventory)


def _backorders(value: Any) -> Backorders:
    """``"off"``, ``"continue"`` or a whole number of units >= 0."""
    if isinstance(value, str) and value.strip().lower() in (BACKORDERS_OFF, BACKORDERS_CONTINUE):
        return BACKORDERS_OFF if value.strip().lower() == BACKORDERS_OFF else BACKORDERS_CONTINUE
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value)  # from the environment
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_UNITS:
        return value
    raise ValueError(
        f'backorders must be "off", "continue" or a whole number of units from 0 to {MAX_UNITS} '
        "(offer at least that many)"
    )


class ChannelSettings(_Section):
    """``[[channels]]``: one connector instance and the rules for what it is offered."""

    code: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    connector: str = Field(
        min_length=1,
        description='entry-point name in sellable.connectors, or "manual" for a CSV-only channel',
    )
    warehouses: list[str] = Field(min_length=1)
    pull_orders_every: Duration = timedelta(minutes=2)
    push_every: Duration = timedelta(minutes=5)
    reconcile_every: Duration = timedelta(hours=24)
    refresh_listings_every: Duration = timedelta(hours=1)
    pull_stock_every: Duration = timedelta(minutes=15)
    #: A fulfilment channel (a 3PL): how often it sends the orders allocated in its
    #: warehouses (also right after every order pull), and how often it polls shipments.
    fulfil_every: Duration = timedelta(minutes=1)
    pull_shipments_every: Duration = timedelta(minutes=5)
    initial_lookback: Duration = timedelta(days=7)
    order_overlap: Duration = Field(
        default=timedelta(minutes=10),
        description="how far before the stored cursor each order pull starts again",
    )
    safety_stock: int = Field(default=0, ge=0, le=MAX_UNITS)
    allocation_percent: float = Field(default=100, ge=0, le=100, allow_inf_nan=False)
    max_quantity: int = Field(default=0, ge=0, le=MAX_UNITS, description="0 = no cap")
    zero_below: int = Field(default=0, ge=0, le=MAX_UNITS)
    backorders: Annotated[Backorders, BeforeValidator(_backorders)] = Field(
        default=BACKORDERS_OFF,
        description='for SKUs allowing orders exceeding stock: "off" offers what is there, '
        '"continue" asks the channel to keep selling at 0, a number N offers at least N',
    )
    dry_run: bool = False
    settings: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _manual_has_no_settings(self) -> ChannelSettings:
        if self.is_manual and self.settings:
            raise ValueError(
                f"channel {self.code!r} is manual (orders come by 'sellable import orders' "
                "only): it has no connector settings to give"
            )
        if self.is_manual and self.backorders == BACKORDERS_CONTINUE:
            raise ValueError(
                f'channel {self.code!r} is manual: backorders = "continue" asks a channel to '
                "keep selling at 0, and nothing is pushed to a manual channel"
            )
        return self

    @property
    def is_manual(self) -> bool:
        """A CSV-only channel: no connector is loaded and no job runs for it."""
        return self.connector == MANUAL_CONNECTOR

    def rules(self) -> ChannelRules:
        """The channel's rules from the sum of sellable to what it is offered."""
        return ChannelRules(
            allocation_percent=self.allocation_percent,
            safety_stock=self.safety_stock,
            max_quantity=self.max_quantity,
            zero_below=self.zero_below,
            backorders=self.backorders,
        )


_LISTEN = re.compile(r"^[^:]+:\d+$|^\[.+\]:\d+$")


class DaemonSettings(_Section):
    """``[daemon]``: how the service runs."""

    http_listen: str = Field(
        default="127.0.0.1:9178",
        description="address of /healthz and /metrics; empty port 0 picks one",
    )
    push_debounce: NonNegativeDuration = timedelta(seconds=1)
    jitter: NonNegativeDuration = timedelta(seconds=5)
    shutdown_timeout: Duration = timedelta(seconds=8)
    healthz_strict: bool = Field(
        default=False,
        description="answer /healthz with HTTP 503 while a channel fails (or ask ?strict=1)",
    )
    degraded_after: Duration = Field(
        default=timedelta(seconds=60),
        description="a channel's job failing for longer than this makes the channel degraded",
    )
    keep_job_runs: Duration = Field(
        default=timedelta(days=90),
        description="job runs older than this are deleted once a day (each job's latest run "
        "and latest success stay: health reads them)",
    )
    webhook_listen: str | None = Field(
        default=None,
        description="address of the webhook listener (POST /webhooks/{channel}), a listener "
        "of its own meant to sit behind the merchant's TLS reverse proxy; unset: no webhooks",
    )
    webhook_max_body: int = Field(
        default=1_048_576,
        gt=0,
        description="largest webhook body accepted, in bytes (larger ones get HTTP 413)",
    )
    webhook_debounce: NonNegativeDuration = Field(
        default=timedelta(seconds=0.25),
        description="a webhook schedules the channel's order pull this long after it came; "
        "deliveries within that time share one pull",
    )
    dashboard_token: SecretStr | None = Field(
        default=None,
        description="the dashboard's login token; required when http_listen (or sellable "
        "dashboard --listen) is not a loopback address",
    )
    dashboard_read_only: bool = Field(
        default=False,
        description="the dashboard shows figures only: its actions (build, sync now, retry "
        "held lines) are hidden and refused",
    )

    @field_validator("http_listen", "webhook_listen")
    @classmethod
    def _host_and_port(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if not _LISTEN.match(value):
            raise ValueError(
                'write HOST:PORT, e.g. "127.0.0.1:9178", "0.0.0.0:9178" or "[::1]:9178" '
                "(port 0 picks a free one)"
            )
        return value


def _log_level(value: Any) -> Any:
    """``"info"`` is ``"INFO"``; anything else is left for the literal to refuse."""
    if isinstance(value, str) and value.upper() in LOG_LEVELS:
        return value.upper()
    return value


LogLevel = Annotated[Literal["DEBUG", "INFO", "WARNING", "ERROR"], BeforeValidator(_log_level)]


class LoggingSettings(_Section):
    """``[logging]``: how log lines are written (the level is the top-level ``log_level``)."""

    format: Literal["text", "json"] = Field(
        default="text",
        description='"text" for people, "json" (one object per line) for log shippers',
    )


def _default_warehouses() -> list[WarehouseSettings]:
    return [WarehouseSettings(code="main")]


class CostingSettings(_Section):
    """``[costing]``: the base currency every cost and revenue is converted to, and the time
    zone whose calendar date decides when a lot has expired."""

    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$", description="ISO 4217")
    timezone: str = Field(default="UTC", description="IANA zone, e.g. Europe/Oslo")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (an IANA name, e.g. UTC)") from None
        return value

    def today(self) -> date:
        """Today's date where the merchant is: a lot expires when this passes its date."""
        return datetime.now(ZoneInfo(self.timezone)).date()


class AllocationChannelSettings(_Section):
    """``[allocation.channels.CODE]``: a channel's fixed weight and its reserve in
    ``"shared"`` mode."""

    weight: float = Field(default=1.0, ge=0, le=1e9, allow_inf_nan=False)
    reserve: int = Field(
        default=0,
        ge=0,
        le=MAX_UNITS,
        description="units each listing of the channel gets first, per warehouse",
    )
    push_latency: NonNegativeDuration = Field(
        default=timedelta(0),
        description=(
            "how long a pushed quantity takes to show on the channel (a marketplace's feed "
            "processing); the latency headroom's horizon"
        ),
    )


class AllocationSkuSettings(_Section):
    """``[allocation.skus.SKU]``: a SKU's fixed weight in ``"shared"`` mode (its listings'
    weights are multiplied by it)."""

    weight: float = Field(default=1.0, ge=0, le=1e9, allow_inf_nan=False)


class AllocationSettings(_Section):
    """``[allocation]``: how a SKU's units are offered to the listings that draw on it
    (docs/allocation.md). ``"full"`` (the default) offers every listing all of them;
    ``"shared"`` divides them among the listings by weight."""

    mode: Literal["full", "shared"] = "full"
    weights: Literal["velocity", "fixed"] = Field(
        default="velocity",
        description=(
            "velocity: units ordered in velocity_window (open, held and shipped lines; not "
            "cancelled ones) + 1, times the fixed weights; fixed: the fixed weights only"
        ),
    )
    velocity_window: Duration = timedelta(days=14)
    velocity_refresh: NonNegativeDuration = Field(
        default=timedelta(minutes=1),
        description="the order book is read for velocities at most this often",
    )
    min_units: int = Field(default=0, ge=0, le=MAX_UNITS)
    rebalance_below: int = Field(default=0, ge=0, le=MAX_UNITS)
    headroom: Literal["none", "latency"] = Field(
        default="none",
        description=(
            "none: each listing is offered its strict share; latency: also what the other "
            "listings cannot sell before the next sync (their expected units over their "
            "horizon, bounded at headroom_sigmas)"
        ),
    )
    headroom_sigmas: float = Field(default=3.0, ge=0, le=100, allow_inf_nan=False)
    channels: dict[str, AllocationChannelSettings] = Field(default_factory=dict)
    skus: dict[str, AllocationSkuSettings] = Field(default_factory=dict)

    def channel_weight(self, code: str) -> float:
        found = self.channels.get(code)
        return 1.0 if found is None else found.weight

    def channel_reserve(self, code: str) -> int:
        found = self.channels.get(code)
        return 0 if found is None else found.reserve

    def sku_weight(self, sku: str) -> float:
        found = self.skus.get(sku)
        return 1.0 if found is None else found.weight

    def channel_push_latency(self, code: str) -> timedelta:
        found = self.channels.get(code)
        return timedelta(0) if found is None else found.push_latency


class Settings(BaseSettings):
    """The whole configuration file."""

    model_config = SettingsConfigDict(
        env_prefix="SELLABLE_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    warehouses: list[WarehouseSettings] = Field(default_factory=_default_warehouses, min_length=1)
    channels: list[ChannelSettings] = Field(default_factory=list)
    daemon: DaemonSettings = Field(default_factory=DaemonSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    costing: CostingSettings = Field(default_factory=CostingSettings)
    allocation: AllocationSettings = Field(default_factory=AllocationSettings)
    log_level: LogLevel = "INFO"

    _source: Path | None = PrivateAttr(default=None)

    @property
    def source(self) -> Path | None:
        """The configuration file these settings were read from (None: defaults and
        environment only)."""
        return self._source

    @model_validator(mode="after")
    def _relative_to_the_file(self) -> Settings:
        """Remember the file, and resolve a relative SQLite path against its folder."""
        path = _toml_file.get()
        if path is None:
            return self
        self._source = path.absolute()
        if _env_source(("database", "url")) is None:  # a URL from the environment is the
            # caller's, relative to where they run; one from the file is the file's
            url = _beside(self.database.url.get_secret_value(), self._source.parent)
            if url is not None:
                database = self.database.model_copy(update={"url": SecretStr(url)})
                object.__setattr__(self, "database", database)
        return self

    @model_validator(mode="after")
    def _cross_references(self) -> Settings:
        seen: set[str] = set()
        for index, warehouse in enumerate(self.warehouses):
            if warehouse.code in seen:
                raise ValueError(
                    f"warehouses[{index}].code: warehouse {warehouse.code!r} is declared twice"
                )
            seen.add(warehouse.code)
        codes: set[str] = set()
        for index, channel in enumerate(self.channels):
            if channel.code in codes:
                raise ValueError(
                    f"channels[{index}].code: channel {channel.code!r} is declared twice"
                )
            codes.add(channel.code)
            for position, code in enumerate(channel.warehouses):
                if code not in seen:
                    raise ValueError(
                        f"channels[{index}].warehouses[{position}]: unknown warehouse {code!r} "
                        f"(known: {', '.join(sorted(seen))})"
                    )
            if channel.settings.get("webhook_url") and not self.daemon.webhook_listen:
                raise ValueError(
                    f"channels[{index}].settings.webhook_url: channel {channel.code!r} asks "
                    "for webhooks, but [daemon] webhook_listen is not set, so nothing would "
                    'receive them: set webhook_listen (e.g. "127.0.0.1:9179", behind your '
                    "TLS reverse proxy) or remove webhook_url"
                )
        for code in self.allocation.channels:
            if code not in codes:
                raise ValueError(
                    f"allocation.channels.{code}: unknown channel {code!r} "
                    f"(known: {', '.join(sorted(codes)) or 'none configured'})"
                )
        return self

    def channel(self, code: str) -> ChannelSettings:
        for channel in self.channels:
            if channel.code == code:
                return channel
        raise ConfigError(f"unknown channel {code!r} (known: {self.known_channels()})")

    def channel_codes(self) -> list[str]:
        """Every configured channel's code, manual channels included, in file order."""
        return [channel.code for channel in self.channels]

    def synced_channels(self) -> list[ChannelSettings]:
        """The channels with a connector (the daemon's); manual channels left out."""
        return [channel for channel in self.channels if not channel.is_manual]

    def known_channels(self) -> str:
        """The configured codes for a message, or "none configured"."""
        return ", ".join(self.channel_codes()) or "none configured"

    def warehouse(self, code: str) -> WarehouseSettings:
        for warehouse in self.warehouses:
            if warehouse.code == code:
                return warehouse
        raise ConfigError(f"unknown warehouse {code!r} (known: {self.warehouse_codes()})")

    def warehouse_codes(self) -> str:
        return ", ".join(w.code for w in self.warehouses)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _toml_file.get()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)


def _beside(url: str, folder: Path) -> str | None:
    """The SQLite ``url`` with its relative file path made relative to ``folder``; None when
    there is nothing to change (not SQLite, in memory, already absolute)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if database.startswith("file:") or Path(database).is_absolute():
        return None
    return parsed.set(database=str(folder / database)).render_as_string(hide_password=False)


def find_config_file(explicit: str | os.PathLike[str] | None) -> Path | None:
    """The file to read, by the documented order; None when there is none (use defaults)."""
    if explicit is not None:
        path = Path(explicit)
        if not _is_file(path):
            raise ConfigError(f"{shown_path(path)}: configuration file not found")
        return path
    if _is_file(DEFAULT_CONFIG_FILE):
        return DEFAULT_CONFIG_FILE
    from_env = os.environ.get(CONFIG_ENV_VAR)
    if from_env:
        path = Path(from_env)
        if not _is_file(path):
            raise ConfigError(
                f"{shown_path(path)}: configuration file not found (from ${CONFIG_ENV_VAR})"
            )
        return path
    return None


def shown_path(path: str | os.PathLike[str]) -> str:
    """A path for a message: a very long one (a pasted file, a runaway script) is cut short."""
    text = str(path)
    if len(text) <= 200:
        return text
    return f"{text[:80]}…{text[-40:]} (a path of {len(text)} characters)"


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError as err:  # e.g. "File name too long"
        raise ConfigError(
            f"{shown_path(path)}: cannot use this configuration file path: {err.strerror}"
        ) from None


def _read_config_text(path: Path) -> str:
    """The file as text: unreadable or not UTF-8 is a ConfigError naming the file (and line)."""
    try:
        data = path.read_bytes()
    except OSError as err:  # permission denied, a directory, an I/O error
        raise ConfigError(
            f"{shown_path(path)}: cannot read the configuration file: {err.strerror}"
        ) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        column = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
        raise ConfigError(
            f"{shown_path(path)} line {line}: not UTF-8 text: byte 0x{data[err.start]:02X} "
            f"(column {column} of the line) cannot be read; TOML files are UTF-8 "
            "(save the file as UTF-8)"
        ) from None


def load_settings(explicit: str | os.PathLike[str] | None = None) -> Settings:
    """Read, merge and validate the configuration. Raises :class:`ConfigError`."""
    path = find_config_file(explicit)
    label = shown_path(path) if path is not None else "(defaults and environment)"
    if path is not None:
        try:
            tomllib.loads(_read_config_text(path))
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"{label}: not valid TOML: {err}") from err
    token = _toml_file.set(path)
    try:
        return Settings()
    except ValidationError as err:
        raise ConfigError(format_validation_error(label, err, Settings)) from err
    except SettingsError as err:
        raise ConfigError(_environment_problem(err)) from err
    finally:
        _toml_file.reset(token)


def _environment_problem(err: SettingsError) -> str:
    """A variable pydantic-settings could not parse (``SELLABLE_WAREHOUSES`` must be JSON)."""
    found = re.search(r'field "([^"]+)"', str(err))
    field = found.group(1) if found else None
    variable = _env_source((field,)) if field else None
    if variable is None:
        return f"environment: cannot read a SELLABLE_* variable: {err}"
    cause = err.__cause__
    detail = f": {cause}" if isinstance(cause, ValueError) else ""
    return (
        f"${variable}: not valid JSON{detail}; a list or table set from the environment is "
        f"written as JSON, e.g. {variable}='{_JSON_EXAMPLES.get(field or '', '[...]')}'"
    )


_JSON_EXAMPLES = {
    "warehouses": '[{"code": "main"}]',
    "channels": '[{"code": "shop", "connector": "manual", "warehouses": ["main"]}]',
    "database": '{"url": "sqlite:///sellable.db"}',
    "daemon": '{"http_listen": "127.0.0.1:9178"}',
    "logging": '{"format": "json"}',
}


def format_validation_error(label: str, err: ValidationError, model: type[BaseModel]) -> str:
    """One line per problem: ``file: key.path: reason``, with a did-you-mean for unknown keys."""
    lines = []
    for problem in err.errors():
        loc = problem["loc"]
        key = _key_path(loc)
        if problem["type"] == "extra_forbidden":
            reason = "unknown key"
            known = _fields_at(model, loc[:-1])
            guess = difflib.get_close_matches(str(loc[-1]), known, n=1)
            if guess:
                reason += f"; did you mean {guess[0]!r}?"
            elif known:
                reason += f" (known: {', '.join(sorted(known))})"
        else:
            reason = problem["msg"].removeprefix("Value error, ")
            if (
                "input" in problem
                and problem["type"] not in ("missing",)
                and not _is_secret(model, loc)
            ):
                value = problem["input"]
                if isinstance(value, str | int | float | bool) and f"got {value!r}" not in reason:
                    reason += f" (got {value!r})"
        source = _env_source(loc)
        where = f"${source}" if source else label
        lines.append(f"{where}: {key}: {reason}" if key else f"{where}: {reason}")
    return "\n".join(lines)


def env_variable_for(loc: tuple[int | str, ...]) -> str | None:
    """The ``SELLABLE_*`` environment variable that sets the key at ``loc``, if one does."""
    return _env_source(loc)


def _env_source(loc: tuple[int | str, ...]) -> str | None:
    """The environment variable a problem came from, when one sets that key."""
    names = {name.upper(): name for name in os.environ}
    parts = [str(p).upper() for p in loc if not isinstance(p, int)]
    for end in range(len(parts), 0, -1):
        candidate = "SELLABLE_" + "__".join(parts[:end])
        if candidate in names and candidate != "SELLABLE_CONFIG":
            return names[candidate]
    return None


def _key_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _fields_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """Field names of the (nested) model found at ``loc``; empty when not a model."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            return []
        current = _model_in(field.annotation)
    return list(getattr(current, "model_fields", {}))


def _is_secret(model: type[BaseModel], loc: tuple[int | str, ...]) -> bool:
    """Whether the field at ``loc`` holds a secret, whose value must never be echoed."""
    current: Any = model
    annotation: Any = None
    for part in loc:
        if isinstance(part, int):
            continue
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            return False
        annotation = field.annotation
        current = _model_in(annotation)
    return _mentions(annotation, SecretStr)


def _mentions(annotation: Any, kind: type) -> bool:
    if annotation is kind:
        return True
    return any(_mentions(arg, kind) for arg in getattr(annotation, "__args__", ()))


def _model_in(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None
