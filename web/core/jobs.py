"""Periodic background jobs run inside the app's lifespan.

Every app process runs the scheduler; each job run takes a transaction-level advisory lock
(``pg_try_advisory_xact_lock``) and skips when another process holds it, so one process does the work.

A job that calls a payment gateway (``Job(..., holds_transaction=False)``) must not run inside a transaction:
it would hold a connection and its locks for as long as the gateway takes. It runs under a lease instead
(``job_leases``, migration 0023): one autocommitted statement claims the job's row while the previous lease has
run out, a task renews it while the job runs, and the job deletes it when it ends. A process that dies keeps
the lease only until it runs out (``lease_seconds``). Unlike a session-level advisory lock, a lease works
behind PgBouncer in transaction mode and pins no connection while the job waits for the gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from uuid import UUID, uuid4

import structlog
from piccolo.engine import engine_finder

from web.core import metrics, sql

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Job:
    name: str
    every_seconds: float
    run: Callable[[], Awaitable[object]]
    # Hash key of the advisory lock that makes the job run in one process at a time.
    lock_key: int
    # False: the job runs outside any transaction (it calls a gateway), one process at a time by a lease
    # (module docstring) rather than by the advisory lock; its own statements commit one by one.
    holds_transaction: bool = True
    # How long a lease lasts without renewal: how long a job held by a process that died stays skipped.
    # Renewed every third of it while the job runs, so a long run keeps it.
    lease_seconds: float = 60


# One statement, autocommitted: of two processes claiming at once, the second waits for the first's row and
# then finds a lease that has not run out (the WHERE of ON CONFLICT DO UPDATE), so it gets no row back.
CLAIM_LEASE = """
INSERT INTO job_leases AS l (job_name, holder, expires_at) VALUES ($1, $2, now() + make_interval(secs => $3))
ON CONFLICT (job_name) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
WHERE l.expires_at <= now()
RETURNING holder
"""
RENEW_LEASE = """
UPDATE job_leases SET expires_at = now() + make_interval(secs => $3) WHERE job_name = $1 AND holder = $2
"""
RELEASE_LEASE = "DELETE FROM job_leases WHERE job_name = $1 AND holder = $2"


async def run_once_if_free(job: Job) -> bool:
    """Run the job if no other process is running it now. Returns whether it ran.

    The job runs inside the transaction that holds the advisory lock (one server connection per job,
    which matters behind PgBouncer; a lock on a connection of its own, held while the job's work takes a
    second one, starved small pools). Jobs therefore never wait for rows people are changing
    (``SKIP LOCKED``): what they skip, their next run picks up."""
    if not job.holds_transaction:
        return await _run_under_lease(job)
    engine = engine_finder()
    with metrics.timed_job(job.name) as run:
        async with engine.transaction() as transaction:
            got_lock = await transaction.connection.fetchval("SELECT pg_try_advisory_xact_lock($1)", job.lock_key)
            if not got_lock:
                run.result = "skipped"
                return False
            await job.run()
            return True


async def _run_under_lease(job: Job) -> bool:
    """Run a job that holds no transaction, if no other process holds its lease (module docstring)."""
    holder = uuid4()
    with metrics.timed_job(job.name) as run:
        if await sql.fetchval(CLAIM_LEASE, job.name, holder, float(job.lease_seconds)) is None:
            run.result = "skipped"
            return False
        # A context of its own: the renewal must never share a connection or transaction the job holds
        # (two statements at once on one connection fail), so it takes a pooled connection each time.
        renewal = asyncio.create_task(_renew_lease(job, holder), name=f"lease:{job.name}",
                                      context=contextvars.Context())
        try:
            await job.run()
        finally:
            renewal.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewal
            await sql.execute(RELEASE_LEASE, job.name, holder)
        return True


async def _renew_lease(job: Job, holder: UUID) -> None:
    while True:
        await asyncio.sleep(job.lease_seconds / 3)
        try:
            await sql.execute(RENEW_LEASE, job.name, holder, float(job.lease_seconds))
        except Exception:  # the database is away: the job's own statements fail too; it ends, or it catches up
            log.warning("job lease not renewed", job=job.name)


async def _loop(job: Job) -> None:
    while True:
        try:
            ran = await run_once_if_free(job)
            if ran:
                log.debug("job finished", job=job.name)
        except asyncio.CancelledError:
            raise
        except Exception:  # a failing job must not stop the scheduler; it retries on its next tick
            log.exception("job failed", job=job.name)
        await asyncio.sleep(job.every_seconds)


class Scheduler:
    def __init__(self, jobs: list[Job]) -> None:
        self.jobs = jobs
        self._tasks: list[asyncio.Task] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(_loop(job), name=f"job:{job.name}") for job in self.jobs]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
