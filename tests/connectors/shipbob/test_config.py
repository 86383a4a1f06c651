"""A ShipBob channel's settings as ``sellable check-config`` sees them: every warehouse of
the channel mapped to a fulfilment centre, none unknown, a token given."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pydantic import ValidationError
from sellable_shipbob.connector import ShipBobSettings

from sellable.cli import cli

WAREHOUSES = """
[[warehouses]]
code = "main"

[[warehouses]]
code = "sb-chicago"
kind = "3pl"
use_component_inventory = true

[[warehouses]]
code = "sb-moreno"
kind = "3pl"
use_component_inventory = true
"""


def check_config(tmp_path: Path, settings: str, warehouses: str) -> tuple[int, str]:
    path = tmp_path / "sellable.toml"
    path.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "sellable.db"}"\n{WAREHOUSES}\n'
        "[[channels]]\n"
        'code = "shipbob"\n'
        'connector = "shipbob"\n'
        f"warehouses = {warehouses}\n"
        "[channels.settings]\n"
        f"{settings}\n"
    )
    result = CliRunner().invoke(cli, ["check-config", "--config", str(path)])
    return result.exit_code, result.stderr.replace(str(path), "sellable.toml")


def test_check_config_accepts_every_warehouse_mapped(tmp_path: Path) -> None:
    code, errors = check_config(
        tmp_path,
        'token = "pat"\nlocations = { "sb-chicago" = 10, "sb-moreno" = 21 }',
        '["sb-chicago", "sb-moreno"]',
    )
    assert (code, errors) == (0, "configuration: sellable.toml\n")


def test_check_config_names_a_warehouse_without_a_centre(tmp_path: Path) -> None:
    code, errors = check_config(
        tmp_path, 'token = "pat"\nlocations = { "sb-chicago" = 10 }', '["sb-chicago", "sb-moreno"]'
    )
    assert code == 2
    assert errors == (
        "error: sellable.toml: channels[0].settings.locations: no fulfilment centre for the "
        "channel's warehouse(s) 'sb-moreno' (add e.g. sb-moreno = <ShipBob location id>) "
        "(channel 'shipbob', connector 'shipbob')\n"
    )


def test_check_config_names_a_mapped_warehouse_the_channel_does_not_serve(
    tmp_path: Path,
) -> None:
    code, errors = check_config(
        tmp_path,
        'token = "pat"\nlocations = { "sb-chicago" = 10, "main" = 21 }',
        '["sb-chicago"]',
    )
    assert code == 2
    assert errors == (
        "error: sellable.toml: channels[0].settings.locations: 'main' not among the channel's "
        "warehouses (sb-chicago) (channel 'shipbob', connector 'shipbob')\n"
    )


def test_check_config_names_a_missing_token(tmp_path: Path) -> None:
    code, errors = check_config(tmp_path, 'locations = { "sb-chicago" = 10 }', '["sb-chicago"]')
    assert code == 2
    assert errors == (
        "error: sellable.toml: channels[0].settings.token: Field required "
        "(channel 'shipbob', connector 'shipbob')\n"
    )


GOOD: dict[str, Any] = {"token": "pat", "locations": {"sb-chicago": 10}}


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"token": " "}, "token\n  Value error, is empty"),
        ({"locations": {"a": 10, "b": 10}}, "name the same fulfilment centre (10)"),
        ({"locations": {"a": 0}}, "a fulfilment centre id is positive"),
        ({"kits": "explode"}, "kits\n  Input should be 'components' or 'bundle'"),
        ({"api_version": "v2"}, "api_version\n  String should match pattern"),
        ({"base_url": "http://api.shipbob.com"}, "uses plain HTTP"),
        ({"base_url": "https://api.shipbob.com/2026-01"}, "ends with an API version"),
        ({"webhook_secret": "whsec_short"}, "must be whsec_ followed by 32 base64"),
        ({"webhook_url": "https://hooks.example.com/webhooks/sb"}, "needs webhook_secret"),
    ],
)
def test_settings_refuse_bad_values_naming_them(changes: dict[str, Any], error: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        ShipBobSettings.model_validate({**GOOD, **changes})
    assert error in str(excinfo.value)


def test_check_config_shows_no_secret_of_a_bad_webhook_secret(tmp_path: Path) -> None:
    code, errors = check_config(
        tmp_path,
        'token = "pat-secret"\nwebhook_secret = "whsec_short"\nlocations = { "sb-chicago" = 10 }',
        '["sb-chicago"]',
    )
    assert code == 2
    assert "channels[0].settings.webhook_secret: must be whsec_ followed by 32" in errors
    assert "whsec_short" not in errors
    assert "pat-secret" not in errors


def test_settings_defaults() -> None:
    settings = ShipBobSettings.model_validate(GOOD)
    assert (
        settings.base_url,
        settings.api_version,
        settings.kits,
        settings.shipping_method,
        settings.channel_id,
        settings.webhook_url,
    ) == ("https://api.shipbob.com", "2026-01", "components", "Standard", None, None)
    loopback = ShipBobSettings.model_validate({**GOOD, "base_url": "http://127.0.0.1:8123"})
    assert loopback.base_url == "http://127.0.0.1:8123"
