"""HTTP 429 answers per channel and job: each run records those it met (``job_runs.
throttled``), ``sellable status --json`` reports them per job (the last run's, the last 24
hours') and per channel, and the channels page shows the same numbers."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

from click.testing import CliRunner
from fastapi.testclient import TestClient

from sellable.cli import cli
from sellable.sync.status import channel_status, render_status
from sellable.web import Dashboard, create_app
from tests.sync.test_sync_engine import OpenSync, open_sync  # noqa: F401  (the fixture)

THROTTLED = {"status": 429, "retry_after": "0"}


class Clock:
    def __init__(self) -> None:
        self.at = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.at


def test_status_counts_each_jobs_429s_and_the_page_shows_the_same(
    open_sync: OpenSync,  # noqa: F811
) -> None:
    clock = Clock()
    sync = open_sync(now=clock)
    sync.state.faults.extend(dict(THROTTLED) for _ in range(2))
    assert sync.run("listings").ok
    sync.state.faults.append(dict(THROTTLED))
    assert sync.run("push").ok
    assert sync.run("orders").ok
    assert not sync.state.faults

    [report] = channel_status(sync.engine)
    assert report["throttled_24h"] == 3
    assert report["throttled_by_job"] == {
        "listings": {"last_run": 2, "last_24h": 2},
        "stock": {"last_run": None, "last_24h": 0},
        "orders": {"last_run": 0, "last_24h": 0},
        "reconcile": {"last_run": None, "last_24h": 0},
        "push": {"last_run": 1, "last_24h": 1},
    }
    assert "pending pushes: 0; 429s (24 h): 3" in render_status([report])

    printed = CliRunner().invoke(cli, ["--config", str(sync.store.config), "status", "--json"])
    assert printed.exit_code == 0, printed.output
    [cli_report] = json.loads(printed.stdout)
    assert cli_report["throttled_24h"] == 3
    assert cli_report["throttled_by_job"] == report["throttled_by_job"]

    board = Dashboard(sync.store.engine, sync.store.settings, sync=sync.engine)
    with TestClient(create_app(board)) as client:
        page = client.get("/channels").text
        assert (
            client.get("/api/channels").json()[0]["throttled_by_job"]
            == (report["throttled_by_job"])
        )
    assert re.search(r'<td data-col="throttled_24h" class="num">3</td>', page)
    listings_row = page.split('<tr data-channel="shop" data-job="listings">')[1].split("</tr>")[0]
    push_row = page.split('<tr data-channel="shop" data-job="push">')[1].split("</tr>")[0]
    stock_row = page.split('<tr data-channel="shop" data-job="stock">')[1].split("</tr>")[0]
    assert '<td class="num" data-col="throttled_last_run">2</td>' in listings_row
    assert '<td class="num" data-col="throttled_last_run">1</td>' in push_row
    assert '<td class="num" data-col="throttled_last_run"></td>' in stock_row  # never run

    # A day later the old 429s leave the window; a run's own count stays its own.
    clock.at += timedelta(hours=25)
    sync.state.faults.append(dict(THROTTLED))
    assert sync.run("listings").ok
    [later] = channel_status(sync.engine)
    assert later["throttled_24h"] == 1
    assert later["throttled_by_job"]["listings"] == {"last_run": 1, "last_24h": 1}
    assert later["throttled_by_job"]["push"] == {"last_run": 1, "last_24h": 0}


def test_a_run_that_gives_up_on_429s_records_every_one(open_sync: OpenSync) -> None:  # noqa: F811
    sync = open_sync(max_attempts=3)
    sync.state.faults.extend(dict(THROTTLED) for _ in range(3))
    result = sync.run("listings")
    assert not result.ok
    [report] = channel_status(sync.engine)
    assert report["throttled_by_job"]["listings"] == {"last_run": 3, "last_24h": 3}
