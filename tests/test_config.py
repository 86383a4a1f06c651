"""The configuration: where it is found, how it is validated, how errors read. No database."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

from sellable.config import Settings, format_validation_error, load_settings
from sellable.errors import ConfigError

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


def _toml(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _error(path: Path) -> str:
    with pytest.raises(ConfigError) as excinfo:
        load_settings(path)
    assert excinfo.value.exit_code == 2
    return str(excinfo.value)


# -- loading --------------------------------------------------------------------------------------

FULL = """
log_level = "DEBUG"

[database]
url = "postgresql+psycopg://sellable@db/sellable"
busy_timeout_seconds = 5

[[warehouses]]
code = "main"
kind = "own"
name = "Main warehouse"
assembly_on_demand = true

[[warehouses]]
code = "fba-us"
kind = "fba"

[[warehouses]]
code = "3pl.eu"
kind = "3pl"
"""


def test_config_load_settings_reads_every_key(tmp_path: Path) -> None:
    settings = load_settings(_toml(tmp_path / "full.toml", FULL))
    assert settings.log_level == "DEBUG"
    assert settings.database.url.get_secret_value() == "postgresql+psycopg://sellable@db/sellable"
    assert settings.database.busy_timeout_seconds == 5.0
    assert [
        (w.code, w.kind, w.name, w.use_component_inventory, w.assembly_on_demand)
        for w in settings.warehouses
    ] == [
        ("main", "own", "Main warehouse", True, True),
        ("fba-us", "fba", None, False, False),
        ("3pl.eu", "3pl", None, False, False),
    ]
    assert settings.warehouse_codes() == "main, fba-us, 3pl.eu"
    assert settings.warehouse("fba-us").uses_components is False


def test_config_without_any_file_uses_defaults() -> None:
    settings = load_settings()
    assert settings.database.url.get_secret_value() == "sqlite:///sellable.db"
    assert settings.database.busy_timeout_seconds == 30.0
    assert settings.log_level == "INFO"
    assert [
        (w.code, w.kind, w.use_component_inventory, w.assembly_on_demand)
        for w in settings.warehouses
    ] == [("main", "own", True, False)]


def test_config_source_is_the_file_read(tmp_path: Path, clean_environment: Path) -> None:
    path = _toml(tmp_path / "conf.toml", "")
    assert load_settings(path).source == path
    assert load_settings(Path("..") / "conf.toml").source == clean_environment / ".." / "conf.toml"
    assert load_settings().source is None


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        pytest.param("sqlite:///sellable.db", "sqlite:///{folder}/sellable.db", id="relative"),
        pytest.param("sqlite:///data/s.db", "sqlite:///{folder}/data/s.db", id="relative-dir"),
        pytest.param("sqlite:////abs/s.db", "sqlite:////abs/s.db", id="absolute"),
        pytest.param("sqlite://", "sqlite://", id="memory"),
        pytest.param("sqlite:///:memory:", "sqlite:///:memory:", id="named-memory"),
        pytest.param("postgresql+psycopg://u@db/s", "postgresql+psycopg://u@db/s", id="postgresql"),
    ],
)
def test_config_relative_sqlite_path_is_beside_the_file(
    tmp_path: Path, clean_environment: Path, written: str, expected: str
) -> None:
    folder = tmp_path / "etc"
    folder.mkdir()
    path = _toml(folder / "sellable.toml", f'[database]\nurl = "{written}"\n')
    # run from elsewhere, naming the file relatively: the file's folder still counts
    settings = load_settings(Path("..") / "etc" / "sellable.toml")
    assert settings.database.url.get_secret_value() == expected.format(
        folder=path.parent.absolute().parent / "cwd" / ".." / "etc"
    )


def test_config_default_sqlite_file_is_beside_the_file(tmp_path: Path) -> None:
    path = _toml(tmp_path / "sellable.toml", "")
    assert (
        load_settings(path).database.url.get_secret_value() == f"sqlite:///{tmp_path}/sellable.db"
    )


def test_config_relative_sqlite_path_from_environment_stays_the_callers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SELLABLE_DATABASE__URL", "sqlite:///here.db")
    path = _toml(tmp_path / "sellable.toml", "")
    assert load_settings(path).database.url.get_secret_value() == "sqlite:///here.db"


@pytest.mark.parametrize("written", ["debug", "Info", "WARNING", "error"])
def test_config_log_level_any_case(tmp_path: Path, written: str) -> None:
    path = _toml(tmp_path / "sellable.toml", f'log_level = "{written}"\n')
    assert load_settings(path).log_level == written.upper()


def test_config_logging_format(tmp_path: Path) -> None:
    assert load_settings().logging.format == "text"
    path = _toml(tmp_path / "sellable.toml", '[logging]\nformat = "json"\n')
    assert load_settings(path).logging.format == "json"
    _toml(path, '[logging]\nformat = "xml"\n')
    assert _error(path) == f"{path}: logging.format: Input should be 'text' or 'json' (got 'xml')"


@pytest.mark.parametrize(
    ("kind", "setting", "expected"),
    [
        pytest.param("own", "", True, id="own-default"),
        pytest.param("fba", "", False, id="fba-default"),
        pytest.param("3pl", "", False, id="3pl-default"),
        pytest.param("own", "use_component_inventory = false\n", False, id="own-off"),
        pytest.param("fba", "use_component_inventory = true\n", True, id="fba-on"),
    ],
)
def test_config_use_component_inventory_defaults_by_kind(
    tmp_path: Path, kind: str, setting: str, expected: bool
) -> None:
    path = _toml(tmp_path / "c.toml", f'[[warehouses]]\ncode = "w"\nkind = "{kind}"\n{setting}')
    assert load_settings(path).warehouse("w").use_component_inventory is expected


def test_config_default_file_in_working_directory(clean_environment: Path) -> None:
    _toml(clean_environment / "sellable.toml", '[[warehouses]]\ncode = "from-cwd"\n')
    assert load_settings().warehouse_codes() == "from-cwd"


def test_config_environment_variable_names_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _toml(tmp_path / "env.toml", '[[warehouses]]\ncode = "from-env"\n')
    monkeypatch.setenv("SELLABLE_CONFIG", str(path))
    assert load_settings().warehouse_codes() == "from-env"


def test_config_order_option_then_working_directory_then_environment(
    tmp_path: Path, clean_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    option = _toml(tmp_path / "option.toml", '[[warehouses]]\ncode = "from-option"\n')
    _toml(clean_environment / "sellable.toml", '[[warehouses]]\ncode = "from-cwd"\n')
    env = _toml(tmp_path / "env.toml", '[[warehouses]]\ncode = "from-env"\n')
    monkeypatch.setenv("SELLABLE_CONFIG", str(env))
    assert load_settings(option).warehouse_codes() == "from-option"
    assert load_settings().warehouse_codes() == "from-cwd"


@pytest.mark.parametrize(
    ("explicit", "env", "message"),
    [
        pytest.param(
            "{tmp}/nope.toml", None, "{tmp}/nope.toml: configuration file not found", id="option"
        ),
        pytest.param("{tmp}", None, "{tmp}: configuration file not found", id="option-is-dir"),
        pytest.param(
            None,
            "{tmp}/gone.toml",
            "{tmp}/gone.toml: configuration file not found (from $SELLABLE_CONFIG)",
            id="environment",
        ),
    ],
)
def test_config_missing_file(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    explicit: str | None,
    env: str | None,
    message: str,
) -> None:
    if env is not None:
        monkeypatch.setenv("SELLABLE_CONFIG", env.format(tmp=tmp_path))
    with pytest.raises(ConfigError) as excinfo:
        load_settings(None if explicit is None else explicit.format(tmp=tmp_path))
    assert str(excinfo.value) == message.format(tmp=tmp_path)


def test_config_invalid_toml_names_file_and_line(tmp_path: Path) -> None:
    path = _toml(tmp_path / "bad.toml", '[database]\nurl = "sqlite:///x.db\n')
    message = _error(path)
    assert message.startswith(f"{path}: not valid TOML: ")
    assert message.endswith("(at line 2, column 22)")


# -- environment overrides ------------------------------------------------------------------------


def test_config_environment_overrides_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _toml(tmp_path / "c.toml", FULL)
    monkeypatch.setenv("SELLABLE_DATABASE__URL", "sqlite:///env.db")
    monkeypatch.setenv("SELLABLE_LOG_LEVEL", "WARNING")
    settings = load_settings(path)
    assert settings.database.url.get_secret_value() == "sqlite:///env.db"
    assert settings.database.busy_timeout_seconds == 5.0  # the rest of [database] stays
    assert settings.log_level == "WARNING"
    assert settings.warehouse_codes() == "main, fba-us, 3pl.eu"


def test_config_environment_nested_key_merges_with_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _toml(tmp_path / "c.toml", FULL)
    monkeypatch.setenv("SELLABLE_DATABASE__BUSY_TIMEOUT_SECONDS", "7.5")
    settings = load_settings(path)
    assert settings.database.busy_timeout_seconds == 7.5
    assert settings.database.url.get_secret_value() == "postgresql+psycopg://sellable@db/sellable"


def test_config_environment_json_list_replaces_warehouses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SELLABLE_WAREHOUSES", '[{"code": "env-wh", "kind": "3pl"}]')
    settings = load_settings(_toml(tmp_path / "c.toml", FULL))
    assert [(w.code, w.kind) for w in settings.warehouses] == [("env-wh", "3pl")]


def test_config_environment_without_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SELLABLE_DATABASE__URL", "sqlite:///only-env.db")
    assert load_settings().database.url.get_secret_value() == "sqlite:///only-env.db"


def test_config_invalid_environment_value_without_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SELLABLE_LOG_LEVEL", "LOUD")
    with pytest.raises(ConfigError) as excinfo:
        load_settings()
    assert excinfo.value.exit_code == 2
    assert str(excinfo.value) == (
        "$SELLABLE_LOG_LEVEL: log_level: Input should be 'DEBUG', 'INFO', 'WARNING' or "
        "'ERROR' (got 'LOUD')"
    )


def test_config_invalid_environment_value_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bad value came from the environment, not from c.toml: the message says so."""
    monkeypatch.setenv("SELLABLE_LOG_LEVEL", "LOUD")
    assert _error(_toml(tmp_path / "c.toml", FULL)) == (
        "$SELLABLE_LOG_LEVEL: log_level: Input should be 'DEBUG', 'INFO', 'WARNING' or "
        "'ERROR' (got 'LOUD')"
    )


