"""Prometheus metrics of the daemon, in a registry of its own."""

from __future__ import annotations

from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class SinceSuccess(Protocol):
    def seconds_since_success(self) -> float: ...


class Metrics:
    """Counters per channel: job runs, orders pulled, pushes, failures, latencies, queue."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.jobs = Counter(
            "sellable_job_runs",
            "Job runs by outcome.",
            ["channel", "job", "outcome"],
            registry=self.registry,
        )
        self.job_seconds = Histogram(
            "sellable_job_duration_seconds",
            "Job duration.",
            ["channel", "job"],
            registry=self.registry,
        )
        self.orders = Counter(
            "sellable_orders_pulled",
            "Orders pulled from channels.",
            ["channel"],
            registry=self.registry,
        )
        self.pushes = Counter(
            "sellable_pushed_listings",
            "Listing quantities pushed by outcome.",
            ["channel", "outcome"],
            registry=self.registry,
        )
        self.push_seconds = Histogram(
            "sellable_push_batch_seconds",
            "Latency of one push batch.",
            ["channel"],
            registry=self.registry,
        )
        self.queue = Gauge(
            "sellable_push_queue_depth",
            "Listings whose quantity awaits a confirmed push.",
            ["channel"],
            registry=self.registry,
        )
        self.breaker = Gauge(
            "sellable_channel_circuit_open",
            "1 while a job of the channel is backed off after failing.",
            ["channel"],
            registry=self.registry,
        )
        self.since_success = Gauge(
            "sellable_job_seconds_since_success",
            "Seconds since the job last succeeded (since the daemon started, if never).",
            ["channel", "job"],
            registry=self.registry,
        )
        self.skipped = Counter(
            "sellable_jobs_skipped",
            "Job runs skipped (backing off, or credentials refused).",
            ["channel", "job"],
            registry=self.registry,
        )

        self.webhooks = Counter(
            "sellable_webhooks",
            "Webhook deliveries by outcome (received, rejected, duplicate, ignored, ping).",
            ["channel", "outcome"],
            registry=self.registry,
        )

    def webhook(self, channel: str, outcome: str) -> None:
        self.webhooks.labels(channel, outcome).inc()

    def job_finished(
        self, channel: str, job: str, ok: bool, seconds: float, counts: dict[str, int]
    ) -> None:
        self.jobs.labels(channel, job, "ok" if ok else "failed").inc()
        self.job_seconds.labels(channel, job).observe(seconds)

    def watch_success(self, channel: str, job: str, health: SinceSuccess) -> None:
        """Read the job's seconds since its last success at every scrape."""
        self.since_success.labels(channel, job).set_function(health.seconds_since_success)

    def job_skipped(self, channel: str, job: str) -> None:
        self.skipped.labels(channel, job).inc()

    def orders_pulled(self, channel: str, count: int) -> None:
        self.orders.labels(channel).inc(count)

    def pushed(self, channel: str, ok: int, failed: int, retry: int) -> None:
        self.pushes.labels(channel, "ok").inc(ok)
        self.pushes.labels(channel, "failed").inc(failed)
        self.pushes.labels(channel, "retry").inc(retry)

    def push_latency(self, channel: str, seconds: float) -> None:
        self.push_seconds.labels(channel).observe(seconds)

    def queue_depth(self, channel: str, depth: int) -> None:
        self.queue.labels(channel).set(depth)

    def circuit(self, channel: str, is_open: bool) -> None:
        self.breaker.labels(channel).set(1 if is_open else 0)

    def render(self) -> bytes:
        return generate_latest(self.registry)
