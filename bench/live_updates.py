"""Benchmark: how fast a committed change to a clinic day reaches the pages following it over server-sent
events (``GET /live/clinics/{clinic}/days/{date}?topics=slots``) of a real ``vetbook serve`` process, with
N pages open against a baseline of one page, and how many database connections the process spends on
LISTEN (the design: one per process, whatever N). Reports figures and the ratio; asserts nothing.

    .venv/bin/python bench/live_updates.py [--pages 100] [--changes 30] [--spacing-ms 300] [--json PATH]

Latency of one change on one page = the moment its next ``slots-changed`` event was read off the stream
minus the moment just before the COMMIT of the ``UPDATE slots`` on a separate asyncpg connection (both on
this process's clock). Changes are spaced so that the broker does not coalesce them: every page should get
exactly one event per change. The streams are read by this process, which shares the CPU with the app
and PostgreSQL, so the figures include its own scheduling of N readers.

Starts its own throw-away PostgreSQL (embedded, durability off) and app process in a temporary folder,
contacts only 127.0.0.1, and stops both. Prints a table and the JSON report, and writes the JSON to ``--json``
(default bench/results/live_updates.json, git-ignored), with the machine's load average before the run.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common import machine_load, print_table, write_json  # noqa: E402

from web.core import announcements  # noqa: E402
from web.core.embedded_postgres import LocalPostgres, free_port  # noqa: E402

TIMEZONE = "Asia/Jakarta"
APP_START_TIMEOUT_SECONDS = 60
OPEN_TIMEOUT_SECONDS = 60
DRAIN_SECONDS = 5


# ---------------------------------------------------------------- data and app


async def seed(conn: asyncpg.Connection, slots_per_day: int) -> tuple:
    """One clinic, one service and one day of slots a week ahead; returns (clinic_id, day, slot_id)."""
    clinic_id = await conn.fetchval(
        "INSERT INTO clinics (name, address, timezone) VALUES ('Bench clinic', 'Jl. Bench 1', $1) RETURNING clinic_id",
        TIMEZONE,
    )
    service_id = await conn.fetchval(
        "INSERT INTO services (clinic_id, name, duration_minutes, price) VALUES ($1, 'Check-up', 30, 150000) "
        "RETURNING service_id",
        clinic_id,
    )
    await conn.execute("SELECT vetbook_ensure_partitions(3, 0)")
    day = datetime.now(ZoneInfo(TIMEZONE)).date() + timedelta(days=7)
    await conn.execute(
        """
        INSERT INTO slots (clinic_id, service_id, date, start_time, end_time, capacity, remaining)
        SELECT $1, $2, $3::date,
               ($3::date + time '08:00' + make_interval(mins => 30 * n)) AT TIME ZONE $4,
               ($3::date + time '08:00' + make_interval(mins => 30 * n + 30)) AT TIME ZONE $4,
               3, 3
        FROM generate_series(0, $5::int - 1) n
        """,
        clinic_id, service_id, day, TIMEZONE, slots_per_day,
    )
    slot_id = await conn.fetchval(
        "SELECT slot_id FROM slots WHERE clinic_id = $1 AND date = $2 ORDER BY start_time LIMIT 1", clinic_id, day
    )
    return clinic_id, day, slot_id


def start_app(database_url: str, folder: Path) -> tuple[subprocess.Popen, str, Path]:
    """``vetbook serve`` on a free port of 127.0.0.1; returns once it answers its health check."""
    port = free_port()
    log_path = folder / "app.log"
    env = {**os.environ, "DATABASE_URL": database_url, "PYTHONUNBUFFERED": "1",
           "VETBOOK_DATA_DIR": str(folder / "data"), "VETBOOK_SECRET_KEY": "bench-secret-key-not-for-production"}
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "web.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + APP_START_TIMEOUT_SECONDS
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the app exited with code {process.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                if httpx.get(base_url + "/api/v1/health", timeout=2, trust_env=False).status_code == 200:
                    return process, base_url, log_path
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the app was not healthy in time:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.1)
    except BaseException:
        stop_app(process)
        raise


def stop_app(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


# ---------------------------------------------------------------- streams


@dataclass
class Page:
    """One open stream: when its catch-up event came, and when every later ``slots-changed`` event came."""

    expected: int
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    complete: asyncio.Event = field(default_factory=asyncio.Event)  # all ``expected`` events came
    arrivals: list[float] = field(default_factory=list)
    other_events: int = 0


async def follow(client: httpx.AsyncClient, path: str, page: Page) -> None:
    async with client.stream("GET", path, params={"topics": "slots"}) as response:
        if response.status_code != 200:
            raise RuntimeError(f"the stream answered {response.status_code}")
        name, data = "message", ""
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                data = line.split(":", 1)[1].strip()
            elif line == "":
                if data:  # a complete event (comments such as ": keep-alive" carry no data)
                    now = time.perf_counter()
                    if name != "slots-changed":
                        page.other_events += 1
                    elif not page.ready.is_set():
                        page.ready.set()  # the catch-up event every connection starts with
                    else:
                        page.arrivals.append(now)
                        if len(page.arrivals) >= page.expected:
                            page.complete.set()
                name, data = "message", ""
    raise RuntimeError("the stream ended")


async def live_connections(conn: asyncpg.Connection) -> dict:
    row = await conn.fetchrow(
        "SELECT count(*) FILTER (WHERE application_name = 'vetbook-live') AS listen, count(*) AS app_total, "
        "count(*) FILTER (WHERE state <> 'idle') AS busy "
        "FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend' "
        "AND pid <> pg_backend_pid()"
    )
    return {"listen": row["listen"], "app_total": row["app_total"], "busy": row["busy"]}


def percentile(ordered: list[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


async def run(base_url: str, conn: asyncpg.Connection, path: str, slot_id, pages: int, changes: int,
              spacing: float, delta: list[int]) -> dict:
    """Open ``pages`` streams, wait until all are past their catch-up event, commit ``changes`` changes
    ``spacing`` seconds apart and time every page's event for each."""
    limits = httpx.Limits(max_connections=pages + 10, max_keepalive_connections=pages + 10)
    timeout = httpx.Timeout(10, read=60)  # keep-alive comments come every 15 s
    async with httpx.AsyncClient(base_url=base_url, timeout=timeout, limits=limits, trust_env=False) as client:
        opened = [Page(expected=changes) for _ in range(pages)]
        tasks = [asyncio.create_task(follow(client, path, page)) for page in opened]
        try:
            started = time.perf_counter()
            waiting = asyncio.ensure_future(asyncio.gather(*(page.ready.wait() for page in opened)))
            done, _ = await asyncio.wait([waiting, *tasks], timeout=OPEN_TIMEOUT_SECONDS,
                                         return_when=asyncio.FIRST_COMPLETED)
            if waiting not in done:
                waiting.cancel()
                failed = [task for task in tasks if task.done()]
                raise RuntimeError(f"streams did not open: {failed[0].exception() if failed else 'timeout'}")
            open_seconds = time.perf_counter() - started
            connections = await live_connections(conn)

            where = await conn.fetchrow("SELECT clinic_id, date FROM slots WHERE slot_id = $1", slot_id)
            notice = announcements.payload(("slots", where["clinic_id"], where["date"]))
            commits: list[float] = []
            for _ in range(changes):
                transaction = conn.transaction()
                await transaction.start()
                # A change with its announcement in the same transaction, as an app process makes it
                # (web/core/announcements.py).
                await conn.execute("UPDATE slots SET remaining = remaining + $2 WHERE slot_id = $1", slot_id, delta[0])
                await conn.execute(announcements.NOTIFY_ALL, [notice])
                delta[0] = -delta[0]  # -1, +1, -1, ...: remaining stays within its capacity
                t0 = time.perf_counter()
                await transaction.commit()
                commits.append(t0)
                await asyncio.sleep(max(0.0, spacing - (time.perf_counter() - t0)))
            waiters = [asyncio.ensure_future(page.complete.wait()) for page in opened]
            await asyncio.wait(waiters, timeout=DRAIN_SECONDS)
            for waiter in waiters:
                waiter.cancel()
            await asyncio.sleep(0.2)  # any extra (duplicate) event
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    latencies, missing, late = [], 0, 0
    for page in opened:
        for k, t0 in enumerate(commits):
            i = bisect.bisect_left(page.arrivals, t0)
            if i == len(page.arrivals):
                missing += 1
                continue
            latencies.append((page.arrivals[i] - t0) * 1000)
            if k + 1 < len(commits) and page.arrivals[i] >= commits[k + 1]:
                late += 1  # came only after the next change was committed
    ordered = sorted(latencies) or [float("nan")]
    return {
        "pages": pages,
        "changes": changes,
        "open_all_streams_s": round(open_seconds, 2),
        "p50_ms": round(percentile(ordered, 0.50), 1),
        "p95_ms": round(percentile(ordered, 0.95), 1),
        "max_ms": round(ordered[-1], 1),
        "events_expected": pages * changes,
        "events_delivered": sum(len(page.arrivals) for page in opened),
        "pages_with_exactly_k_events": sum(len(page.arrivals) == changes for page in opened),
        "changes_never_announced": missing,
        "announced_after_the_next_change": late,
        "other_events": sum(page.other_events for page in opened),
        "listen_connections": connections["listen"],
        "app_db_connections": connections["app_total"],
        "app_db_connections_not_idle": connections["busy"],
    }


