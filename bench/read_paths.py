"""Benchmark: the read paths at a loaded size through a real ``vetbook serve --workers 2``: the slot search of
the API (``GET /api/v1/slots``), the owner's slot finder page (``GET /book``) and the managers' analytics page
(``GET /manage/analytics``, the view refreshed first), each with N concurrent clients (default 8): p50/p99,
requests/s, page bytes, CPU per request (app / PostgreSQL / load client) and SQL statements per request, plus
the time of ``REFRESH MATERIALIZED VIEW CONCURRENTLY`` itself and RSS per worker. Reports figures; asserts
nothing.

    .venv/bin/python bench/read_paths.py                  # default sizes (see --help)
    .venv/bin/python bench/read_paths.py --full           # the issue's sizes: 1 M slots and 5 M bookings

The tables are filled by bench/loaders.py (the real partitioned tables, ~2 years of days). Searches and finder
pages ask for a random bulk clinic and service on a random day of the next weeks; the API client carries a
bearer token, the finder an owner's session cookie, the analytics page a manager's (of every clinic; the page's
default period, the last 30 days). The app is started before the load, so that its start-up refresh of the
view runs on empty tables and the measured refresh is the benchmark's own.

Starts its own throw-away PostgreSQL (embedded, durability off) and app in a temporary folder, contacts only
127.0.0.1, stops both and removes the folder, also when it fails.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
from common import (
    TIMEZONE,
    CpuMeter,
    HttpError,
    RawHttp,
    app_workers,
    code_version,
    latency_summary,
    machine_load,
    ms_per,
    open_balanced,
    postmaster_pid,
    print_table,
    read_statements,
    reset_statements,
    rounded,
    rss_mb,
    seed_manager,
    seed_owners,
    start_app,
    stop_app,
    stop_cleanly_on_sigterm,
    throwaway_postgres,
    track_planning,
    use_uvloop,
    web_cookie_for,
    write_json,
)
from loaders import bulk_load

REFRESH = "REFRESH MATERIALIZED VIEW CONCURRENTLY booking_analytics_daily"
RECORD_REFRESH = """
INSERT INTO analytics_refreshes AS r (view_name, refreshed_at) VALUES ('booking_analytics_daily', now())
ON CONFLICT (view_name) DO UPDATE SET refreshed_at = GREATEST(r.refreshed_at, EXCLUDED.refreshed_at)
"""


async def refresh_view(conn) -> float:
    """The refresh as the app's job does it (the view and its "as of" time in one transaction); seconds."""
    started = time.perf_counter()
    async with conn.transaction():
        await conn.execute(REFRESH)
        await conn.execute(RECORD_REFRESH)
    return time.perf_counter() - started


async def run_path(app, make_request, clients: int, warmup: float, seconds: float, monitor,
                   meter: CpuMeter, balance: bool) -> dict:
    """``clients`` keep-alive connections each asking ``make_request(rng) -> raw bytes`` in a loop; figures
    of the answers finished inside the timed window."""
    stop = asyncio.Event()
    done: list[tuple[float, float, int, int]] = []  # (finished at, ms, status, bytes)

    connections, per_worker = await open_balanced(app.port, clients, app_workers(app), balance=balance)

    async def client(k: int, http: RawHttp) -> None:
        rng = random.Random(k)
        try:
            while not stop.is_set():
                raw = make_request(rng, http)
                t0 = time.perf_counter()
                try:
                    http.send(raw)
                    status, body = await http.read_response()
                except HttpError:
                    status, body = 0, b""
                    await http.open()
                t1 = time.perf_counter()
                done.append((t1, (t1 - t0) * 1000, status, len(body)))
        finally:
            http.close()

    tasks = [asyncio.create_task(client(k, http)) for k, http in enumerate(connections)]
    try:
        await asyncio.sleep(warmup)
        await reset_statements(monitor)
        meter.start()
        t_start = time.perf_counter()
        await asyncio.sleep(seconds)
        t_end = time.perf_counter()
        cpu = meter.stop()
        inside = [entry for entry in done if t_start <= entry[0] < t_end]
        statements = await read_statements(monitor, len(inside), top=6)
    finally:
        stop.set()
        _, pending = await asyncio.wait(tasks, timeout=120)
        for task in pending:
            task.cancel()
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is not None:
            raise task.exception()
    requests = len(inside)
    ok = [entry for entry in inside if entry[2] == 200]
    statuses: dict[str, int] = {}
    for entry in inside:
        statuses[str(entry[2])] = statuses.get(str(entry[2]), 0) + 1
    return {
        "clients": clients, "connections_per_worker": per_worker, "seconds": round(t_end - t_start, 2),
        "requests": requests,
        "requests_per_s": rounded(requests / (t_end - t_start)),
        "latency": latency_summary([entry[1] for entry in inside]),
        "statuses": statuses,
        "bytes_mean": round(sum(entry[3] for entry in ok) / len(ok)) if ok else None,
        "cpu_ms_per_request": {"app": ms_per(cpu["app"], requests), "postgres": ms_per(cpu["postgres"], requests),
                               "load_client": ms_per(cpu["client"], requests)},
        "sql": statements,
    }


