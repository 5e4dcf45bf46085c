"""Restore drill: how long a restore takes (RTO) and what it loses (RPO) at a few hundred thousand bookings.

An embedded PostgreSQL with durability on and WAL archiving (as ``make run`` runs it), the app's migrations,
``--bookings`` bookings loaded into the real partitioned tables (bench/loaders.py), then ``vetbook backup``,
more bookings written after the backup (so that the restore must replay archived WAL), and
``vetbook restore-check --latest``: its JSON report, plus the sizes of the backup and of the WAL replayed.
The baseline in the same run is the time ``pg_basebackup`` took to copy the same cluster: restoring is
reading that copy back and replaying the WAL.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import code_version, machine_load  # noqa: E402
from loaders import bulk_load, ensure_partitions_for  # noqa: E402

from web.core.embedded_postgres import LocalPostgres  # noqa: E402
from web.ops import backups  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def _vetbook(url: str, backup_dir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": url, "VETBOOK_BACKUP_DIR": str(backup_dir)}
    return subprocess.run([sys.executable, "-m", "web.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=7200)


async def _load(url: str, bookings: int, label: str) -> dict:
    connection = await asyncpg.connect(url)
    try:
        await ensure_partitions_for(connection, 660)
        return await bulk_load(connection, slots=max(1000, bookings // 3), bookings=bookings, label=label)
    finally:
        await connection.close()


async def _count(url: str) -> int:
    connection = await asyncpg.connect(url)
    try:
        return await connection.fetchval("SELECT count(*) FROM bookings")
    finally:
        await connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bookings", type=int, default=300_000)
    parser.add_argument("--after-backup", type=int, default=20_000, help="bookings written after the backup")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "restore_drill.json")
    args = parser.parse_args()
    report = {"benchmark": "restore_drill", "machine_load_before": machine_load(), "code": code_version()}
    folder = Path(tempfile.mkdtemp(prefix="vetbook-restore-drill-"))
    backup_dir = folder / "backups"
    server = LocalPostgres(folder / "pg", archive_dir=backups.wal_dir(backup_dir))
    try:
        url = server.start()
        migrated = _vetbook(url, backup_dir, "migrate")
        if migrated.returncode != 0:
            raise SystemExit(migrated.stderr)
        asyncio.run(_load(url, args.bookings, "before"))
        started = time.perf_counter()
        taken = _vetbook(url, backup_dir, "backup")
        report["backup_seconds"] = round(time.perf_counter() - started, 2)
        if taken.returncode != 0:
            raise SystemExit(taken.stderr)
        made = backups.list_backups(backup_dir)[-1]
        report["backup_bytes"] = made.archive.stat().st_size
        asyncio.run(_load(url, args.after_backup, "after"))
        report["bookings_in_primary"] = asyncio.run(_count(url))
        report["database_bytes"] = int(server.psql("SELECT pg_database_size('vetbook')").strip())
        checked = _vetbook(url, backup_dir, "restore-check", "--latest")
        lines = [line for line in checked.stdout.splitlines() if line.startswith("{")]
        report["restore_check"] = json.loads(lines[-1]) if lines else {"error": checked.stderr[-2000:]}
        report["wal_archived_bytes"] = sum(path.stat().st_size for path in backups.wal_dir(backup_dir).iterdir())
    finally:
        server.destroy()
        shutil.rmtree(folder, ignore_errors=True)
    check = report["restore_check"]
    print(f"\nrestore drill — {report.get('bookings_in_primary')} bookings, database "
          f"{report.get('database_bytes', 0) / 1e6:.0f} MB, backup {report.get('backup_bytes', 0) / 1e6:.0f} MB "
          f"(taken in {report.get('backup_seconds')} s)")
    print(f"  restore-check: pass={check.get('pass')} RTO {check.get('rto_seconds')} s, RPO {check.get('rpo_seconds')} s, "
          f"missing acknowledged bookings {check.get('missing_acknowledged_bookings')}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2, default=str))
    print(f"\nJSON: {args.json}")
    if not check.get("pass"):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
