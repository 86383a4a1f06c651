"""``[[channels]]`` and ``[daemon]`` in the configuration: durations, rules, cross-references.

The connector's own ``[channels.settings]`` are validated by its model; see
tests/sync/test_plugins.py.
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

import pytest

from sellable.config import Settings, load_settings
from sellable.errors import ConfigError

HEAD = """
[database]
url = "sqlite:///sellable.db"

[[warehouses]]
code = "main"

[[warehouses]]
code = "fba-us"
kind = "fba"
"""


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No SELLABLE_* variable from outside, and an empty working directory (no sellable.toml)."""
    for name in list(os.environ):
        if name.startswith("SELLABLE_") and name != "SELLABLE_TEST_POSTGRES_URL":
            monkeypatch.delenv(name)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


def channel(code: str = "shop", warehouses: str = '["main"]', extra: str = "") -> str:
    return (
        f'\n[[channels]]\ncode = "{code}"\nconnector = "testshop"\n'
        f"warehouses = {warehouses}\n{extra}\n"
    )


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "sellable.toml"
    path.write_text(HEAD + body)
    return path


def load(tmp_path: Path, body: str) -> Settings:
    return load_settings(write(tmp_path, body))


def problems(tmp_path: Path, body: str) -> list[str]:
    """The error's lines, each without the leading file label."""
    path = write(tmp_path, body)
    with pytest.raises(ConfigError) as excinfo:
        load_settings(path)
    assert excinfo.value.exit_code == 2
    lines = str(excinfo.value).splitlines()
    assert all(line.startswith(f"{path}: ") for line in lines), lines
    return [line.removeprefix(f"{path}: ") for line in lines]


# -- a whole channel ------------------------------------------------------------------------------

FULL_CHANNEL = """
[[channels]]
code = "shop"
connector = "testshop"
warehouses = ["main", "fba-us"]
pull_orders_every = "30s"
push_every = "2m"
reconcile_every = "24h"
refresh_listings_every = "2h"
pull_stock_every = "10m"
initial_lookback = "7d"
order_overlap = "5m"
safety_stock = 2
allocation_percent = 62.5
max_quantity = 40
zero_below = 3
dry_run = true

[channels.settings]
base_url = "https://shop.example.com/api"
token = "t0ken"
page_size = 20
"""


def test_config_channel_reads_every_key(tmp_path: Path) -> None:
    (shop,) = load(tmp_path, FULL_CHANNEL).channels
    assert (shop.code, shop.connector, shop.warehouses) == ("shop", "testshop", ["main", "fba-us"])
    assert shop.pull_orders_every == timedelta(seconds=30)
    assert shop.push_every == timedelta(minutes=2)
    assert shop.reconcile_every == timedelta(hours=24)
    assert shop.refresh_listings_every == timedelta(hours=2)
    assert shop.pull_stock_every == timedelta(minutes=10)
    assert shop.initial_lookback == timedelta(days=7)
    assert shop.order_overlap == timedelta(minutes=5)
    assert (shop.safety_stock, shop.allocation_percent, shop.max_quantity, shop.zero_below) == (
        2,
        62.5,
        40,
        3,
    )
    assert shop.dry_run is True
    # The connector's own table is kept as written; its model validates it later.
    assert shop.settings == {
        "base_url": "https://shop.example.com/api",
        "token": "t0ken",
        "page_size": 20,
    }


def test_config_channel_defaults(tmp_path: Path) -> None:
    (shop,) = load(tmp_path, channel()).channels
    assert shop.pull_orders_every == timedelta(minutes=2)
    assert shop.push_every == timedelta(minutes=5)
    assert shop.reconcile_every == timedelta(hours=24)
    assert shop.refresh_listings_every == timedelta(hours=1)
    assert shop.pull_stock_every == timedelta(minutes=15)
    assert shop.initial_lookback == timedelta(days=7)
    assert shop.order_overlap == timedelta(minutes=10)
    assert (shop.safety_stock, shop.allocation_percent, shop.max_quantity, shop.zero_below) == (
        0,
        100,
        0,
        0,
    )
    assert shop.dry_run is False
    assert shop.settings == {}


def test_config_without_channels_has_none(tmp_path: Path) -> None:
    assert load(tmp_path, "").channels == []


