"""Benchmark: bookings per second through HTTP (hold + confirm over the JSON API of a real
``vetbook serve --workers 2``) against the same guarded writes as plain SQL on the same server and data,
with CPU per booking, SQL statements per booking, the last-places race, RSS per worker, and the same
throughput again after the tables were bulk-loaded (flatness). Reports figures and ratios; asserts nothing.

    .venv/bin/python bench/booking_throughput.py                 # default sizes (a few minutes)
    .venv/bin/python bench/booking_throughput.py --full          # the issue's sizes: 1 M slots, 1 M bookings

A booking is ``POST /api/v1/reservations {slot_id, pet_id}`` then ``POST /api/v1/reservations/{id}/confirm
{lock_token}``, by one of N concurrent clients (default 16), each on its own keep-alive connection. Every client
books in its own lane (a clinic's service: half-hour slots that never overlap, several places each) with its own
owners, so clients never compete for a place and no pet is ever double-booked: every answer should be 201.

The baseline runs the essential guarded writes of the same booking as plain SQL, with the same concurrency, on
the same server and tables (slots of a separate service per lane, so neither run takes the other's places):
hold = ``UPDATE slots … WHERE remaining > 0 RETURNING`` + ``INSERT INTO reservations`` in one transaction,
confirm = ``UPDATE reservations SET status = 'confirmed' WHERE … status = 'pending' AND expires_at > now()``
+ ``INSERT INTO bookings`` in another — through pgbench (the wheel's, else Debian's) or an asyncpg loop.

CPU per booking is read from /proc (utime + stime of each process tree, reaped children included) at the start
and the end of the timed window: the app's tree (``vetbook serve`` and its workers), PostgreSQL's (postmaster
and every backend), and this process (the load client). SQL statements come from pg_stat_statements, reset at
the start of the window. The app runs with ``VETBOOK_HOLD_RATE_LIMIT`` raised so that the per-owner hold
limit (a real rule, still counted by its statement) never refuses the benchmark's owners.

Starts its own throw-away PostgreSQL (embedded, durability off) and app in a temporary folder, contacts only
127.0.0.1, stops both and removes the folder, also when it fails.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
from common import (
    TIMEZONE,
    CpuMeter,
    HttpError,
    RawHttp,
    app_workers,
    code_version,
    connection_owners,
    latency_summary,
    machine_load,
    ms_per,
    open_balanced,
    postmaster_pid,
    print_table,
    ratio,
    read_statements,
    reset_statements,
    rounded,
    rss_mb,
    seed_owners,
    start_app,
    stop_app,
    stop_cleanly_on_sigterm,
    throwaway_postgres,
    track_planning,
    use_uvloop,
    write_json,
)
from loaders import bulk_load

SLOTS_PER_DAY = 20  # 08:00–18:00, half an hour each
PRICE = 150000
HOLD_TTL_SQL = "interval '10 minutes'"


# ---------------------------------------------------------------- the scene


@dataclass
class Lane:
    """One client's own slots (ordered, never overlapping) and owners."""

    slots: list[str]
    owners: list[dict]
    position: int = 0  # the next booking of this lane (continues from run to run)

    def next_booking(self, capacity: int) -> tuple[str, dict] | None:
        j = self.position
        if j >= len(self.slots) * capacity:
            return None  # every place of the lane is taken
        self.position += 1
        passes, index = divmod(j, len(self.slots))
        # Each pass over the lane moves to the next owner: a slot's places go to different pets.
        return self.slots[index], self.owners[(index + passes) % len(self.owners)]


@dataclass
class Scene:
    lanes: list[Lane]
    capacity: int
    race_slot: str
    race_owners: list[dict]
    baseline_lane_length: int  # slots per lane of the baseline
    http_slots: int
    baseline_slots: int
    first_day: str = ""
    extra: dict = field(default_factory=dict)


async def insert_lane_slots(conn, lane_services: list[tuple], per_lane: int, first_day, capacity: int) -> dict:
    """``per_lane`` half-hour slots for each (lane, clinic_id, service_id), day after day from ``first_day``;
    returns {lane: [slot_id, ...]} in time order."""
    rows = await conn.fetch(
        """
        INSERT INTO slots (slot_id, clinic_id, service_id, date, start_time, end_time, capacity, remaining)
        SELECT vetbook_new_id(t.clinic_id, $2::date + (m / $3)), t.clinic_id, t.service_id, $2::date + (m / $3),
               ($2::date + (m / $3) + time '08:00' + make_interval(mins => 30 * (m % $3))) AT TIME ZONE $4,
               ($2::date + (m / $3) + time '08:00' + make_interval(mins => 30 * (m % $3) + 30)) AT TIME ZONE $4,
               $5, $5
        FROM unnest($1::uuid[], $6::uuid[]) AS t(clinic_id, service_id), generate_series(0, $7::int - 1) m
        RETURNING slot_id, service_id, start_time
        """,
        [c for _, c, _ in lane_services], first_day, SLOTS_PER_DAY, TIMEZONE, capacity,
        [s for _, _, s in lane_services], per_lane,
    )
    lane_of = {service_id: lane for lane, _, service_id in lane_services}
    slots: dict[int, list] = {lane: [] for lane, _, _ in lane_services}
    for row in sorted(rows, key=lambda r: r["start_time"]):
        slots[lane_of[row["service_id"]]].append(str(row["slot_id"]))
    return slots