# -- validation errors through load_settings ------------------------------------------------------

FILE_ERRORS = [
    pytest.param(
        '[[warehouses]]\ncode = "main"\nuse_component_inventry = true\n',
        [
            "warehouses[0].use_component_inventry: unknown key; did you mean "
            "'use_component_inventory'?"
        ],
        id="unknown-warehouse-key-did-you-mean",
    ),
    pytest.param(
        '[database]\nurll = "sqlite:///x.db"\n',
        ["database.urll: unknown key; did you mean 'url'?"],
        id="unknown-database-key-did-you-mean",
    ),
    pytest.param(
        'loglevel = "INFO"\n',
        ["loglevel: unknown key; did you mean 'log_level'?"],
        id="unknown-top-level-key-did-you-mean",
    ),
    pytest.param(
        '[[warehouses]]\ncode = "main"\nzzz = 1\n',
        [
            "warehouses[0].zzz: unknown key (known: assembly_on_demand, code, kind, name, "
            "use_component_inventory)"
        ],
        id="unknown-warehouse-key-lists-known",
    ),
    pytest.param(
        '[[warehouses]]\ncode = "main"\nkind = "amazon"\n',
        ["warehouses[0].kind: Input should be 'own', 'fba' or '3pl' (got 'amazon')"],
        id="bad-kind",
    ),
    pytest.param(
        '[[warehouses]]\ncode = "fba-us"\nkind = "fba"\nassembly_on_demand = true\n',
        [
            "warehouses[0]: warehouse 'fba-us' cannot assemble on demand without component "
            "inventory (set use_component_inventory = true or assembly_on_demand = false)"
        ],
        id="assembly-on-demand-on-fba",
    ),
    pytest.param(
        '[[warehouses]]\ncode = "main"\nuse_component_inventory = false\n'
        "assembly_on_demand = true\n",
        [
            "warehouses[0]: warehouse 'main' cannot assemble on demand without component "
            "inventory (set use_component_inventory = true or assembly_on_demand = false)"
        ],
        id="assembly-on-demand-without-components",
    ),
    pytest.param(
        '[[warehouses]]\nkind = "own"\n',
        ["warehouses[0].code: Field required"],
        id="missing-code",
    ),
    pytest.param(
        '[[warehouses]]\ncode = "bad code"\n',
        [
            "warehouses[0].code: String should match pattern '^[A-Za-z0-9][A-Za-z0-9._-]*$' "
            "(got 'bad code')"
        ],
        id="bad-code",
    ),
    pytest.param(
        "warehouses = []\n",
        ["warehouses: List should have at least 1 item after validation, not 0"],
        id="no-warehouses",
    ),
    pytest.param(
        '[database]\nurl = ["sqlite:///x.db"]\n',
        ["database.url: Input should be a valid string"],
        id="url-not-a-string",
    ),
    pytest.param(
        "[database]\nbusy_timeout_seconds = 0\n",
        ["database.busy_timeout_seconds: Input should be greater than 0 (got 0)"],
        id="busy-timeout-zero",
    ),
    pytest.param(
        'log_level = "LOUD"\n[[warehouses]]\ncode = "a"\nkind = "x"\nfoo = 1\n',
        [
            "warehouses[0].kind: Input should be 'own', 'fba' or '3pl' (got 'x')",
            "warehouses[0].foo: unknown key (known: assembly_on_demand, code, kind, name, "
            "use_component_inventory)",
            "log_level: Input should be 'DEBUG', 'INFO', 'WARNING' or 'ERROR' (got 'LOUD')",
        ],
        id="every-problem-one-line-each",
    ),
]


