"""The command line: commands, where the configuration comes from, messages and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from sellable import __version__
from sellable.cli import app as app_module
from sellable.cli import cli
from sellable.config import Settings
from sellable.store.db import create_db_engine
from tests.imports import (
    BACKENDS,
    EXAMPLES,
    WAREHOUSES_TOML,
    Store,
    shared_database,
    shared_store,
)

NO_SCHEMA = "error: the database has no schema yet: run 'sellable init' first\n"
NO_CONFIG = "configuration: none found (defaults and environment)\n"


def used(config: Path) -> str:
    """The line on stderr that names the configuration file a command used."""
    return f"configuration: {config}\n"


PASSWORD = "s3cr3t-Pa55word"


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


@pytest.fixture(autouse=True)
def dispose_engines(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Engine]]:
    """Close the engines that commands open (in-process, they outlive the command)."""
    engines: list[Engine] = []

    def recording(settings: Settings) -> Engine:
        engine = create_db_engine(settings)
        engines.append(engine)
        return engine

    monkeypatch.setattr(app_module, "create_db_engine", recording)
    yield engines
    for engine in engines:
        engine.dispose()


@pytest.fixture(scope="module", params=BACKENDS)
def examples(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Store]:
    """The examples loaded on each backend, for commands that only read (or are rejected)."""
    with shared_store(request, tmp_path_factory.mktemp("cli")) as opened:
        yield opened


@pytest.fixture(scope="module", params=BACKENDS)
def uninitialised(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """A configuration whose database exists but has no schema ('sellable init' never ran)."""
    with shared_database(request, tmp_path_factory.mktemp("uninitialised")) as config:
        if request.param == "sqlite":  # an empty file, as SQLite leaves it
            (config.parent / "sellable.db").touch()
        yield config


def invoke(*args: str | Path, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], env=env, catch_exceptions=False)


def _by_key(result: Result) -> dict[tuple[str, str], dict[str, Any]]:
    positions: list[dict[str, Any]] = json.loads(result.stdout)
    return {(p["sku"], p["warehouse"]): p for p in positions}


def _write_config(path: Path, url: str, extra: str = WAREHOUSES_TOML) -> Path:
    path.write_text(f'[database]\nurl = "{url}"\n{extra}')
    return path


GIFT_SET_MAIN = {
    "sku": "GIFT-SET-COFFEE",
    "warehouse": "main",
    "kind": "assembly",
    "prepackaged": {
        "on_hand": 10,
        "locked": 0,
        "allocated": 0,
        "held": 0,
        "expired": 0,
        "available": 10,
    },
    "component": {"on_hand": 30, "available": 30, "bottleneck": "MUG-CERAMIC"},
    "sellable": 40,
}


def _assert_example_numbers(positions: dict[tuple[str, str], dict[str, Any]]) -> None:
    assert len(positions) == 36  # 18 SKUs x 2 warehouses
    assert positions[("GIFT-SET-COFFEE", "main")] == GIFT_SET_MAIN
    assert positions[("ALPHABET-BUNDLE", "fba-us")]["sellable"] == 8
    assert positions[("ALPHABET-BUNDLE", "fba-us")]["prepackaged"] == {
        "on_hand": 8,
        "locked": 0,
        "allocated": 0,
        "held": 0,
        "expired": 0,
        "available": 8,
    }
    assert positions[("ALPHABET-BUNDLE", "main")]["sellable"] == 50
    assert positions[("ALPHABET-BUNDLE", "main")]["component"] == {
        "on_hand": 50,
        "available": 50,
        "bottleneck": "DEF",
    }
    assert positions[("CAMERA-STARTER-KIT", "main")]["sellable"] == 7
    assert positions[("GIFT-KIT-COFFEE", "main")]["sellable"] == 30
    assert positions[("BEANS-12OZ", "main")] == {
        "sku": "BEANS-12OZ",
        "warehouse": "main",
        "kind": "simple",
        "prepackaged": {
            "on_hand": 50,
            "locked": 0,
            "allocated": 0,
            "held": 0,
            "expired": 0,
            "available": 50,
        },
        "component": None,
        "sellable": 50,
    }
    assert positions[("DSLR-CAMERA-BLACK", "main")]["prepackaged"] == {
        "on_hand": 12,
        "locked": 2,
        "allocated": 0,
        "held": 0,
        "expired": 0,
        "available": 10,
    }


# -- the main job ----------------------------------------------------------------------------------


def test_cli_init_import_examples_and_stock_json(config_file: Path, database_url: str) -> None:
    init = invoke("--config", config_file, "init")
    assert (init.exit_code, init.stdout, init.stderr) == (
        0,
        f"database ready: {database_url} (warehouses: main, fba-us)\n",
        used(config_file),
    )
    for noun, rows, movements in (
        ("product", 18, ""),
        ("component", 17, ""),
        ("stock", 14, "; 14 movement(s) written"),
    ):
        name = "products" if noun == "product" else "components" if noun == "component" else noun
        result = invoke("import", name, EXAMPLES / f"{name}.csv", "--config", config_file)
        assert (result.exit_code, result.stderr) == (0, used(config_file))
        assert result.stdout.startswith(
            f"{EXAMPLES / f'{name}.csv'}: {rows} {noun} row(s): {rows} created, 0 updated, "
            f"0 unchanged{movements}"
        )
    stock = invoke("--config", config_file, "stock", "--json")
    # a list stays a list; the configuration file is named on stderr
    assert (stock.exit_code, stock.stderr) == (0, used(config_file))
    _assert_example_numbers(_by_key(stock))
    # init again is harmless: the schema is at head.
    assert invoke("init", "--config", config_file).exit_code == 0
    assert _by_key(invoke("stock", "--json", "-c", config_file)) == _by_key(stock)


def test_cli_import_json_summary(examples: Store) -> None:
    result = invoke("import", "stock", EXAMPLES / "stock.csv", "--json", "-c", examples.config)
    assert result.exit_code == 0
    summary = json.loads(result.stdout)
    expected = {
        "file": str(EXAMPLES / "stock.csv"),
        "rows": 14,
        "created": 0,
        "updated": 0,
        "unchanged": 14,
        "movements": 0,
    }
    assert {key: summary[key] for key in expected} == expected
    # a JSON object names the configuration file in its meta, not on stderr
    assert (summary["meta"], result.stderr) == ({"config": str(examples.config)}, "")


def test_cli_stock_filters_by_sku_and_warehouse(examples: Store) -> None:
    result = invoke(
        "stock",
        "GIFT-SET-COFFEE",
        "ALPHABET-BUNDLE",
        "--warehouse",
        "main",
        "--json",
        "--config",
        examples.config,
    )
    assert result.exit_code == 0
    positions = json.loads(result.stdout)
    assert [(p["sku"], p["warehouse"]) for p in positions] == [
        ("GIFT-SET-COFFEE", "main"),
        ("ALPHABET-BUNDLE", "main"),
    ]
    assert positions[0] == GIFT_SET_MAIN


def test_cli_stock_table(examples: Store) -> None:
    result = invoke("-c", examples.config, "stock", "GIFT-SET-COFFEE", "BEANS-12OZ", "-w", "main")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert [line.split() for line in lines] == [
        [
            "SKU",
            "WAREHOUSE",
            "KIND",
            "ON",
            "HAND",
            "LOCKED",
            "ALLOC",
            "AVAIL",
            "COMP",
            "ON",
            "HAND",
            "COMP",
            "AVAIL",
            "SELLABLE",
            "BOTTLENECK",
        ],
        [
            "GIFT-SET-COFFEE",
            "main",
            "assembly",
            "10",
            "0",
            "0",
            "10",
            "30",
            "30",
            "40",
            "MUG-CERAMIC",
        ],
        ["BEANS-12OZ", "main", "simple", "50", "0", "0", "50", "-", "-", "50", "-"],
    ]


def test_cli_explain_walks_the_bom(examples: Store) -> None:
    result = invoke("explain", "CAMERA-STARTER-KIT", "--warehouse", "main", "-c", examples.config)
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        "CAMERA-STARTER-KIT (package) in main: sellable 7 = prepackaged available 0 + from "
        "components 7",
        "  1 × DSLR-CAMERA-BLACK: sellable 10 → enough for 10",
        "  1 × LENS-18-55 [option of slot lens]: sellable 4 → enough for 4  ← bottleneck",
        "  1 × LENS-18-135 [option of slot lens]: sellable 3 → enough for 3  ← bottleneck",
        "  1 × CAMERA-BAG: sellable 20 → enough for 20",
        "demand per unit of CAMERA-STARTER-KIT, over every path:",
        "  DSLR-CAMERA-BLACK: 1 per unit (1 direct)",
        "  CAMERA-BAG: 1 per unit (1 direct)",
        "  slot lens: one of LENS-18-55 1 per unit, LENS-18-135 1 per unit",
        "binds: lens",
    ]


def test_cli_explain_json(examples: Store) -> None:
    result = invoke("explain", "GIFT-SET-COFFEE", "-w", "main", "--json", "-c", examples.config)
    assert result.exit_code == 0
    tree = json.loads(result.stdout)
    assert (
        tree["sku"],
        tree["kind"],
        tree["prepackaged"]["available"],
        tree["component"]["available"],
        tree["sellable"],
    ) == ("GIFT-SET-COFFEE", "assembly", 10, 30, 40)
    assert [
        (c["sku"], c["sellable"], c["per_unit"], c["makes"], c["limiting"])
        for c in tree["children"]
    ] == [
        ("BEANS-12OZ", 50, 1, 50, False),
        ("MUG-CERAMIC", 30, 1, 30, True),
        ("SCOOP-WOOD", 100, 1, 100, False),
    ]


def test_cli_version() -> None:
    result = invoke("--version")
    assert (result.exit_code, result.stdout) == (0, f"sellable, version {__version__}\n")


# -- where the configuration comes from -----------------------------------------------------------


def _check_config_ok(url: str) -> str:
    return (
        f"configuration OK: database {url}\n"
        "  warehouse main: kind own, use_component_inventory true, assembly_on_demand true\n"
        "  warehouse fba-us: kind fba, use_component_inventory false, assembly_on_demand false\n"
    )


@pytest.mark.parametrize(
    "placement",
    [
        pytest.param(["--config", "{cfg}", "check-config"], id="before-command"),
        pytest.param(["check-config", "--config", "{cfg}"], id="after-command"),
        pytest.param(["-c", "{cfg}", "check-config"], id="short-before"),
        pytest.param(["check-config", "-c", "{cfg}"], id="short-after"),
        pytest.param(["--config", "{bad}", "check-config", "--config", "{cfg}"], id="later-wins"),
    ],
)
def test_cli_config_option_before_or_after_command(tmp_path: Path, placement: list[str]) -> None:
    url = f"sqlite:///{tmp_path / 'placed.db'}"
    cfg = _write_config(tmp_path / "placed.toml", url)
    bad = tmp_path / "bad.toml"
    bad.write_text("not toml at all [\n")
    result = invoke(*(a.format(cfg=cfg, bad=bad) for a in placement))
    assert (result.exit_code, result.stdout, result.stderr) == (
        0,
        _check_config_ok(url),
        used(cfg),
    )


@pytest.mark.parametrize(
    "placement",
    [
        pytest.param(["import", "--config", "{cfg}", "products", "{file}"], id="on-import-group"),
        pytest.param(["import", "products", "{file}", "--config", "{cfg}"], id="after-file"),
        pytest.param(["--config", "{cfg}", "import", "products", "{file}"], id="before-group"),
    ],
)
def test_cli_config_option_on_import_commands(examples: Store, placement: list[str]) -> None:
    file = EXAMPLES / "products.csv"
    result = invoke(*(a.format(cfg=examples.config, file=file) for a in placement))
    assert result.exit_code == 0
    assert result.stdout.startswith(
        f"{file}: 18 product row(s): 0 created, 0 updated, 18 unchanged"
    )


def test_cli_config_from_environment_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'env.db'}"
    monkeypatch.setenv("SELLABLE_CONFIG", str(_write_config(tmp_path / "env.toml", url)))
    result = invoke("check-config")
    assert (result.exit_code, result.stdout, result.stderr) == (
        0,
        _check_config_ok(url),
        used(tmp_path / "env.toml"),
    )


def test_cli_config_from_working_directory_wins_over_environment(
    tmp_path: Path, clean_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'cwd.db'}"
    _write_config(clean_environment / "sellable.toml", url)
    monkeypatch.setenv("SELLABLE_CONFIG", str(_write_config(tmp_path / "env.toml", "sqlite:///x")))
    result = invoke("check-config")
    assert (result.exit_code, result.stdout, result.stderr) == (
        0,
        _check_config_ok(url),
        used(clean_environment / "sellable.toml"),
    )


def test_cli_working_directory_config_drives_commands(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(config_file.parent)
    assert invoke("init").exit_code == 0
    assert invoke("import", "products", EXAMPLES / "products.csv").exit_code == 0
    result = invoke("stock", "BEANS-12OZ", "--json")
    assert result.exit_code == 0
    assert [p["sellable"] for p in json.loads(result.stdout)] == [0, 0]


def test_cli_without_any_config_uses_defaults_and_says_there_is_no_file() -> None:
    result = invoke("check-config")
    assert (result.exit_code, result.stdout, result.stderr) == (
        0,
        "no configuration file found (no --config, no ./sellable.toml, no $SELLABLE_CONFIG): "
        "using the defaults and environment: database sqlite:///sellable.db\n"
        "  warehouse main: kind own, use_component_inventory true, assembly_on_demand false\n",
        NO_CONFIG,
    )
    assert "configuration OK" not in result.output


def test_cli_database_url_environment_overrides_file(
    config_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert invoke("init", "-c", config_file).exit_code == 0
    assert invoke("stock", "-c", config_file).exit_code == 0
    other = f"sqlite:///{tmp_path / 'other.db'}"
    monkeypatch.setenv("SELLABLE_DATABASE__URL", other)
    checked = invoke("check-config", "-c", config_file)
    assert (checked.exit_code, checked.stdout) == (0, _check_config_ok(other))
    # The file's (initialised) database is not the one used: the other one does not exist,
    # and a reading command does not create it.
    stock = invoke("stock", "-c", config_file)
    assert (stock.exit_code, stock.stderr) == (
        4,
        f"error: no database at {tmp_path / 'other.db'} (database.url from "
        "$SELLABLE_DATABASE__URL): "
        "run 'sellable init' to create it, or point database.url at your database\n",
    )
    assert not (tmp_path / "other.db").exists()


# -- configuration errors: exit 2 -----------------------------------------------------------------

CONFIG_ERRORS = [
    pytest.param(
        '[[warehouses]]\ncode = "main"\nuse_component_inventry = true\n',
        "{cfg}: warehouses[0].use_component_inventry: unknown key; did you mean "
        "'use_component_inventory'?",
        id="unknown-key-did-you-mean",
    ),
    pytest.param(
        '[databse]\nurl = "sqlite:///x.db"\n',
        "{cfg}: databse: unknown key; did you mean 'database'?",
        id="unknown-section-did-you-mean",
    ),
    pytest.param(
        '[[warehouses]]\ncode = "main"\n\n[[warehouses]]\ncode = "eu"\nkind = "amazon"\n',
        "{cfg}: warehouses[1].kind: Input should be 'own', 'fba' or '3pl' (got 'amazon')",
        id="bad-kind",
    ),
    pytest.param(
        '[[warehouses]]\ncode = "main"\n\n[[warehouses]]\ncode = "fba-us"\nkind = "fba"\n'
        "assembly_on_demand = true\n",
        "{cfg}: warehouses[1]: warehouse 'fba-us' cannot assemble on demand without component "
        "inventory (set use_component_inventory = true or assembly_on_demand = false)",
        id="assembly-on-demand-on-fba",
    ),
    pytest.param(
        'log_level = "LOUD"\n',
        "{cfg}: log_level: Input should be 'DEBUG', 'INFO', 'WARNING' or 'ERROR' (got 'LOUD')",
        id="bad-log-level",
    ),
    pytest.param(
        "warehouses = []\n",
        "{cfg}: warehouses: List should have at least 1 item after validation, not 0",
        id="no-warehouses",
    ),
]


@pytest.mark.parametrize(("content", "message"), CONFIG_ERRORS)
def test_cli_check_config_errors_exit_2(tmp_path: Path, content: str, message: str) -> None:
    cfg = tmp_path / "sellable.toml"
    cfg.write_text(content)
    result = invoke("check-config", "--config", cfg)
    assert (result.exit_code, result.stdout, result.stderr) == (
        2,
        "",
        f"error: {message.format(cfg=cfg)}\n",
    )


def test_cli_check_config_duplicate_warehouse_code(tmp_path: Path) -> None:
    cfg = tmp_path / "sellable.toml"
    cfg.write_text('[[warehouses]]\ncode = "main"\n\n[[warehouses]]\ncode = "main"\n')
    result = invoke("check-config", "--config", cfg)
    assert (result.exit_code, result.stderr) == (
        2,
        f"error: {cfg}: warehouses[1].code: warehouse 'main' is declared twice\n",
    )


def test_cli_check_config_invalid_toml_names_line(tmp_path: Path) -> None:
    cfg = tmp_path / "sellable.toml"
    cfg.write_text('[database]\nurl = "sqlite:///x.db"\nbusy_timeout_seconds = = 3\n')
    result = invoke("check-config", "--config", cfg)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {cfg}: not valid TOML: ")
    assert "(at line 3, column " in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ["--config", "{tmp}/nope.toml"],
            "{tmp}/nope.toml: configuration file not found",
            id="missing-config-option",
        ),
        pytest.param(
            [],
            "{tmp}/gone.toml: configuration file not found (from $SELLABLE_CONFIG)",
            id="missing-config-from-env",
        ),
    ],
)
def test_cli_missing_config_file_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    monkeypatch.setenv("SELLABLE_CONFIG", str(tmp_path / "gone.toml"))
    result = invoke("check-config", *(a.format(tmp=tmp_path) for a in args))
    assert (result.exit_code, result.stderr) == (2, f"error: {message.format(tmp=tmp_path)}\n")


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        pytest.param(
            "not a url",
            "not a database URL (write sqlite:///FILE or postgresql+psycopg://...)",
            id="unparsable",
        ),
        pytest.param(
            "mysql://u@h/db",
            "unsupported database 'mysql' (use sqlite:///FILE or postgresql+psycopg://...)",
            id="mysql",
        ),
    ],
)
def test_cli_check_config_rejects_bad_database_url(tmp_path: Path, url: str, problem: str) -> None:
    cfg = _write_config(tmp_path / "sellable.toml", url)
    result = invoke("check-config", "--config", cfg)
    assert (result.exit_code, result.stdout, result.stderr) == (
        2,
        "",
        f"error: {cfg}: database.url: {problem}\n",
    )


# -- secrets --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source", [pytest.param("file", id="in-file"), pytest.param("env", id="in-environment")]
)
def test_cli_check_config_never_prints_database_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    url = f"postgresql+psycopg://sellable:{PASSWORD}@db.example.com:5432/sellable"
    if source == "file":
        cfg = _write_config(tmp_path / "sellable.toml", url)
    else:
        cfg = _write_config(tmp_path / "sellable.toml", "sqlite:///x.db")
        monkeypatch.setenv("SELLABLE_DATABASE__URL", url)
    result = invoke("-v", "check-config", "--config", cfg)
    assert result.exit_code == 0
    assert result.stdout == _check_config_ok(
        "postgresql+psycopg://sellable:***@db.example.com:5432/sellable"
    )
    assert PASSWORD not in result.output
    # Nor when the configuration is rejected.
    cfg.write_text(cfg.read_text() + 'log_level = "LOUD"\n')
    rejected = invoke("-v", "check-config", "--config", cfg)
    assert rejected.exit_code == 2
    assert PASSWORD not in rejected.output


def test_cli_never_prints_password_of_real_postgres(postgres_url: str, tmp_path: Path) -> None:
    url = make_url(postgres_url)
    if url.password is None:  # the test server trusts local connections
        url = url.set(password=PASSWORD)
    secret = url.password
    assert secret
    cfg = _write_config(tmp_path / "pg.toml", url.render_as_string(hide_password=False))
    for args in (["-v", "init"], ["-v", "stock", "--json"], ["stock", "NOPE"]):
        result = invoke(*args, "--config", cfg)
        assert result.exit_code in (0, 3)
        assert str(secret) not in result.output
    init = invoke("init", "--config", cfg)
    assert init.stdout == (
        f"database ready: {url.render_as_string(hide_password=True)} (warehouses: main, fba-us)\n"
    )
    # An unusable database (it does not exist) is exit 4, still without the password.
    missing_url = url.set(database="sellable_no_such_db")
    _write_config(cfg, missing_url.render_as_string(hide_password=False))
    missing = invoke("stock", "--config", cfg)
    assert missing.exit_code == 4
    assert missing.stderr.startswith(
        f"error: cannot open the database {missing_url.render_as_string(hide_password=True)} "
        f"(database.url in {cfg}): "
    )
    assert str(secret) not in missing.output


# -- input and database errors: exit 3 and 4 ------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "text", "problem"),
    [
        pytest.param(
            "products",
            "sku,name,kind\nX,X,kitt\n",
            "line 2, column 'kind': unknown kind (expected one of: simple, kit, "
            "assembly, package, bundle) (value 'kitt')",
            id="products",
        ),
        pytest.param(
            "components",
            "parent_sku,component_sku,quantity\nFAQ-KIT,COMP-A,0\n",
            "line 2, column 'quantity': must be a positive integer (value '0')",
            id="components",
        ),
        pytest.param(
            "stock",
            "sku,warehouse,on_hand\nNOPE,main,1\n",
            "line 2, column 'sku': unknown SKU (import it with 'sellable import "
            "products' first) (value 'NOPE')",
            id="stock",
        ),
    ],
)
def test_cli_import_bad_csv_exits_3(examples: Store, command: str, text: str, problem: str) -> None:
    path = examples.csv(f"bad-{command}.csv", text)
    before = examples.snapshot()
    result = invoke("import", command, path, "--config", examples.config)
    assert (result.exit_code, result.stdout, result.stderr) == (
        3,
        "",
        f"error: {path} {problem}\n{path}: rejected (1 problem(s)); nothing was written\n",
    )
    assert examples.snapshot() == before


def test_cli_import_cycle_exits_3(examples: Store) -> None:
    path = examples.csv(
        "cycle.csv",
        "parent_sku,component_sku,quantity\nFAQ-KIT,FAQ-ASSEMBLY,1\nFAQ-ASSEMBLY,FAQ-KIT,1\n",
    )
    result = invoke("import", "components", path, "--config", examples.config)
    assert result.exit_code == 3
    assert result.stderr == (
        f"error: {path} line 2, column 'component_sku': BOM cycle: FAQ-KIT -> FAQ-ASSEMBLY -> "
        "FAQ-KIT (line 2: FAQ-KIT contains FAQ-ASSEMBLY; line 3: FAQ-ASSEMBLY contains FAQ-KIT) "
        "(value 'FAQ-ASSEMBLY'); nothing was written\n"
    )


def test_cli_import_missing_file_exits_3(examples: Store) -> None:
    path = examples.dir / "missing.csv"
    result = invoke("import", "stock", path, "--config", examples.config)
    assert (result.exit_code, result.stderr) == (3, f"error: {path}: file not found\n")


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["stock"], id="stock"),
        pytest.param(["stock", "--json", "GIFT-SET-COFFEE"], id="stock-json"),
        pytest.param(["explain", "GIFT-SET-COFFEE", "-w", "main"], id="explain"),
        pytest.param(["import", "products", str(EXAMPLES / "products.csv")], id="import"),
    ],
)
def test_cli_commands_before_init_exit_4(uninitialised: Path, args: list[str]) -> None:
    result = invoke(*args, "--config", uninitialised)
    assert (result.exit_code, result.stdout, result.stderr) == (4, "", NO_SCHEMA)


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["stock", "UNKNOWN-SKU"], id="stock"),
        pytest.param(["stock", "GIFT-SET-COFFEE", "UNKNOWN-SKU", "--json"], id="stock-json"),
        pytest.param(["explain", "UNKNOWN-SKU", "--warehouse", "main"], id="explain"),
    ],
)
def test_cli_unknown_sku_exits_3(examples: Store, args: list[str]) -> None:
    result = invoke(*args, "--config", examples.config)
    assert (result.exit_code, result.stdout, result.stderr) == (
        3,
        "",
        "error: unknown SKU 'UNKNOWN-SKU'\n",
    )


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["stock", "--warehouse", "nope"], id="stock"),
        pytest.param(["stock", "GIFT-SET-COFFEE", "-w", "nope", "--json"], id="stock-json"),
        pytest.param(["explain", "GIFT-SET-COFFEE", "--warehouse", "nope"], id="explain"),
    ],
)
def test_cli_unknown_warehouse_exits_2_naming_known(examples: Store, args: list[str]) -> None:
    result = invoke(*args, "--config", examples.config)
    assert (result.exit_code, result.stdout, result.stderr) == (
        2,
        "",
        "error: unknown warehouse 'nope' (known: main, fba-us)\n",
    )


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["explain", "GIFT-SET-COFFEE", "--channel", "nope"], id="explain"),
        pytest.param(["explain", "GIFT-SET-COFFEE", "--channel", "nope", "--json"], id="json"),
        pytest.param(["sync", "--once", "--channel", "nope"], id="sync"),
    ],
)
def test_cli_unknown_channel_exits_3_like_an_unknown_sku(examples: Store, args: list[str]) -> None:
    result = invoke(*args, "--config", examples.config)
    assert (result.exit_code, result.stdout, result.stderr) == (
        3,
        "",
        "error: unknown channel 'nope' (known: none configured)\n",
    )


def test_cli_explain_json_names_the_configuration_in_meta(examples: Store) -> None:
    result = invoke("explain", "BEANS-12OZ", "-w", "main", "--json", "-c", examples.config)
    assert result.exit_code == 0
    assert (json.loads(result.stdout)["meta"], result.stderr) == (
        {"config": str(examples.config)},
        "",
    )


def test_cli_stock_and_explain_json_have_one_shape(examples: Store) -> None:
    """The same figures under the same keys: prepackaged.available, component.available."""
    (position,) = json.loads(
        invoke("stock", "GIFT-SET-COFFEE", "-w", "main", "--json", "-c", examples.config).stdout
    )
    tree = json.loads(
        invoke("explain", "GIFT-SET-COFFEE", "-w", "main", "--json", "-c", examples.config).stdout
    )
    for key in ("sku", "kind", "sellable"):
        assert tree[key] == position[key]
    assert tree["prepackaged"]["available"] == position["prepackaged"]["available"] == 10
    assert tree["component"]["available"] == position["component"]["available"] == 30
    beans = tree["children"][0]
    assert (beans["sku"], beans["prepackaged"], beans["component"]) == (
        "BEANS-12OZ",
        {"available": 50},
        None,
    )


def test_cli_import_help_lists_every_import() -> None:
    result = invoke("import", "--help")
    assert "Import CSV files: products, components (BOMs), stock counts, orders." in result.stdout
    assert [line.split()[0] for line in result.stdout.split("Commands:")[1].splitlines()[1:]] == [
        "components",
        "orders",
        "products",
        "rates",
        "receipts",
        "stock",
    ]


def test_cli_check_config_shows_a_manual_channel(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    cfg = _write_config(
        tmp_path / "sellable.toml",
        url,
        WAREHOUSES_TOML
        + '\n[[channels]]\ncode = "counter"\nconnector = "manual"\nwarehouses = ["main"]\n',
    )
    result = invoke("check-config", "-c", cfg)
    assert (result.exit_code, result.stdout, result.stderr) == (
        0,
        _check_config_ok(url) + "  channel counter: manual (orders by CSV only), warehouses main\n",
        used(cfg),
    )


# -- the database is the configuration's, and only init creates it ------------------------------


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["stock"], id="stock"),
        pytest.param(["stock", "--json"], id="stock-json"),
        pytest.param(["orders"], id="orders"),
        pytest.param(["ledger", "BEANS-12OZ"], id="ledger"),
        pytest.param(["explain", "BEANS-12OZ", "-w", "main"], id="explain"),
        pytest.param(["status"], id="status"),
        pytest.param(["sync", "--once"], id="sync"),
        pytest.param(["import", "products", str(EXAMPLES / "products.csv")], id="import"),
    ],
)
def test_cli_commands_never_create_a_missing_sqlite_database(
    tmp_path: Path, clean_environment: Path, args: list[str]
) -> None:
    (tmp_path / "etc").mkdir()
    cfg = _write_config(tmp_path / "etc" / "sellable.toml", "sqlite:///sellable.db", "")
    result = invoke(*args, "--config", cfg)
    assert (result.exit_code, result.stdout, result.stderr) == (
        4,
        "",
        f"error: no database at {cfg.parent / 'sellable.db'} (database.url in {cfg}): run "
        "'sellable init' to create it, or point database.url at your database\n",
    )
    assert not (cfg.parent / "sellable.db").exists()
    assert list(clean_environment.iterdir()) == []


def test_cli_without_config_file_a_missing_database_says_so(clean_environment: Path) -> None:
    result = invoke("stock")
    assert (result.exit_code, result.stderr) == (
        4,
        f"error: no database at {clean_environment / 'sellable.db'} (no configuration file "
        "found, so the default database.url): run 'sellable init' to create it, or point "
        "database.url at your database\n",
    )
    assert list(clean_environment.iterdir()) == []


def test_cli_relative_sqlite_path_is_beside_the_configuration(
    tmp_path: Path, clean_environment: Path
) -> None:
    """Run from another folder, the commands use the database beside the file."""
    (tmp_path / "etc").mkdir()
    cfg = _write_config(tmp_path / "etc" / "sellable.toml", "sqlite:///data.db")
    init = invoke("init", "-c", cfg)
    assert (init.exit_code, init.stdout) == (
        0,
        f"database ready: sqlite:///{cfg.parent / 'data.db'} (warehouses: main, fba-us)\n",
    )
    assert (cfg.parent / "data.db").exists()
    imported = invoke("import", "products", EXAMPLES / "products.csv", "-c", cfg)
    assert (imported.exit_code, imported.stderr) == (0, used(cfg))
    stock = invoke("stock", "BEANS-12OZ", "--json", "-c", cfg)
    assert [p["sellable"] for p in json.loads(stock.stdout)] == [0, 0]
    assert list(clean_environment.iterdir()) == []


def test_cli_postgresql_url_without_its_driver_says_what_to_install(tmp_path: Path) -> None:
    cfg = _write_config(tmp_path / "sellable.toml", "postgresql+pg8000://u@127.0.0.1/nothing")
    result = invoke("stock", "-c", cfg)
    assert result.exit_code == 2
    assert result.stderr.startswith(
        "error: database.url is a PostgreSQL URL but its driver is not installed ("
    )
    assert result.stderr.endswith(
        "): pip install 'sellable[postgres]' and write postgresql+psycopg://...\n"
    )


def test_cli_postgres_extra_is_named_when_psycopg_is_missing(tmp_path: Path) -> None:
    """psycopg is an extra: without it, a PostgreSQL URL says how to install it."""
    cfg = _write_config(tmp_path / "sellable.toml", "postgresql+psycopg://u@127.0.0.1/nothing")
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; sys.modules['psycopg'] = None\n"  # as if it were not installed
            "from sellable.cli import main; main()",
            "stock",
            "-c",
            str(cfg),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "pip install 'sellable[postgres]'" in done.stderr
    assert "Traceback" not in done.stderr


def test_cli_explain_requires_warehouse_or_channel(examples: Store) -> None:
    result = invoke("explain", "GIFT-SET-COFFEE", "--config", examples.config)
    assert result.exit_code == 2
    assert "give exactly one of --warehouse CODE or --channel CODE" in result.stderr


# -- the installed command, in a real process -----------------------------------------------------


def _run(
    *args: str | Path, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SELLABLE_")}
    return subprocess.run(
        [sys.executable, "-m", "sellable", *(str(a) for a in args)],
        cwd=cwd,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_subprocess_examples_main_job(tmp_path: Path) -> None:
    """The README's main job, as a user runs it: SQLite, ./sellable.toml, then $SELLABLE_CONFIG.

    (PostgreSQL runs the same commands in-process in test_cli_init_import_examples_and_stock_json.)
    """
    work = tmp_path / "cwd"
    config = _write_config(work / "sellable.toml", f"sqlite:///{tmp_path / 'main.db'}")
    assert _run("init", cwd=work).returncode == 0
    for name in ("products", "components", "stock"):
        done = _run("import", name, EXAMPLES / f"{name}.csv", cwd=work)
        assert (done.returncode, done.stderr) == (0, used(work / "sellable.toml"))
    stock = _run("stock", "--json", cwd=tmp_path, env={"SELLABLE_CONFIG": str(config)})
    assert (stock.returncode, stock.stderr) == (0, used(config))
    positions = {(p["sku"], p["warehouse"]): p for p in json.loads(stock.stdout)}
    _assert_example_numbers(positions)


def test_cli_subprocess_error_exit_codes(tmp_path: Path) -> None:
    work = tmp_path / "cwd"
    cfg = _write_config(work / "sellable.toml", f"sqlite:///{tmp_path / 'sub.db'}")
    before = _run("stock", cwd=work)
    assert (before.returncode, before.stdout, before.stderr) == (
        4,
        "",
        f"error: no database at {tmp_path / 'sub.db'} (database.url in {cfg}): run "
        "'sellable init' to create it, or point database.url at your database\n",
    )
    assert not (tmp_path / "sub.db").exists()
    assert _run("init", cwd=work).returncode == 0
    bad = tmp_path / "bad.csv"
    bad.write_text("sku,warehouse,on_hand\nBEANS-12OZ,main,1.5\n")
    rejected = _run("import", "stock", bad, cwd=work)
    assert (rejected.returncode, rejected.stdout, rejected.stderr) == (
        3,
        "",
        f"error: {bad} line 2, column 'on_hand': must be a whole number (value '1.5')\n"
        f"{bad}: rejected (1 problem(s)); nothing was written\n",
    )
    unknown = _run("stock", "UNKNOWN-SKU", cwd=work)
    assert (unknown.returncode, unknown.stderr) == (3, "error: unknown SKU 'UNKNOWN-SKU'\n")
    cfg.write_text(cfg.read_text().replace("assembly_on_demand", "asembly_on_demand"))
    broken = _run("check-config", cwd=work)
    assert (broken.returncode, broken.stderr) == (
        2,
        "error: sellable.toml: warehouses[0].asembly_on_demand: unknown key; did you mean "
        "'assembly_on_demand'?\n",
    )
