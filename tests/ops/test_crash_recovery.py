"""kill -9 of the app in the middle of a burst of holds and confirmations loses no place: every
transaction either committed or rolled back, and the expiry job of the next process returns the places
of holds nobody will confirm."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from datetime import date, timedelta

import asyncpg
import httpx

from tests.conftest import cloned_database, run_cli, vetbook_command
from tests.servers import running_app, start_app, stop
from web.accounts.passwords import hash_password

OWNERS = 12


async def _owner_sessions(http: httpx.AsyncClient, database_url: str) -> list[dict]:
    """OWNERS owners with a pet each, written in SQL (fast), signed in through the API."""
    password_hash = hash_password("crash-test-pw")
    connection = await asyncpg.connect(database_url)
    try:
        emails = [f"crash-{index}-{uuid.uuid4().hex[:6]}@example.test" for index in range(OWNERS)]
        await connection.executemany(
            "INSERT INTO users (email, name, role, password_hash) VALUES ($1, 'Crash Test', 'owner', $2)",
            [(email, password_hash) for email in emails],
        )
    finally:
        await connection.close()
    owners = []
    for index, email in enumerate(emails):
        token = (await http.post("/api/v1/auth/token", json={"email": email, "password": "crash-test-pw"})).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        pet = (await http.post("/api/v1/pets", headers=headers, json={"name": f"Pet {index}", "species": "dog"})).json()
        owners.append({"headers": headers, "pet_id": pet["pet_id"]})
    return owners


async def _hold_and_confirm(base_url: str, owner: dict, slot_ids: list[str]) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        for slot_id in slot_ids:
            try:
                hold = await http.post("/api/v1/reservations", headers=owner["headers"],
                                       json={"slot_id": slot_id, "pet_id": owner["pet_id"]})
                if hold.status_code == 201:
                    await http.post(f"/api/v1/reservations/{hold.json()['reservation_id']}/confirm",
                                    headers=owner["headers"], json={"lock_token": hold.json()["lock_token"]})
            except httpx.TransportError:
                return  # the server died under us: exactly what this test does


PENDING_HOLDS = "SELECT count(*) FROM reservations WHERE status = 'pending'"


async def _count(database_url: str, query: str) -> int:
    connection = await asyncpg.connect(database_url)
    try:
        return await connection.fetchval(query)
    finally:
        await connection.close()


async def test_kill_9_mid_burst_loses_no_place(pg_server, template_database, tmp_path) -> None:
    with cloned_database(pg_server, template_database, "crash") as database_url:
        run_cli(*vetbook_command("demo"), database_url=database_url)
        env = {"HOLD_TTL_SECONDS": "3", "VETBOOK_HOLD_RATE_LIMIT": "1000/60", "VETBOOK_DB_POOL_MAX": "10"}
        server = start_app(database_url, tmp_path / "first.log", env=env)
        try:
            async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
                owners = await _owner_sessions(http, database_url)
                first = owners[0]["headers"]
                clinic = (await http.get("/api/v1/clinics", headers=first)).json()[0]
                services = (await http.get(f"/api/v1/clinics/{clinic['clinic_id']}/services", headers=first)).json()
                grooming = next(service for service in services if service["name"] == "Grooming")
                slot_ids: list[str] = []
                for days in range(1, 10):
                    slot_ids += [slot["slot_id"] for slot in (await http.get("/api/v1/slots", headers=first, params={
                        "clinic_id": clinic["clinic_id"], "service_id": grooming["service_id"],
                        "date": (date.today() + timedelta(days=days)).isoformat()})).json()]
            assert len(slot_ids) >= 6
            burst = [asyncio.create_task(_hold_and_confirm(server.base_url, owner, slot_ids[i % 3::3][:4]))
                     for i, owner in enumerate(owners)]
            # Kill as soon as the burst is under way: some holds made, most requests still in flight.
            for _ in range(300):
                if await _count(database_url, "SELECT count(*) FROM reservations") >= 3:
                    break
                await asyncio.sleep(0.02)
            os.kill(server.process.pid, signal.SIGKILL)  # no shutdown, no cleanup
            await asyncio.gather(*burst)
        finally:
            stop(server.process)

        # The burst got somewhere before the kill, and whatever had committed is consistent at once.
        assert await _count(database_url, "SELECT count(*) FROM reservations") > 0
        assert run_cli(*vetbook_command("check"), database_url=database_url).returncode == 0

        # The next process's expiry job returns the places of the abandoned holds.
        with running_app(database_url, tmp_path / "second.log", env=env):
            for _ in range(60):
                if not await _count(database_url, PENDING_HOLDS):
                    break
                await asyncio.sleep(0.5)
        assert await _count(database_url, PENDING_HOLDS) == 0
        assert run_cli(*vetbook_command("check"), database_url=database_url).stdout.startswith("ok")