async def seed_baseline(conn, clinic_ids: list, clients: int, owners_per_lane: int, per_lane: int, first_day,
                        capacity: int) -> None:
    """The baseline's lanes: per lane a service, ``per_lane`` slots (the same shape as the HTTP lanes) and
    ``owners_per_lane`` owners with a pet, all with ids the baseline computes: service ``bench-service-<lane>``,
    slot ``bench-slot-<lane>-<index>`` (index = day × SLOTS_PER_DAY + half hour; marked version 4, so that no
    md5 reads as an id that names a clinic, which slots_id_names_clinic_and_day would check), owner and pet
    ``bench-owner-<lane>-<k>`` / ``bench-pet-<lane>-<k>``. Its own owners: its bookings never make an HTTP
    client's pet busy."""
    await conn.execute(
        """
        INSERT INTO services (service_id, clinic_id, name, duration_minutes, price)
        SELECT md5('bench-service-' || lane)::uuid, ($1::uuid[])[1 + lane % cardinality($1::uuid[])],
               'Baseline check-up ' || lane, 30, $3
        FROM generate_series(0, $2::int - 1) lane
        """,
        clinic_ids, clients, PRICE)
    # Each lane's clinic, for the baseline's statements to name (as the engine's do: the clinic leads every key).
    await conn.execute("CREATE TABLE IF NOT EXISTS bench_lane_clinics (lane int PRIMARY KEY, clinic_id uuid NOT NULL)")
    await conn.execute(
        """
        INSERT INTO bench_lane_clinics SELECT lane, ($1::uuid[])[1 + lane % cardinality($1::uuid[])]
        FROM generate_series(0, $2::int - 1) lane ON CONFLICT DO NOTHING
        """,
        clinic_ids, clients)
    await conn.execute(
        """
        INSERT INTO slots (slot_id, clinic_id, service_id, date, start_time, end_time, capacity, remaining)
        SELECT overlay(md5('bench-slot-' || lane || '-' || m) PLACING '4' FROM 13 FOR 1)::uuid, sv.clinic_id,
               sv.service_id, $1::date + (m / $2),
               ($1::date + (m / $2) + time '08:00' + make_interval(mins => 30 * (m % $2))) AT TIME ZONE $3,
               ($1::date + (m / $2) + time '08:00' + make_interval(mins => 30 * (m % $2) + 30)) AT TIME ZONE $3,
               $4, $4
        FROM generate_series(0, $5::int - 1) lane
        JOIN services sv ON sv.service_id = md5('bench-service-' || lane)::uuid
        CROSS JOIN generate_series(0, $6::int - 1) m
        """,
        first_day, SLOTS_PER_DAY, TIMEZONE, capacity, clients, per_lane)
    await conn.execute(
        """
        INSERT INTO users (user_id, email, name, role, password_hash)
        SELECT md5('bench-owner-' || lane || '-' || k)::uuid, 'bench-baseline-' || lane || '-' || k || '@example.test',
               'Baseline owner', 'owner', 'not-a-password-hash'
        FROM generate_series(0, $1::int - 1) lane, generate_series(0, $2::int - 1) k
        """,
        clients, owners_per_lane)
    await conn.execute(
        """
        INSERT INTO pets (pet_id, owner_id, name, species)
        SELECT md5('bench-pet-' || lane || '-' || k)::uuid, md5('bench-owner-' || lane || '-' || k)::uuid, 'Pet', 'dog'
        FROM generate_series(0, $1::int - 1) lane, generate_series(0, $2::int - 1) k
        """,
        clients, owners_per_lane)


