"""The ``vetbook`` command: serve, migrate, demo data, the embedded database and Citus operations."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable

import click

from web.settings import get_settings


def _run_with_pool(action: Callable[[], Awaitable[object]]) -> object:
    """Run a coroutine with Piccolo's connection pool open (without it every query opens a connection)."""

    async def runner() -> object:
        from piccolo.engine import engine_finder

        from web.core.database import close_pools, open_pools

        engine = engine_finder()
        await open_pools(engine, min_size=1, max_size=4)
        try:
            return await action()
        finally:
            await close_pools(engine)

    return asyncio.run(runner())


@click.group()
def main() -> None:
    """VetBook: pet-clinic booking."""
    from web.core.logging import configure_logging

    configure_logging()


@main.command()
@click.option("--host", default=None, help="Address to listen on (default: $HOST or 127.0.0.1).")
@click.option("--port", default=None, type=int, help="Port (default: $PORT or 8000).")
@click.option("--workers", default=1, show_default=True, type=int, help="Worker processes.")
def serve(host: str | None, port: int | None, workers: int) -> None:
    """Serve the web app (starts the embedded database first when DATABASE_URL is not set)."""
    # Before anything imports prometheus_client: it picks its multiprocess storage at import.
    _share_metrics_between_workers()
    import uvicorn

    from web.core.database import resolve_database_url

    settings = get_settings()
    if problems := settings.startup_problems():
        raise click.ClickException("VetBook refuses to start:\n  " + "\n  ".join(problems))
    resolve_database_url()  # exports DATABASE_URL, so every worker uses the same running server
    uvicorn.run(
        "web.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        proxy_headers=True,
        log_level="info",
        # uvicorn's lines go through the app's logging (web/core/logging.py), not its own formatters.
        log_config=None,
        # Live pages keep event streams open; on shutdown they are closed after this long (their
        # browsers reconnect to the next process and catch up).
        timeout_graceful_shutdown=3,
    )