def test_config_channel_lookup_by_code(tmp_path: Path) -> None:
    settings = load(tmp_path, channel("shop") + channel("amazon-us"))
    assert settings.channel("amazon-us").code == "amazon-us"
    with pytest.raises(ConfigError, match=r"^unknown channel 'ebay' \(known: shop, amazon-us\)$"):
        settings.channel("ebay")


def test_config_channel_lookup_without_channels(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^unknown channel 'shop' \(known: none configured\)$"):
        load(tmp_path, "").channel("shop")


def test_config_channels_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # docs/writing-a-connector.md: secrets may come as SELLABLE_CHANNELS='[...]'.
    monkeypatch.setenv(
        "SELLABLE_CHANNELS",
        json.dumps(
            [
                {
                    "code": "shop",
                    "connector": "testshop",
                    "warehouses": ["main"],
                    "pull_orders_every": "30s",
                    "settings": {"token": "from-env"},
                }
            ]
        ),
    )
    (shop,) = load_settings().channels
    assert shop.pull_orders_every == timedelta(seconds=30)
    assert shop.settings == {"token": "from-env"}


def test_config_channels_are_frozen(tmp_path: Path) -> None:
    (shop,) = load(tmp_path, channel()).channels
    with pytest.raises(ValueError, match="frozen"):
        shop.safety_stock = 3  # type: ignore[misc]


# -- durations ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        pytest.param('"30s"', timedelta(seconds=30), id="seconds"),
        pytest.param('"2m"', timedelta(minutes=2), id="minutes"),
        pytest.param('"24h"', timedelta(hours=24), id="hours"),
        pytest.param('"7d"', timedelta(days=7), id="days"),
        pytest.param('"90"', timedelta(seconds=90), id="string-of-seconds"),
        pytest.param("45", timedelta(seconds=45), id="integer-seconds"),
    ],
)
def test_config_duration_parses_to_timedelta(
    tmp_path: Path, written: str, expected: timedelta
) -> None:
    (shop,) = load(tmp_path, channel(extra=f"pull_orders_every = {written}")).channels
    assert shop.pull_orders_every == expected


NOT_A_DURATION = 'not a duration (write e.g. "30s", "2m", "24h", "7d")'


@pytest.mark.parametrize(
    ("key", "written", "reason"),
    [
        pytest.param("pull_orders_every", '"2x"', f"{NOT_A_DURATION} (got '2x')", id="unit-2x"),
        pytest.param("push_every", '"soon"', f"{NOT_A_DURATION} (got 'soon')", id="word"),
        pytest.param("reconcile_every", '""', f"{NOT_A_DURATION} (got '')", id="empty"),
        pytest.param("initial_lookback", "true", f"{NOT_A_DURATION} (got True)", id="boolean"),
        pytest.param("order_overlap", "[1]", NOT_A_DURATION, id="list"),
        pytest.param(
            "push_every",
            '"-5m"',
            "duration must be positive (got '-5m')",
            id="negative",
        ),
        pytest.param(
            "pull_stock_every",
            '"0s"',
            "duration must be positive (got '0s')",
            id="zero",
        ),
        pytest.param(
            "refresh_listings_every", "0", "duration must be positive (got 0)", id="zero-int"
        ),
    ],
)
def test_config_bad_duration_names_the_key_path(
    tmp_path: Path, key: str, written: str, reason: str
) -> None:
    assert problems(tmp_path, channel(extra=f"{key} = {written}")) == [
        f"channels[0].{key}: {reason}"
    ]


def test_config_bad_duration_in_a_later_channel_names_its_index(tmp_path: Path) -> None:
    body = channel("shop") + channel("amazon", extra='push_every = "2x"')
    assert problems(tmp_path, body) == [f"channels[1].push_every: {NOT_A_DURATION} (got '2x')"]


def test_config_bad_duration_quotes_the_value_once(tmp_path: Path) -> None:
    (line,) = problems(tmp_path, channel(extra='push_every = "-5m"'))
    assert line.count("'-5m'") == 1


def test_config_duration_serialises_as_seconds(tmp_path: Path) -> None:
    settings = load(tmp_path, channel(extra='reconcile_every = "24h"'))
    dumped = settings.model_dump(mode="json")
    assert dumped["channels"][0]["reconcile_every"] == "86400s"
    assert dumped["daemon"]["push_debounce"] == "1s"