async def seed(url: str, args: argparse.Namespace) -> Scene:
    conn = await asyncpg.connect(url)
    try:
        clients = args.clients
        clinic_ids = [row["clinic_id"] for row in await conn.fetch(
            "INSERT INTO clinics (name, address, timezone) SELECT 'Bench clinic ' || n, 'Jl. Bench ' || n, $2 "
            "FROM generate_series(1, $1::int) n RETURNING clinic_id", args.clinics, TIMEZONE)]

        async def lane_services(kind: str) -> list[tuple]:
            found = []
            for lane in range(clients):
                clinic_id = clinic_ids[lane % len(clinic_ids)]
                service_id = await conn.fetchval(
                    "INSERT INTO services (clinic_id, name, duration_minutes, price) VALUES ($1, $2, 30, $3) "
                    "RETURNING service_id", clinic_id, f"{kind} {lane // len(clinic_ids) + 1}", PRICE)
                found.append((lane, clinic_id, service_id))
            return found

        http_services = await lane_services("Check-up")
        race_service = await conn.fetchval(
            "INSERT INTO services (clinic_id, name, duration_minutes, price) VALUES ($1, 'Race', 30, $2) "
            "RETURNING service_id", clinic_ids[0], PRICE)
        first_day = datetime.now(ZoneInfo(TIMEZONE)).date() + timedelta(days=2)
        per_lane = math.ceil(args.slots / clients)
        baseline_per_lane = math.ceil(args.baseline_slots / clients)
        days_needed = math.ceil(max(per_lane, baseline_per_lane) / SLOTS_PER_DAY) + 3
        await conn.execute("SELECT vetbook_ensure_partitions($1, 1)", days_needed // 28 + 2)
        http_slots = await insert_lane_slots(conn, http_services, per_lane, first_day, args.capacity)
        race_slot = await conn.fetchval(
            """
            INSERT INTO slots (clinic_id, service_id, date, start_time, end_time, capacity, remaining)
            VALUES ($1, $2, $3, ($3::date + time '12:00') AT TIME ZONE $4, ($3::date + time '12:30') AT TIME ZONE $4,
                    $5, $5)
            RETURNING slot_id
            """,
            clinic_ids[0], race_service, first_day, TIMEZONE, args.race_capacity)
        await seed_baseline(conn, clinic_ids, clients, args.owners_per_client, baseline_per_lane, first_day,
                            args.capacity)

        owners = await seed_owners(conn, clients * args.owners_per_client, "lane")
        race_owners = await seed_owners(conn, args.race_holds, "race")
        lanes = [Lane(http_slots[lane], owners[lane * args.owners_per_client:(lane + 1) * args.owners_per_client])
                 for lane in range(clients)]
        await conn.execute("ANALYZE")
        return Scene(lanes=lanes, capacity=args.capacity, race_slot=str(race_slot), race_owners=race_owners,
                     baseline_lane_length=baseline_per_lane, http_slots=per_lane * clients,
                     baseline_slots=baseline_per_lane * clients, first_day=first_day.isoformat())
    finally:
        await conn.close()


# ---------------------------------------------------------------- HTTP: hold + confirm


@dataclass
class Outcomes:
    done: list[tuple[float, float]] = field(default_factory=list)  # (finished at, pair ms)
    errors: list[tuple[float, str]] = field(default_factory=list)  # (at, "hold 409" / "confirm 500" / …)
    exhausted_lanes: int = 0
    samples: dict[str, str] = field(default_factory=dict)  # the first answer of each error kind

    def error(self, at: float, kind: str, body: bytes | str = b"") -> None:
        self.errors.append((at, kind))
        if kind not in self.samples:
            self.samples[kind] = (body.decode(errors="replace") if isinstance(body, bytes) else body)[:300]


async def raw_client(http: RawHttp, lane: Lane, capacity: int, stop: asyncio.Event, out: Outcomes) -> None:
    clock = time.perf_counter
    try:
        while not stop.is_set():
            booking = lane.next_booking(capacity)
            if booking is None:
                out.exhausted_lanes += 1
                return
            slot_id, owner = booking
            started = clock()
            try:
                status, body = await http.request(
                    "POST", "/api/v1/reservations", owner["auth"],
                    f'{{"slot_id":"{slot_id}","pet_id":"{owner["pet_id"]}"}}'.encode())
                if status != 201:
                    out.error(clock(), f"hold {status}", body)
                    continue
                held = json.loads(body)
                status, body = await http.request(
                    "POST", f"/api/v1/reservations/{held['reservation_id']}/confirm", owner["auth"],
                    f'{{"lock_token":"{held["lock_token"]}"}}'.encode())
            except HttpError as exc:
                out.error(clock(), "connection", str(exc))
                await asyncio.sleep(0.05)
                continue
            finished = clock()
            if status == 201:
                out.done.append((finished, (finished - started) * 1000))
            else:
                out.error(finished, f"confirm {status}", body)
    finally:
        http.close()


async def httpx_client(client, lane: Lane, capacity: int, stop: asyncio.Event, out: Outcomes) -> None:
    clock = time.perf_counter
    while not stop.is_set():
        booking = lane.next_booking(capacity)
        if booking is None:
            out.exhausted_lanes += 1
            return
        slot_id, owner = booking
        headers = {"Authorization": f"Bearer {owner['token']}"}
        started = clock()
        try:
            response = await client.post("/api/v1/reservations", headers=headers,
                                         json={"slot_id": slot_id, "pet_id": str(owner["pet_id"])})
            if response.status_code != 201:
                out.error(clock(), f"hold {response.status_code}", response.text)
                continue
            held = response.json()
            response = await client.post(f"/api/v1/reservations/{held['reservation_id']}/confirm", headers=headers,
                                         json={"lock_token": held["lock_token"]})
        except Exception as exc:  # noqa: BLE001 - any transport error is counted, never fatal
            out.error(clock(), "connection", repr(exc))
            await asyncio.sleep(0.05)
            continue
        finished = clock()
        if response.status_code == 201:
            out.done.append((finished, (finished - started) * 1000))
        else:
            out.error(finished, f"confirm {response.status_code}", response.text)


async def http_run(app, scene: Scene, monitor, meter: CpuMeter, args: argparse.Namespace) -> dict:
    """All clients book for ``warmup`` seconds, then for ``seconds`` seconds measured, then stop."""
    port = app.port
    stop = asyncio.Event()
    out = Outcomes()
    client = None
    per_worker = None
    if args.client == "httpx":
        import httpx

        limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
        client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=60, trust_env=False)
        tasks = [asyncio.create_task(httpx_client(client, lane, scene.capacity, stop, out)) for lane in scene.lanes]
    else:
        connections, per_worker = await open_balanced(port, args.clients, app_workers(app), balance=args.balance)
        tasks = [asyncio.create_task(raw_client(http, lane, scene.capacity, stop, out))
                 for http, lane in zip(connections, scene.lanes, strict=True)]
    try:
        await asyncio.sleep(args.warmup)
        await reset_statements(monitor)
        meter.start()
        window_start = time.perf_counter()
        await asyncio.sleep(args.seconds)
        window_end = time.perf_counter()
        cpu = meter.stop()
        inside = [ms for at, ms in out.done if window_start <= at < window_end]
        statements = await read_statements(monitor, len(inside))
    finally:
        stop.set()
        _, pending = await asyncio.wait(tasks, timeout=120)  # a client stuck on an answer is given up on
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if client is not None:
            await client.aclose()
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is not None:
            raise task.exception()
    bookings = len(inside)
    errors: dict[str, int] = {}
    for at, kind in out.errors:
        if window_start <= at < window_end:
            errors[kind] = errors.get(kind, 0) + 1
    elapsed = window_end - window_start
    return {
        "clients": args.clients, "http_client": args.client, "seconds": round(elapsed, 2),
        "connections_per_worker": per_worker, "balanced": args.balance and per_worker is not None,
        "bookings": bookings, "bookings_per_s": rounded(bookings / elapsed),
        "pair_latency": latency_summary(inside),
        "errors": errors, "error_samples": out.samples, "lanes_exhausted": out.exhausted_lanes,
        "cpu_ms_per_booking": {"app": ms_per(cpu["app"], bookings), "postgres": ms_per(cpu["postgres"], bookings),
                               "load_client": ms_per(cpu["client"], bookings),
                               "total": ms_per(cpu["app"] + cpu["postgres"] + cpu["client"], bookings)},
        "cpu_seconds": {key: (round(value, 2) if isinstance(value, float) else value) for key, value in cpu.items()},
        "cpu_utilisation_of_2_cores": round((cpu["app"] + cpu["postgres"] + cpu["client"]) / elapsed / 2, 2),
        "sql": statements,
    }


