"""Shared fixtures: a real SQLite file and a real PostgreSQL database for store tests.

PostgreSQL is never skipped. The server is, in order: ``$SELLABLE_TEST_POSTGRES_URL``
(a server URL whose database we may create databases from); the local server at
127.0.0.1:5432 as user ``postgres``; or a throwaway cluster started from the installed
PostgreSQL binaries (``initdb``/``pg_ctl``) in a temporary directory. If none can be had
the tests fail with the reason.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import Connection, Engine, case, func, select

from sellable.store import schema

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"

WAREHOUSES_TOML = """
[[warehouses]]
code = "main"
kind = "own"
assembly_on_demand = true

[[warehouses]]
code = "fba-us"
kind = "fba"
"""


def _can_connect(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


def _find_binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    return candidates[0] if candidates else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ThrowawayCluster:
    """A PostgreSQL cluster in a temporary directory, owned by a non-root user if needed."""

    def __init__(self) -> None:
        initdb, pg_ctl = _find_binary("initdb"), _find_binary("pg_ctl")
        if not initdb or not pg_ctl:
            pytest.fail(
                "PostgreSQL tests need a server: none answers at 127.0.0.1:5432, "
                "$SELLABLE_TEST_POSTGRES_URL is not set, and no initdb/pg_ctl binaries were "
                "found (install the 'postgresql' package)"
            )
        self.pg_ctl = pg_ctl
        self.dir = Path(tempfile.mkdtemp(prefix="sellable-pg-"))
        self.data = self.dir / "data"
        self.port = _free_port()
        self.prefix: list[str] = []
        if os.geteuid() == 0:  # initdb refuses to run as root
            user = "postgres" if _user_exists("postgres") else "nobody"
            shutil.chown(self.dir, user)
            self.dir.chmod(0o700)
            self.prefix = ["runuser", "-u", user, "--"]
        subprocess.run(
            [
                *self.prefix,
                initdb,
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
        )
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            [
                *self.prefix,
                pg_ctl,
                "-D",
                str(self.data),
                "-o",
                options,
                "-w",
                "-l",
                str(self.dir / "log"),
                "start",
            ],
            check=True,
            capture_output=True,
        )
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        subprocess.run(
            [*self.prefix, self.pg_ctl, "-D", str(self.data), "-m", "immediate", "stop"],
            check=False,
            capture_output=True,
        )
        shutil.rmtree(self.dir, ignore_errors=True)


def _user_exists(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A libpq URL of a PostgreSQL server where the tests may create databases."""
    explicit = os.environ.get("SELLABLE_TEST_POSTGRES_URL")
    if explicit:
        url = explicit.replace("postgresql+psycopg://", "postgresql://")
        if not _can_connect(url):
            pytest.fail(f"$SELLABLE_TEST_POSTGRES_URL does not answer: {explicit}")
        yield url
        return
    if _can_connect(DEFAULT_SERVER):
        yield DEFAULT_SERVER
        return
    cluster = ThrowawayCluster()
    try:
        yield cluster.url
    finally:
        cluster.stop()


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh, empty database on the test server, dropped afterwards (SQLAlchemy URL)."""
    name = f"sellable_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = postgres_server.rpartition("/")
    try:
        yield f"{base.replace('postgresql://', 'postgresql+psycopg://')}/{name}"
    finally:
        with psycopg.connect(postgres_server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each store test runs on a SQLite file and on a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'sellable.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def config_file(tmp_path: Path, database_url: str) -> Path:
    """A configuration file with warehouses ``main`` (own, assembly on demand) and
    ``fba-us`` (FBA), pointing at the test database."""
    path = tmp_path / "sellable.toml"
    path.write_text(f'[database]\nurl = "{database_url}"\n{WAREHOUSES_TOML}')
    return path


TESTSHOP_PACKAGE = Path(__file__).parent / "plugins" / "testshop"


@pytest.fixture(scope="session")
def plugin_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The testshop connector package installed with pip into a folder of its own, which is
    put on ``sys.path`` so that entry-point discovery finds it like any installed plugin.
    Subprocesses get it through ``PYTHONPATH`` (see :func:`plugin_env`)."""
    import sys

    target = tmp_path_factory.mktemp("plugins")
    # Build from a private copy: pip/setuptools write build/ and *.egg-info next to the
    # sources, and two xdist workers building one folder at once trip over each other.
    source = tmp_path_factory.mktemp("testshop-src") / "testshop"
    shutil.copytree(TESTSHOP_PACKAGE, source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
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
            str(source),
        ],
        check=True,
        capture_output=True,
    )
    sys.path.insert(0, str(target))
    from sellable.sync.plugins import load_connector

    load_connector.cache_clear()
    try:
        yield target
    finally:
        sys.path.remove(str(target))
        load_connector.cache_clear()