# -- the daemon section ---------------------------------------------------------------------------


def test_config_daemon_defaults(tmp_path: Path) -> None:
    daemon = load(tmp_path, "").daemon
    assert daemon.http_listen == "127.0.0.1:9178"
    assert daemon.push_debounce == timedelta(seconds=1)
    assert daemon.jitter == timedelta(seconds=5)
    assert daemon.shutdown_timeout == timedelta(seconds=8)
    assert daemon.healthz_strict is False
    assert daemon.degraded_after == timedelta(seconds=60)


def test_config_daemon_health_keys(tmp_path: Path) -> None:
    daemon = load(tmp_path, '[daemon]\nhealthz_strict = true\ndegraded_after = "5m"\n').daemon
    assert (daemon.healthz_strict, daemon.degraded_after) == (True, timedelta(minutes=5))


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            '[daemon]\ndegraded_after = "0s"\n',
            "daemon.degraded_after: duration must be positive (got '0s')",
            id="degraded-after-zero",
        ),
        pytest.param(
            '[daemon]\nhealthz_strict = "sometimes"\n',
            "daemon.healthz_strict: Input should be a valid boolean, unable to interpret input "
            "(got 'sometimes')",
            id="strict-not-a-bool",
        ),
    ],
)
def test_config_daemon_health_key_errors(tmp_path: Path, body: str, expected: str) -> None:
    assert problems(tmp_path, body) == [expected]


def test_config_daemon_reads_every_key(tmp_path: Path) -> None:
    daemon = load(
        tmp_path,
        '[daemon]\nhttp_listen = "[::1]:0"\npush_debounce = "2s"\njitter = "1m"\n'
        'shutdown_timeout = "9s"\n',
    ).daemon
    assert daemon.http_listen == "[::1]:0"
    assert (daemon.push_debounce, daemon.jitter, daemon.shutdown_timeout) == (
        timedelta(seconds=2),
        timedelta(minutes=1),
        timedelta(seconds=9),
    )


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            '[daemon]\npush_debounce = "-1s"\n',
            ["daemon.push_debounce: duration must not be negative (got '-1s')"],
            id="negative-debounce",
        ),
        pytest.param(
            '[daemon]\nshutdown_timeout = "2x"\n',
            [f"daemon.shutdown_timeout: {NOT_A_DURATION} (got '2x')"],
            id="bad-timeout",
        ),
        pytest.param(
            '[daemon]\nhttp_listen = "localhost"\n',
            [
                'daemon.http_listen: write HOST:PORT, e.g. "127.0.0.1:9178", "0.0.0.0:9178" '
                "or \"[::1]:9178\" (port 0 picks a free one) (got 'localhost')"
            ],
            id="listen-without-port",
        ),
        pytest.param(
            '[daemon]\npush_debounse = "1s"\n',
            ["daemon.push_debounse: unknown key; did you mean 'push_debounce'?"],
            id="typo",
        ),
    ],
)
def test_config_daemon_errors(tmp_path: Path, body: str, expected: list[str]) -> None:
    assert problems(tmp_path, body) == expected


# -- manual channels (orders by CSV only) ---------------------------------------------------------


def manual(code: str = "counter", warehouses: str = '["main"]', extra: str = "") -> str:
    return (
        f'\n[[channels]]\ncode = "{code}"\nconnector = "manual"\n'
        f"warehouses = {warehouses}\n{extra}\n"
    )


def test_config_manual_channel_is_a_channel_without_connector(tmp_path: Path) -> None:
    settings = load(tmp_path, channel("shop") + manual("counter", '["main", "fba-us"]'))
    assert settings.channel_codes() == ["shop", "counter"]
    assert [c.is_manual for c in settings.channels] == [False, True]
    assert [c.code for c in settings.synced_channels()] == ["shop"]
    assert settings.channel("counter").warehouses == ["main", "fba-us"]


def test_config_manual_channel_needs_a_warehouse(tmp_path: Path) -> None:
    assert problems(tmp_path, manual(warehouses="[]")) == [
        "channels[0].warehouses: List should have at least 1 item after validation, not 0"
    ]


