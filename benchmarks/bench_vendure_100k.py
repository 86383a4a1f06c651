"""Issue 14: the Vendure connector at 100,000 listings, against a real Vendure server.

The server is the one the Vendure end-to-end tests run (npm @vendure/core 3.7.3 on a fresh
PostgreSQL database, tests/connectors/vendure/vendure_server.py), seeded with
``--listings`` variants (``SKU-nnnnnnn``, 10 to a product, one stock location) written
with SQL: setup, not a figure (the Admin API creates about 13 variants a second). Our side
is a SQLite store selling the same SKUs. Three figures, each through the daemon's own
jobs (``SyncEngine.run_job``):

* ``listings`` (listing refresh): pages of ``take`` = 1000 variants, Vendure's default
  ``adminListQueryLimit`` and the connector's page size: 100 requests for 100,000.
* ``push`` of all 100,000 changed quantities (every one differs from Vendure's): per batch
  of ``max_push_batch`` listings, one read of the variants' stock levels and one
  ``updateProductVariants`` mutation with an aliased field per variant.
* ``reconcile`` after the push: every quantity read back (``max_read_batch`` variants a
  request), nothing drifted, nothing pushed.

Vendure publishes no rate limit (it is self-hosted), so "the minimum with the method used"
is the server's own time for the very requests the connector sent: every request of the
job is recorded (body and headers, at the HTTP layer) and sent again, back to back, by a
bare httpx client that does nothing with the answers but check them for errors. For the
push the replay adds 1 to every ``stockOnHand`` so that Vendure really changes each level
again (replaying the same figures would let it skip the stock adjustments); it runs last,
and replays one batch (read and mutation) in ``--push-replay-every`` (default listings /
10,000: one in 10 at 100,000, where the push alone takes 12.5 minutes at load 5), its time scaled
by the batches left out.
The ratio measured / minimum is what the connector and the engine add: rate limiting
(the connector paces itself at 10 requests/s), building and parsing documents, and the
store's writes. The replay runs right after the job, on the same server and data.

Usage::

    .venv/bin/python benchmarks/bench_vendure_100k.py [--listings 100000]
    .venv/bin/python benchmarks/run.py --only vendure-100k

Needs Node.js 20+ with npm (the server is installed into ~/.cache/sellable once) and a
PostgreSQL server where a database may be created and dropped (``--postgres-url``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
from pydantic import SecretStr

HERE = Path(__file__).resolve().parent
for path in (HERE, HERE.parent):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from bench_sync import simple_store  # noqa: E402
from tests.connectors.vendure.vendure_server import (  # noqa: E402
    SYNC_USER,
    VendureServer,
    running_vendure,
    seed_variants,
)

from sellable.config import (  # noqa: E402
    ChannelSettings,
    DatabaseSettings,
    Settings,
    WarehouseSettings,
)
from sellable.store.db import create_db_engine  # noqa: E402
from sellable.sync.engine import JobResult, SyncEngine  # noqa: E402

DEFAULT_POSTGRES = os.environ.get(
    "SELLABLE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
).replace("postgresql+psycopg://", "postgresql://")
#: The global out-of-stock threshold vendure_server.py's seed sets: Vendure keeps one unit
#: of every variant back, so stockOnHand = sellable + 1.
THRESHOLD = 1


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} ({os.cpu_count()} CPUs)"


@dataclass
class Recorder:
    """Every request the channel's HTTP client sends, as (headers, body), while on."""

    on: bool = False
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> None:
        if self.on:
            headers = {"Content-Type": "application/json"}
            if "Authorization" in request.headers:
                headers["Authorization"] = request.headers["Authorization"]
            self.requests.append((headers, request.read()))

    def take(self) -> list[tuple[dict[str, str], bytes]]:
        taken, self.requests = self.requests, []
        return taken


def replay(url: str, requests: list[tuple[dict[str, str], bytes]]) -> float:
    """Send ``requests`` back to back with a bare client; the seconds it took."""
    with httpx.Client(timeout=600) as client:
        started = time.perf_counter()
        for headers, body in requests:
            response = client.post(url, content=body, headers=headers)
            if response.status_code != 200 or b'"errors"' in response.content:
                raise RuntimeError(f"replayed request failed: {response.text[:500]}")
        return time.perf_counter() - started


