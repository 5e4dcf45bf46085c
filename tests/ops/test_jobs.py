"""Background jobs: each runs, and while one process runs a job another process skips it (advisory lock)."""

from __future__ import annotations

import asyncpg

from tests.conftest import run_cli, vetbook_command
from tests.db.factories import make_booking, make_world
from web.app import background_jobs
from web.core import sql
from web.core.jobs import Job, run_once_if_free


async def test_every_job_runs_once_through_its_lock(app) -> None:
    jobs = background_jobs()
    assert {job.name for job in jobs} == {
        "ensure_partitions", "forget_rate_limit_windows", "expire_holds", "expire_unpaid_bookings",
        "refresh_booking_analytics",
    }
    assert len({job.lock_key for job in jobs}) == len(jobs), "each job needs its own lock key"
    for job in jobs:
        assert await run_once_if_free(job), job.name


async def test_analytics_refresh_job_picks_up_new_bookings(app, app_database_url) -> None:
    refresh = next(job for job in background_jobs() if job.name == "refresh_booking_analytics")
    await run_once_if_free(refresh)
    before = await sql.fetchval("SELECT COALESCE(sum(total_bookings), 0) FROM booking_analytics_daily")
    setup = await asyncpg.connect(app_database_url)
    try:
        world = await make_world(setup)
        await make_booking(setup, world["slot"], world["owner"], world["pet"])
    finally:
        await setup.close()
    await run_once_if_free(refresh)
    assert await sql.fetchval("SELECT sum(total_bookings) FROM booking_analytics_daily") == before + 1


async def test_a_job_held_elsewhere_is_skipped(app, app_database_url) -> None:
    ran = []

    async def work() -> None:
        ran.append(True)

    job = Job("probe", every_seconds=60, run=work, lock_key=0x7E7B0FFF)
    other_process = await asyncpg.connect(app_database_url)
    try:
        async with other_process.transaction():
            await other_process.execute("SELECT pg_advisory_xact_lock($1)", job.lock_key)
            assert await run_once_if_free(job) is False
        assert await run_once_if_free(job) is True
    finally:
        await other_process.close()
    assert ran == [True]


async def test_refresh_on_demand_from_the_command_line(fresh_database_url) -> None:
    setup = await asyncpg.connect(fresh_database_url)
    try:
        world = await make_world(setup)
        await make_booking(setup, world["slot"], world["owner"], world["pet"])
        assert await setup.fetchval("SELECT count(*) FROM booking_analytics_daily") == 0
        result = run_cli(*vetbook_command("refresh-analytics"), database_url=fresh_database_url)
        assert "refreshed" in result.stdout
        assert await setup.fetchval("SELECT sum(total_bookings) FROM booking_analytics_daily") == 1
    finally:
        await setup.close()
