"""Benchmark: the design's slot search (3.3.1) on the partitioned, indexed schema, against a baseline run
in the same process on the same data with index scans turned off (what the query costs without the
design's indexes). Reports figures and the ratio; asserts nothing.

    .venv/bin/python bench/slot_search.py [--slots-per-day 40] [--days 120] [--queries 2000] [--json PATH]

Prints a table and the JSON report, and writes the JSON to ``--json`` (default bench/results/slot_search.json,
git-ignored), with the machine's load average before the run.

Starts its own throw-away PostgreSQL (embedded, durability off) in a temporary folder and stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common import machine_load, print_table, write_json  # noqa: E402

from web.core.embedded_postgres import LocalPostgres  # noqa: E402
from web.slots.statements import SEARCH_SLOTS  # noqa: E402


async def seed(conn: asyncpg.Connection, clinics: int, days: int, slots_per_day: int) -> list[tuple]:
    await conn.execute(
        "INSERT INTO clinics (name, timezone) SELECT 'Bench clinic ' || n, 'Asia/Jakarta' FROM generate_series(1, $1) n",
        clinics,
    )
    await conn.execute(
        "INSERT INTO services (clinic_id, name, duration_minutes, price) "
        "SELECT c.clinic_id, s.name, 30, 150000 FROM clinics c, (VALUES ('Vaccination'), ('Check-up')) s(name)"
    )
    first = date.today() + timedelta(days=1)
    months = (days // 28) + 2
    await conn.execute("SELECT vetbook_ensure_partitions($1, 0)", months)
    await conn.execute(
        """
        INSERT INTO slots (clinic_id, service_id, date, start_time, end_time, capacity, remaining)
        SELECT sv.clinic_id, sv.service_id, d::date,
               (d::date + time '08:00' + make_interval(mins => 15 * n)) AT TIME ZONE 'Asia/Jakarta',
               (d::date + time '08:00' + make_interval(mins => 15 * n + 30)) AT TIME ZONE 'Asia/Jakarta',
               3, (n % 4)
        FROM services sv, generate_series($1::date, $1::date + ($2::int - 1), interval '1 day') d,
             generate_series(0, $3::int - 1) n
        """,
        first, days, slots_per_day,
    )
    await conn.execute("ANALYZE")
    rows = await conn.fetch("SELECT clinic_id, service_id FROM services ORDER BY service_id")
    return [(row["clinic_id"], row["service_id"], first + timedelta(days=i % days)) for i, row in
            enumerate(rows * 50)]


async def run_queries(conn: asyncpg.Connection, probes: list[tuple], count: int) -> list[float]:
    timings = []
    for i in range(count):
        clinic_id, service_id, day = probes[i % len(probes)]
        start = time.perf_counter()
        await conn.fetch(SEARCH_SLOTS, clinic_id, day, service_id)
        timings.append((time.perf_counter() - start) * 1000)
    return timings


def summary(timings: list[float]) -> dict:
    ordered = sorted(timings)
    return {
        "queries": len(timings),
        "mean_ms": round(statistics.fmean(timings), 3),
        "p50_ms": round(ordered[len(ordered) // 2], 3),
        "p95_ms": round(ordered[int(len(ordered) * 0.95)], 3),
        "p99_ms": round(ordered[int(len(ordered) * 0.99)], 3),
        "qps": round(len(timings) / (sum(timings) / 1000), 1),
    }


async def measure(url: str, args: argparse.Namespace) -> dict:
    conn = await asyncpg.connect(url)
    try:
        probes = await seed(conn, args.clinics, args.days, args.slots_per_day)
        total = await conn.fetchval("SELECT count(*) FROM slots")
        await run_queries(conn, probes, 200)  # warm caches and plans
        indexed = summary(await run_queries(conn, probes, args.queries))
    finally:
        await conn.close()
    # The baseline: the same data and query on a connection whose planner may not use the indexes (a
    # fresh connection, so no plan cached with index scans is reused).
    baseline_conn = await asyncpg.connect(url, server_settings={
        "enable_indexscan": "off", "enable_bitmapscan": "off", "enable_indexonlyscan": "off"})
    try:
        await run_queries(baseline_conn, probes, 20)
        baseline = summary(await run_queries(baseline_conn, probes, max(200, args.queries // 10)))
    finally:
        await baseline_conn.close()
    return {
        "slots": total,
        "with_design_indexes_and_partition_pruning": indexed,
        "baseline_without_index_scans": baseline,
        "speedup_p50": round(baseline["p50_ms"] / indexed["p50_ms"], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clinics", type=int, default=30)
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--slots-per-day", type=int, default=40)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--json", help="where to write the JSON report (default bench/results/slot_search.json)")
    args = parser.parse_args()

    load = machine_load()
    with tempfile.TemporaryDirectory(prefix="vetbook-bench-") as folder:
        server = LocalPostgres(Path(folder), fast=True)
        url = server.start()
        try:
            subprocess.run([sys.executable, "-m", "web.cli", "migrate"], cwd=ROOT, check=True,
                           capture_output=True, env={**os.environ, "DATABASE_URL": url})
            report = asyncio.run(measure(url, args))
        finally:
            server.destroy()
    report = {"benchmark": "slot_search", "machine_load_before": load, **report}
    indexed, baseline = report["with_design_indexes_and_partition_pruning"], report["baseline_without_index_scans"]
    print_table(f"slot search (3.3.1), {report['slots']:,} slots; load average before: {load['loadavg_1m']} / "
                f"{load['loadavg_5m']} / {load['loadavg_15m']}",
                ["", "queries", "p50 ms", "p95 ms", "p99 ms", "queries/s"],
                [[label, f["queries"], f["p50_ms"], f["p95_ms"], f["p99_ms"], f["qps"]]
                 for label, f in (("design indexes + pruning", indexed), ("baseline: no index scans", baseline))])
    print(f"  speed-up at p50: {report['speedup_p50']}×\n")
    print(json.dumps(report, indent=2))
    print(f"JSON: {write_json(report, args.json, 'slot_search')}")


if __name__ == "__main__":
    main()