def _share_metrics_between_workers() -> None:
    """A fresh PROMETHEUS_MULTIPROC_DIR for this server's workers, unless one is given (web/core/metrics.py):
    set before any worker imports prometheus_client, emptied when the server stops."""
    import atexit
    import os
    import shutil
    import tempfile

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    folder = tempfile.mkdtemp(prefix="vetbook-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
    atexit.register(shutil.rmtree, folder, ignore_errors=True)


@main.command()
def migrate() -> None:
    """Apply the migrations that have not run yet and create partitions ahead."""
    from web.core.maintenance import migrate as run_migrations

    _run_with_pool(run_migrations)
    click.echo("migrations applied")


@main.command()
@click.option("--history", "history_days", default=0, show_default=True, type=click.IntRange(0, 120),
              help="Also create this many days of past visits (for the desk and analytics pages).")
def demo(history_days: int) -> None:
    """Load the demo clinics, services, staff, slots and logins (idempotent), and print the logins."""
    from web.analytics.services import refresh_booking_analytics
    from web.core.maintenance import migrate as run_migrations
    from web.demo import DEMO_LOGINS, load_demo_data

    async def run() -> dict:
        await run_migrations()
        result = await load_demo_data(history_days=history_days)
        if result["history_bookings_added"]:
            await refresh_booking_analytics()
        return result

    result = _run_with_pool(run)
    click.echo(f"demo data ready ({result['slots_added']} new slots)")
    if history_days:
        click.echo(f"demo history: {result['history_bookings_added']} past bookings added")
    click.echo("demo logins:")
    for login in DEMO_LOGINS:
        click.echo(f"  {login.role:<13} {login.email:<26} password: {login.password}")


@main.command()
def check() -> None:
    """Check every slot's places against its holds and bookings (exit 1 and list the slots that disagree)."""
    from web.booking.services import slot_invariant_violations

    violations = _run_with_pool(slot_invariant_violations)
    if not violations:
        click.echo("ok: every slot's remaining places = capacity - pending holds - bookings that keep a place")
        return
    click.echo(f"{len(violations)} slot(s) disagree:", err=True)
    for row in violations:
        click.echo(
            f"  slot {row['slot_id']} on {row['date']}: capacity {row['capacity']}, remaining {row['remaining']}, "
            f"pending holds {row['pending_holds']}, bookings keeping a place {row['kept_bookings']}",
            err=True,
        )
    sys.exit(1)


@main.command("refresh-analytics")
def refresh_analytics() -> None:
    """Refresh booking_analytics_daily now (CONCURRENTLY: readers are not blocked). The app does it hourly."""
    from web.analytics.services import refresh_booking_analytics

    _run_with_pool(refresh_booking_analytics)
    click.echo("booking_analytics_daily refreshed")


@main.group()
def user() -> None:
    """Accounts."""


@user.command("create")
@click.option("--email", required=True)
@click.option("--password", required=True)
@click.option("--role", required=True, type=click.Choice(["owner", "receptionist", "manager"]))
@click.option("--clinic", "clinic_id", default=None, help="Clinic id (required for a receptionist).")
@click.option("--name", default=None, help="Display name (default: the part of the email before @).")
def user_create(email: str, password: str, role: str, clinic_id: str | None, name: str | None) -> None:
    """Create an account, e.g. the first manager."""
    from uuid import UUID

    from web.accounts.services import create_user
    from web.core.errors import InvalidInput

    try:
        clinic = UUID(clinic_id) if clinic_id else None
    except ValueError:
        raise click.BadParameter("not a clinic id (a UUID)", param_hint="--clinic") from None
    try:
        created = _run_with_pool(
            lambda: create_user(email=email, password=password, role=role, name=name or email.split("@")[0],
                                clinic_id=clinic)
        )
    except InvalidInput as exc:
        for field, message in exc.field_errors.items():
            click.echo(f"{field}: {message}", err=True)
        sys.exit(2)
    click.echo(f"created {created['role']} {created['email']} ({created['user_id']})")


@main.group()
def db() -> None:
    """The embedded PostgreSQL (when DATABASE_URL is not set), and the local Citus cluster (start --citus;
    status and stop cover it whenever it exists, also with DATABASE_URL set)."""


def _embedded_or_exit():
    from web.core.database import embedded_server

    if get_settings().database_url:
        click.echo("DATABASE_URL is set: the embedded database is not used.", err=True)
        sys.exit(2)
    return embedded_server()


def _replicas_of(primary) -> list:
    """The embedded primary's local hot standbys (``vetbook db start --replicas N``), in order."""
    from web.core.embedded_postgres import LocalPostgres

    folder = primary.data_dir / "replicas"
    found = sorted(folder.glob("replica-*"), key=lambda path: int(path.name.split("-")[1])) if folder.exists() else []
    return [LocalPostgres(path, bin_dir=primary.bin_dir, standby_of=primary) for path in found]


def _citus_cluster(workers: int = 2):
    """The local Citus cluster of ``vetbook db start --citus``: <VETBOOK_DATA_DIR>/citus, beside (and apart
    from) the embedded server."""
    from web.ops.citus_cluster import LocalCitusCluster

    return LocalCitusCluster(get_settings().data_dir / "citus", workers=workers)


def _citus_cluster_if_made():
    """That cluster when its folder exists (``db status`` and ``db stop`` cover it then), else None."""
    return _citus_cluster() if (get_settings().data_dir / "citus").is_dir() else None


@db.command("start")
@click.option("--replicas", type=click.IntRange(0, 5), default=0, show_default=True,
              help="Also start this many local hot standbys of it (streaming replication), for trying reads "
                   "on replicas and failover.")
@click.option("--synchronous/--asynchronous", default=False, show_default=True,
              help="With replicas: commits wait until a standby has the WAL on disk (no acknowledged booking "
                   "is lost with the primary; each commit waits for that round trip).")
@click.option("--citus", is_flag=True,
              help="Instead, start a local Citus cluster (a coordinator and --workers workers on Debian's "
                   "PostgreSQL 15) under VETBOOK_DATA_DIR/citus, and print the coordinator's URL.")
@click.option("--workers", type=click.IntRange(1, 8), default=2, show_default=True,
              help="With --citus: how many workers.")
def db_start(replicas: int, synchronous: bool, citus: bool, workers: int) -> None:
    """Start the embedded database (initialising it on first use) and print its URL; with --replicas,
    one line per standby after it. With --citus, the local Citus cluster instead: the coordinator's URL,
    then one line per worker."""
    from web.core.embedded_postgres import EmbeddedPostgresError, LocalPostgres

    if citus:
        from web.ops.citus_cluster import citus_available

        if replicas:
            click.echo("--replicas is for the embedded server, not with --citus.", err=True)
            sys.exit(2)
        cluster = _citus_cluster(workers)
        if reason := citus_available(cluster.bin_dir):
            click.echo(f"Citus is not available: {reason}", err=True)
            sys.exit(1)
        try:
            click.echo(cluster.start())
        except EmbeddedPostgresError as error:
            click.echo(f"the Citus cluster did not start: {error}", err=True)
            sys.exit(1)
        for number, url in enumerate(cluster.worker_urls(), start=1):
            click.echo(f"worker {number}: {url}")
        return
    primary = _embedded_or_exit()
    click.echo(primary.start())
    for number in range(1, replicas + 1):
        standby = LocalPostgres(primary.data_dir / "replicas" / f"replica-{number}", bin_dir=primary.bin_dir,
                                standby_of=primary)
        click.echo(f"replica {number}: {standby.start()}")
    # Set on the primary after the standbys were copied from it: a standby promoted later must not wait
    # for a synchronous standby of its own that does not exist.
    primary.set_setting("synchronous_standby_names", "*" if synchronous and replicas else "")


@db.command("stop")
def db_stop() -> None:
    """Stop the embedded database and its local standbys, and the local Citus cluster if there is one."""
    cluster = _citus_cluster_if_made()
    if cluster is None or not get_settings().database_url:
        primary = _embedded_or_exit()
        for standby in _replicas_of(primary):
            standby.stop()
        was_running = primary.stop()
        click.echo("stopped" if was_running else "not running")
    if cluster is not None:
        click.echo("citus: stopped" if cluster.stop() else "citus: not running")


@db.command("url")
def db_url() -> None:
    """Print the database URL (DATABASE_URL, or the embedded server's, started if needed)."""
    from web.core.database import resolve_database_url

    click.echo(resolve_database_url())


@db.command("status")
def db_status() -> None:
    """Say whether the embedded database (and each local standby) is running, and each node of the local
    Citus cluster if there is one."""
    cluster = _citus_cluster_if_made()
    if cluster is None or not get_settings().database_url:
        server = _embedded_or_exit()
        click.echo(f"running: {server.url()}" if server.is_running() else "stopped")
        for number, standby in enumerate(_replicas_of(server), start=1):
            click.echo(f"replica {number}: " + (f"running: {standby.url()}" if standby.is_running() else "stopped"))
    if cluster is not None:
        names = ["citus coordinator"] + [f"citus worker {n}" for n in range(1, len(cluster.worker_nodes) + 1)]
        for name, node in zip(names, cluster.nodes, strict=True):
            click.echo(f"{name}: " + (f"running: {node.url()}" if node.is_running() else "stopped"))


@main.group()
def citus() -> None:
    """Citus (distributed PostgreSQL, sharded by clinic; web/ops/citus_layout.py): run on the coordinator at
    DATABASE_URL ('vetbook db start --citus' prints a local one)."""


def _run_on_coordinator(operation: Callable[..., Awaitable[object]]) -> object:
    """Run ``operation(connection)`` on one connection to DATABASE_URL (the coordinator); a CitusError (bad
    input, not a coordinator) ends the command with its message."""
    import asyncpg

    from web.core.database import resolve_database_url
    from web.ops.citus import CitusError

    async def run() -> object:
        connection = await asyncpg.connect(resolve_database_url())
        try:
            return await operation(connection)
        finally:
            await connection.close()

    try:
        return asyncio.run(run())
    except CitusError as error:
        click.echo(str(error), err=True)
        sys.exit(1)


def _clinic_id_or_exit(text: str):
    from uuid import UUID

    try:
        return UUID(text)
    except ValueError:
        click.echo(f"not a clinic id (a UUID): {text}", err=True)
        sys.exit(2)


@citus.command("distribute")
def citus_distribute() -> None:
    """Make the migrated database distributed as web/ops/citus_layout.py says (idempotent: a second run
    changes nothing), after checking its rules; print what was done as JSON."""
    from web.ops.citus import distribute

    shard_count = get_settings().citus_shard_count
    report = _run_on_coordinator(lambda connection: distribute(connection, shard_count))
    click.echo(json.dumps(report))


@citus.command("placement")
@click.argument("clinic_id")
def citus_placement(clinic_id: str) -> None:
    """Print where a clinic's rows are (shard group, node, size, whether it has its own shard) as JSON."""
    from web.ops.citus import clinic_placement

    clinic = _clinic_id_or_exit(clinic_id)
    click.echo(json.dumps(_run_on_coordinator(lambda connection: clinic_placement(connection, clinic))))


@citus.command("move-clinic")
@click.argument("clinic_id")
@click.option("--to", "to_node", default=None, metavar="HOST:PORT",
              help="The worker to move it to (default: the worker with the fewest shards, not its own).")
@click.option("--no-isolate", is_flag=True,
              help="Move the clinic's shard group as it is, with the other clinics that share it.")
@click.option("--dry-run", is_flag=True, help="Print the plan and change nothing.")
def citus_move_clinic(clinic_id: str, to_node: str | None, no_isolate: bool, dry_run: bool) -> None:
    """Give a clinic a shard of its own and move it to another worker, online (writes go on); print the plan,
    timings and the placement before and after as JSON."""
    from web.ops.citus import move_clinic

    clinic = _clinic_id_or_exit(clinic_id)
    report = _run_on_coordinator(
        lambda connection: move_clinic(connection, clinic, to_node=to_node, isolate=not no_isolate,
                                       dry_run=dry_run))
    click.echo(json.dumps(report))


@main.group(invoke_without_command=True)
@click.pass_context
def backup(context: click.Context) -> None:
    """Take a verified base backup into VETBOOK_BACKUP_DIR (docs/operations.md, "Backup and restore")."""
    if context.invoked_subcommand is not None:
        return
    from web.core.database import resolve_database_url
    from web.ops.backups import BackupError, server_major_version, take_backup

    url = resolve_database_url()
    try:
        made = take_backup(url, get_settings().backup_dir, asyncio.run(server_major_version(url)))
    except BackupError as error:
        click.echo(f"backup failed: {error}", err=True)
        sys.exit(1)
    click.echo(json.dumps({"backup": made.folder.name, "started_at": made.started_at.isoformat(),
                           "finished_at": made.finished_at.isoformat(), "start_wal_file": made.start_wal_file,
                           "folder": str(made.folder)}))


@backup.command("prune")
@click.option("--yes", "apply", is_flag=True, help="Delete what the plan lists (without it: only print the plan).")
@click.option("--now", "now_text", default=None, hidden=True, help="Judge ages at this ISO time (tests).")
def backup_prune(apply: bool, now_text: str | None) -> None:
    """Apply the design's retention: daily backups 30 days, monthly ones 90 days, and the WAL no kept backup
    needs. A dry run unless --yes."""
    from datetime import UTC, datetime

    from web.ops.backups import prune

    now = datetime.fromisoformat(now_text) if now_text else datetime.now(UTC)
    plan = prune(get_settings().backup_dir, now, apply=apply)
    click.echo(json.dumps({"dry_run": not apply, "keep": [b.folder.name for b in plan.keep],
                           "delete": [b.folder.name for b in plan.delete], "delete_wal": len(plan.delete_wal)}))


@main.command("restore-check")
@click.option("--target-time", default=None, help="Recover up to this ISO time (with its zone), e.g. 2026-12-01T10:00:00+07:00.")
@click.option("--latest", is_flag=True, help="Recover everything archived (the primary's current WAL is archived first).")
def restore_check_command(target_time: str | None, latest: bool) -> None:
    """Restore the newest backup plus WAL into a scratch cluster, check it, compare it with the primary and
    print one JSON line (RTO, RPO, pass); exit 1 when it fails. Suitable for a weekly cron."""
    from datetime import datetime

    from web.core.database import resolve_database_url
    from web.ops.restore_check import restore_check

    if bool(target_time) == latest:
        click.echo("Give exactly one of --target-time T or --latest.", err=True)
        sys.exit(2)
    try:
        target = datetime.fromisoformat(target_time) if target_time else None
    except ValueError:
        click.echo(f"--target-time: not an ISO time: {target_time}", err=True)
        sys.exit(2)
    if target is not None and target.tzinfo is None:
        click.echo("--target-time needs a zone (e.g. +07:00 or Z).", err=True)
        sys.exit(2)
    report = asyncio.run(restore_check(resolve_database_url(), get_settings().backup_dir, target, latest))
    click.echo(json.dumps(report, default=str))
    sys.exit(0 if report["pass"] else 1)


@main.command("mask")
@click.option("--into", "target_url", required=True,
              help="URL of an empty database to receive the masked copy (never the source's).")
def mask_command(target_url: str) -> None:
    """Copy the database (DATABASE_URL: typically a restored copy) into an empty one with every personal
    value replaced, relations, counts and amounts kept (design 1.2.2; docs/operations.md)."""
    from web.core.database import resolve_database_url
    from web.ops.backups import BackupError
    from web.ops.masking import masked_copy

    source = resolve_database_url()
    if target_url.strip() == source.strip():
        click.echo("--into is the source database itself: refusing to mask it in place.", err=True)
        sys.exit(2)
    try:
        counts = asyncio.run(masked_copy(source, target_url))
    except BackupError as error:
        click.echo(f"mask failed: {error}", err=True)
        sys.exit(1)
    click.echo(json.dumps({"masked_copy": True, "row_counts": counts}))


@main.command()
@click.option("--date", "day", default=None, metavar="YYYY-MM-DD",
              help="The clinic-local day to reconcile (default: each clinic's yesterday).")
@click.option("--clinic", "clinic_id", default=None, help="Only this clinic (default: every clinic).")
@click.option("--again", is_flag=True, help="Ask about payments already asked about after the day ended too.")
def reconcile(day: str | None, clinic_id: str | None, again: bool) -> None:
    """Ask the payment gateways about a day's online payments and keep their answers; the managers' page
    /manage/payments/reconciliation then lists the mismatches. The app does it hourly for yesterday."""
    from web.core.forms import day_or_none, uuid_or_none
    from web.payments.reconciliation import reconcile_day

    the_day = day_or_none(day) if day else None
    if day and the_day is None:
        click.echo("--date: enter a day as YYYY-MM-DD (2000 to 2100)", err=True)
        sys.exit(2)
    clinic = uuid_or_none(clinic_id) if clinic_id else None
    if clinic_id and clinic is None:
        click.echo("--clinic: not a clinic id", err=True)
        sys.exit(2)
    counts = _run_with_pool(lambda: reconcile_day(the_day, clinic, again=again))
    click.echo(json.dumps({"reconciled": True, "day": the_day.isoformat() if the_day else "yesterday", **counts}))


if __name__ == "__main__":
    main()
