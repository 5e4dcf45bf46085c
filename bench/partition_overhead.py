"""Benchmark: what the number of monthly partitions alone costs the engine's two guarded booking statements.

One client, empty tables, generic plans (as the engine runs them on plain PostgreSQL: ``transaction_as`` asks
for them), the hold's guarded take of a place (``TAKE_PLACE_FOR_HOLD``) and the confirm's guarded update of
the hold (``CONFIRM_HOLD``), each in a transaction, with ids that match no row, so that only planning and
executor start-up are timed. Run at the few partitions of a new database and after creating the partitions of
two years (``vetbook_ensure_partitions`` via the loader's helper), in the same run. The ratio is the cost of
partitions, not of rows. (Until migration 0021 a slot was named by its id alone, so its date was unknown until
a row was read and every partition was set up and locked; since then the id carries the date, and the
statements name it.)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from datetime import date
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import code_version, machine_load, throwaway_postgres  # noqa: E402
from loaders import ensure_partitions_for  # noqa: E402

from web.booking import statements as q  # noqa: E402

GENERIC = "SELECT set_config('plan_cache_mode', 'force_generic_plan', true)"


async def _per_call_ms(url: str, days_back: int, calls: int) -> dict:
    connection = await asyncpg.connect(url)
    try:
        if days_back:
            await ensure_partitions_for(connection, days_back)
        partitions = await connection.fetchval(
            "SELECT count(*) FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'slots'")
        timings = {}
        for name in ("hold", "confirm"):
            for _warm_then_timed in range(2):
                start = time.perf_counter()
                for _ in range(calls):
                    async with connection.transaction():
                        await connection.execute(GENERIC)
                        clinic = uuid.uuid4()
                        if name == "hold":
                            await connection.fetchrow(q.TAKE_PLACE_FOR_HOLD, clinic, uuid.uuid4(), date.today(), True,
                                                      uuid.uuid4(), uuid.uuid4(), 5, None)
                        else:
                            await connection.fetchrow(q.CONFIRM_HOLD, clinic, uuid.uuid4(), uuid.uuid4(), "t")
                timings[name] = round((time.perf_counter() - start) / calls * 1000, 3)
        return {"slots_partitions": partitions, "ms_per_call": timings}
    finally:
        await connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--days-back", type=int, default=660, help="partitions created back from today")
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "partition_overhead.json")
    args = parser.parse_args()
    report = {"benchmark": "partition_overhead", "machine_load_before": machine_load(), "code": code_version()}
    for label, days_back in (("few", 0), ("two_years", args.days_back)):
        with throwaway_postgres() as (_server, url, _folder):
            report[label] = asyncio.run(_per_call_ms(url, days_back, args.calls))
    few, many = report["few"], report["two_years"]
    print(f"\npartition overhead — one client, empty tables, generic plans, {args.calls} calls each")
    print(f"  {'statement':<10} {few['slots_partitions']:>3} partitions  {many['slots_partitions']:>3} partitions  ratio")
    for name in ("hold", "confirm"):
        a, b = few["ms_per_call"][name], many["ms_per_call"][name]
        print(f"  {name:<10} {a:>10.3f} ms  {b:>10.3f} ms  {b / a:5.2f}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print(f"\nJSON: {args.json}")


if __name__ == "__main__":
    main()
