"""The configuration: one TOML file, validated by pydantic-settings, overridable by environment.

Where the file is found: ``--config FILE``; else ``./sellable.toml`` when it exists; else
``$SELLABLE_CONFIG``. Environment variables ``SELLABLE_<SECTION>__<KEY>`` override the
file (``SELLABLE_DATABASE__URL=postgresql+psycopg://...``).
"""

from __future__ import annotations

import difflib
import os
import tomllib
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from sellable.errors import ConfigError

DEFAULT_CONFIG_FILE = Path("sellable.toml")
CONFIG_ENV_VAR = "SELLABLE_CONFIG"

_toml_file: ContextVar[Path | None] = ContextVar("sellable_toml_file", default=None)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseSettings(_Section):
    """``[database]``: where the store lives."""

    url: SecretStr = Field(
        default=SecretStr("sqlite:///sellable.db"),
        description="SQLAlchemy URL: sqlite:///file.db or postgresql+psycopg://user@host/db",
    )
    busy_timeout_seconds: float = Field(
        default=30.0, gt=0, description="how long SQLite writers wait for each other"
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


def _default_warehouses() -> list[WarehouseSettings]:
    return [WarehouseSettings(code="main")]


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
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @model_validator(mode="after")
    def _unique_warehouses(self) -> Settings:
        seen: set[str] = set()
        for index, warehouse in enumerate(self.warehouses):
            if warehouse.code in seen:
                raise ValueError(
                    f"warehouses[{index}].code: warehouse {warehouse.code!r} is declared twice"
                )
            seen.add(warehouse.code)
        return self

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


def find_config_file(explicit: str | os.PathLike[str] | None) -> Path | None:
    """The file to read, by the documented order; None when there is none (use defaults)."""
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"{path}: configuration file not found")
        return path
    if DEFAULT_CONFIG_FILE.is_file():
        return DEFAULT_CONFIG_FILE
    from_env = os.environ.get(CONFIG_ENV_VAR)
    if from_env:
        path = Path(from_env)
        if not path.is_file():
            raise ConfigError(f"{path}: configuration file not found (from ${CONFIG_ENV_VAR})")
        return path
    return None


def load_settings(explicit: str | os.PathLike[str] | None = None) -> Settings:
    """Read, merge and validate the configuration. Raises :class:`ConfigError`."""
    path = find_config_file(explicit)
    label = str(path) if path is not None else "(defaults and environment)"
    if path is not None:
        try:
            with path.open("rb") as handle:
                tomllib.load(handle)
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"{label}: not valid TOML: {err}") from err
    token = _toml_file.set(path)
    try:
        return Settings()
    except ValidationError as err:
        raise ConfigError(format_validation_error(label, err, Settings)) from err
    finally:
        _toml_file.reset(token)


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
            if "input" in problem and problem["type"] not in ("missing",):
                value = problem["input"]
                if isinstance(value, str | int | float | bool):
                    reason += f" (got {value!r})"
        lines.append(f"{label}: {key or '(top level)'}: {reason}")
    return "\n".join(lines)


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


def _model_in(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None