@pytest.mark.parametrize(("text", "problems"), FILE_ERRORS)
def test_config_validation_errors_name_file_key_path_and_reason(
    tmp_path: Path, text: str, problems: list[str]
) -> None:
    path = _toml(tmp_path / "c.toml", text)
    assert _error(path) == "\n".join(f"{path}: {p}" for p in problems)


def test_config_unknown_top_level_key_lists_known_sections(tmp_path: Path) -> None:
    path = _toml(tmp_path / "c.toml", "colour = 1\n")
    message = _error(path)
    assert message.startswith(f"{path}: colour: unknown key (known: ")
    assert "\n" not in message
    for section in ("database", "log_level", "warehouses"):
        assert section in message


def test_config_duplicate_warehouse_code(tmp_path: Path) -> None:
    path = _toml(
        tmp_path / "c.toml",
        '[[warehouses]]\ncode = "main"\n[[warehouses]]\ncode = "eu"\n'
        '[[warehouses]]\ncode = "main"\n',
    )
    assert _error(path) == f"{path}: warehouses[2].code: warehouse 'main' is declared twice"


# -- format_validation_error on its own -----------------------------------------------------------


def _validation_error(model: type[BaseModel], data: dict[str, Any]) -> ValidationError:
    with pytest.raises(ValidationError) as excinfo:
        model.model_validate(data)
    return excinfo.value