async def measure(url: str, base_url: str, args: argparse.Namespace) -> dict:
    conn = await asyncpg.connect(url)
    try:
        clinic_id, day, slot_id = args.seeded
        path = f"/live/clinics/{clinic_id}/days/{day.isoformat()}"
        spacing = args.spacing_ms / 1000
        delta = [-1]
        await run(base_url, conn, path, slot_id, 1, 3, spacing, delta)  # warm up: LISTEN, routes, plans
        single = await run(base_url, conn, path, slot_id, 1, args.changes, spacing, delta)
        many = await run(base_url, conn, path, slot_id, args.pages, args.changes, spacing, delta)
        remaining = await conn.fetchval("SELECT remaining FROM slots WHERE slot_id = $1", slot_id)
    finally:
        await conn.close()
    return {
        "day": day.isoformat(),
        "spacing_ms": args.spacing_ms,
        "baseline_one_page": single,
        "many_pages": many,
        "p95_ratio_many_vs_one": round(many["p95_ms"] / single["p95_ms"], 2) if single["p95_ms"] else None,
        "slot_remaining_after": remaining,
    }


def print_figures(report: dict) -> None:
    load = report["machine_load_before"]
    print_table(f"live updates of one clinic day ({report['day']}), changes {report['spacing_ms']} ms apart; "
                f"load average before: {load['loadavg_1m']} / {load['loadavg_5m']} / {load['loadavg_15m']}",
                ["", "p50 ms", "p95 ms", "max ms", "events", "never announced", "late", "LISTEN conns",
                 "app conns", "opened in s"],
                [[label, f["p50_ms"], f["p95_ms"], f["max_ms"], f"{f['events_delivered']}/{f['events_expected']}",
                  f["changes_never_announced"], f["announced_after_the_next_change"], f["listen_connections"],
                  f["app_db_connections"], f["open_all_streams_s"]]
                 for label, f in (("1 page", report["baseline_one_page"]),
                                  (f"{report['many_pages']['pages']} pages", report["many_pages"]))])
    print(f"  p95 ratio {report['many_pages']['pages']} pages / 1 page: {report['p95_ratio_many_vs_one']}×")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=100, help="open streams in the measured run")
    parser.add_argument("--changes", type=int, default=30, help="committed changes per run")
    parser.add_argument("--spacing-ms", type=int, default=300, help="time between changes (no coalescing)")
    parser.add_argument("--slots-per-day", type=int, default=16)
    parser.add_argument("--json", help="where to write the JSON report (default bench/results/live_updates.json)")
    args = parser.parse_args()
    load = machine_load()

    with tempfile.TemporaryDirectory(prefix="vetbook-bench-") as folder:
        server = LocalPostgres(Path(folder), fast=True)
        url = server.start()
        app = None
        try:
            env = {**os.environ, "DATABASE_URL": url, "VETBOOK_DATA_DIR": str(Path(folder) / "data"),
                   "VETBOOK_SECRET_KEY": "bench-secret-key-not-for-production"}
            subprocess.run([sys.executable, "-m", "web.cli", "migrate"], cwd=ROOT, check=True,
                           capture_output=True, env=env)
            args.seeded = asyncio.run(_seed(url, args.slots_per_day))
            app, base_url, _log = start_app(url, Path(folder))
            report = asyncio.run(measure(url, base_url, args))
        finally:
            if app is not None:
                stop_app(app)
            server.destroy()
    report = {"benchmark": "live_updates", "machine_load_before": load, **report}
    print_figures(report)
    print(json.dumps(report))
    print(f"JSON: {write_json(report, args.json, 'live_updates')}")


async def _seed(url: str, slots_per_day: int) -> tuple[object, date, object]:
    conn = await asyncpg.connect(url)
    try:
        return await seed(conn, slots_per_day)
    finally:
        await conn.close()


if __name__ == "__main__":
    main()