@pytest.fixture
def plugin_env(plugin_dir: Path) -> dict[str, str]:
    """Environment for subprocesses that must see the installed testshop plugin."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(plugin_dir), env.get("PYTHONPATH", "")) if p
    )
    return env


@pytest.fixture
def testshop(plugin_dir: Path) -> Iterator[object]:
    """A running test shop on loopback (``.url``, ``.state``)."""
    from sellable_testshop.server import TestShopServer

    with TestShopServer() as shop:
        yield shop


# -- the ledger invariant ------------------------------------------------------------------------


def ledger_mismatches(connection: Connection) -> list[str]:
    """Stock rows that differ from the sum of their movements, and movements without a stock
    row, named by SKU and warehouse code (empty when the ledger explains every row)."""
    m, st = schema.movements.c, schema.stock.c
    skus = {i: c for i, c in connection.execute(select(schema.skus.c.id, schema.skus.c.sku))}
    warehouse_table = schema.warehouses.c
    warehouses = {
        i: c for i, c in connection.execute(select(warehouse_table.id, warehouse_table.code))
    }
    sums = {
        (s, w): (int(oh), int(lk), int(al), int(hd), int(ex))
        for s, w, oh, lk, al, hd, ex in connection.execute(
            select(
                m.sku_id,
                m.warehouse_id,
                func.sum(m.on_hand_change),
                func.sum(m.locked_change),
                func.sum(m.allocated_change),
                func.sum(m.held_change),
                func.sum(m.expired_change),
            ).group_by(m.sku_id, m.warehouse_id)
        )
    }
    rows = {
        (s, w): (oh, lk, al, hd, ex)
        for s, w, oh, lk, al, hd, ex in connection.execute(
            select(
                st.sku_id, st.warehouse_id, st.on_hand, st.locked, st.allocated, st.held, st.expired
            )
        )
    }
    zero = (0, 0, 0, 0, 0)
    problems = [
        f"stock {skus.get(s, s)}@{warehouses.get(w, w)} is {rows.get((s, w))}, "
        f"its movements sum to {sums.get((s, w), zero)}"
        for s, w in sorted(set(sums) | set(rows))
        if rows.get((s, w)) != sums.get((s, w), zero)
    ]
    # Costing: the open layers of every (SKU, warehouse) add up to its on hand, and their
    # expired units to its expired.
    cl = schema.cost_layers.c
    layers = {
        (s, w): (int(q), int(e or 0))
        for s, w, q, e in connection.execute(
            select(
                cl.sku_id,
                cl.warehouse_id,
                func.sum(cl.remaining),
                func.sum(case((cl.expired, cl.remaining), else_=0)),
            ).group_by(cl.sku_id, cl.warehouse_id)
        )
    }
    problems += [
        f"layers of {skus.get(s, s)}@{warehouses.get(w, w)} hold {layers.get((s, w), (0, 0))} "
        f"(units, expired), stock says {(rows[(s, w)][0], rows[(s, w)][4])}"
        for s, w in sorted(set(rows) | set(layers))
        if (s, w) in rows and layers.get((s, w), (0, 0)) != (rows[(s, w)][0], rows[(s, w)][4])
    ]
    problems += [
        f"layers of {skus.get(s, s)}@{warehouses.get(w, w)} have no stock row"
        for s, w in sorted(set(layers) - set(rows))
        if layers[(s, w)] != (0, 0)
    ]
    return problems


def assert_ledger_balanced(engine: Engine) -> None:
    """Every stock row equals the sum of its movements, and no movement lacks a row."""
    with engine.connect() as connection:
        problems = ledger_mismatches(connection)
    assert problems == [], "the ledger does not explain the stock:\n" + "\n".join(problems)


@pytest.fixture
def ledger_check() -> Callable[[Engine], None]:
    """``ledger_check(engine)`` asserts the ledger invariant: stock == sum(movements)."""
    return assert_ledger_balanced


# -- hypothesis: a CI profile and a deeper local one -------------------------------------------

#: ``SELLABLE_HYPOTHESIS_PROFILE=deep`` runs the property tests that use
#: :func:`property_settings` with their deep example counts and a fresh seed each run; the
#: default ``ci`` profile keeps them small and derandomized so the suite stays fast and stable.
HYPOTHESIS_PROFILE = os.environ.get("SELLABLE_HYPOTHESIS_PROFILE", "ci")


def property_settings(
    examples: int,
    deep_examples: int,
    *,
    postgresql_examples: int | None = None,
    backend: str | None = None,
) -> Callable[[Any], Any]:
    """Hypothesis settings for a property test: ``examples`` in the CI profile,
    ``deep_examples`` in the deep one.

    A property that runs once per database (``database_url``) passes its ``backend``
    (``engine.dialect.name``) and may give ``postgresql_examples``: the CI profile's count on
    PostgreSQL. The property's logic is the same on both backends and the SQLite run explores
    it with ``examples``; the PostgreSQL run is there to show that the same SQL behaves the
    same on a real server (types, locking, ordering), which fewer examples show as well, at a
    fraction of the suite's time (each example is many round trips to the server). The deep
    profile runs ``deep_examples`` on both."""
    from hypothesis import HealthCheck, settings

    if HYPOTHESIS_PROFILE not in ("ci", "deep"):
        pytest.fail(f"unknown SELLABLE_HYPOTHESIS_PROFILE {HYPOTHESIS_PROFILE!r} (known: ci, deep)")
    if backend not in (None, "sqlite", "postgresql"):
        pytest.fail(f"unknown backend {backend!r} (known: sqlite, postgresql)")
    deep = HYPOTHESIS_PROFILE == "deep"
    count = examples
    if backend == "postgresql" and postgresql_examples is not None:
        count = postgresql_examples
    return settings(
        max_examples=deep_examples if deep else count,
        deadline=None,
        derandomize=not deep,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