def test_config_manual_channel_refuses_connector_settings(tmp_path: Path) -> None:
    assert problems(tmp_path, manual(extra='[channels.settings]\ntoken = "x"\n')) == [
        "channels[0]: channel 'counter' is manual (orders come by 'sellable import orders' "
        "only): it has no connector settings to give"
    ]


def test_config_manual_channel_warehouses_must_be_known(tmp_path: Path) -> None:
    assert problems(tmp_path, manual(warehouses='["eu"]')) == [
        "channels[0].warehouses[0]: unknown warehouse 'eu' (known: fba-us, main)"
    ]


def test_config_channel_codes_without_channels(tmp_path: Path) -> None:
    settings = load(tmp_path, "")
    assert (settings.channel_codes(), settings.known_channels()) == ([], "none configured")


# -- cross-references -----------------------------------------------------------------------------


def test_config_channel_warehouses_must_be_known(tmp_path: Path) -> None:
    assert problems(tmp_path, channel(warehouses='["main", "fba-eu"]')) == [
        "channels[0].warehouses[1]: unknown warehouse 'fba-eu' (known: fba-us, main)"
    ]


def test_config_channel_needs_a_warehouse(tmp_path: Path) -> None:
    assert problems(tmp_path, channel(warehouses="[]")) == [
        "channels[0].warehouses: List should have at least 1 item after validation, not 0"
    ]


def test_config_channel_codes_are_unique(tmp_path: Path) -> None:
    body = channel("shop") + channel("amazon") + channel("shop")
    assert problems(tmp_path, body) == ["channels[2].code: channel 'shop' is declared twice"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            '\n[[channels]]\ncode = "shop"\nwarehouses = ["main"]\n',
            ["channels[0].connector: Field required"],
            id="no-connector",
        ),
        pytest.param(
            '\n[[channels]]\nconnector = "testshop"\nwarehouses = ["main"]\n',
            ["channels[0].code: Field required"],
            id="no-code",
        ),
        pytest.param(
            channel("my shop"),
            [
                "channels[0].code: String should match pattern "
                "'^[A-Za-z0-9][A-Za-z0-9._-]*$' (got 'my shop')"
            ],
            id="code-with-space",
        ),
        pytest.param(
            channel(extra='pull_order_every = "2m"'),
            ["channels[0].pull_order_every: unknown key; did you mean 'pull_orders_every'?"],
            id="key-typo",
        ),
    ],
)
def test_config_channel_shape_errors(tmp_path: Path, body: str, expected: list[str]) -> None:
    assert problems(tmp_path, body) == expected


# -- rules ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value"),
    [
        pytest.param("allocation_percent", "0", id="allocation-0"),
        pytest.param("allocation_percent", "100", id="allocation-100"),
        pytest.param("allocation_percent", "37.5", id="allocation-fraction"),
        pytest.param("safety_stock", "0", id="safety-0"),
        pytest.param("max_quantity", "0", id="no-cap"),
        pytest.param("zero_below", "5", id="zero-below"),
    ],
)
def test_config_channel_rule_accepted(tmp_path: Path, key: str, value: str) -> None:
    (shop,) = load(tmp_path, channel(extra=f"{key} = {value}")).channels
    assert getattr(shop, key) == float(value)


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        pytest.param(
            "allocation_percent",
            "101",
            "Input should be less than or equal to 100 (got 101)",
            id="allocation-above-100",
        ),
        pytest.param(
            "allocation_percent",
            "-1",
            "Input should be greater than or equal to 0 (got -1)",
            id="allocation-negative",
        ),
        pytest.param(
            "safety_stock",
            "-1",
            "Input should be greater than or equal to 0 (got -1)",
            id="safety-negative",
        ),
        pytest.param(
            "max_quantity",
            "-5",
            "Input should be greater than or equal to 0 (got -5)",
            id="cap-negative",
        ),
        pytest.param(
            "zero_below",
            "-1",
            "Input should be greater than or equal to 0 (got -1)",
            id="zero-below-negative",
        ),
        pytest.param(
            "safety_stock",
            "1.5",
            "Input should be a valid integer, got a number with a fractional part (got 1.5)",
            id="safety-fraction",
        ),
    ],
)
def test_config_channel_rule_rejected(tmp_path: Path, key: str, value: str, reason: str) -> None:
    assert problems(tmp_path, channel(extra=f"{key} = {value}")) == [f"channels[0].{key}: {reason}"]
