"""Issue 18, "Files and config: a clear error, never a traceback", as a careless operator
meets it through the command line: every bad file, variable or database gives its
documented exit code (2 configuration, 3 input rejected, 4 database unusable) and a
message naming the file and line, the key, or the variable.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from sellable.cli import cli
from sellable.sync.plugins import installed_connectors

SIMPLE_CONFIG = """\
[database]
url = "sqlite:///sellable.db"

[[warehouses]]
code = "main"

[[channels]]
code = "counter"
connector = "manual"
warehouses = ["main"]
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


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def refused(result: Result, exit_code: int, stderr: str) -> None:
    """The command stopped with ``exit_code`` and exactly ``stderr``, and no traceback."""
    assert (result.exit_code, result.stderr) == (exit_code, stderr), result.output
    assert result.stdout == ""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A configuration with one manual channel, its database initialised, one SKU A."""
    path = tmp_path / "sellable.toml"
    path.write_text(SIMPLE_CONFIG)
    assert invoke("--config", str(path), "init").exit_code == 0
    products = tmp_path / "products.csv"
    products.write_text("sku,name,kind\nA,Part A,simple\nKIT,Kit,kit\n")
    assert invoke("--config", str(path), "import", "products", str(products)).exit_code == 0
    return path


def write_csv(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return str(path)


# -- 8. CSV numbers and order dates: exit 3 naming file, line, column and value -------------------

HOSTILE_NUMBERS = [
    ("inf", "must be a finite number"),
    ("-Infinity", "must be a finite number"),
    ("sNaN", "must be a finite number"),
    ("NaN", "must be a finite number"),
    ("1e999999999", "is out of range (at most 1,000,000,000)"),
    ("-1E+400", "is out of range (at most 1,000,000,000)"),
]


@pytest.mark.parametrize(("value", "reason"), HOSTILE_NUMBERS, ids=[v for v, _ in HOSTILE_NUMBERS])
@pytest.mark.parametrize(
    ("command", "header", "row", "column"),
    [
        ("stock", "sku,warehouse,on_hand,locked", "A,main,{v},", "on_hand"),
        ("stock", "sku,warehouse,on_hand,locked", "A,main,1,{v}", "locked"),
        ("components", "parent_sku,component_sku,quantity", "KIT,A,{v}", "quantity"),
        ("orders", "channel,order_id,sku,quantity,warehouse", "counter,o1,A,{v},main", "quantity"),
    ],
    ids=["stock-on_hand", "stock-locked", "components-quantity", "orders-quantity"],
)
def test_cli_issue18_8_hostile_csv_number_is_exit_3_naming_line_column_value(
    config: Path,
    tmp_path: Path,
    command: str,
    header: str,
    row: str,
    column: str,
    value: str,
    reason: str,
) -> None:
    # line 2 is blank, so the bad row is line 3
    path = write_csv(tmp_path, "in.csv", f"{header}\n\n{row.format(v=value)}\n")
    result = invoke("--config", str(config), "import", command, path)
    refused(
        result,
        3,
        f"error: {path} line 3, column {column!r}: {reason} (value {value!r})\n"
        f"{path}: rejected (1 problem(s)); nothing was written\n",
    )


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("inf", "must be a finite decimal number"),
        ("-Infinity", "must be a finite decimal number"),
        ("sNaN", "must be a finite decimal number"),
        ("NaN", "must be a finite decimal number"),
        ("1e999999999", "is out of range (at most 9999999999)"),
        ("1e-999999999", "has more than 4 decimal places"),
    ],
    ids=["inf", "-Infinity", "sNaN", "NaN", "huge", "tiny"],
)
def test_cli_issue18_8_hostile_csv_price_is_exit_3(
    config: Path, tmp_path: Path, value: str, reason: str
) -> None:
    path = write_csv(tmp_path, "p.csv", f"sku,name,kind,price\nB,b,simple,1\nC,c,simple,{value}\n")
    refused(
        invoke("--config", str(config), "import", "products", path),
        3,
        f"error: {path} line 3, column 'price': {reason} (value {value!r})\n"
        f"{path}: rejected (1 problem(s)); nothing was written\n",
    )


@pytest.mark.parametrize("when", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"])
def test_cli_issue18_8_order_date_outside_the_calendar_in_utc_is_refused(
    config: Path, tmp_path: Path, when: str
) -> None:
    path = write_csv(
        tmp_path,
        "orders.csv",
        f"channel,order_id,sku,quantity,warehouse,created_at\ncounter,o1,A,1,main,{when}\n",
    )
    refused(
        invoke("--config", str(config), "import", "orders", path),
        3,
        f"error: {path} line 2, column 'created_at': is out of range (in UTC it falls outside "
        f"the years 1 to 9999) (value {when!r})\n"
        f"{path}: rejected (1 problem(s)); nothing was written\n",
    )


# -- 8. configuration files and variables: exit 2 naming the file, line, key or variable ----------


@pytest.mark.parametrize("command", [["check-config"], ["init"], ["stock"], ["orders"]])
def test_cli_issue18_8_config_with_a_non_utf8_byte_is_exit_2_naming_file_and_line(
    tmp_path: Path, command: list[str]
) -> None:
    path = tmp_path / "sellable.toml"
    path.write_bytes(b'[database]\nurl = "sqlite:///x.db"\n# caf\xe9 au lait\n')
    refused(
        invoke("--config", str(path), *command),
        2,
        f"error: {path} line 3: not UTF-8 text: byte 0xE9 (column 6 of the line) cannot be "
        "read; TOML files are UTF-8 (save the file as UTF-8)\n",
    )


@pytest.mark.parametrize(
    ("variable", "value", "example"),
    [
        ("SELLABLE_WAREHOUSES", "[{code", '[{"code": "main"}]'),
        (
            "SELLABLE_CHANNELS",
            "shop",
            '[{"code": "shop", "connector": "manual", "warehouses": ["main"]}]',
        ),
    ],
)
def test_cli_issue18_8_malformed_environment_variable_is_exit_2_naming_it(
    variable: str, value: str, example: str
) -> None:
    result = invoke("check-config", env={variable: value})
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: ${variable}: not valid JSON: ")
    assert result.stderr.endswith(
        "; a list or table set from the environment is written as JSON, e.g. "
        f"{variable}='{example}'\n"
    )
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("setting", "problem"),
    [
        (
            "[database]\nbusy_timeout_seconds = 1e308\n",
            "database.busy_timeout_seconds: Input should be less than or equal to 3600 "
            "(got 1e+308)",
        ),
        (
            "[database]\nbusy_timeout_seconds = inf\n",
            "database.busy_timeout_seconds: Input should be a finite number (got inf)",
        ),
        (
            '[[channels]]\ncode = "c"\nconnector = "manual"\nwarehouses = ["main"]\n'
            'initial_lookback = "3650000d"\n',
            "channels[0].initial_lookback: duration is too long (at most 365d) (got '3650000d')",
        ),
        (
            '[[channels]]\ncode = "c"\nconnector = "manual"\nwarehouses = ["main"]\n'
            "pull_orders_every = 1e308\n",
            'channels[0].pull_orders_every: not a duration (write e.g. "30s", "2m", '
            '"24h", "7d") (got 1e+308)',
        ),
        (
            '[[channels]]\ncode = "c"\nconnector = "manual"\nwarehouses = ["main"]\n'
            "safety_stock = 9000000000000000000\n",
            "channels[0].safety_stock: Input should be less than or equal to 1000000000 "
            "(got 9000000000000000000)",
        ),
        (
            '[[channels]]\ncode = "c"\nconnector = "manual"\nwarehouses = ["main"]\n'
            "allocation_percent = nan\n",
            "channels[0].allocation_percent: Input should be a finite number (got nan)",
        ),
        (
            '[daemon]\nshutdown_timeout = "400d"\n',
            "daemon.shutdown_timeout: duration is too long (at most 365d) (got '400d')",
        ),
    ],
    ids=[
        "busy-1e308",
        "busy-inf",
        "lookback-10000-years",
        "interval-1e308",
        "safety-stock",
        "percent-nan",
        "shutdown-400d",
    ],
)
@pytest.mark.parametrize("command", ["check-config", "stock"])
def test_cli_issue18_8_out_of_range_numbers_and_durations_refused_at_check_time(
    tmp_path: Path, setting: str, problem: str, command: str
) -> None:
    path = tmp_path / "sellable.toml"
    path.write_text(f'[[warehouses]]\ncode = "main"\n\n{setting}')
    refused(invoke("--config", str(path), command), 2, f"error: {path}: {problem}\n")


def test_cli_issue18_8_config_path_of_4kb_is_exit_2_naming_it(tmp_path: Path) -> None:
    long_path = str(tmp_path / ("x" * 4096))
    shown = f"{long_path[:80]}…{long_path[-40:]} (a path of {len(long_path)} characters)"
    refused(
        invoke("--config", long_path, "stock"),
        2,
        f"error: {shown}: cannot use this configuration file path: File name too long\n",
    )


def test_cli_issue18_8_csv_path_of_4kb_is_exit_3_naming_it(config: Path, tmp_path: Path) -> None:
    long_path = str(tmp_path / ("x" * 4096))
    shown = f"{long_path[:80]}…{long_path[-40:]} (a path of {len(long_path)} characters)"
    refused(
        invoke("--config", str(config), "import", "stock", long_path),
        3,
        f"error: {shown}: cannot read: File name too long\n",
    )


def test_cli_issue18_8_unreadable_config_file_is_exit_2_naming_it(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        path = tmp_path / "sellable.toml"
        path.write_text(SIMPLE_CONFIG)
        path.chmod(0)
        reason = "Permission denied"
    else:  # root reads any file: /proc/self/mem is a regular file no read() succeeds on
        path, reason = Path("/proc/self/mem"), "Input/output error"
    refused(
        invoke("--config", str(path), "stock"),
        2,
        f"error: {path}: cannot read the configuration file: {reason}\n",
    )


# -- 8 and 10: a database that cannot be used is exit 4 naming the path, key and file -------------


def _database_config(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "sellable.toml"
    path.write_text(f'[database]\nurl = "{url}"\n')
    return path


@pytest.mark.parametrize("command", ["init", "stock"])
def test_cli_issue18_8_file_that_is_not_a_database_is_exit_4_naming_it(
    tmp_path: Path, command: str
) -> None:
    (tmp_path / "notes.db").write_text("my shopping list, not a database\n")
    path = _database_config(tmp_path, "sqlite:///notes.db")
    refused(
        invoke("--config", str(path), command),
        4,
        f"error: cannot open the database {tmp_path / 'notes.db'} (database.url in {path}): "
        "file is not a database\n",
    )


def test_cli_issue18_8_read_only_database_reads_and_refuses_a_write_with_exit_4(
    tmp_path: Path, config: Path
) -> None:
    database = config.parent / "sellable.db"
    read_only = _database_config(tmp_path / "cwd", f"sqlite:///file:{database}?mode=ro&uri=true")
    assert invoke("--config", str(read_only), "stock", "A").exit_code == 0
    products = write_csv(tmp_path, "more.csv", "sku,name,kind\nB,Part B,simple\n")
    refused(
        invoke("--config", str(read_only), "import", "products", products),
        4,
        f"error: cannot open the database {database} (database.url in {read_only}): "
        "attempt to write a readonly database\n",
    )


@pytest.mark.parametrize("command", ["init", "stock"])
@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("sqlite:///no-such-folder/sellable.db", "the folder {tmp}/no-such-folder does not exist"),
        ("sqlite:///a-folder", "it is a folder, not a database file"),
    ],
    ids=["missing-folder", "folder"],
)
def test_cli_issue18_10_cannot_open_the_database_names_path_key_and_file(
    tmp_path: Path, command: str, url: str, problem: str
) -> None:
    (tmp_path / "a-folder").mkdir()
    path = _database_config(tmp_path, url)
    database = tmp_path / url.removeprefix("sqlite:///")
    refused(
        invoke("--config", str(path), command),
        4,
        f"error: cannot open the database {database} (database.url in {path}): "
        f"{problem.format(tmp=tmp_path)}\n",
    )


def test_cli_issue18_10_database_url_from_the_environment_is_named(tmp_path: Path) -> None:
    (tmp_path / "a-folder").mkdir()
    path = _database_config(tmp_path, "sqlite:///sellable.db")
    url = f"sqlite:///{tmp_path / 'a-folder'}"
    refused(
        invoke("--config", str(path), "init", env={"SELLABLE_DATABASE__URL": url}),
        4,
        f"error: cannot open the database {tmp_path / 'a-folder'} (database.url from "
        "$SELLABLE_DATABASE__URL): it is a folder, not a database file\n",
    )


# -- 9. CSV line numbers: where the bad byte is, where the quote opened ---------------------------


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"], ids=["lf", "crlf", "cr"])
def test_cli_issue18_9_non_utf8_byte_names_its_physical_line(
    config: Path, tmp_path: Path, newline: str
) -> None:
    text = newline.join(["sku,name,kind", "B,Part B,simple", "C,Caf\xe9,simple", ""])
    path = tmp_path / "latin1.csv"
    path.write_bytes(text.encode("latin-1"))
    offset = text.index("\xe9")
    refused(
        invoke("--config", str(config), "import", "products", str(path)),
        3,
        f"error: {path} line 3: not UTF-8 text: byte 0xE9 at byte offset {offset} of the file "
        "(column 6 of the line) cannot be read; save the file as UTF-8 (in a spreadsheet: "
        "'CSV UTF-8') and import it again\n",
    )


def test_cli_issue18_9_non_utf8_byte_in_a_50000_row_file_names_its_line(
    config: Path, tmp_path: Path
) -> None:
    rows = ["sku,name,kind"] + [f"S{n},Product {n},simple" for n in range(1, 50_001)]
    rows[25_000] = "S25000,Caf\xe9,simple"  # the file's line 25,001
    text = "\n".join(rows) + "\n"
    path = tmp_path / "big.csv"
    path.write_bytes(text.encode("latin-1"))
    offset = text.index("\xe9")
    refused(
        invoke("--config", str(config), "import", "products", str(path)),
        3,
        f"error: {path} line 25001: not UTF-8 text: byte 0xE9 at byte offset {offset} of the "
        "file (column 11 of the line) cannot be read; save the file as UTF-8 (in a "
        "spreadsheet: 'CSV UTF-8') and import it again\n",
    )


def test_cli_issue18_9_unclosed_quote_names_the_line_where_it_opened(
    config: Path, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path,
        "quote.csv",
        'sku,name,kind\nB,"Part B\nwith two lines",simple\nC,"Part C,simple\nD,d,simple\n'
        "E,e,simple\n",
    )
    refused(
        invoke("--config", str(config), "import", "products", path),
        3,
        f"error: {path} line 4: a quoted field opened on this line is never closed (the file "
        'ends inside the quotes); close it with " or remove the stray quote\n',
    )


def test_cli_issue18_9_row_spanning_lines_is_named_by_its_first_line(
    config: Path, tmp_path: Path
) -> None:
    path = write_csv(tmp_path, "span.csv", 'sku,name,kind\nB,"Part B\non two lines",simpel\n')
    refused(
        invoke("--config", str(config), "import", "products", path),
        3,
        f"error: {path} line 2, column 'kind': unknown kind (expected one of: simple, kit, "
        "assembly, package, bundle) (value 'simpel')\n"
        f"{path}: rejected (1 problem(s)); nothing was written\n",
    )


# -- 11. NUL and control characters in codes: refused at import, naming the line ------------------


@pytest.mark.parametrize(
    ("char", "described"),
    [
        ("\x01", "U+0001"),
        ("\t", "U+0009"),
        ("\x1b", "U+001B"),
        ("\x7f", "U+007F"),
        ("\x85", "U+0085"),
    ],
    ids=["SOH", "tab", "ESC", "DEL", "NEL"],
)
def test_cli_issue18_11_control_character_in_a_sku_is_refused(
    config: Path, tmp_path: Path, char: str, described: str
) -> None:
    path = write_csv(tmp_path, "p.csv", f'sku,name,kind\nB,b,simple\n"C{char}D",c,simple\n')
    refused(
        invoke("--config", str(config), "import", "products", path),
        3,
        f"error: {path} line 3, column 'sku': contains the control character {described} at "
        f"position 2 (codes may not hold control characters) (value {'C' + char + 'D'!r})\n"
        f"{path}: rejected (1 problem(s)); nothing was written\n",
    )


def test_cli_issue18_11_nul_byte_in_any_field_is_refused_naming_line_and_column(
    config: Path, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path, "p.csv", "sku,name,kind\nB,b,simple\nC\x00,c,simple\nD,d\x00,simple\n"
    )
    refused(
        invoke("--config", str(config), "import", "products", path),
        3,
        f"error: {path} line 3, column 'sku': contains a NUL byte (\\x00) (value 'C\\x00')\n"
        f"{path} line 4, column 'name': contains a NUL byte (\\x00) (value 'd\\x00')\n"
        f"{path}: rejected (2 problem(s)); nothing was written\n",
    )
    assert invoke("--config", str(config), "stock", "B").exit_code == 3  # nothing written


@pytest.mark.parametrize(
    ("row", "column", "value", "position"),
    [
        ("count\x00er,o1,A,1,main,,", "channel", "count\x00er", None),
        ("coun\x02ter,o1,A,1,main,,", "channel", "coun\x02ter", 5),
        ("counter,o\x03,A,1,main,,", "order_id", "o\x03", 2),
        ("counter,o1,A,1,main,l\x04,", "line_id", "l\x04", 2),
        ("counter,o1,KIT,1,main,,part=A\x05", "options", "part=A\x05", 2),
        ("counter,o1,KIT,1,main,,p\x06rt=A", "options", "p\x06rt=A", 2),
    ],
    ids=["nul-channel", "channel", "order_id", "line_id", "options-sku", "options-slot"],
)
def test_cli_issue18_11_control_character_in_an_order_code_is_refused(
    config: Path, tmp_path: Path, row: str, column: str, value: str, position: int | None
) -> None:
    path = write_csv(
        tmp_path, "o.csv", f"channel,order_id,sku,quantity,warehouse,line_id,options\n{row}\n"
    )
    code = value.partition("=")[2 if column == "options" and value.startswith("part") else 0]
    char = code[position - 1] if position else "\x00"
    reason = (
        "contains a NUL byte (\\x00)"
        if position is None
        else f"contains the control character U+{ord(char):04X} at position {position} "
        "(codes may not hold control characters)"
    )
    if column == "options":
        name = "SKU" if value.startswith("part") else "slot"
        reason = f"{name} {code!r} {reason}"
    refused(
        invoke("--config", str(config), "import", "orders", path),
        3,
        f"error: {path} line 2, column {column!r}: {reason} (value {value!r})\n"
        f"{path}: rejected (1 problem(s)); nothing was written\n",
    )


# -- 12. every command checks the whole configuration as check-config does -----------------------

BROKEN_CHANNELS = """\
[database]
url = "sqlite:///sellable.db"

