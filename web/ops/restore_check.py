"""The restore check (design section 7: a weekly restore test with an integrity check): restore the newest
base backup plus the archived WAL into a scratch cluster on a free port, check it, compare it with the
primary, and say in one JSON line how long it took (RTO), how much it lost (RPO) and whether it passed.

What is checked on the restored copy:

- ``pg_verifybackup`` against the backup's manifest (a corrupted or incomplete backup fails here);
- ``vetbook check`` (every slot's places agree with its holds and bookings);
- ``pg_amcheck`` (B-tree indexes and heap pages are consistent);
- row counts of every table;
- against the primary: with ``--latest``, every booking the primary had when the check began is in the
  copy (the check first makes the primary archive its current WAL segment, so nothing acknowledged before
  that moment is left out); with ``--target-time``, no booking in the copy was created after the target.

RPO is measured from commit timestamps (``track_commit_timestamp``, on for the embedded server): the target
(or the moment the check began) minus the commit time of the last transaction the copy recovered. RTO is
the time from the start of the extraction to the promoted copy accepting writes.

The copy never archives (``archive_mode=off``): its new timeline must not reach the primary's archive. It
accepts connections only through its own socket folder (mode 0700) and refuses TCP, so the copy of
people's data is no more reachable than the backup it came from. It is deleted at the end.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, urlsplit

import asyncpg

from web.core.embedded_postgres import LocalPostgres
from web.ops.backups import Backup, BackupError, list_backups, tools_of, wal_dir
from web.settings import PROJECT_ROOT

RESTORE_START_TIMEOUT_SECONDS = 3600
ARCHIVE_WAIT_SECONDS = 60


def _choose_backup(backup_dir: Path, target: datetime | None) -> Backup:
    backups = list_backups(backup_dir)
    usable = [b for b in backups if target is None or b.finished_at <= target]
    if not usable:
        raise BackupError("no backup finished before the target time" if backups else f"no backup in {backup_dir}")
    return usable[-1]


async def _archive_current_wal(primary_url: str) -> tuple[set, str | None]:
    """The primary's booking ids now, then its current WAL segment switched out and archived."""
    connection = await asyncpg.connect(primary_url)
    try:
        ids = {row[0] for row in await connection.fetch("SELECT booking_id FROM bookings")}
        # pg_switch_wal() returns the end of the segment it completed, plus one; with nothing written since
        # the last switch it completes none and returns the current segment's start. One byte before is in
        # the newest segment that must be archived, in both cases.
        segment = await connection.fetchval("SELECT pg_walfile_name(pg_switch_wal() - 1)")
        deadline = time.monotonic() + ARCHIVE_WAIT_SECONDS
        while True:
            archived = await connection.fetchval("SELECT last_archived_wal FROM pg_stat_archiver")
            if archived is not None and archived >= segment:
                return ids, segment
            if time.monotonic() > deadline:
                raise BackupError(f"the primary did not archive {segment} within {ARCHIVE_WAIT_SECONDS} s")
            await asyncio.sleep(0.1)
    finally:
        await connection.close()


def _extract(backup: Backup, pgdata: Path) -> None:
    pgdata.mkdir(parents=True)
    try:
        with tarfile.open(backup.archive, "r:gz") as archive:
            archive.extractall(pgdata, filter="data")
    except (OSError, tarfile.TarError, EOFError) as error:
        raise BackupError(f"the backup {backup.folder.name} cannot be read: {error}") from error


def _hand_to_server_user(folder: Path) -> None:
    if os.geteuid() != 0:
        return
    user = pwd.getpwnam("nobody")
    for root, _dirs, files in os.walk(folder):
        os.chown(root, user.pw_uid, user.pw_gid)
        for name in files:
            os.chown(os.path.join(root, name), user.pw_uid, user.pw_gid)
    folder.chmod(0o700)


def _run(args: list[str], env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, env={**os.environ, **(env or {})}, cwd=cwd,
                          timeout=3600)


async def _wait_until_promoted(copy: LocalPostgres, url: str) -> bool:
    """Whether the copy finished its recovery and accepts connections (with hot_standby off, it accepts none
    before: pg_ctl's wait ends earlier, once the startup process runs). False when the server stopped (a
    target it cannot reach, WAL missing)."""
    deadline = time.monotonic() + RESTORE_START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        try:
            connection = await asyncpg.connect(url, timeout=5)
        except (TimeoutError, asyncpg.CannotConnectNowError, OSError):
            if not copy.is_running():
                return False
            await asyncio.sleep(0.2)
            continue
        try:
            if not await connection.fetchval("SELECT pg_is_in_recovery()"):
                return True
        finally:
            await connection.close()
        await asyncio.sleep(0.2)
    return False


