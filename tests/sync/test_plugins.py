"""Connector discovery through real entry points: the testshop example package
(tests/plugins/testshop) is installed with pip into a folder of its own, exactly as a
third party's connector would be, and found by ``sellable connectors`` and
``sellable check-config`` in subprocesses that have that folder on ``PYTHONPATH``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from sellable.config import ChannelSettings
from sellable.errors import ConfigError
from sellable.sdk import Connector
from sellable.sync.plugins import (
    GROUP,
    installed_connectors,
    load_connector,
    validate_channel_settings,
)

TESTSHOP_PACKAGE = Path(__file__).parents[1] / "plugins" / "testshop"
TOKEN = "tok-5ecr3t-c0ffee"

TESTSHOP_LISTING = {
    "name": "testshop",
    "target": "sellable_testshop.connector:TestShopConnector",
    "package": "sellable-testshop",
    "capabilities": ["list_listings", "pull_orders", "push_quantities", "read_quantities"],
    "max_push_batch": 50,
    "rate_limit": {"rate": 200, "burst": 50},
    "settings": ["base_url", "page_size", "token"],
}

# A distribution made by hand: its entry points name a module that fails to import and a
# class that is no Connector, to see discovery report both without falling over.
BROKEN_DIST = {
    "sellable_broken_plugins-0.1.dist-info/METADATA": (
        "Metadata-Version: 2.1\nName: sellable-broken-plugins\nVersion: 0.1\n"
    ),
    "sellable_broken_plugins-0.1.dist-info/entry_points.txt": (
        f"[{GROUP}]\n"
        "crashing = sellable_broken_crashing:Shop\n"
        "notaconnector = sellable_broken_plain:Shop\n"
    ),
    "sellable_broken_crashing.py": "raise ImportError('needs the vendor SDK')\n",
    "sellable_broken_plain.py": "class Shop:\n    pass\n",
}


@pytest.fixture(scope="module")
def plugin_target(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/plugins/testshop installed with pip into a fresh, empty folder."""
    target = tmp_path_factory.mktemp("testshop-target")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(target),
            str(TESTSHOP_PACKAGE),
        ],
        check=True,
        capture_output=True,
    )
    assert (target / "sellable_testshop" / "connector.py").is_file()
    return target


@pytest.fixture(scope="module")
def broken_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    target = tmp_path_factory.mktemp("broken-target")
    for name, text in BROKEN_DIST.items():
        path = target / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    yield target
    for module in ("sellable_broken_crashing", "sellable_broken_plain"):
        sys.modules.pop(module, None)


