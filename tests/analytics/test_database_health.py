"""The database health page (design 8.2, fixed): real pg_stat_statements rows, index usage, cache hit ratio,
dead rows, lock waits and partitions; managers only; no statement text that may carry values."""

from __future__ import annotations

import asyncio
import re

import asyncpg
import httpx

from tests.accounts.helpers import make_person, web_session
from web.analytics import monitoring
from web.core import sql


async def test_the_page_shows_real_statistics(app, client: httpx.AsyncClient, app_database_url: str) -> None:
    assert await sql.fetchval(monitoring.PG_STAT_STATEMENTS_INSTALLED), "the test server preloads pg_stat_statements"
    # A statement of our own, so that pg_stat_statements has something recent; its constant is normalised.
    await sql.fetch("SELECT count(*) FROM bookings WHERE booking_code = 'SECRET42'")
    client.headers["Accept-Language"] = "en"
    await web_session(client, await make_person("manager"))

    response = await client.get("/manage/database")

    assert response.status_code == 200
    html = response.text
    assert html.count('data-testid="slow-statement"') >= 1
    assert 'data-testid="statements-note"' not in html
    assert "SECRET42" not in html  # constants never reach the page
    assert re.search(r'data-testid="partition-row" data-parent="bookings"', html)
    assert re.search(r'data-testid="partition-row" data-parent="slots"', html)
    assert 'data-testid="index-row"' in html and 'data-testid="dead-tuple-row"' in html
    assert re.search(r'data-testid="cache-database">\d+\.\d %', html)
    assert 'data-testid="no-lock-waits"' in html
    # Design 8.1's throughput and replication/archiving state; the test server has neither standby nor archive.
    assert re.search(r'data-testid="transactions-per-second">\d+\.\d<', html)
    assert re.search(r'data-testid="deadlocks">\d+<', html)
    assert 'data-testid="no-standbys"' in html and 'data-testid="archiving-off"' in html


async def test_lock_waits_are_listed_without_query_texts(app, app_database_url: str) -> None:
    holder = await asyncpg.connect(app_database_url)
    waiter = await asyncpg.connect(app_database_url)
    try:
        holder_tx = holder.transaction()
        await holder_tx.start()
        await holder.execute("LOCK TABLE analytics_refreshes IN ACCESS EXCLUSIVE MODE")
        waiting = asyncio.create_task(waiter.execute("SELECT 'waiting-secret' FROM analytics_refreshes"))
        for _ in range(100):
            rows = await sql.fetch(monitoring.LOCK_WAITS)
            if rows:
                break
            await asyncio.sleep(0.05)
        assert any(row["relation"] == "analytics_refreshes" for row in rows)
        assert all("waiting-secret" not in str(dict(row)) for row in rows)
        await holder_tx.rollback()
        await waiting
    finally:
        await holder.close()
        await waiter.close()


def test_statement_texts_with_literals_are_hidden() -> None:
    assert monitoring.shown_statement("SELECT * FROM bookings WHERE booking_id = $1") == (
        "SELECT * FROM bookings WHERE booking_id = $1")
    assert monitoring.shown_statement("ALTER ROLE app PASSWORD 'hunter2'") is None
    assert monitoring.shown_statement(None) is None
    assert len(monitoring.shown_statement("SELECT " + "x, " * 500 + "1")) == monitoring.STATEMENT_TEXT_LIMIT


async def test_without_pg_stat_statements_the_page_says_so(app, monkeypatch) -> None:
    async def not_installed(query: str, *args):
        return False if query == monitoring.PG_STAT_STATEMENTS_INSTALLED else await sql.fetchval(query, *args)

    monkeypatch.setattr(monitoring.sql, "fetchval", not_installed)
    manager = await make_person("manager")
    from web.accounts.services import load_current_user

    health = await monitoring.database_health(await load_current_user(manager["user_id"]))
    assert health.statements == [] and "not installed" in health.statements_note
    assert health.partitions


async def test_only_a_manager_of_every_clinic_sees_the_page(app, client: httpx.AsyncClient) -> None:
    """The page shows the whole database (every clinic's statements, tables and partitions): a manager of one
    clinic is refused it, and the analytics page does not link to it for them."""
    client.headers["Accept-Language"] = "en"
    clinic_id = await sql.fetchval(
        "INSERT INTO clinics (name, address, timezone) VALUES ('Health One', 'Jl. 1', 'Asia/Jakarta') RETURNING clinic_id")
    await web_session(client, await make_person("manager", clinic_id=clinic_id))
    refused = await client.get("/manage/database")
    assert refused.status_code == 403
    assert 'data-testid="slow-statement"' not in refused.text and "This page is for managers of every clinic." in refused.text
    assert 'data-testid="nav-database-health"' not in (await client.get("/manage/analytics")).text
    client.cookies.clear()
    await web_session(client, await make_person("manager"))
    assert (await client.get("/manage/database")).status_code == 200
    assert 'data-testid="nav-database-health"' in (await client.get("/manage/analytics")).text
