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

    The advisory lock is held by a transaction on a connection of its own for as long as the job runs.
    The job's work is not inside that transaction: Piccolo does not know about it (it is not its
    "current transaction"), so every ``transaction_as`` of the job is a real transaction of its own that
    commits or rolls back alone, and one failing row does not undo or lock up the rest of the batch."""
    engine = engine_finder()
    lock_connection = await (engine.pool.acquire() if engine.pool is not None else engine.get_new_connection())
    try:
        async with lock_connection.transaction():
            if not await lock_connection.fetchval("SELECT pg_try_advisory_xact_lock($1)", job.lock_key):
                return False
            await job.run()
            return True
    finally:
        if engine.pool is not None:
            await engine.pool.release(lock_connection)
        else:
            await lock_connection.close()


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
