"""Emulators register under the ``sellable.emulators`` entry point, and their heavy
dependencies (graphql-core, jsonschema) are the ``emulators`` extra: a production install
needs neither, and without them an emulator says how to install them."""

from __future__ import annotations

import importlib
import subprocess
import sys
import tomllib
from importlib.metadata import entry_points, requires

import pytest
from click.testing import CliRunner

import sellable.emulators
from sellable.cli import cli
from sellable.demo import started_channels
from sellable.emulators import EmulatorServer, emulator_class, installed_emulators
from sellable.errors import ConfigError

BUILT_IN = {"amazon", "shipbob", "shopify", "woocommerce"}


def test_built_in_emulators_are_entry_points_of_sellable() -> None:
    found = {
        entry.name: entry.value
        for entry in entry_points(group="sellable.emulators")
        if entry.dist is not None and entry.dist.name == "sellable"
    }
    assert found == {
        "woocommerce": "sellable.emulators.woocommerce:WooCommerceEmulator",
        "shopify": "sellable.emulators.shopify:ShopifyEmulator",
        "amazon": "sellable.emulators.amazon:AmazonEmulator",
        "shipbob": "sellable.emulators.shipbob:ShipBobEmulator",
    }
    assert set(installed_emulators()) >= BUILT_IN
    assert not hasattr(sellable.emulators, "EMULATORS")  # the hard-coded dict is gone


@pytest.mark.parametrize("name", sorted(BUILT_IN))
def test_emulator_class_loads_each_through_its_entry_point(name: str) -> None:
    cls = emulator_class(name)
    assert issubclass(cls, EmulatorServer)
    assert cls.name == name


def test_unknown_emulator_names_the_installed_ones() -> None:
    with pytest.raises(KeyError) as excinfo:
        emulator_class("etsy")
    installed = "amazon, shipbob, shopify, woocommerce"
    assert f"no emulator 'etsy'; installed: {installed}" in str(excinfo.value)


def test_emulate_command_names_the_installed_emulators_on_an_unknown_name() -> None:
    result = CliRunner().invoke(cli, ["emulate", "etsy"])
    assert result.exit_code == 2
    assert "no emulator 'etsy'; installed: amazon, shipbob, shopify, woocommerce" in result.output


def test_graphql_core_and_jsonschema_are_the_emulators_extra() -> None:
    wanted = requires("sellable") or []
    heavy = [r for r in wanted if r.startswith(("graphql-core", "jsonschema"))]
    names = sorted(r.split(">")[0].split(";")[0].strip() for r in heavy)
    assert names == ["graphql-core", "jsonschema", "jsonschema-rs"], heavy
    assert all('extra == "emulators"' in r for r in heavy), heavy


@pytest.mark.parametrize(
    ("module", "emulator", "package", "blocked"),
    [
        ("sellable.emulators.shopify", "shopify", "graphql-core", "graphql"),
        ("sellable.emulators.amazon", "amazon", "jsonschema", "jsonschema"),
    ],
)
def test_an_emulator_without_its_dependency_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, module: str, emulator: str, package: str, blocked: str
) -> None:
    monkeypatch.setitem(sys.modules, blocked, None)  # import of it fails, as if not installed
    monkeypatch.delitem(sys.modules, module)
    with pytest.raises(ConfigError) as excinfo:
        importlib.import_module(module)
    assert str(excinfo.value) == (
        f"the {emulator} emulator needs {package}, which is not installed: "
        "pip install 'sellable[emulators]'"
    )
    monkeypatch.delitem(sys.modules, module, raising=False)


def test_the_demo_says_how_to_install_the_emulators_when_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "graphql", None)
    monkeypatch.delitem(sys.modules, "sellable.emulators.shopify")
    said: list[str] = []
    with started_channels(["shopify"], said.append) as channels:
        assert channels == []
    assert said == [
        "shopify: skipped (the shopify emulator needs graphql-core, which is not installed: "
        "pip install 'sellable[emulators]')"
    ]
    monkeypatch.delitem(sys.modules, "sellable.emulators.shopify", raising=False)


def test_a_production_install_imports_without_the_emulator_dependencies() -> None:
    # The daemon, the CLI, the SDK and the connectors, with graphql and jsonschema absent.
    script = (
        "import sys\n"
        "sys.modules['graphql'] = None\n"
        "sys.modules['jsonschema'] = None\n"
        "import sellable.cli.app, sellable.sync.engine, sellable.sdk, sellable.emulators\n"
        "import sellable_shopify.connector, sellable_amazon.connector\n"
        "import sellable_woocommerce.connector, sellable_vendure.connector\n"
        "import sellable.emulators.woocommerce\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "ok\n"


@pytest.mark.parametrize("name", ["shipbob", "woocommerce"])
def test_emulate_prints_settings_that_paste_into_the_toml_file(name: str) -> None:
    """The settings `sellable emulate` prints are TOML (ShipBob's `locations` is an inline
    table), so that they can be pasted under [channels.settings] as they are."""
    with subprocess.Popen(
        [sys.executable, "-m", "sellable", "emulate", name, "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None
            lines = [process.stdout.readline() for _ in range(2)]
            assert lines[1].startswith("[channels.settings]"), lines
            settings = [process.stdout.readline().strip() for _ in range(3)]
        finally:
            process.terminate()
            process.wait(timeout=30)
    parsed = tomllib.loads("\n".join(settings))
    assert parsed["base_url"].startswith("http://127.0.0.1:")
    if name == "shipbob":
        assert parsed["locations"] == {"sb-cicero": 10, "sb-moreno": 21, "sb-bethlehem": 30}