async def _facts_of_copy(url: str, target_time: datetime | None) -> dict:
    connection = await asyncpg.connect(url)
    try:
        last_commit = await connection.fetchval("SELECT timestamp FROM pg_last_committed_xact()")
        in_recovery = await connection.fetchval("SELECT pg_is_in_recovery()")
        tables = [row[0] for row in await connection.fetch(
            "SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace "
            "AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY c.relname")]
        counts = {table: await connection.fetchval(f'SELECT count(*) FROM "{table}"') for table in tables}
        newest = await connection.fetchrow(
            "SELECT booking_id, created_at FROM bookings ORDER BY created_at DESC, booking_id LIMIT 1") \
            if "bookings" in counts else None
        ids = {row[0] for row in await connection.fetch("SELECT booking_id FROM bookings")} \
            if "bookings" in counts else set()
        after_target = await connection.fetchval("SELECT count(*) FROM bookings WHERE created_at > $1", target_time) \
            if target_time is not None and "bookings" in counts else None
        return {"last_commit": last_commit, "in_recovery": in_recovery, "counts": counts, "newest": newest,
                "ids": ids, "after_target": after_target}
    finally:
        await connection.close()


async def restore_check(primary_url: str, backup_dir: Path, target_time: datetime | None = None,
                        latest: bool = False) -> dict:
    """Restore, check and compare (see the module's docstring). Returns the report; ``report["pass"]``."""
    began = datetime.now(UTC)
    report: dict = {"pass": False, "target_time": target_time.isoformat() if target_time else None,
                    "latest": latest}
    scratch = Path(tempfile.mkdtemp(prefix="vetbook-restore-check-"))
    copy: LocalPostgres | None = None
    try:
        expected_ids: set | None = None
        if latest:
            expected_ids, report["archived_up_to"] = await _archive_current_wal(primary_url)
        backup = _choose_backup(backup_dir, target_time)
        report["backup"] = backup.folder.name
        tools = tools_of(backup.major_version)
        clock = time.monotonic()
        pgdata = scratch / "pgdata"
        _extract(backup, pgdata)
        verified = _run([str(tools / "pg_verifybackup"), str(pgdata)])
        report["verifybackup"] = "ok" if verified.returncode == 0 else verified.stderr.strip()[-500:]
        if verified.returncode != 0:
            return report
        (pgdata / "pg_hba.conf").write_text("local all all trust\nhost all all 0.0.0.0/0 reject\n"
                                           "host all all ::/0 reject\n")
        (pgdata / "recovery.signal").touch()
        _hand_to_server_user(scratch)
        settings = {
            "restore_command": f"cp {wal_dir(backup_dir)}/%f %p",
            "recovery_target_action": "promote",
            "archive_mode": "off",
            "hot_standby": "off",
            "track_commit_timestamp": "on",
        }
        if target_time is not None:
            settings["recovery_target_time"] = target_time.isoformat()
        copy = LocalPostgres(scratch, bin_dir=tools, settings=settings, create_default_database=False,
                             start_timeout_seconds=RESTORE_START_TIMEOUT_SECONDS)
        try:
            copy.start()
        except Exception as error:  # the restore itself failed: WAL missing, target unreachable
            report["restore_error"] = str(error)[-1500:]
            return report
        primary = urlsplit(primary_url)
        database = primary.path.lstrip("/") or "postgres"
        user = primary.username or "postgres"
        copy_url = f"postgresql://{quote(user)}@/{database}?host={quote(str(copy.socket_dir))}&port={copy.port}"
        if not await _wait_until_promoted(copy, copy_url):
            log = copy.log_dir / "postgres.log"
            report["restore_error"] = ("\n".join(log.read_text(errors="replace").splitlines()[-15:])
                                       if log.exists() else "the restored server stopped")
            return report
        facts = await _facts_of_copy(copy_url, target_time)
        report["rto_seconds"] = round(time.monotonic() - clock, 2)
        report["promoted"] = not facts["in_recovery"]
        point = target_time or began
        last_commit = facts["last_commit"]
        report["last_commit_recovered"] = last_commit.isoformat() if last_commit else None
        report["rpo_seconds"] = round((point - last_commit).total_seconds(), 3) if last_commit else None
        newest = facts["newest"]
        report["last_booking_recovered"] = ({"booking_id": str(newest["booking_id"]),
                                             "created_at": newest["created_at"].isoformat()} if newest else None)
        report["row_counts"] = facts["counts"]

        checked = _run([sys.executable, "-m", "web.cli", "check"], env={"DATABASE_URL": copy_url},
                       cwd=PROJECT_ROOT)
        report["vetbook_check"] = "ok" if checked.returncode == 0 else (checked.stderr or checked.stdout)[-1000:]
        amcheck = _run([str(tools / "pg_amcheck"), "-h", str(copy.socket_dir), "-p", str(copy.port), "-U", user,
                        "--install-missing", "-d", database])
        report["amcheck"] = "ok" if amcheck.returncode == 0 else (amcheck.stdout + amcheck.stderr)[-1000:]

        if expected_ids is not None:
            missing = expected_ids - facts["ids"]
            report["missing_acknowledged_bookings"] = len(missing)
        if facts["after_target"] is not None:
            report["bookings_after_target"] = facts["after_target"]
        report["pass"] = (report["promoted"] and report["vetbook_check"] == "ok" and report["amcheck"] == "ok"
                          and report.get("missing_acknowledged_bookings", 0) == 0
                          and report.get("bookings_after_target", 0) == 0)
        return report
    except BackupError as error:
        report["error"] = str(error)
        return report
    finally:
        if copy is not None:
            try:
                copy.stop(mode="immediate")
            except Exception:  # noqa: BLE001 - the report matters more than a stop of a throw-away copy
                pass
        shutil.rmtree(scratch, ignore_errors=True)
        report["checked_at"] = began.isoformat()