# ---------------------------------------------------------------- baseline: the same writes as plain SQL

# $1 lane, $2 slot index in the lane, $3 its day (index / SLOTS_PER_DAY) after the first day $4, $5 owner.
# The slot is named by its key (slot_id, date), so PostgreSQL prunes to one partition, as the engine's own
# statements do; the owner and pet ids are computed the same way (see seed_baseline).
HOLD_SQL = """
UPDATE slots SET remaining = remaining - 1, version = version + 1
WHERE clinic_id = (SELECT clinic_id FROM bench_lane_clinics WHERE lane = $1::int)
  AND slot_id = overlay(md5('bench-slot-' || $1::int || '-' || $2::int) PLACING '4' FROM 13 FOR 1)::uuid
  AND date = $4::date + $3::int
  AND status = 'available' AND remaining > 0
RETURNING slot_id, date AS slot_date, service_id, clinic_id
"""
INSERT_HOLD_SQL = f"""
INSERT INTO reservations (clinic_id, user_id, pet_id, slot_id, slot_date, service_id, expires_at, lock_token)
VALUES ($6, md5('bench-owner-' || $1::int || '-' || $2::int)::uuid,
        md5('bench-pet-' || $1::int || '-' || $2::int)::uuid, $3, $4, $5, now() + {HOLD_TTL_SQL},
        md5(random()::text) || md5(random()::text))
RETURNING reservation_id, user_id, pet_id
"""
CONFIRM_SQL = """
UPDATE reservations SET status = 'confirmed'
WHERE clinic_id = $3 AND reservation_id = $1 AND user_id = $2 AND status = 'pending' AND expires_at > now()
RETURNING reservation_id
"""
INSERT_BOOKING_SQL = f"""
INSERT INTO bookings (reservation_id, user_id, pet_id, clinic_id, service_id, slot_id, slot_date, status,
                      payment_status, total_amount, discount_amount, final_amount, currency, booking_source,
                      payment_due_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending_payment', 'pending', {PRICE}, 0, {PRICE}, 'IDR', 'app',
        now() + interval '30 minutes')
RETURNING booking_id
"""


def baseline_position(j: int, per_lane: int, owners_per_lane: int) -> tuple[int, int, int]:
    """(slot index, day, owner) of a lane's j-th baseline booking: the HTTP lanes' rule (Lane.next_booking)."""
    passes, index = divmod(j, per_lane)
    return index, index // SLOTS_PER_DAY, (index + passes) % owners_per_lane


def pgbench_script(per_lane: int, owners_per_lane: int, first_day: str) -> str:
    def numbered(sql: str, names: list[str]) -> str:
        for k, name in enumerate(names, start=1):
            sql = re.sub(rf"\${k}\b", f":{name}", sql)
        return " ".join(sql.split())

    first = f"'{first_day}'"
    return "\n".join([
        "\\set j :j + 1",
        f"\\set idx (:j - 1) % {per_lane}",
        f"\\set day :idx / {SLOTS_PER_DAY}",
        f"\\set owner (:idx + (:j - 1) / {per_lane}) % {owners_per_lane}",
        "BEGIN;",
        numbered(HOLD_SQL.replace("$4::date", f"{first}::date"), ["client_id", "idx", "day"]) + " \\gset",
        numbered(INSERT_HOLD_SQL, ["client_id", "owner", "slot_id", "slot_date", "service_id", "clinic_id"])
        + " \\gset",
        "COMMIT;",
        "BEGIN;",
        numbered(CONFIRM_SQL, ["reservation_id", "user_id", "clinic_id"]) + " \\gset confirmed_",
        numbered(INSERT_BOOKING_SQL, ["reservation_id", "user_id", "pet_id", "clinic_id", "service_id",
                                      "slot_id", "slot_date"]) + ";",
        "COMMIT;",
        "",
    ])


def find_pgbench(server) -> str | None:
    for candidate in [Path(server.bin_dir) / "pgbench", *sorted(Path("/usr/lib/postgresql").glob("*/bin/pgbench"))]:
        if candidate.exists():
            return str(candidate)
    return shutil.which("pgbench")


