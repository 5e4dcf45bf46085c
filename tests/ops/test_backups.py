"""Backups you can prove (issue 14): a verified base backup of a server that archives its WAL, bookings
written after it, then restore checks into scratch clusters: to a moment between two known bookings (the
first is there, the second is not), ``--latest`` (every booking the primary had), and a corrupted backup
(exit 1). Retention prunes exactly what the design's policy says, judged at a given time. Real servers,
the real ``vetbook`` commands."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from tests.conftest import PROJECT_ROOT, run_cli, vetbook_command
from tests.db.factories import (
    local_start,
    make_booking,
    make_clinic,
    make_pet,
    make_service,
    make_slot,
    make_user,
)
from tests.ops.helpers import count_rows
from web.core.embedded_postgres import LocalPostgres
from web.ops import backups


def _vetbook(database_url: str, backup_dir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": database_url, "VETBOOK_BACKUP_DIR": str(backup_dir)}
    return subprocess.run(vetbook_command(*args), cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
                          timeout=600)


async def _book(url: str, world: dict) -> dict:
    """A booking and the place it takes, in one transaction (as the engine does), so that places agree."""
    connection = await asyncpg.connect(url)
    try:
        async with connection.transaction():
            booking = await make_booking(connection, world["slot"], world["owner"], world["pet"])
            await connection.execute("UPDATE slots SET remaining = remaining - 1 WHERE slot_id = $1 AND date = $2",
                                     world["slot"]["slot_id"], world["slot"]["date"])
        return booking
    finally:
        await connection.close()


async def _world(url: str) -> dict:
    connection = await asyncpg.connect(url)
    try:
        clinic = await make_clinic(connection)
        service = await make_service(connection, clinic)
        slot = await make_slot(connection, clinic, service, None, start=local_start(clinic, 4, 10), capacity=50,
                               remaining=50)
        owner = await make_user(connection)
        return {"slot": slot, "owner": owner, "pet": await make_pet(connection, owner)}
    finally:
        await connection.close()


@pytest.fixture(scope="module")
def archiving_primary(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("backups")
    backup_dir = folder / "backups"
    primary = LocalPostgres(folder / "primary", archive_dir=backups.wal_dir(backup_dir))
    try:
        url = primary.start()
        run_cli(*vetbook_command("migrate"), database_url=url)
        yield primary, url, backup_dir
    finally:
        primary.destroy()


def _report(result: subprocess.CompletedProcess) -> dict:
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1, result.stdout + result.stderr
    return json.loads(lines[0])


def test_a_restore_to_a_time_between_two_bookings_has_the_first_and_not_the_second(archiving_primary) -> None:
    primary, url, backup_dir = archiving_primary
    world = asyncio.run(_world(url))
    taken = _vetbook(url, backup_dir, "backup")
    assert taken.returncode == 0, taken.stderr
    made = json.loads(taken.stdout)
    assert (backup_dir / "base" / made["backup"] / "data.tar.gz").exists()

    first = asyncio.run(_book(url, world))
    time.sleep(1.0)
    target = datetime.now(UTC)
    time.sleep(1.0)
    second = asyncio.run(_book(url, world))
    # The target's WAL must be archived for a restore to reach past it: the next check's switch does that
    # for --latest; here, switch now.
    primary.psql("SELECT pg_switch_wal()", database="vetbook")

    checked = _vetbook(url, backup_dir, "restore-check", "--target-time", target.isoformat())
    report = _report(checked)
    assert checked.returncode == 0, json.dumps(report)
    assert report["pass"] is True and report["amcheck"] == "ok" and report["vetbook_check"] == "ok"
    assert report["last_booking_recovered"]["booking_id"] == str(first["booking_id"])
    assert report["bookings_after_target"] == 0
    assert 0 <= report["rpo_seconds"] < 2.0
    assert report["rto_seconds"] > 0
    # Counted in the copy: every table, the bookings up to the first one.
    assert report["row_counts"]["bookings"] == 1
    assert second["booking_id"] != first["booking_id"]


def test_a_latest_restore_recovers_every_booking_the_primary_has(archiving_primary) -> None:
    primary, url, backup_dir = archiving_primary
    world = asyncio.run(_world(url))
    booked = [asyncio.run(_book(url, world)) for _ in range(3)]

    checked = _vetbook(url, backup_dir, "restore-check", "--latest")
    report = _report(checked)
    assert checked.returncode == 0, json.dumps(report)
    assert report["pass"] is True and report["missing_acknowledged_bookings"] == 0
    assert report["last_booking_recovered"]["booking_id"] == str(booked[-1]["booking_id"])
    assert report["row_counts"]["bookings"] == asyncio.run(count_rows(url, "bookings"))
    assert asyncio.run(count_rows(url, "pg_stat_archiver WHERE archived_count > 0 AND failed_count = 0")) == 1



def test_a_corrupted_backup_fails_the_check(archiving_primary, tmp_path: Path) -> None:
    _primary, url, backup_dir = archiving_primary
    assert _vetbook(url, backup_dir, "backup").returncode == 0
    newest = backups.list_backups(backup_dir)[-1]
    data = bytearray(newest.archive.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = bytes(64)
    newest.archive.write_bytes(bytes(data))

    checked = _vetbook(url, backup_dir, "restore-check", "--latest")
    report = _report(checked)
    assert checked.returncode == 1
    assert report["pass"] is False and report.get("backup") == newest.folder.name, json.dumps(report)
    newest.folder.rename(tmp_path / "corrupted")  # out of the way of the other checks


def _fake_backup(backup_dir: Path, started_at: datetime, wal_file: str) -> None:
    folder = backup_dir / "base" / started_at.strftime(backups.STAMP_FORMAT)
    folder.mkdir(parents=True)
    (folder / "backup.json").write_text(json.dumps({
        "started_at": started_at.isoformat(), "finished_at": (started_at + timedelta(minutes=5)).isoformat(),
        "start_wal_file": wal_file, "major_version": 18, "verified": True}))


def test_retention_keeps_30_days_of_dailies_and_90_days_of_monthlies(tmp_path: Path) -> None:
    now = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)
    days = list(range(0, 130))  # one backup a day, back to late July

    def segment(number: int) -> str:
        return f"{1:08X}{0:08X}{number:08X}"

    for days_ago in days:  # an older backup starts at an older WAL segment
        _fake_backup(tmp_path, now - timedelta(days=days_ago, hours=1), segment(200 - days_ago))
    wal = backups.wal_dir(tmp_path)
    wal.mkdir()
    for number in range(1, 202):
        (wal / segment(number)).write_bytes(b"")

    plan = backups.prune(tmp_path, now, apply=False)
    kept = {b.started_at for b in plan.keep}
    expected = {now - timedelta(days=d, hours=1) for d in days if d < 30}
    # Older than 30 days, up to 90: the first backup of each calendar month, if that one is within the 90
    # days (here October's and November's; September's first is 92 days old, so September has none).
    every = [now - timedelta(days=d, hours=1) for d in days]
    firsts = {min(b for b in every if (b.year, b.month) == (m.year, m.month)) for m in every}
    expected |= {b for b in firsts if now - b <= timedelta(days=90)}
    assert {(b.month, b.day) for b in expected - {now - timedelta(days=d, hours=1) for d in days if d < 30}} \
        == {(10, 1), (11, 1)}
    assert kept == expected
    assert len(plan.keep) + len(plan.delete) == len(days)
    assert (tmp_path / "base").exists() and len(list((tmp_path / "base").iterdir())) == len(days)  # a dry run

    applied = backups.prune(tmp_path, now, apply=True)
    assert {b.started_at for b in backups.list_backups(tmp_path)} == expected
    oldest_kept = min(applied.keep, key=lambda b: b.started_at).start_wal_file
    assert oldest_kept == segment(200 - 62)  # October 1st's
    assert sorted(p.name for p in wal.iterdir()) == [segment(n) for n in range(1, 202) if segment(n) >= oldest_kept]