async def measure(server, url: str, app, args: argparse.Namespace, people: dict) -> dict:
    monitor = await asyncpg.connect(url)
    meter = CpuMeter(app.process.pid, postmaster_pid(server))
    report: dict = {}
    try:
        print(f"[{time.strftime('%H:%M:%S')}] bulk load: {args.slots:,} slots, {args.bookings:,} bookings...",
              flush=True)
        loader = await asyncpg.connect(url)
        try:
            report["bulk_load"] = await bulk_load(loader, args.slots, args.bookings)
        finally:
            await loader.close()
        print(f"[{time.strftime('%H:%M:%S')}] refresh of the analytics view...", flush=True)
        report["refresh_concurrently_s"] = [round(await refresh_view(monitor), 2) for _ in range(args.refreshes)]
        report["view_rows"] = await monitor.fetchval("SELECT count(*) FROM booking_analytics_daily")

        lanes = [(str(row["clinic_id"]), str(row["service_id"])) for row in await monitor.fetch(
            "SELECT s.clinic_id, s.service_id FROM services s JOIN clinics c ON c.clinic_id = s.clinic_id "
            "WHERE c.name LIKE 'bulk clinic %' AND EXISTS (SELECT 1 FROM slots WHERE service_id = s.service_id) "
            "ORDER BY s.service_id")]
        today = datetime.now(ZoneInfo(TIMEZONE)).date()
        days = [(today + timedelta(days=k)).isoformat() for k in range(1, args.days_ahead + 1)]
        owners, cookies, manager = people["owners"], people["cookies"], people["manager"]

        def search(rng: random.Random, http: RawHttp) -> bytes:
            clinic, service = rng.choice(lanes)
            owner = owners[rng.randrange(len(owners))]
            return http.encode("GET", f"/api/v1/slots?clinic_id={clinic}&service_id={service}&date={rng.choice(days)}",
                               owner["auth"])

        def finder(rng: random.Random, http: RawHttp) -> bytes:
            clinic, service = rng.choice(lanes)
            k = rng.randrange(len(owners))
            return http.encode("GET", f"/book?clinic={clinic}&service={service}&date={rng.choice(days)}"
                                      f"&pet={owners[k]['pet_id']}", f"Cookie: {cookies[k]}\r\n".encode())

        def analytics(rng: random.Random, http: RawHttp) -> bytes:
            return http.encode("GET", "/manage/analytics", f"Cookie: {manager}\r\n".encode())

        for name, make, seconds in (("slot_search_api", search, args.seconds), ("finder_page", finder, args.seconds),
                                    ("analytics_page", analytics, args.analytics_seconds)):
            print(f"[{time.strftime('%H:%M:%S')}] {name}: {args.clients} clients, {seconds} s...", flush=True)
            report[name] = await run_path(app, make, args.clients, args.warmup, seconds, monitor, meter, args.balance)
        workers = app_workers(app)
        report["memory"] = {"workers": len(workers), "rss_mb_per_worker": [rss_mb(pid) for pid in workers],
                            "rss_mb_app_main": rss_mb(app.process.pid)}
        report["sizes"] = dict(await monitor.fetchrow(
            "SELECT (SELECT count(*) FROM slots) AS slots, (SELECT count(*) FROM bookings) AS bookings, "
            "pg_database_size(current_database()) / 1048576 AS database_mb"))
    finally:
        await monitor.close()
    return report


async def seed_people(url: str, clients: int) -> dict:
    conn = await asyncpg.connect(url)
    try:
        owners = await seed_owners(conn, clients, "reader")
        cookies = [await web_cookie_for(conn, owner["user_id"]) for owner in owners]
        return {"owners": owners, "cookies": cookies, "manager": await seed_manager(conn)}
    finally:
        await conn.close()


