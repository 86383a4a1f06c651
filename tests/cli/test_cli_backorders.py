"""The ``backorders`` channel key in the configuration and ``sellable check-config``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.test_cli_commands import invoke

HEAD = '[database]\nurl = "sqlite:///{db}"\n\n[[warehouses]]\ncode = "main"\n'

AMAZON = """
[[channels]]
code = "amazon-us"
connector = "amazon"
warehouses = ["main"]
backorders = {rule}
[channels.settings]
endpoint = "https://sellingpartnerapi-na.amazon.com"
client_id = "amzn1.application-oa2-client.x"
client_secret = "secret"
refresh_token = "Atzr|x"
seller_id = "A1SELLER"
marketplace_id = "ATVPDKIKX0DER"
"""

WOO = """
[[channels]]
code = "woo"
connector = "woocommerce"
warehouses = ["main"]
backorders = {rule}
[channels.settings]
base_url = "https://shop.example.com"
consumer_key = "ck_x"
consumer_secret = "cs_x"
"""


def config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "sellable.toml"
    path.write_text(HEAD.format(db=tmp_path / "s.db") + body)
    return path


def test_cli_check_config_refuses_backorders_continue_on_amazon(tmp_path: Path) -> None:
    cfg = config(tmp_path, AMAZON.format(rule='"continue"'))
    result = invoke("check-config", "--config", cfg)
    assert (result.exit_code, result.stdout, result.stderr) == (
        2,
        "",
        f'error: {cfg}: channels[0].backorders: "continue" needs a channel flag that keeps '
        "selling at 0, and connector 'amazon' has none (channel 'amazon-us'); use \"off\" or a "
        "number of units to offer at least\n",
    )


@pytest.mark.parametrize("rule", ['"off"', "5"])
def test_cli_check_config_accepts_backorders_off_or_a_number_on_amazon(
    tmp_path: Path, rule: str
) -> None:
    result = invoke("check-config", "--config", config(tmp_path, AMAZON.format(rule=rule)))
    assert result.exit_code == 0, result.stderr


def test_cli_check_config_accepts_backorders_continue_on_woocommerce(tmp_path: Path) -> None:
    result = invoke("check-config", "--config", config(tmp_path, WOO.format(rule='"continue"')))
    assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize(
    ("rule", "shown"),
    [
        pytest.param('"sometimes"', "'sometimes'", id="word"),
        pytest.param("-1", "-1", id="negative"),
        pytest.param("true", "True", id="boolean"),
        pytest.param("2.5", "2.5", id="fraction"),
    ],
)
def test_cli_check_config_refuses_a_bad_backorders_value(
    tmp_path: Path, rule: str, shown: str
) -> None:
    cfg = config(tmp_path, WOO.format(rule=rule))
    result = invoke("check-config", "--config", cfg)
    assert (result.exit_code, result.stderr) == (
        2,
        f'error: {cfg}: channels[0].backorders: backorders must be "off", "continue" or a '
        f"whole number of units from 0 to 1000000000 (offer at least that many) (got {shown})\n",
    )


def test_cli_check_config_refuses_backorders_continue_on_a_manual_channel(tmp_path: Path) -> None:
    body = (
        '\n[[channels]]\ncode = "phone"\nconnector = "manual"\nwarehouses = ["main"]\n'
        'backorders = "continue"\n'
    )
    cfg = config(tmp_path, body)
    result = invoke("check-config", "--config", cfg)
    assert (result.exit_code, result.stderr) == (
        2,
        f"error: {cfg}: channels[0]: channel 'phone' is manual: backorders = \"continue\" asks "
        "a channel to keep selling at 0, and nothing is pushed to a manual channel\n",
    )
