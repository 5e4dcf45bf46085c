"""Periodic background jobs run inside the app's lifespan.

Every app process runs the scheduler; each job run takes a transaction-level advisory lock
(``pg_try_advisory_xact_lock``) and skips when another process holds it, so one process does the work.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog
from piccolo.engine import engine_finder

from web.core import metrics

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Job:
    name: str
    every_seconds: float
    run: Callable[[], Awaitable[object]]
    # Hash key of the advisory lock that makes the job run in one process at a time.
    lock_key: int


async def run_once_if_free(job: Job) -> bool:
    """Run the job if no other process is running it now. Returns whether it ran.

    The job runs inside the transaction that holds the advisory lock (one server connection per job,
    which matters behind PgBouncer; a lock on a connection of its own, held while the job's work takes a
    second one, starved small pools). Jobs therefore never wait for rows people are changing
    (``SKIP LOCKED``): what they skip, their next run picks up."""
    engine = engine_finder()
    with metrics.timed_job(job.name) as run:
        async with engine.transaction() as transaction:
            got_lock = await transaction.connection.fetchval("SELECT pg_try_advisory_xact_lock($1)", job.lock_key)
            if not got_lock:
                run.result = "skipped"
                return False
            await job.run()
            return True


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
