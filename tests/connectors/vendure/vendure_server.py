"""A real Vendure server for the end-to-end tests: installed from npm once into a cache
directory, started on a free loopback port over a fresh PostgreSQL database, stopped and
dropped afterwards. The database is a copy of a template that Vendure's own
populate/importer (``server/``) seeded once; the template stays on the server, one per
content of the server files (``vendure_template_<digest>``; drop old ones at will).

Nothing is skipped: without node/npm, or when the install or the start fails, the tests
fail with the reason and the tail of the log.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

SERVER_FILES = Path(__file__).parent / "server"
NPM_FILES = ("package.json", "package-lock.json")
VENDURE_VERSION = "3.7.3"
READY = "SELLABLE-VENDURE-READY"
SUPERADMIN = ("superadmin", "superadmin-password")
SYNC_USER = ("sellable-sync@example.com", "sync-password")
SYNC_ROLE = "sellable-sync"
START_TIMEOUT = 120.0
INSTALL_TIMEOUT = 600.0


def cache_dir() -> Path:
    """Where node_modules lives: ``$SELLABLE_VENDURE_CACHE`` or ~/.cache/sellable."""
    explicit = os.environ.get("SELLABLE_VENDURE_CACHE")
    if explicit:
        return Path(explicit)
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "sellable" / f"vendure-{VENDURE_VERSION}"


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(
            f"the Vendure end-to-end tests need {name!r} on PATH (Node.js 20+ with npm): "
            "install Node.js, e.g. 'apt-get install nodejs npm'"
        )
    return found


def install_vendure() -> Path:
    """``npm ci`` of ``server/package.json`` and its lock file into the cache directory,
    once per version of those files; a file lock makes concurrent pytest-xdist workers wait
    for one install instead of racing."""
    npm = _tool("npm")
    _tool("node")
    target = cache_dir()
    target.parent.mkdir(parents=True, exist_ok=True)
    manifests = {name: (SERVER_FILES / name).read_bytes() for name in NPM_FILES}
    digest = hashlib.sha256(b"".join(manifests.values())).hexdigest()
    marker = target / ".sellable-installed"
    with (target.parent / f"{target.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists() and marker.read_text() == digest:
            return target
        target.mkdir(exist_ok=True)
        for name, content in manifests.items():
            (target / name).write_bytes(content)
        started = time.monotonic()
        try:
            done = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=target,
                capture_output=True,
                text=True,
                timeout=INSTALL_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"npm ci of Vendure in {target} took over {INSTALL_TIMEOUT:.0f}s")
        if done.returncode != 0:
            pytest.fail(
                f"npm ci of Vendure {VENDURE_VERSION} in {target} failed "
                f"(exit {done.returncode}):\n{(done.stdout + done.stderr)[-3000:]}"
            )
        marker.write_text(digest)
        print(f"installed Vendure {VENDURE_VERSION} in {time.monotonic() - started:.1f}s")
    return target


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class GraphQLFailure(AssertionError):
    pass


@dataclass
class Session:
    """A GraphQL session on one of Vendure's APIs (bearer token kept from the answers)."""

    url: str
    token: str | None = None
    client: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=30))

    def __call__(self, document: str, variables: Mapping[str, Any] | None = None) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        response = self.client.post(
            self.url, json={"query": document, "variables": dict(variables or {})}, headers=headers
        )
        response.raise_for_status()
        if "vendure-auth-token" in response.headers:
            self.token = response.headers["vendure-auth-token"]
        body = response.json()
        if body.get("errors"):
            raise GraphQLFailure(f"{document.split('{')[0].strip()}: {body['errors']}")
        return body["data"]

    def close(self) -> None:
        self.client.close()


