"""Background jobs: each runs, and while one process runs a job another process skips it (advisory lock, or a
lease for the jobs that hold no transaction)."""

from __future__ import annotations

import asyncio

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
        "refresh_booking_analytics", "ask_about_pending_payments", "reconcile_gateway_day", "send_refunds",
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


async def test_a_job_without_a_transaction_runs_under_a_lease(app, app_database_url) -> None:
    """A job that calls a gateway runs outside any transaction, one process at a time by its lease: skipped
    while another process holds a lease that has not run out, run once it has, and the lease released."""
    from piccolo.engine import engine_finder

    seen = []

    async def work() -> None:
        seen.append((engine_finder().current_transaction.get(),
                     await sql.fetchval("SELECT count(*) FROM job_leases WHERE job_name = 'probe-lease' "
                                        "AND expires_at > now()")))

    job = Job("probe-lease", every_seconds=60, run=work, lock_key=0x7E7B0FFE, holds_transaction=False,
              lease_seconds=30)
    other_process = await asyncpg.connect(app_database_url)
    try:
        await other_process.execute("INSERT INTO job_leases (job_name, holder, expires_at) "
                                    "VALUES ($1, gen_random_uuid(), now() + interval '1 minute')", job.name)
        assert await run_once_if_free(job) is False
        # The other process died: its lease runs out, and the job runs here.
        await other_process.execute("UPDATE job_leases SET expires_at = now() - interval '1 second' "
                                    "WHERE job_name = $1", job.name)
        assert await run_once_if_free(job) is True
        assert await other_process.fetchval("SELECT count(*) FROM job_leases WHERE job_name = $1", job.name) == 0
    finally:
        await other_process.close()
    assert seen == [(None, 1)]  # no transaction around the work, and its lease held meanwhile


async def test_a_long_job_keeps_its_lease(app) -> None:
    """The lease is renewed while the job runs: a run longer than ``lease_seconds`` is not run a second time."""
    moved = []

    async def work() -> None:
        first = await sql.fetchval("SELECT expires_at FROM job_leases WHERE job_name = 'probe-renewal'")
        for _ in range(200):  # waits for the renewal (every lease_seconds / 3), for at most 10 s
            await asyncio.sleep(0.05)
            if await sql.fetchval("SELECT expires_at FROM job_leases WHERE job_name = 'probe-renewal'") > first:
                moved.append(True)
                return

    job = Job("probe-renewal", every_seconds=60, run=work, lock_key=0x7E7B0FFD, holds_transaction=False,
              lease_seconds=0.6)
    assert await run_once_if_free(job) is True
    assert moved == [True]
    assert await sql.fetchval("SELECT count(*) FROM job_leases WHERE job_name = 'probe-renewal'") == 0


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
