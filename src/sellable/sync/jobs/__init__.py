"""The jobs the engine runs per channel, one module each, and the one table that names them.

The engine dispatches through :data:`JOB_TABLE`, the scheduler schedules from it, and
``sellable status`` reads health for the jobs it lists: a job is named in one place.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sellable.errors import ConfigError
from sellable.sdk import Capability
from sellable.sync.jobs.base import MAX_PAGES, Channel, JobResult, PaginationLoop
from sellable.sync.jobs.fulfil import fulfil
from sellable.sync.jobs.listings import refresh_listings, repeated_listings
from sellable.sync.jobs.orders import pull_orders
from sellable.sync.jobs.push import push
from sellable.sync.jobs.reconcile import reconcile
from sellable.sync.jobs.shipments import pull_shipments
from sellable.sync.jobs.stock import pull_stock

if TYPE_CHECKING:
    from sellable.sync.engine import SyncEngine

JobFunction = Callable[["SyncEngine", Channel, JobResult], None]


@dataclass(frozen=True, slots=True)
class JobSpec:
    """One job: its name, what the connector must be able to do for it, the channel setting
    holding its interval, how long after the daemon starts it first runs (so the first
    pass runs in order: listings, stock, orders, reconcile, push), and what it does."""

    name: str
    capability: Capability
    interval_key: str
    first_delay: float
    run: JobFunction

    def cannot(self) -> str:
        """Why a connector without the capability skips the job."""
        return f"connector cannot {self.capability.value.replace('_', ' ')}"


JOB_TABLE: tuple[JobSpec, ...] = (
    JobSpec("listings", Capability.LIST_LISTINGS, "refresh_listings_every", 0.0, refresh_listings),
    JobSpec("stock", Capability.PULL_STOCK, "pull_stock_every", 0.5, pull_stock),
    JobSpec("orders", Capability.PULL_ORDERS, "pull_orders_every", 1.0, pull_orders),
    JobSpec("fulfil", Capability.FULFIL_ORDERS, "fulfil_every", 1.2, fulfil),
    JobSpec("shipments", Capability.FULFIL_ORDERS, "pull_shipments_every", 1.4, pull_shipments),
    JobSpec("reconcile", Capability.PUSH_QUANTITIES, "reconcile_every", 1.5, reconcile),
    JobSpec("push", Capability.PUSH_QUANTITIES, "push_every", 2.0, push),
)
JOBS_BY_NAME = {spec.name: spec for spec in JOB_TABLE}

#: The job that probes a channel whose credentials were refused (see sync.health).
PROBE_JOB = "orders"
#: The runs whose success counts as a success of a job that says a channel syncs (see
#: :meth:`SyncEngine.sync_due`): a reconcile pushes too.
SUCCEEDS_FOR = {"push": ("push", "reconcile")}


def succeeds_for(job: str) -> tuple[str, ...]:
    """The jobs whose successful runs count for ``job`` (itself, and see SUCCEEDS_FOR)."""
    return SUCCEEDS_FOR.get(job, (job,))


#: Run on every fulfilment channel after an order pull of any channel (new allocations in
#: its warehouses are sent soon, not at its next interval).
AFTER_ORDERS = "fulfil"
#: The job a channel's ``fulfilments`` webhook runs soon.
SHIPMENTS_JOB = "shipments"


def job_spec(name: str) -> JobSpec:
    try:
        return JOBS_BY_NAME[name]
    except KeyError:
        raise ConfigError(f"unknown job {name!r} (known: {', '.join(JOBS_BY_NAME)})") from None


__all__ = [
    "AFTER_ORDERS",
    "JOBS_BY_NAME",
    "JOB_TABLE",
    "MAX_PAGES",
    "PROBE_JOB",
    "SHIPMENTS_JOB",
    "Channel",
    "JobResult",
    "JobSpec",
    "PaginationLoop",
    "job_spec",
    "repeated_listings",
]