[[warehouses]]
code = "main"

[[channels]]
code = "counter"
connector = "manual"
warehouses = ["main"]

[[channels]]
code = "shop"
connector = "woocomerce"
warehouses = ["main"]

[[channels]]
code = "woo"
connector = "woocommerce"
warehouses = ["main"]

[channels.settings]
base_url = "not a url"
consumer_key = "ck_live"
consumer_sekret = "cs_live"
"""


@pytest.mark.parametrize(
    "command",
    [
        ["check-config"],
        ["init"],
        ["import", "products", "{products}"],
        ["stock"],
        ["orders"],
        ["status"],
        ["sync", "--once"],
    ],
    ids=lambda args: args[-1] if args[0] != "import" else "import",
)
def test_cli_issue18_12_every_command_refuses_a_config_check_config_rejects(
    tmp_path: Path, command: list[str]
) -> None:
    path = tmp_path / "sellable.toml"
    path.write_text(BROKEN_CHANNELS)
    products = write_csv(tmp_path, "p.csv", "sku,name,kind\nA,Part A,simple\n")
    args = [arg.format(products=products) for arg in command]
    # The built-in connectors, plus the test plugin when another test of this worker has put
    # it on the path: the message lists what entry-point discovery finds.
    installed = ", ".join(sorted(installed_connectors()))
    assert {"amazon", "shopify", "vendure", "woocommerce"} <= set(installed.split(", "))
    refused(
        invoke("--config", str(path), *args),
        2,
        f"error: {path}: channels[1].connector: unknown connector 'woocomerce' (installed: "
        f"{installed}) (channel 'shop')\n"
        f"{path}: channels[2].settings.base_url: base_url must be an http(s) URL, got "
        "'not a url' (channel 'woo', connector 'woocommerce')\n"
        f"{path}: channels[2].settings.consumer_secret: Field required (channel 'woo', "
        "connector 'woocommerce')\n"
        f"{path}: channels[2].settings.consumer_sekret: unknown key; did you mean "
        "'consumer_secret'? (channel 'woo', connector 'woocommerce')\n",
    )
    assert not (tmp_path / "sellable.db").exists()  # nothing was written, not even a database


def test_cli_issue18_12_a_manual_channel_needs_no_connector_settings(config: Path) -> None:
    checked = invoke("--config", str(config), "check-config")
    assert checked.exit_code == 0, checked.output
    assert "  channel counter: manual (orders by CSV only), warehouses main\n" in checked.stdout