async def baseline_start_position(conn) -> int:
    """The first position no baseline lane has used yet: each run starts past every lane's last booking."""
    return await conn.fetchval(
        "SELECT coalesce(max(c), 0) FROM (SELECT count(*) AS c FROM reservations r "
        "JOIN services sv ON sv.service_id = r.service_id WHERE sv.name LIKE 'Baseline check-up %' "
        "GROUP BY sv.service_id) x")


def parse_pgbench(stdout: str) -> dict:
    def number(pattern: str) -> float | None:
        match = re.search(pattern, stdout)
        return float(match.group(1)) if match else None

    return {"transactions": int(number(r"number of transactions actually processed: (\d+)") or 0),
            "failed": int(number(r"number of failed transactions: (\d+)") or 0),
            "latency_avg_ms": number(r"latency average = ([\d.]+) ms"),
            "tps_pgbench": number(r"tps = ([\d.]+) \(without initial connection time\)")}


async def baseline_run(server, url: str, scene: Scene, monitor, meter: CpuMeter, folder: Path,
                       args: argparse.Namespace, seconds: float) -> dict:
    pgbench = find_pgbench(server) if args.baseline in ("auto", "pgbench") else None
    if args.baseline == "pgbench" and pgbench is None:
        raise SystemExit("pgbench not found")
    if pgbench is None:
        return await asyncpg_baseline(url, scene, monitor, meter, args, seconds)
    script = folder / "hold_confirm.sql"
    script.write_text(pgbench_script(scene.baseline_lane_length, args.owners_per_client, scene.first_day))
    logs = folder / "pgbench-logs"
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir()

    first = [await baseline_start_position(monitor)]

    def run(duration: float, log: bool) -> subprocess.CompletedProcess:
        return subprocess.run(
            [pgbench, "-n", "-M", "prepared", "-c", str(args.clients), "-j", str(min(2, args.clients)),
             "-T", str(max(1, round(duration))), "-D", f"j={first[0]}", "-f", str(script),
             *(["--log", f"--log-prefix={logs}/tx"] if log else []), url],
            capture_output=True, text=True, cwd=folder)

    warm = await asyncio.to_thread(run, args.warmup, False)
    if warm.returncode not in (0, 2):
        raise RuntimeError(f"pgbench failed: {warm.stderr[-2000:]}")
    first[0] = await baseline_start_position(monitor)
    await reset_statements(monitor)
    meter.start()
    result = await asyncio.to_thread(run, seconds, True)
    cpu = meter.stop()
    figures = parse_pgbench(result.stdout)
    bookings = figures["transactions"]
    statements = await read_statements(monitor, bookings)
    latencies = []
    for log_file in logs.glob("tx*"):
        for line in log_file.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[2].isdigit():
                latencies.append(int(parts[2]) / 1000)
    return {
        "tool": f"pgbench ({Path(pgbench).parent.parent.name if 'postgresql' in pgbench else 'embedded wheel'})",
        "clients": args.clients, "seconds": round(seconds, 1), "bookings": bookings,
        "bookings_per_s": rounded(figures["tps_pgbench"]), "failed": figures["failed"],
        "exit_code": result.returncode, "stderr_tail": result.stderr[-500:] if result.returncode else "",
        "pair_latency": latency_summary(latencies),
        "cpu_ms_per_booking": {"postgres": ms_per(cpu["postgres"], bookings),
                               "load_client": ms_per(cpu["client_children"], bookings),
                               "total": ms_per(cpu["postgres"] + cpu["client_children"], bookings)},
        "cpu_seconds": {key: (round(value, 2) if isinstance(value, float) else value) for key, value in cpu.items()},
        "sql": statements,
        # pgbench sends BEGIN and COMMIT as prepared statements, which pg_stat_statements does not record:
        # the script's own count of statements per booking (2 transactions, 4 statements each).
        "script_statements_per_booking": 8,
    }


async def asyncpg_baseline(url: str, scene: Scene, monitor, meter: CpuMeter, args: argparse.Namespace,
                           seconds: float) -> dict:
    """The same statements in an asyncpg loop with the same concurrency (when no pgbench is found)."""
    start = await baseline_start_position(monitor)
    first_day = datetime.fromisoformat(scene.first_day).date()
    done: list[tuple[float, float]] = []
    failures = [0]
    stop = asyncio.Event()

    async def client(lane: int) -> None:
        conn = await asyncpg.connect(url)
        j = start
        try:
            while not stop.is_set() and j < scene.baseline_lane_length * scene.capacity:
                index, day, owner = baseline_position(j, scene.baseline_lane_length, args.owners_per_client)
                j += 1
                t0 = time.perf_counter()
                async with conn.transaction():
                    slot = await conn.fetchrow(HOLD_SQL, lane, index, day, first_day)
                    if slot is None:
                        failures[0] += 1
                        continue
                    held = await conn.fetchrow(INSERT_HOLD_SQL, lane, owner, slot["slot_id"], slot["slot_date"],
                                               slot["service_id"], slot["clinic_id"])
                async with conn.transaction():
                    await conn.fetchval(CONFIRM_SQL, held["reservation_id"], held["user_id"], slot["clinic_id"])
                    await conn.fetchval(INSERT_BOOKING_SQL, held["reservation_id"], held["user_id"], held["pet_id"],
                                        slot["clinic_id"], slot["service_id"], slot["slot_id"], slot["slot_date"])
                t1 = time.perf_counter()
                done.append((t1, (t1 - t0) * 1000))
        finally:
            await conn.close()

    tasks = [asyncio.create_task(client(lane)) for lane in range(args.clients)]
    await asyncio.sleep(args.warmup)
    await reset_statements(monitor)
    meter.start()
    t_start = time.perf_counter()
    await asyncio.sleep(seconds)
    t_end = time.perf_counter()
    cpu = meter.stop()
    inside = [ms for at, ms in done if t_start <= at < t_end]
    statements = await read_statements(monitor, len(inside))
    stop.set()
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=120)
    bookings = len(inside)
    return {"tool": "asyncpg loop", "clients": args.clients, "seconds": round(t_end - t_start, 2),
            "bookings": bookings, "bookings_per_s": rounded(bookings / (t_end - t_start)), "failed": failures[0],
            "pair_latency": latency_summary(inside),
            "cpu_ms_per_booking": {"postgres": ms_per(cpu["postgres"], bookings),
                                   "load_client": ms_per(cpu["client"], bookings),
                                   "total": ms_per(cpu["postgres"] + cpu["client"], bookings)},
            "sql": statements, "script_statements_per_booking": 8}