def bumped(requests: list[tuple[dict[str, str], bytes]]) -> list[tuple[dict[str, str], bytes]]:
    """The push's requests with every stockOnHand one higher (a real change again)."""
    changed = []
    for headers, body in requests:
        payload: dict[str, Any] = json.loads(body)
        if payload["query"].lstrip().startswith("mutation SellableSetStock"):
            for inputs in payload["variables"].values():
                for item in inputs:
                    for level in item["stockLevels"]:
                        level["stockOnHand"] += 1
            body = json.dumps(payload).encode()
        changed.append((headers, body))
    return changed


def sample(
    requests: list[tuple[dict[str, str], bytes]], every: int
) -> tuple[list[tuple[dict[str, str], bytes]], float]:
    """Every ``every``-th push batch (its reads and its mutation), and the factor that
    scales the sample's time to all batches."""
    batches: list[list[tuple[dict[str, str], bytes]]] = [[]]
    for request in requests:
        batches[-1].append(request)
        if b"mutation SellableSetStock" in request[1]:
            batches.append([])
    batches = [batch for batch in batches if batch]
    taken = batches[::every]
    return [request for batch in taken for request in batch], len(batches) / len(taken)


def on_hand_by_sku(server: VendureServer, postgres: str) -> dict[str, int]:
    info = psycopg.conninfo.conninfo_to_dict(postgres)
    info["dbname"] = server.database
    with psycopg.connect(**info) as db:  # type: ignore[arg-type]
        rows = db.execute(
            'SELECT v.sku, s."stockOnHand" FROM product_variant v JOIN stock_level s '
            'ON s."productVariantId" = v.id WHERE v."deletedAt" IS NULL'
        ).fetchall()
    return {sku: quantity for sku, quantity in rows}


def timed(engine: SyncEngine, job: str) -> tuple[JobResult, float]:
    started = time.perf_counter()
    result = engine.run_job("vendure", job)
    seconds = time.perf_counter() - started
    if not result.ok:
        raise RuntimeError(f"{job} job: {result.describe()}")
    return result, seconds