@dataclass
class VendureServer:
    """A running, seeded Vendure: its URLs, an admin session as superadmin, the credentials
    of the restricted sync user, and shop helpers."""

    port: int
    process: subprocess.Popen[bytes]
    log: Path
    database: str
    admin: Session
    variant_ids: dict[str, str] = field(default_factory=dict)
    sessions: list[Session] = field(default_factory=list)

    @property
    def admin_api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/admin-api"

    @property
    def shop_api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/shop-api"

    def shop(self) -> Session:
        session = Session(self.shop_api_url)
        self.sessions.append(session)
        return session

    def login_admin(self) -> None:
        user, password = SUPERADMIN
        result = self.admin(
            "mutation($u: String!, $p: String!) { login(username: $u, password: $p) "
            "{ __typename } }",
            {"u": user, "p": password},
        )
        assert result["login"]["__typename"] == "CurrentUser", result

    def levels(self, sku: str) -> dict[str, tuple[int, int]]:
        """Stock location id -> (stockOnHand, stockAllocated) of ``sku``."""
        data = self.admin(
            "query($id: ID!) { productVariant(id: $id) { stockLevels { stockLocationId "
            "stockOnHand stockAllocated } } }",
            {"id": self.variant_ids[sku]},
        )["productVariant"]
        return {
            level["stockLocationId"]: (level["stockOnHand"], level["stockAllocated"])
            for level in data["stockLevels"]
        }

    def stock(self, sku: str) -> tuple[int, int]:
        """(stockOnHand, stockAllocated) at the default stock location, the only one."""
        (level,) = self.levels(sku).values()
        return level

    def saleable(self, sku: str) -> int:
        """How many units Vendure lets a shopper put in a cart: it caps ``addItemToOrder``
        at the saleable stock and says so in an InsufficientStockError."""
        shop = self.shop()
        answer = shop(
            "mutation($id: ID!) { addItemToOrder(productVariantId: $id, quantity: 500) { "
            "__typename ... on InsufficientStockError { quantityAvailable } } }",
            {"id": self.variant_ids[sku]},
        )["addItemToOrder"]
        assert answer["__typename"] == "InsufficientStockError", (sku, answer)
        shop("mutation { removeAllOrderLines { __typename } }")
        return int(answer["quantityAvailable"])

    def place_order(
        self, lines: list[tuple[str, int]], email: str, *, coupon: str | None = None
    ) -> dict[str, Any]:
        """A guest checkout through the Shop API, paid with the dummy handler (which settles
        at once): the order ends PaymentSettled. ``coupon`` is applied to the cart first.
        Returns id, code, state, updatedAt."""
        shop = self.shop()
        for sku, quantity in lines:
            added = shop(
                "mutation($id: ID!, $q: Int!) { addItemToOrder(productVariantId: $id, "
                "quantity: $q) { __typename ... on ErrorResult { errorCode message } } }",
                {"id": self.variant_ids[sku], "q": quantity},
            )["addItemToOrder"]
            assert added["__typename"] == "Order", added
        if coupon is not None:
            applied = shop(
                "mutation($c: String!) { applyCouponCode(couponCode: $c) { __typename "
                "... on ErrorResult { errorCode message } } }",
                {"c": coupon},
            )["applyCouponCode"]
            assert applied["__typename"] == "Order", applied
        shop(
            "mutation($e: String!) { setCustomerForOrder(input: {emailAddress: $e, "
            'firstName: "Test", lastName: "Buyer"}) { __typename } }',
            {"e": email},
        )
        shop(
            'mutation { setOrderShippingAddress(input: {fullName: "Test Buyer", '
            'streetLine1: "1 Loopback Road", city: "London", postalCode: "N1 1AA", '
            'countryCode: "GB"}) { __typename } }'
        )
        (method,) = shop("{ eligibleShippingMethods { id } }")["eligibleShippingMethods"]
        shop(
            "mutation($id: [ID!]!) { setOrderShippingMethod(shippingMethodId: $id) "
            "{ __typename } }",
            {"id": [method["id"]]},
        )
        moved = shop(
            'mutation { transitionOrderToState(state: "ArrangingPayment") { __typename '
            "... on OrderStateTransitionError { transitionError } } }"
        )["transitionOrderToState"]
        assert moved["__typename"] == "Order", moved
        paid = shop(
            'mutation { addPaymentToOrder(input: {method: "dummy-payment", metadata: {}}) { '
            "__typename ... on Order { id code state updatedAt } "
            "... on ErrorResult { errorCode message } } }"
        )["addPaymentToOrder"]
        assert paid["__typename"] == "Order" and paid["state"] == "PaymentSettled", paid
        return dict(paid)

    def order(self, order_id: str) -> dict[str, Any]:
        return dict(
            self.admin(
                "query($id: ID!) { order(id: $id) { id code state updatedAt "
                "lines { id quantity productVariant { sku } } } }",
                {"id": order_id},
            )["order"]
        )

    def ship(self, order_id: str, *skus: str) -> None:
        """Fulfil the lines of ``skus`` (all lines when none are named) with a manual
        fulfillment and mark it Shipped."""
        lines = [
            {"orderLineId": line["id"], "quantity": line["quantity"]}
            for line in self.order(order_id)["lines"]
            if not skus or line["productVariant"]["sku"] in skus
        ]
        fulfillment = self.admin(
            "mutation($lines: [OrderLineInput!]!) { addFulfillmentToOrder(input: "
            '{lines: $lines, handler: {code: "manual-fulfillment", arguments: '
            '[{name: "method", value: "Courier"}, {name: "trackingCode", value: "T-1"}]}}) '
            "{ __typename ... on Fulfillment { id } ... on ErrorResult { errorCode message } } }",
            {"lines": lines},
        )["addFulfillmentToOrder"]
        assert fulfillment["__typename"] == "Fulfillment", fulfillment
        shipped = self.admin(
            'mutation($id: ID!) { transitionFulfillmentToState(id: $id, state: "Shipped") '
            "{ __typename ... on ErrorResult { errorCode message } } }",
            {"id": fulfillment["id"]},
        )["transitionFulfillmentToState"]
        assert shipped["__typename"] == "Fulfillment", shipped

    def cancel(self, order_id: str) -> None:
        cancelled = self.admin(
            'mutation($id: ID!) { cancelOrder(input: {orderId: $id, reason: "test"}) '
            "{ __typename ... on ErrorResult { errorCode message } } }",
            {"id": order_id},
        )["cancelOrder"]
        assert cancelled["__typename"] == "Order", cancelled

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def _wait_ready(process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace") if log.exists() else ""
        if READY in text:
            return
        if process.poll() is not None:
            pytest.fail(f"Vendure exited with {process.returncode} while starting:\n{text[-4000:]}")
        time.sleep(0.1)
    pytest.fail(f"Vendure did not start within {START_TIMEOUT:.0f}s:\n{log.read_text()[-4000:]}")


def _seed(server: VendureServer) -> None:
    """The restricted sync user, a global threshold and one variant with its own."""
    server.login_admin()
    variants = server.admin("{ productVariants { items { id sku } } }")["productVariants"]
    server.variant_ids.update({item["sku"]: item["id"] for item in variants["items"]})
    roles = server.admin("{ roles { items { id code } } }")["roles"]["items"]
    (role_id,) = [role["id"] for role in roles if role["code"] == SYNC_ROLE]
    user, password = SYNC_USER
    server.admin(
        "mutation($input: CreateAdministratorInput!) { createAdministrator(input: $input) { id } }",
        {
            "input": {
                "emailAddress": user,
                "firstName": "Sellable",
                "lastName": "Sync",
                "password": password,
                "roleIds": [role_id],
            }
        },
    )
    server.admin(
        "mutation { updateGlobalSettings(input: {outOfStockThreshold: 1}) { __typename } }"
    )
    server.admin(
        "mutation($id: ID!) { updateProductVariants(input: [{id: $id, outOfStockThreshold: 2, "
        "useGlobalOutOfStockThreshold: false}]) { id } }",
        {"id": server.variant_ids["MUG-CERAMIC"]},
    )


#: Files whose content decides what a freshly populated Vendure database holds: a template
#: database is kept per digest of them (see :func:`template_database`).
TEMPLATE_FILES = ("server.js", "initial-data.json", "products.csv", *NPM_FILES)


def _start(
    postgres_server: str, run_dir: Path, database: str, *, populate: bool
) -> tuple[subprocess.Popen[bytes], int, Path]:
    """Start ``node server.js`` in ``run_dir`` over ``database``: with ``populate``, it
    creates the schema and seeds it (initial-data.json, products.csv); without, it serves a
    database that was populated before (a copy of the template). Returns once it is ready:
    the process, its port and its log."""
    modules = install_vendure()
    run_dir.mkdir()
    for name in ("server.js", "initial-data.json", "products.csv"):
        shutil.copy(SERVER_FILES / name, run_dir / name)
    (run_dir / "node_modules").symlink_to(modules / "node_modules")
    info = psycopg.conninfo.conninfo_to_dict(postgres_server)
    port = free_port()
    env = {
        **os.environ,
        "VENDURE_PORT": str(port),
        "VENDURE_SUPERADMIN": SUPERADMIN[0],
        "VENDURE_SUPERADMIN_PASSWORD": SUPERADMIN[1],
        "VENDURE_DB_HOST": str(info.get("host") or "127.0.0.1"),
        "VENDURE_DB_PORT": str(info.get("port") or 5432),
        "VENDURE_DB_USER": str(info.get("user") or "postgres"),
        "VENDURE_DB_PASSWORD": str(info.get("password") or ""),
        "VENDURE_DB_NAME": database,
        "VENDURE_POPULATE": "1" if populate else "0",
    }
    log = run_dir / "vendure.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [_tool("node"), "server.js"],
            cwd=run_dir,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_ready(process, log)
    except BaseException:
        _stop(process)
        raise
    return process, port, log


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def create_from_template(postgres_server: str, work: Path, database: str) -> None:
    """Create ``database`` on ``postgres_server`` as a copy (``CREATE DATABASE ... TEMPLATE``)
    of a template database that Vendure populated (schema, the initial data, products.csv)
    and that nothing connects to. Populating takes most of a Vendure start, and the
    end-to-end modules each start a Vendure of their own. Made once per content of
    :data:`TEMPLATE_FILES` and kept on the server, like the npm install in the cache
    directory (a throwaway cluster goes with its session). A file lock makes concurrent
    pytest-xdist workers wait for one build; it is only renamed to its final name once
    Vendure has populated it and stopped, so a failed build leaves no template behind."""
    digest = hashlib.sha256(
        VENDURE_VERSION.encode() + b"".join((SERVER_FILES / n).read_bytes() for n in TEMPLATE_FILES)
    ).hexdigest()
    name = f"vendure_template_{digest[:16]}"
    target = cache_dir()
    target.parent.mkdir(parents=True, exist_ok=True)
    with (target.parent / f"{target.name}.template.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with psycopg.connect(postgres_server, autocommit=True) as admin:
            found = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if found.fetchone() is None:
                _build_template(admin, postgres_server, work, name)
            admin.execute(f'CREATE DATABASE "{database}" TEMPLATE "{name}"')


def _build_template(
    admin: psycopg.Connection[Any], postgres_server: str, work: Path, name: str
) -> None:
    building = f"{name}_{uuid.uuid4().hex[:8]}"
    admin.execute(f'CREATE DATABASE "{building}"')
    try:
        process, _port, _log = _start(
            postgres_server, work / "vendure-template", building, populate=True
        )
        _stop(process)
        # The server's backends may outlive the node process for a moment.
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            (building,),
        )
        admin.execute(f'ALTER DATABASE "{building}" RENAME TO "{name}"')
    except BaseException:
        admin.execute(f'DROP DATABASE IF EXISTS "{building}" WITH (FORCE)')
        raise


@contextlib.contextmanager
def running_vendure(postgres_server: str, work: Path) -> Iterator[VendureServer]:
    """Install (cached), copy the populated template into a new database, start Vendure on it
    and seed it; stop and drop after."""
    database = f"vendure_test_{uuid.uuid4().hex[:12]}"
    create_from_template(postgres_server, work, database)
    server: VendureServer | None = None
    process: subprocess.Popen[bytes] | None = None
    try:
        started = time.monotonic()
        process, port, log = _start(postgres_server, work / "vendure", database, populate=False)
        server = VendureServer(
            port, process, log, database, Session(f"http://127.0.0.1:{port}/admin-api")
        )
        _seed(server)
        print(f"Vendure started and seeded in {time.monotonic() - started:.1f}s")
        yield server
    finally:
        if process is not None:
            _stop(process)
        if server is not None:
            for session in [server.admin, *server.sessions]:
                session.close()
        with psycopg.connect(postgres_server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


#: Variants per product of :func:`seed_variants` (a catalog of small products).
VARIANTS_PER_PRODUCT = 10


def seed_variants(server: VendureServer, postgres_server: str, on_hand: list[int]) -> list[str]:
    """Replace the seeded catalog with ``len(on_hand)`` variants ``SKU-nnnnnnn`` (the codes
    of benchmarks/bench_sync.py's ``simple_store``), 10 to a product, in the default channel,
    with ``on_hand[i]`` at the default stock location; for the benchmarks at 100,000
    listings. Returns the variant ids in SKU order.

    Written into Vendure's tables with SQL (the rows Vendure 3.7.3's own
    ``createProduct``/``createProductVariants`` write, seen in its schema: a product, its
    translation and channel; a variant, its translation, channel, price and stock level):
    through the Admin API it takes about 75 ms a variant on our machine, over 2 hours for
    100,000. The catalog populate() seeded is soft-deleted (``deletedAt``), as Vendure's
    own delete does, so that only these variants are listed. Vendure keeps no cache of
    these tables (no search plugin is configured in server/server.js)."""
    count = len(on_hand)
    products = -(-count // VARIANTS_PER_PRODUCT)
    base = psycopg.conninfo.conninfo_to_dict(postgres_server)
    base["dbname"] = server.database
    with psycopg.connect(**base) as db, db.cursor() as cursor:  # type: ignore[arg-type]
        cursor.execute(
            "SELECT (SELECT COALESCE(MAX(id), 0) FROM product), "
            "(SELECT COALESCE(MAX(id), 0) FROM product_variant), "
            "(SELECT MIN(id) FROM stock_location), (SELECT MIN(id) FROM channel), "
            "(SELECT MIN(id) FROM tax_category), "
            '(SELECT "defaultCurrencyCode" FROM channel ORDER BY id LIMIT 1)'
        )
        row = cursor.fetchone()
        assert row is not None
        product0, variant0, location, channel, tax, currency = row
        cursor.execute('UPDATE product_variant SET "deletedAt" = now()')
        cursor.execute('UPDATE product SET "deletedAt" = now()')
        params = {"p0": product0, "v0": variant0, "n": count, "np": products}
        cursor.execute(
            "INSERT INTO product (id, enabled) "
            "SELECT %(p0)s + g, true FROM generate_series(1, %(np)s) g",
            params,
        )
        cursor.execute(
            'INSERT INTO product_translation ("languageCode", name, slug, description, '
            "\"baseId\") SELECT 'en', 'Product ' || g, 'product-' || g, '', %(p0)s + g "
            "FROM generate_series(1, %(np)s) g",
            params,
        )
        cursor.execute(
            'INSERT INTO product_channels_channel ("productId", "channelId") '
            "SELECT %(p0)s + g, %(c)s FROM generate_series(1, %(np)s) g",
            {**params, "c": channel},
        )
        cursor.execute(
            'INSERT INTO product_variant (id, sku, "productId", "taxCategoryId", enabled) '
            "SELECT %(v0)s + g, 'SKU-' || lpad((g - 1)::text, 7, '0'), "
            "%(p0)s + (g - 1) / %(per)s + 1, %(t)s, true FROM generate_series(1, %(n)s) g",
            {**params, "per": VARIANTS_PER_PRODUCT, "t": tax},
        )
        cursor.execute(
            'INSERT INTO product_variant_translation ("languageCode", name, "baseId") '
            "SELECT 'en', 'Variant ' || g, %(v0)s + g FROM generate_series(1, %(n)s) g",
            params,
        )
        cursor.execute(
            'INSERT INTO product_variant_channels_channel ("productVariantId", "channelId") '
            "SELECT %(v0)s + g, %(c)s FROM generate_series(1, %(n)s) g",
            {**params, "c": channel},
        )
        cursor.execute(
            'INSERT INTO product_variant_price ("currencyCode", "channelId", price, '
            '"variantId") SELECT %(cur)s, %(c)s, 1000, %(v0)s + g '
            "FROM generate_series(1, %(n)s) g",
            {**params, "c": channel, "cur": currency},
        )
        cursor.execute(
            'INSERT INTO stock_level ("stockOnHand", "stockAllocated", "productVariantId", '
            '"stockLocationId") SELECT q, 0, %(v0)s + g, %(loc)s '
            "FROM unnest(%(q)s::int[]) WITH ORDINALITY AS s(q, g)",
            {**params, "loc": location, "q": on_hand},
        )
        for table in ("product", "product_variant"):
            cursor.execute(f"SELECT setval('{table}_id_seq', (SELECT MAX(id) FROM {table}))")
        cursor.execute("ANALYZE")
    return [str(variant0 + g) for g in range(1, count + 1)]