def run_sellable(*args: str, pythonpath: list[Path], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m sellable ARGS`` with only ``pythonpath`` added to what the venv has."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("SELLABLE_") and name != "PYTHONPATH"
    }
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join(str(p) for p in pythonpath)
    return subprocess.run(
        [sys.executable, "-m", "sellable", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def listed(result: subprocess.CompletedProcess[str]) -> dict[str, dict[str, object]]:
    assert result.returncode == 0, result.stderr
    return {item["name"]: item for item in json.loads(result.stdout)}


@pytest.fixture
def discovered(plugin_target: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The installed testshop on this process's ``sys.path``, with a cold connector cache."""
    monkeypatch.syspath_prepend(str(plugin_target))
    load_connector.cache_clear()
    yield plugin_target
    load_connector.cache_clear()


# -- sellable connectors --------------------------------------------------------------------------


def test_plugins_connectors_lists_installed_plugin_with_capabilities(
    plugin_target: Path, tmp_path: Path
) -> None:
    found = listed(run_sellable("connectors", "--json", pythonpath=[plugin_target], cwd=tmp_path))
    assert found["testshop"] == TESTSHOP_LISTING


def test_plugins_connectors_without_the_plugin_does_not_list_it(tmp_path: Path) -> None:
    found = listed(run_sellable("connectors", "--json", pythonpath=[], cwd=tmp_path))
    assert "testshop" not in found
    # ...because the venv itself does not have it: only the pip target provides it.
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import importlib.metadata as m, importlib.util as u, sys\n"
            "names = {d.metadata['Name'] for d in m.distributions()}\n"
            "found = u.find_spec('sellable_testshop') is not None\n"
            "sys.exit('sellable-testshop' in names or found)",
        ],
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        cwd=tmp_path,
        check=False,
    )
    assert probe.returncode == 0


def test_plugins_connectors_text_output(plugin_target: Path, tmp_path: Path) -> None:
    result = run_sellable("connectors", pythonpath=[plugin_target], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (
        "testshop (sellable_testshop.connector:TestShopConnector): "
        "list_listings, pull_orders, push_quantities, read_quantities"
    ) in result.stdout.splitlines()


def test_plugins_connectors_reports_broken_plugins_and_lists_the_rest(
    plugin_target: Path, broken_target: Path, tmp_path: Path
) -> None:
    found = listed(
        run_sellable(
            "connectors", "--json", pythonpath=[plugin_target, broken_target], cwd=tmp_path
        )
    )
    assert found["testshop"] == TESTSHOP_LISTING
    assert found["crashing"] == {
        "name": "crashing",
        "target": "sellable_broken_crashing:Shop",
        "error": "connector 'crashing' (sellable_broken_crashing:Shop) failed to load: "
        "ImportError: needs the vendor SDK",
    }
    assert found["notaconnector"] == {
        "name": "notaconnector",
        "target": "sellable_broken_plain:Shop",
        "error": "connector 'notaconnector' (sellable_broken_plain:Shop) "
        "is not a sellable.sdk.Connector subclass",
    }


# -- sellable check-config ------------------------------------------------------------------------

CONFIG_HEAD = """
[database]
url = "sqlite:///sellable.db"

[[warehouses]]
code = "main"
"""


def shop_channel(code: str = "shop", connector: str = "testshop", settings: str = "") -> str:
    return (
        f'\n[[channels]]\ncode = "{code}"\nconnector = "{connector}"\nwarehouses = ["main"]\n'
        f"[channels.settings]\n{settings}\n"
    )


VALID_SETTINGS = f'base_url = "http://127.0.0.1:9"\ntoken = "{TOKEN}"\n'


def check_config(
    tmp_path: Path, body: str, pythonpath: list[Path]
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    path = tmp_path / "channels.toml"
    path.write_text(CONFIG_HEAD + body)
    return path, run_sellable(
        "--config", str(path), "check-config", pythonpath=pythonpath, cwd=tmp_path
    )


def test_plugins_check_config_accepts_valid_channel_settings(
    plugin_target: Path, tmp_path: Path
) -> None:
    _, result = check_config(tmp_path, shop_channel(settings=VALID_SETTINGS), [plugin_target])
    assert result.returncode == 0, result.stderr
    assert "  channel shop: connector testshop, warehouses main" in result.stdout.splitlines()
    assert TOKEN not in result.stdout + result.stderr


def test_plugins_check_config_missing_setting_names_channel_key_and_reason(
    plugin_target: Path, tmp_path: Path
) -> None:
    path, result = check_config(
        tmp_path, shop_channel(settings='base_url = "http://127.0.0.1:9"'), [plugin_target]
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert "channels[0].settings.token" in result.stderr
    assert "'shop'" in result.stderr
    assert "Field required" in result.stderr
    assert result.stderr == (
        f"error: {path}: channels[0].settings.token: Field required "
        "(channel 'shop', connector 'testshop')\n"
    )


def test_plugins_check_config_settings_typo_suggests_the_key(
    plugin_target: Path, tmp_path: Path
) -> None:
    path, result = check_config(
        tmp_path,
        shop_channel(settings=VALID_SETTINGS + "page_sise = 20\n"),
        [plugin_target],
    )
    assert result.returncode == 2
    assert result.stderr == (
        f"error: {path}: channels[0].settings.page_sise: unknown key; did you mean "
        "'page_size'? (channel 'shop', connector 'testshop')\n"
    )


def test_plugins_check_config_reports_every_channel_at_once(
    plugin_target: Path, tmp_path: Path
) -> None:
    body = shop_channel("shop", settings=VALID_SETTINGS) + shop_channel(
        "outlet", settings='token = "x"\npage_size = 0'
    )
    path, result = check_config(tmp_path, body, [plugin_target])
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"error: {path}: channels[1].settings.base_url: Field required "
        "(channel 'outlet', connector 'testshop')",
        f"{path}: channels[1].settings.page_size: Input should be greater than or equal to 1 "
        "(got 0) (channel 'outlet', connector 'testshop')",
    ]


def test_plugins_check_config_unknown_connector_lists_installed(
    plugin_target: Path, tmp_path: Path
) -> None:
    _, result = check_config(
        tmp_path, shop_channel(connector="woocommerz", settings=VALID_SETTINGS), [plugin_target]
    )
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert "channels[0].connector: unknown connector 'woocommerz' (installed: " in line
    installed = line.split("(installed: ")[1].split(")")[0]
    assert "testshop" in installed.split(", ")


def test_plugins_check_config_without_plugin_the_connector_is_unknown(tmp_path: Path) -> None:
    _, result = check_config(tmp_path, shop_channel(settings=VALID_SETTINGS), [])
    assert result.returncode == 2
    assert "channels[0].connector: unknown connector 'testshop' (" in result.stderr


def test_plugins_check_config_unknown_connector_names_channel_and_key(
    plugin_target: Path, tmp_path: Path
) -> None:
    body = shop_channel("shop", settings=VALID_SETTINGS) + shop_channel(
        "outlet", connector="woocommerz"
    )
    _, result = check_config(tmp_path, body, [plugin_target])
    assert result.returncode == 2
    assert "channels[1].connector" in result.stderr
    assert "'outlet'" in result.stderr


# -- discovery in this process --------------------------------------------------------------------


def test_plugins_installed_connectors_finds_entry_point(discovered: Path) -> None:
    entry = installed_connectors()["testshop"]
    assert entry.value == "sellable_testshop.connector:TestShopConnector"
    assert entry.group == GROUP


def test_plugins_load_connector_returns_the_class_once(discovered: Path) -> None:
    connector = load_connector("testshop")
    assert issubclass(connector, Connector)
    assert connector.__name__ == "TestShopConnector"
    assert load_connector("testshop") is connector
    assert load_connector.cache_info().hits == 1


def test_plugins_load_connector_unknown_lists_installed(discovered: Path) -> None:
    with pytest.raises(ConfigError) as excinfo:
        load_connector("woocommerz")
    message = str(excinfo.value)
    assert message.startswith("unknown connector 'woocommerz' (installed: ")
    names = message.removeprefix("unknown connector 'woocommerz' (installed: ").removesuffix(")")
    assert "testshop" in names.split(", ")
    assert names.split(", ") == sorted(names.split(", "))
    assert excinfo.value.exit_code == 2


@pytest.mark.parametrize(
    ("name", "message"),
    [
        pytest.param(
            "crashing",
            "connector 'crashing' (sellable_broken_crashing:Shop) failed to load: "
            "ImportError: needs the vendor SDK",
            id="import-fails",
        ),
        pytest.param(
            "notaconnector",
            "connector 'notaconnector' (sellable_broken_plain:Shop) is not a "
            "sellable.sdk.Connector subclass",
            id="not-a-connector",
        ),
    ],
)
def test_plugins_load_connector_broken_plugin_is_config_error(
    discovered: Path,
    broken_target: Path,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    message: str,
) -> None:
    monkeypatch.syspath_prepend(str(broken_target))
    with pytest.raises(ConfigError) as excinfo:
        load_connector(name)
    assert str(excinfo.value) == message


def channel_settings(**settings: object) -> ChannelSettings:
    return ChannelSettings(
        code="shop", connector="testshop", warehouses=["main"], settings=settings
    )


def test_plugins_validate_channel_settings_returns_the_connector_model(
    discovered: Path,
) -> None:
    validated = validate_channel_settings(
        0, channel_settings(base_url="http://127.0.0.1:9", token=TOKEN), "sellable.toml"
    )
    assert type(validated).__name__ == "TestShopSettings"
    assert validated.model_dump() == {
        "base_url": "http://127.0.0.1:9",
        "token": SecretStr(TOKEN),
        "page_size": 50,
    }
    assert TOKEN not in repr(validated)


def test_plugins_validate_channel_settings_error_names_channel_and_key(
    discovered: Path,
) -> None:
    with pytest.raises(ConfigError) as excinfo:
        validate_channel_settings(
            3, channel_settings(base_url="http://127.0.0.1:9", token=TOKEN, page_size=501), "f.toml"
        )
    assert str(excinfo.value) == (
        "f.toml: channels[3].settings.page_size: Input should be less than or equal to 500 "
        "(got 501) (channel 'shop', connector 'testshop')"
    )
    assert TOKEN not in str(excinfo.value)


def test_plugins_validate_channel_settings_never_quotes_a_secret(discovered: Path) -> None:
    with pytest.raises(ConfigError) as excinfo:
        validate_channel_settings(
            0, channel_settings(base_url="http://127.0.0.1:9", token=982451653), "f.toml"
        )
    assert "982451653" not in str(excinfo.value)