# ---------------------------------------------------------------- the last-places race


async def race(app, scene: Scene, monitor) -> dict:
    """Every contender's connection is opened first (in bursts of 100, as they come: not balanced over the
    workers, whose share is reported); then all holds are written at once and every answer is read.
    Time = from the first request written to the last answer read."""
    port = app.port
    contenders = [RawHttp(port) for _ in scene.race_owners]
    for k in range(0, len(contenders), 100):
        await asyncio.gather(*(http.open() for http in contenders[k:k + 100]))
    workers = app_workers(app)
    owners = await connection_owners(port, contenders, workers, wait_seconds=10)
    per_worker = sorted((owners.count(pid) for pid in workers), reverse=True)
    await asyncio.sleep(0.2)
    requests = [http.encode("POST", "/api/v1/reservations", owner["auth"],
                            f'{{"slot_id":"{scene.race_slot}","pet_id":"{owner["pet_id"]}"}}'.encode())
                for http, owner in zip(contenders, scene.race_owners, strict=True)]
    answers: list[tuple[int, float]] = []

    async def answer(http: RawHttp, t0: float) -> None:
        try:
            status, _ = await http.read_response()
        except HttpError:
            status = 0
        answers.append((status, (time.perf_counter() - t0) * 1000))

    t0 = time.perf_counter()
    for http, raw in zip(contenders, requests, strict=True):
        http.send(raw)
    await asyncio.wait_for(asyncio.gather(*(answer(http, t0) for http in contenders)), timeout=300)
    total_ms = max(ms for _, ms in answers)
    for http in contenders:
        http.close()
    statuses: dict[str, int] = {}
    for status, _ in answers:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    held_in_db = await monitor.fetchval(
        "SELECT count(*) FROM reservations WHERE slot_id = $1 AND status = 'pending'", scene.race_slot)
    remaining = await monitor.fetchval("SELECT remaining FROM slots WHERE slot_id = $1", scene.race_slot)
    return {
        "contenders": len(contenders), "capacity": scene.extra["race_capacity"],
        "connections_per_worker": per_worker,
        "all_answered_ms": round(total_ms, 1),
        "held_201": statuses.get("201", 0), "statuses": statuses,
        "held_in_database": held_in_db, "slot_remaining_after": remaining,
        "exactly_capacity_held": statuses.get("201", 0) == held_in_db == scene.extra["race_capacity"],
        "p50_201_ms": rounded(_median([ms for status, ms in answers if status == 201])),
        "p50_409_ms": rounded(_median([ms for status, ms in answers if status == 409])),
    }


