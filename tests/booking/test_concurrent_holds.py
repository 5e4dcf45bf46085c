"""200 holds at once on one slot of capacity 3, over real HTTP, spread over two app processes that share
the database: exactly three win, everyone else is told the slot was just taken, and the places add up.

The figures (answers, wall time, requests per second) are printed (``pytest -s``) and written to
test-artifacts/concurrency-figures.json for docs/booking-engine.md.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx

from tests.booking.helpers import clinic_scene, owner, slot
from tests.conftest import PROJECT_ROOT, run_cli, vetbook_command
from tests.servers import start_app, stop
from web.booking.services import SLOT_JUST_TAKEN

OWNERS = 50
REQUESTS_PER_OWNER = 4
CAPACITY = 3
PET_BUSY = "This pet already has a visit at an overlapping time."
FIGURES_PATH = PROJECT_ROOT / "test-artifacts" / "concurrency-figures.json"
SERVER_ENV = {
    "VETBOOK_DB_POOL_MAX": "20",
    # Every owner sends several holds at once: the per-owner hold limit is not what this test is about.
    "VETBOOK_HOLD_RATE_LIMIT": "100000/600",
}


def peak_in_flight(intervals: list[tuple[float, float]]) -> int:
    """The largest number of requests that were in flight at the same moment (client side)."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    current = peak = 0
    for _, step in events:
        current += step
        peak = max(peak, current)
    return peak


def _write_figures(path: Path, figures: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(figures, indent=2) + "\n")


async def start_two_apps(database_url: str, log_dir: Path) -> list:
    """Start both processes at once; if one fails, stop the other before raising."""
    started = await asyncio.gather(
        *(asyncio.to_thread(start_app, database_url, log_dir / f"app-{index}.log", env=SERVER_ENV)
          for index in range(2)),
        return_exceptions=True,
    )
    failures = [result for result in started if isinstance(result, BaseException)]
    if failures:
        for result in started:
            if not isinstance(result, BaseException):
                stop(result.process)
        raise failures[0]
    return list(started)


async def test_two_hundred_concurrent_holds_on_two_app_processes_take_exactly_the_three_places(
    own_database: str, conn: asyncpg.Connection, tmp_path: Path, quiet_httpx
) -> None:
    await two_hundred_holds_take_exactly_the_three_places(own_database, conn, tmp_path, FIGURES_PATH)


async def two_hundred_holds_take_exactly_the_three_places(database_url: str, conn: asyncpg.Connection,
                                                         tmp_path: Path, figures_path: Path) -> dict:
    """The test's body, for any database the in-process app's pool also uses (tests/citus runs it on a
    distributed one). Returns the figures."""
    scene = await clinic_scene(conn)
    contested = await slot(conn, scene, capacity=CAPACITY)
    owners = [await owner(conn) for _ in range(OWNERS)]

    servers = []
    try:
        servers = await start_two_apps(database_url, tmp_path)
        # Each owner sends its requests to both processes; the order is shuffled (fixed seed).
        plan = [
            (owners[index % OWNERS], servers[(index // OWNERS) % 2])
            for index in range(OWNERS * REQUESTS_PER_OWNER)
        ]
        random.Random(20261126).shuffle(plan)
        intervals: list[tuple[float, float]] = []

        async def hold(person, server) -> tuple:
            started = time.perf_counter()
            try:
                response = await devices[person.user_id].post(
                    server.url("/api/v1/reservations"), headers=person.headers,
                    json={"slot_id": str(contested["slot_id"]), "pet_id": str(person.pet["pet_id"])},
                )
            finally:
                intervals.append((started, time.perf_counter()))
            return person, response

        # One client per owner, as each owner has a phone of their own (one httpx pool holding 200
        # connections spends seconds choosing connections, which would measure the client, not the app).
        devices = {person.user_id: httpx.AsyncClient(timeout=httpx.Timeout(120.0)) for person in owners}
        try:
            # Both processes answer once before the burst, so the burst measures holds, not start-up.
            for server in servers:
                assert (await devices[owners[0].user_id].get(server.url("/api/v1/health"))).status_code == 200
            load_before = os.getloadavg()[0]
            began = time.perf_counter()
            results = await asyncio.gather(*(hold(person, server) for person, server in plan))
            wall_seconds = time.perf_counter() - began
        finally:
            for device in devices.values():
                await device.aclose()
        logs = [server.log() for server in servers]
    finally:
        await asyncio.gather(*(asyncio.to_thread(stop, server.process) for server in servers))

    statuses = Counter(response.status_code for _, response in results)
    pg_version = await conn.fetchval("SHOW server_version")
    figures = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "postgresql": pg_version,
        "app_processes": len(servers),
        "db_pool_max_per_process": int(SERVER_ENV["VETBOOK_DB_POOL_MAX"]),
        "owners": OWNERS,
        "requests": len(plan),
        "slot_capacity": CAPACITY,
        "answers": {str(code): count for code, count in sorted(statuses.items())},
        "wall_seconds": round(wall_seconds, 3),
        "requests_per_second": round(len(plan) / wall_seconds, 1),
        "peak_requests_in_flight": peak_in_flight(intervals),
        # The client, both app processes and PostgreSQL share these cores.
        "cpu_cores": os.cpu_count(),
        "load_average_1min_before": round(load_before, 2),
    }
    print(f"\nconcurrent holds: {json.dumps(figures)}")
    _write_figures(figures_path, figures)

    assert statuses == {201: CAPACITY, 409: len(plan) - CAPACITY}, statuses
    winners = [person for person, response in results if response.status_code == 201]
    assert len({person.user_id for person in winners}) == CAPACITY
    winner_ids = {person.user_id for person in winners}
    for person, response in results:
        if response.status_code != 409:
            continue
        assert response.headers["content-type"].startswith("application/problem+json")
        body = response.json()
        assert body["status"] == 409
        # A winner's other requests for the same pet are refused because the pet now holds that very
        # time; every other owner is told the slot was just taken.
        assert body["detail"] == (PET_BUSY if person.user_id in winner_ids else SLOT_JUST_TAKEN), body
    assert figures["peak_requests_in_flight"] >= len(plan) // 2, figures
    for log in logs:
        assert "Traceback" not in log and "unhandled error" not in log, log
        # Each process really served its half (uvicorn's access log).
        assert log.count('"POST /api/v1/reservations HTTP/1.1"') == len(plan) // 2

    clinic_id = scene.clinic["clinic_id"]
    remaining = await conn.fetchval("SELECT remaining FROM slots WHERE clinic_id = $1 AND slot_id = $2",
                                    clinic_id, contested["slot_id"])
    pending = await conn.fetch(
        "SELECT user_id FROM reservations WHERE clinic_id = $1 AND slot_id = $2 AND status = 'pending'",
        clinic_id, contested["slot_id"]
    )
    assert remaining == 0
    assert sorted(row["user_id"] for row in pending) == sorted(winner_ids)
    assert await conn.fetchval("SELECT count(*) FROM reservations") == CAPACITY
    check = run_cli(*vetbook_command("check"), database_url=database_url)
    assert check.stdout.startswith("ok:"), check.stdout
    return figures