def push(
    engine: SyncEngine,
    channel: Any,
    recorder: Recorder,
    server: VendureServer,
    codes: list[str],
    ours: list[int],
    n: int,
    postgres: str,
) -> tuple[list[tuple[dict[str, str], bytes]], float]:
    """The push job of every changed quantity, checked in Vendure's tables: its requests
    and seconds."""
    listed_q = channel.http.requests
    pushed, seconds = timed(engine, "push")
    sent = recorder.take()
    if pushed.counts.get("pushed") != n:
        raise RuntimeError(f"push job: {pushed.describe()}")
    shown = on_hand_by_sku(server, postgres)
    wanted = {code: q + THRESHOLD for code, q in zip(codes, ours, strict=True)}
    right = sum(1 for code, q in wanted.items() if shown.get(code) == q)
    if right != n:
        raise RuntimeError(f"only {right:,} of {n:,} stock levels were pushed")
    print(
        f"  push: {n:,} changed quantities in {seconds:.2f} s, "
        f"{channel.http.requests - listed_q} requests; Vendure holds every one "
        f"({_load()})",
        flush=True,
    )
    return sent, seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--listings", type=int, default=100_000)
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES)
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument(
        "--push-replay-every",
        type=int,
        default=None,
        help="replay every K-th push batch for the push's minimum and scale its time by the "
        "batches left out (default: one in listings / 10,000, so 10 at 100,000)",
    )
    parser.add_argument(
        "--no-push",
        action="store_true",
        help="refresh and reconcile only: Vendure starts with our quantities, and the push's "
        "confirmations are recorded in the store as a push would (setup), so the reconcile "
        "finds nothing to do (a run without the push's hour)",
    )
    parser.add_argument(
        "--no-refresh-replay",
        action="store_true",
        help="do not replay the listing refresh (its minimum is then not measured)",
    )
    args = parser.parse_args(argv)
    n = args.listings
    every = args.push_replay_every or max(1, n // 10_000)
    rng = random.Random(f"sellable-bench:vendure-100k:{args.seed}:{n}")
    # Vendure starts with 0-99 of each; we sell 100-999 of each: every quantity changes.
    theirs = [rng.randrange(0, 100) for _ in range(n)]
    ours = [rng.randrange(100, 1000) for _ in range(n)]
    print(f"vendure-100k: {n:,} variants on a real Vendure 3.7.3; {_load()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="sellable-bench-vendure-100k-") as work:
        started = time.perf_counter()
        with running_vendure(args.postgres_url, Path(work)) as server:
            seeded = [q + THRESHOLD for q in ours] if args.no_push else theirs
            seed_variants(server, args.postgres_url, seeded)
            user, password = SYNC_USER
            settings = Settings(
                database=DatabaseSettings(url=SecretStr(f"sqlite:///{Path(work) / 'bench.db'}")),
                warehouses=[WarehouseSettings(code="main")],
                channels=[
                    ChannelSettings(
                        code="vendure",
                        connector="vendure",
                        warehouses=["main"],
                        settings={
                            "admin_api_url": server.admin_api_url,
                            "username": user,
                            "password": password,
                        },
                    )
                ],
            )
            db = create_db_engine(settings)
            engine: SyncEngine | None = None
            try:
                codes = simple_store(db, settings, ours)
                engine = SyncEngine(db, settings)
                channel = engine.channels["vendure"]
                connector: Any = channel.connector
                recorder = Recorder()
                channel.http._client.event_hooks["request"].append(recorder)
                print(
                    f"  setup (Vendure started, {n:,} variants written with SQL, store of "
                    f"{n:,} SKUs): {time.perf_counter() - started:.1f} s; connector: "
                    f"{connector.rate_limit}, push batch {connector.max_push_batch}, read "
                    f"batch {connector.max_read_batch}",
                    flush=True,
                )
                figures: list[tuple[str, float, float, int]] = []

                # -- listing refresh
                recorder.on = True
                listed, seconds = timed(engine, "listings")
                sent = recorder.take()
                if listed.counts.get("listings") != n:
                    raise RuntimeError(f"listings job: {listed.describe()}")
                if args.no_refresh_replay:
                    print(
                        f"  listing refresh: {n:,} listings in {seconds:.2f} s, {len(sent)} "
                        f"requests (not replayed) ({_load()})",
                        flush=True,
                    )
                else:
                    least = replay(server.admin_api_url, sent)
                    figures.append(("listing refresh", seconds, least, len(sent)))
                    print(
                        f"  listing refresh: {n:,} listings in {seconds:.2f} s, {len(sent)} "
                        f"requests; the same requests back to back: {least:.2f} s -> "
                        f"{seconds / least:.2f} x the minimum ({_load()})",
                        flush=True,
                    )

                push_sent: list[tuple[dict[str, str], bytes]] = []
                push_seconds = 0.0
                if args.no_push:
                    rows, desired = engine.listings_and_offers(channel)
                    engine.state.record_push(
                        "vendure",
                        [
                            {"lid": r["listing_id"], "q": desired[r["listing_id"]].quantity}
                            for r in rows
                        ],
                        [],
                    )
                    print("  (--no-push: every quantity recorded as pushed, as a push would)")
                    recorder.take()
                else:
                    push_sent, push_seconds = push(
                        engine, channel, recorder, server, codes, ours, n, args.postgres_url
                    )

                # -- reconcile
                reconciled, seconds = timed(engine, "reconcile")
                sent = recorder.take()
                recorder.on = False
                if reconciled.counts.get("drifted") != 0 or reconciled.counts.get("pushed"):
                    raise RuntimeError(f"reconcile job: {reconciled.describe()}")
                least = replay(server.admin_api_url, sent)
                figures.append(("reconcile", seconds, least, len(sent)))
                print(
                    f"  reconcile: {n:,} quantities read back in {seconds:.2f} s, "
                    f"{len(sent)} requests (drifted 0, pushed 0); the same requests back to "
                    f"back: {least:.2f} s -> {seconds / least:.2f} x the minimum ({_load()})",
                    flush=True,
                )

                # -- the push's minimum, last: it leaves every level one unit higher
                if push_sent:
                    taken, scale = sample(bumped(push_sent), every)
                    least = replay(server.admin_api_url, taken) * scale
                    figures.insert(1, ("push", push_seconds, least, len(push_sent)))
                    print(
                        f"  push: {len(taken)} of the same {len(push_sent)} requests back to back "
                        f"(each stockOnHand + 1; one batch in {every}, time x "
                        f"{scale:.2f}): {least:.2f} s -> {push_seconds / least:.2f} x the "
                        f"minimum ({_load()})",
                        flush=True,
                    )
                print(f"vendure-100k figures at {n:,} listings:")
                for name, seconds, least, requests in figures:
                    print(
                        f"  {name}: {seconds:.1f} s, {requests} requests; minimum (same "
                        f"requests, bare client) {least:.1f} s; ratio {seconds / least:.2f}"
                    )
                print(
                    "  peak RSS of this process (store, engine, connector): "
                    f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB; "
                    f"{_load()}"
                )
            finally:
                if engine is not None:
                    engine.close()
                db.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