def print_report(report: dict) -> None:
    load = report["machine_load_before"]
    sizes = report["sizes"]
    print(f"\nread paths — {report['settings']['clients']} clients, vetbook serve --workers "
          f"{report['settings']['workers']}; {sizes['slots']:,} slots, {sizes['bookings']:,} bookings "
          f"({sizes['database_mb']:,} MB); load average before: {load['loadavg_1m']} / {load['loadavg_5m']} / "
          f"{load['loadavg_15m']} ({load['cpus']} CPUs); code {report['code']['commit']} "
          f"(+{report['code']['uncommitted_app_files']} uncommitted app files)")
    rows = []
    for name, label in (("slot_search_api", "GET /api/v1/slots"), ("finder_page", "GET /book (finder)"),
                        ("analytics_page", "GET /manage/analytics")):
        r = report[name]
        rows.append([label, r["requests"], r["requests_per_s"], r["latency"]["p50_ms"], r["latency"]["p99_ms"],
                     r["bytes_mean"], r["cpu_ms_per_request"]["app"], r["cpu_ms_per_request"]["postgres"],
                     r["cpu_ms_per_request"]["load_client"], r["sql"]["per_unit"],
                     ", ".join(f"{k}: {v}" for k, v in sorted(r["statuses"].items()))])
    print_table("requests", ["path", "requests", "per s", "p50 ms", "p99 ms", "bytes", "app CPU ms", "PG CPU ms",
                             "client CPU ms", "SQL/request", "statuses"], rows)
    for name in ("slot_search_api", "finder_page", "analytics_page"):
        print_table(f"top statements by total time: {name}", ["statement", "per request", "mean ms", "plan mean ms"],
                    [[s["query"][:110], s["per_unit"], s["mean_ms"], s["mean_plan_ms"]]
                     for s in report[name]["sql"]["top_by_time"][:4]])
    print(f"\nREFRESH MATERIALIZED VIEW CONCURRENTLY: {', '.join(f'{s} s' for s in report['refresh_concurrently_s'])} "
          f"({report['view_rows']:,} rows in the view)")
    print(f"RSS per worker: {report['memory']['rss_mb_per_worker']} MB")
    print(f"bulk load: {report['bulk_load']['seconds']['total_s']} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-balance", dest="balance", action="store_false",
                        help="keep the connections wherever the kernel puts them (default: as many per worker)")
    parser.add_argument("--slots", type=int, default=1_000_000, help="slots loaded (the issue: 1,000,000)")
    parser.add_argument("--bookings", type=int, default=1_000_000, help="bookings loaded (the issue: 5,000,000)")
    parser.add_argument("--full", action="store_true", help="the issue's sizes: 1 M slots, 5 M bookings")
    parser.add_argument("--seconds", type=float, default=8, help="timed window of the search and finder runs")
    parser.add_argument("--analytics-seconds", type=float, default=12)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--days-ahead", type=int, default=28, help="searches ask for one of the next N days")
    parser.add_argument("--refreshes", type=int, default=2, help="timed refreshes of the view")
    parser.add_argument("--json", help="where to write the JSON report (default bench/results/read_paths.json)")
    args = parser.parse_args()
    stop_cleanly_on_sigterm()
    if args.full:
        args.slots, args.bookings = 1_000_000, 5_000_000

    report: dict = {"benchmark": "read_paths", "machine_load_before": machine_load(), "code": code_version(), "event_loop": use_uvloop(),
                    "settings": {k: v for k, v in vars(args).items() if k != "json"}}
    started = time.perf_counter()
    with throwaway_postgres() as (server, url, folder):
        app = None
        try:
            track_planning(server)
            people = asyncio.run(seed_people(url, args.clients))
            app = start_app(url, folder, args.workers)
            report.update(asyncio.run(measure(server, url, app, args, people)))
        finally:
            if app is not None:
                stop_app(app)
    report["machine_load_after"] = machine_load()
    report["wall_seconds"] = round(time.perf_counter() - started, 1)
    print_report(report)
    path = write_json(report, args.json, "read_paths")
    print(f"\nJSON: {path}  (wall time {report['wall_seconds']} s)")


if __name__ == "__main__":
    sys.exit(main())