def _median(values: list[float]) -> float | None:
    return sorted(values)[len(values) // 2] if values else None


# ---------------------------------------------------------------- the whole run


def worker_memory(app) -> dict:
    workers = app_workers(app)
    return {"workers": len(workers), "rss_mb_per_worker": [rss_mb(pid) for pid in workers],
            "rss_mb_app_main": rss_mb(app.process.pid)}


async def measure(server, url: str, app, scene: Scene, folder: Path, args: argparse.Namespace) -> dict:
    monitor = await asyncpg.connect(url)
    meter = CpuMeter(app.process.pid, postmaster_pid(server))
    report: dict = {}
    try:
        print(f"[{time.strftime('%H:%M:%S')}] HTTP hold+confirm, small tables ({scene.http_slots:,} slots)...",
              flush=True)
        report["small"] = {"sizes": await table_sizes(monitor)}
        report["small"]["http"] = await http_run(app, scene, monitor, meter, args)
        print(f"[{time.strftime('%H:%M:%S')}] baseline (plain SQL), small tables...", flush=True)
        report["small"]["baseline"] = await baseline_run(server, url, scene, monitor, meter, folder, args,
                                                         args.baseline_seconds)
        report["small"]["memory"] = worker_memory(app)
        print(f"[{time.strftime('%H:%M:%S')}] last-places race...", flush=True)
        report["race"] = await race(app, scene, monitor)
        if args.large_slots or args.large_bookings:
            print(f"[{time.strftime('%H:%M:%S')}] bulk load: {args.large_slots:,} slots, "
                  f"{args.large_bookings:,} bookings...", flush=True)
            loader = await asyncpg.connect(url)
            try:
                report["bulk_load"] = await bulk_load(loader, args.large_slots, args.large_bookings)
            finally:
                await loader.close()
            await asyncio.sleep(2)  # let autovacuum's first look pass
            print(f"[{time.strftime('%H:%M:%S')}] HTTP hold+confirm, large tables...", flush=True)
            report["large"] = {"sizes": await table_sizes(monitor)}
            report["large"]["http"] = await http_run(app, scene, monitor, meter, args)
            print(f"[{time.strftime('%H:%M:%S')}] baseline (plain SQL), large tables...", flush=True)
            report["large"]["baseline"] = await baseline_run(server, url, scene, monitor, meter, folder, args,
                                                             args.baseline_seconds)
            report["large"]["memory"] = worker_memory(app)
    finally:
        await monitor.close()
    return report


async def table_sizes(conn) -> dict:
    row = await conn.fetchrow(
        "SELECT (SELECT count(*) FROM slots) AS slots, (SELECT count(*) FROM bookings) AS bookings, "
        "(SELECT count(*) FROM reservations) AS reservations, "
        "(SELECT count(*) FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent "
        " WHERE p.relname IN ('slots', 'bookings')) AS partitions, "
        "pg_database_size(current_database()) / 1048576 AS database_mb")
    return dict(row)


def derived(report: dict) -> None:
    """The ratios the issue's targets name."""
    for size in ("small", "large"):
        if size in report:
            http, base = report[size]["http"], report[size]["baseline"]
            report[size]["http_over_baseline"] = ratio(http["bookings_per_s"], base["bookings_per_s"])
    if "large" in report:
        small, large = report["small"]["http"], report["large"]["http"]
        report["flatness"] = {
            "bookings_per_s_large_over_small": ratio(large["bookings_per_s"], small["bookings_per_s"]),
            "postgres_cpu_per_booking_large_over_small": ratio(large["cpu_ms_per_booking"]["postgres"],
                                                              small["cpu_ms_per_booking"]["postgres"]),
            "total_cpu_per_booking_large_over_small": ratio(large["cpu_ms_per_booking"]["total"],
                                                           small["cpu_ms_per_booking"]["total"]),
            "baseline_bookings_per_s_large_over_small": ratio(report["large"]["baseline"]["bookings_per_s"],
                                                             report["small"]["baseline"]["bookings_per_s"]),
            "statements_per_booking_small_large": [small["sql"]["per_unit"], large["sql"]["per_unit"]],
        }


def print_report(report: dict) -> None:
    load = report["machine_load_before"]
    print(f"\nbooking throughput — {report['settings']['clients']} clients, vetbook serve --workers "
          f"{report['settings']['workers']}, load client {report['settings']['client']} on {report['event_loop']}; "
          f"load average before: {load['loadavg_1m']} / {load['loadavg_5m']} / {load['loadavg_15m']} "
          f"({load['cpus']} CPUs); code {report['code']['commit']} "
          f"(+{report['code']['uncommitted_app_files']} uncommitted app files)")
    sizes = [size for size in ("small", "large") if size in report]
    header = ["", *[f"{size} ({report[size]['sizes']['slots']:,} slots, {report[size]['sizes']['bookings']:,} "
                    f"bookings, {report[size]['sizes']['partitions']} partitions)" for size in sizes]]
    if len(sizes) == 2:
        header.append("large/small")

    def row(label: str, pick, digits: int = 1) -> list:
        values = [pick(report[size]) for size in sizes]
        line = [label, *values]
        if len(sizes) == 2:
            line.append(ratio(values[1], values[0]) if all(isinstance(v, (int, float)) for v in values) else None)
        return line

    http = lambda r: r["http"]  # noqa: E731
    base = lambda r: r["baseline"]  # noqa: E731
    rows = [
        row("HTTP bookings/s", lambda r: http(r)["bookings_per_s"]),
        row("  pair p50 ms", lambda r: http(r)["pair_latency"]["p50_ms"]),
        row("  pair p99 ms", lambda r: http(r)["pair_latency"]["p99_ms"]),
        row("  errors", lambda r: ", ".join(f"{k}: {v}" for k, v in http(r)["errors"].items()) or "none"),
        row("  CPU ms/booking: app", lambda r: http(r)["cpu_ms_per_booking"]["app"]),
        row("  CPU ms/booking: PostgreSQL", lambda r: http(r)["cpu_ms_per_booking"]["postgres"]),
        row("  CPU ms/booking: load client", lambda r: http(r)["cpu_ms_per_booking"]["load_client"]),
        row("  CPU ms/booking: total", lambda r: http(r)["cpu_ms_per_booking"]["total"]),
        row("  connections per worker", lambda r: " / ".join(str(n) for n in http(r)["connections_per_worker"] or [])),
        row("  app CPU s per worker", lambda r: " / ".join(f"{v:.1f}" for v in http(r)["cpu_seconds"]["app_per_process"]
                                                          if v > 0.05)),
        row("  SQL statements/booking", lambda r: http(r)["sql"]["per_unit"]),
        row("  SQL exec ms/booking", lambda r: http(r)["sql"]["exec_ms_per_unit"]),
        row("  SQL plan ms/booking", lambda r: http(r)["sql"]["plan_ms_per_unit"]),
        row(f"baseline bookings/s ({report['small']['baseline']['tool']})", lambda r: base(r)["bookings_per_s"]),
        row("  pair p50 ms", lambda r: base(r)["pair_latency"]["p50_ms"]),
        row("  pair p99 ms", lambda r: base(r)["pair_latency"]["p99_ms"]),
        row("  CPU ms/booking: PostgreSQL", lambda r: base(r)["cpu_ms_per_booking"]["postgres"]),
        row("  CPU ms/booking: client", lambda r: base(r)["cpu_ms_per_booking"]["load_client"]),
        row("  SQL statements/booking", lambda r: base(r).get("script_statements_per_booking")
            or base(r)["sql"]["per_unit"]),
        row("HTTP / baseline", lambda r: r["http_over_baseline"]),
        row("RSS MB per worker (max)", lambda r: max(v for v in r["memory"]["rss_mb_per_worker"] if v)),
    ]
    print_table("hold + confirm", header, rows)
    for size in sizes:
        sql = report[size]["http"]["sql"]
        print_table(f"top statements by calls, HTTP run, {size} tables (calls per booking, mean ms)",
                    ["statement", "per booking", "mean ms", "ms/booking"],
                    [[s["query"][:110], s["per_unit"], s["mean_ms"], s["ms_per_unit"]] for s in sql["top_by_calls"]])
        print_table(f"top statements by total time, HTTP run, {size} tables",
                    ["statement", "per booking", "mean ms", "plan mean ms", "ms/booking", "plan ms/booking"],
                    [[s["query"][:110], s["per_unit"], s["mean_ms"], s["mean_plan_ms"], s["ms_per_unit"],
                      s["plan_ms_per_unit"]] for s in sql["top_by_time"][:6]])
    race_ = report["race"]
    print_table("last-places race", ["", "value"], [
        ["contenders / places", f"{race_['contenders']} / {race_['capacity']}"],
        ["connections per worker", " / ".join(str(n) for n in race_["connections_per_worker"])],
        ["all answered (ms)", race_["all_answered_ms"]],
        ["held (201 answers)", race_["held_201"]],
        ["held in the database", race_["held_in_database"]],
        ["answers by status", ", ".join(f"{k}: {v}" for k, v in sorted(race_["statuses"].items()))],
        ["p50 of a 201 / of a 409 (ms)", f"{race_['p50_201_ms']} / {race_['p50_409_ms']}"],
    ])
    if "bulk_load" in report:
        load_ = report["bulk_load"]
        print(f"\nbulk load: +{load_['slots_added']:,} slots, +{load_['bookings_added']:,} bookings "
              f"({load_['partitions_total']} partitions, {load_['database_mb']:,} MB) in {load_['seconds']['total_s']} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--client", choices=("raw", "httpx"), default="raw", help="the load client's HTTP library")
    parser.add_argument("--no-balance", dest="balance", action="store_false",
                        help="keep the connections wherever the kernel puts them (default: as many per worker)")
    parser.add_argument("--seconds", type=float, default=20, help="timed window of each HTTP run")
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--baseline", choices=("auto", "pgbench", "asyncpg"), default="auto")
    parser.add_argument("--baseline-seconds", type=float, default=10)
    parser.add_argument("--clinics", type=int, default=4)
    parser.add_argument("--slots", type=int, default=10_000, help="slots the HTTP clients book (all lanes)")
    parser.add_argument("--baseline-slots", type=int, default=16_000, help="slots the baseline books")
    parser.add_argument("--capacity", type=int, default=4, help="places per slot")
    parser.add_argument("--owners-per-client", type=int, default=8)
    parser.add_argument("--race-holds", type=int, default=500)
    parser.add_argument("--race-capacity", type=int, default=50)
    parser.add_argument("--large-slots", type=int, default=500_000, help="slots added for the flatness run (0: skip)")
    parser.add_argument("--large-bookings", type=int, default=500_000, help="bookings added for the flatness run")
    parser.add_argument("--full", action="store_true", help="the issue's sizes: 1,000,000 slots and bookings")
    parser.add_argument("--json", help="where to write the JSON report (default bench/results/booking_throughput.json)")
    args = parser.parse_args()
    stop_cleanly_on_sigterm()
    if args.full:
        args.large_slots, args.large_bookings = 1_000_000, 1_000_000

    report: dict = {"benchmark": "booking_throughput", "machine_load_before": machine_load(), "code": code_version(),
                    "event_loop": use_uvloop(), "settings": {k: v for k, v in vars(args).items() if k != "json"}}
    started = time.perf_counter()
    with throwaway_postgres() as (server, url, folder):
        app = None
        try:
            track_planning(server)
            scene = asyncio.run(seed(url, args))
            scene.extra["race_capacity"] = args.race_capacity
            report["scene"] = {"http_slots": scene.http_slots, "baseline_slots": scene.baseline_slots,
                               "capacity": scene.capacity, "first_day": scene.first_day,
                               "owners": args.clients * args.owners_per_client, "race_owners": len(scene.race_owners)}
            app = start_app(url, folder, args.workers, env={"VETBOOK_HOLD_RATE_LIMIT": "100000000/600"})
            report.update(asyncio.run(measure(server, url, app, scene, folder, args)))
        finally:
            if app is not None:
                stop_app(app)
    derived(report)
    report["machine_load_after"] = machine_load()
    report["wall_seconds"] = round(time.perf_counter() - started, 1)
    print_report(report)
    path = write_json(report, args.json, "booking_throughput")
    print(f"\nJSON: {path}  (wall time {report['wall_seconds']} s)")


if __name__ == "__main__":
    sys.exit(main())
