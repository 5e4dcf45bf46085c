"""Prometheus metrics at ``/metrics`` (design 8.1: throughput, latency, errors, the database's state).

- Requests: Litestar's Prometheus middleware, rate and latency by method, route (grouped: the route's
  template, ``/api/v1/bookings/{booking_id:uuid}``, never the raw path with its ids) and status.
- The booking engine: holds by outcome (taken, just taken by someone else, refused by another rule,
  repeated with its idempotency key, expired), bookings, cancellations by who cancelled, refunds and their
  amount.
- The app's machinery: connection pool size and the wait for a connection, live-update subscribers,
  background job runs/failures/durations, database errors by SQLSTATE, each replica's lag.
- The database's archiver, read when scraped: failures, and the age of the last archived WAL segment.

Several worker processes (``vetbook serve --workers N``) share one view: ``vetbook serve`` points
``PROMETHEUS_MULTIPROC_DIR`` at a fresh folder before the workers start, each process writes its values
there, and a scrape, whichever worker answers it, adds them up (gauges: summed over live processes, or
the maximum / most recent value where a sum means nothing).

Access: only with ``Authorization: Bearer $VETBOOK_METRICS_TOKEN``; without that setting ``/metrics``
does not exist (404). Figures of the whole platform are for the operator, not for the public.
"""

from __future__ import annotations

import asyncio
import hmac
import time

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.exceptions import NotFoundException
from litestar.handlers.base import BaseRouteHandler
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController
from prometheus_client import Counter, Gauge, Histogram

PREFIX = "vetbook"

HOLDS = Counter(f"{PREFIX}_holds_total", "Hold attempts and ends, by outcome", ["outcome"])
BOOKINGS = Counter(f"{PREFIX}_bookings_total", "Bookings made (holds confirmed, desk bookings)", ["source"])
CANCELLATIONS = Counter(f"{PREFIX}_cancellations_total", "Bookings cancelled, by who", ["by"])
REFUNDS = Counter(f"{PREFIX}_refunds_total", "Refunds recorded on cancellation")
REFUNDED_AMOUNT = Counter(f"{PREFIX}_refunded_amount_total", "Money refunded, in the booking's currency unit",
                          ["currency"])
REFUND_REQUESTS = Counter(f"{PREFIX}_refund_requests_total", "Refunds requested, by payment provider and the "
                          "state they start in (requested: the job sends it; manual: to pay by hand)",
                          ["provider", "state"])
REFUND_OUTCOMES = Counter(f"{PREFIX}_refund_outcomes_total", "Answers applied to refunds, by payment provider "
                          "and state (succeeded, sent, manual, failed, retry, paid_by_hand)", ["provider", "state"])
JOB_RUNS = Counter(f"{PREFIX}_job_runs_total", "Background job runs, by result (ran, skipped: another process "
                   "held it, failed)", ["job", "result"])
JOB_SECONDS = Histogram(f"{PREFIX}_job_duration_seconds", "Background job run time", ["job"],
                        buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120))
DATABASE_ERRORS = Counter(f"{PREFIX}_database_errors_total", "Database errors that reached a handler, by SQLSTATE "
                          "(or the client-side error's name)", ["sqlstate"])
POOL_CONNECTIONS = Gauge(f"{PREFIX}_db_pool_connections", "Connections of the primary's pools, by state",
                         ["state"], multiprocess_mode="livesum")
POOL_WAIT_SECONDS = Histogram(f"{PREFIX}_db_pool_wait_seconds", "Time a request waited for a pooled connection",
                              buckets=(0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5))
LIVE_SUBSCRIBERS = Gauge(f"{PREFIX}_live_subscribers", "Open live-update streams", multiprocess_mode="livesum")
REPLICA_LAG_SECONDS = Gauge(f"{PREFIX}_replica_lag_seconds", "How far each replica is behind (as its process "
                            "measured it)", ["replica"], multiprocess_mode="max")
WORKER_STARTED = Gauge(f"{PREFIX}_worker_started_seconds", "When each app process started (one series per pid)",
                       multiprocess_mode="all")
ARCHIVER_FAILURES = Gauge(f"{PREFIX}_wal_archive_failures", "Failed WAL archiving attempts since the server's "
                          "statistics reset", multiprocess_mode="mostrecent")
ARCHIVE_AGE_SECONDS = Gauge(f"{PREFIX}_wal_last_archived_age_seconds", "Age of the last archived WAL segment "
                            "(-1: none yet, or archiving off)", multiprocess_mode="mostrecent")

_ARCHIVER = """
SELECT failed_count, extract(epoch FROM now() - last_archived_time)::float8 AS age,
       current_setting('archive_mode') AS archive_mode
FROM pg_stat_archiver
"""


def prometheus_config() -> PrometheusConfig:
    return PrometheusConfig(app_name=PREFIX, prefix=PREFIX, group_path=True, exclude=["^/metrics", "^/static/"],
                            exclude_unhandled_paths=True)


def _metrics_token_only(connection: ASGIConnection, _handler: BaseRouteHandler) -> None:
    from web.settings import get_settings

    token = get_settings().metrics_token
    given = connection.headers.get("authorization", "")
    if not token or not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        # The same answer whether metrics are off or the token is wrong: nothing to probe.
        raise NotFoundException()


async def _read_archiver(_request: Request) -> None:
    """Before a scrape: the archiver's state, read on the primary by the process that answers."""
    from web.core.readiness import probe
    from web.core.sql import app_engine

    row = await probe(app_engine(), _ARCHIVER)
    if row is None:
        return
    ARCHIVER_FAILURES.set(row["failed_count"])
    ARCHIVE_AGE_SECONDS.set(row["age"] if row["age"] is not None and row["archive_mode"] != "off" else -1)


class MetricsController(PrometheusController):
    path = "/metrics"
    guards = [_metrics_token_only]
    include_in_schema = False
    before_request = _read_archiver


def count_database_error(error: BaseException) -> None:
    DATABASE_ERRORS.labels(getattr(error, "sqlstate", None) or type(error).__name__).inc()


def note_pool(pool) -> None:
    """The pool's size now (called as a request gives its connection back: cheap, and current)."""
    if pool is not None:
        size, idle = pool.get_size(), pool.get_idle_size()
        POOL_CONNECTIONS.labels("in_use").set(size - idle)
        POOL_CONNECTIONS.labels("idle").set(idle)


class timed_job:
    """Counts a job run and its duration: ``with timed_job(name) as run: ... run.result = 'skipped'``."""

    def __init__(self, job: str) -> None:
        self.job, self.result = job, "ran"

    def __enter__(self) -> timed_job:
        self._started = time.perf_counter()
        return self

    def __exit__(self, exception_type, exception, traceback) -> None:
        result = self.result
        if exception_type is not None and not issubclass(exception_type, asyncio.CancelledError):
            result = "failed"
        JOB_RUNS.labels(self.job, result).inc()
        if result != "skipped":
            JOB_SECONDS.labels(self.job).observe(time.perf_counter() - self._started)
