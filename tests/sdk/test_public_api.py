"""sellable.sdk is a connector's whole world: a small public module whose ``__all__`` is
complete (as httpx's tests/test_exported_members.py keeps its own), and connectors that
import nothing else of Sellable."""

from __future__ import annotations

import ast
import types
from pathlib import Path

import pytest

import sellable.sdk
import sellable.sdk.testing
from sellable.sdk import (
    Capability,
    ChannelError,
    ChannelHttp,
    Connector,
    ConnectorContext,
    ConnectorSettings,
    RateLimit,
)

ROOT = Path(__file__).resolve().parents[2]
#: Every connector package: the built-in ones and the testshop plugin.
CONNECTOR_SOURCES = sorted(
    [
        *ROOT.glob("connectors/*/sellable_*/**/*.py"),
        *ROOT.glob("tests/plugins/testshop/sellable_testshop/**/*.py"),
    ]
)


def _public_names(module: types.ModuleType) -> list[str]:
    return sorted(
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and name != "annotations"  # from __future__
        and not isinstance(value, types.ModuleType)
    )


def test_sdk_all_is_complete_and_sorted() -> None:
    assert sorted(sellable.sdk.__all__) == _public_names(sellable.sdk)
    assert len(set(sellable.sdk.__all__)) == len(sellable.sdk.__all__)


def test_sdk_testing_all_is_complete() -> None:
    exported = set(sellable.sdk.testing.__all__)
    defined = {
        name
        for name, value in vars(sellable.sdk.testing).items()
        if not name.startswith("_") and getattr(value, "__module__", None) == "sellable.sdk.testing"
    }
    assert defined <= exported
    assert all(hasattr(sellable.sdk.testing, name) for name in exported)


def test_sdk_reexports_the_http_client_its_limiters_and_errors() -> None:
    for name in (
        "ChannelHttp",
        "TokenBucket",
        "RateLimit",
        "parse_retry_after",
        "ChannelError",
        "TemporaryChannelError",
        "AuthenticationError",
        "ChannelPayloadError",
    ):
        assert name in sellable.sdk.__all__
    from sellable import errors

    assert sellable.sdk.ChannelError is errors.ChannelError  # errors.py stays the one module


def test_the_old_http_module_is_gone() -> None:
    with pytest.raises(ModuleNotFoundError):
        __import__("sellable.sync.http")


def test_connector_sources_are_found() -> None:
    packages = {path.parent.name for path in CONNECTOR_SOURCES}
    assert {
        "sellable_amazon",
        "sellable_shopify",
        "sellable_vendure",
        "sellable_woocommerce",
        "sellable_testshop",
    } <= packages


def _sellable_imports(path: Path) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return [
        (line, name) for line, name in found if name == "sellable" or name.startswith("sellable.")
    ]


@pytest.mark.parametrize("path", CONNECTOR_SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_connectors_import_nothing_of_sellable_but_the_sdk(path: Path) -> None:
    # Under TYPE_CHECKING too: the whole tree is walked.
    wrong = [
        f"{path.relative_to(ROOT)}:{line}: imports {name}"
        for line, name in _sellable_imports(path)
        if name != "sellable.sdk"
    ]
    assert not wrong, "\n".join(wrong)


def test_the_import_check_sees_type_checking_imports(tmp_path: Path) -> None:
    source = tmp_path / "client.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "from sellable.sdk import Connector\n"
        "if TYPE_CHECKING:\n"
        "    from sellable.sync.http import ChannelHttp\n"
    )
    assert _sellable_imports(source) == [(2, "sellable.sdk"), (4, "sellable.sync.http")]


# -- the rate-limit hook ------------------------------------------------------------------------


class _Settings(ConnectorSettings):
    rate: float | None = None


class _Paced(Connector):
    name = "paced"
    Settings = _Settings
    rate_limit = RateLimit(rate=2, burst=10)

    @classmethod
    def rate_limits(cls, settings: ConnectorSettings) -> dict[str | None, RateLimit]:
        assert isinstance(settings, _Settings)
        limits = super().rate_limits(settings)
        if settings.rate is not None:
            limits[None] = RateLimit(settings.rate, 10)
        limits["feeds"] = RateLimit(0.5, 3)
        return limits


def _context(http: ChannelHttp) -> ConnectorContext:
    return ConnectorContext("paced", ("main",), http)


def test_declared_rate_limits_pace_the_connectors_http() -> None:
    http = ChannelHttp("paced")
    try:
        connector = _Paced(_Settings(), _context(http))
        assert connector.http.bucket is not None
        assert (connector.http.bucket.rate, connector.http.bucket.burst) == (2, 10)
        feeds = connector.http.limiters["feeds"]
        assert (feeds.rate, feeds.burst) == (0.5, 3)
    finally:
        http.close()


def test_a_setting_overrides_the_declared_rate_through_the_hook() -> None:
    http = ChannelHttp("paced", rate=2, burst=10)  # as the engine makes it from rate_limit
    try:
        _Paced(_Settings(rate=7.5), _context(http))
        assert http.bucket is not None and http.bucket.rate == 7.5
    finally:
        http.close()


def test_default_rate_limits_come_from_rate_limit() -> None:
    class Plain(Connector):
        rate_limit = RateLimit(3, 4)

    class Unpaced(Connector):
        pass

    assert Plain.rate_limits(ConnectorSettings()) == {None: RateLimit(3, 4)}
    assert Unpaced.rate_limits(ConnectorSettings()) == {}
    assert Capability.PULL_ORDERS not in Unpaced.capabilities


def test_channel_error_carries_the_status_code() -> None:
    error = ChannelError("POST /batch: HTTP 413", channel="woo", status_code=413)
    assert error.status_code == 413
    assert str(error) == "woo: POST /batch: HTTP 413"
    assert ChannelError("timed out").status_code is None


# -- packaging ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pyproject",
    sorted(
        [*ROOT.glob("connectors/*/pyproject.toml"), ROOT / "tests/plugins/testshop/pyproject.toml"]
    ),
    ids=lambda p: p.parent.name,
)
def test_connectors_depend_on_a_compatible_range_of_sellable(pyproject: Path) -> None:
    import tomllib

    from packaging.requirements import Requirement
    from packaging.version import Version

    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    (requirement,) = [
        Requirement(r) for r in project["dependencies"] if Requirement(r).name == "sellable"
    ]
    ours = Version(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"])
    assert ours in requirement.specifier
    assert Version(f"{ours.major}.{ours.minor + 1}") not in requirement.specifier  # bounded
    assert requirement.specifier.contains("0.1.9")