class _Inner(BaseModel):
    model_config = ConfigDict(extra="forbid")
    alpha: int
    gamma: str = ""


class _Outer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    inner: _Inner | None = None
    items: list[_Inner] = []
    plain: dict[str, int] = {}


@pytest.mark.parametrize(
    ("data", "lines"),
    [
        pytest.param(
            {"innr": {}}, ["innr: unknown key; did you mean 'inner'?"], id="top-level-did-you-mean"
        ),
        pytest.param(
            {"inner": {"alpha": 1, "gama": ""}},
            ["inner.gama: unknown key; did you mean 'gamma'?"],
            id="through-optional",
        ),
        pytest.param(
            {"items": [{"alpha": 1}, {"alpha": 2, "zeta": 3}]},
            ["items[1].zeta: unknown key (known: alpha, gamma)"],
            id="in-list-lists-known",
        ),
        pytest.param({"items": [{}]}, ["items[0].alpha: Field required"], id="missing"),
        pytest.param(
            {"inner": {"alpha": "many"}},
            [
                "inner.alpha: Input should be a valid integer, unable to parse string as "
                "an integer (got 'many')"
            ],
            id="scalar-input-shown",
        ),
        pytest.param(
            {"inner": {"alpha": [1]}},
            ["inner.alpha: Input should be a valid integer"],
            id="non-scalar-input-hidden",
        ),
        pytest.param(
            {"plain": {"k": "v"}},
            [
                "plain.k: Input should be a valid integer, unable to parse string as an "
                "integer (got 'v')"
            ],
            id="dict-value",
        ),
    ],
)
def test_config_format_validation_error(data: dict[str, Any], lines: list[str]) -> None:
    err = _validation_error(_Outer, data)
    assert format_validation_error("x.toml", err, _Outer) == "\n".join(
        f"x.toml: {line}" for line in lines
    )


def test_config_format_validation_error_settings_model() -> None:
    err = _validation_error(
        Settings, {"databse": {}, "warehouses": [{"code": "m", "kind": "fbb", "nmae": "x"}]}
    )
    assert format_validation_error("(defaults and environment)", err, Settings).splitlines() == [
        "(defaults and environment): warehouses[0].kind: Input should be 'own', 'fba' or '3pl' "
        "(got 'fbb')",
        "(defaults and environment): warehouses[0].nmae: unknown key; did you mean 'name'?",
        "(defaults and environment): databse: unknown key; did you mean 'database'?",
    ]


# -- the settings object --------------------------------------------------------------------------


def test_config_database_url_is_secret(tmp_path: Path) -> None:
    url = f"postgresql+psycopg://sellable:{PASSWORD}@db/sellable"
    settings = load_settings(_toml(tmp_path / "c.toml", f'[database]\nurl = "{url}"\n'))
    assert settings.database.url.get_secret_value() == url
    for text in (
        repr(settings),
        str(settings),
        repr(settings.database),
        str(settings.database.url),
        settings.model_dump_json(),
    ):
        assert PASSWORD not in text


def test_config_unknown_warehouse_names_known(tmp_path: Path) -> None:
    settings = load_settings(_toml(tmp_path / "c.toml", FULL))
    with pytest.raises(ConfigError) as excinfo:
        settings.warehouse("nope")
    assert str(excinfo.value) == "unknown warehouse 'nope' (known: main, fba-us, 3pl.eu)"


def test_config_settings_are_frozen(tmp_path: Path) -> None:
    settings = load_settings(_toml(tmp_path / "c.toml", FULL))
    with pytest.raises(ValidationError):
        settings.log_level = "ERROR"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        settings.warehouses[0].kind = "fba"  # type: ignore[misc]
