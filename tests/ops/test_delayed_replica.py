"""The app against a standby that replays 2 s late (``recovery_min_apply_delay``): people read their own
writes everywhere reads go to the replica, while others are served the replica's older data (which proves
the replica is used); the replica runs no write statement of the app; stopping it changes nothing for
people, and readiness says it is away. The app is a real process; both servers are real.

The journeys: an owner holds, confirms, pays (sandbox gateway) and finds the slot's places and the booking
changed; a receptionist opens a slot and finds it in the slot search; a manager refreshes the analytics and
sees the new "data as of".
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest

from tests.accounts.helpers import CSRF_INPUT
from tests.conftest import run_cli, vetbook_command
from tests.db.factories import (
    local_start,
    make_clinic,
    make_pet,
    make_service,
    make_session,
    make_slot,
    make_user,
)
from tests.servers import LiveServer, running_app
from web.core import routing
from web.core.embedded_postgres import LocalPostgres

REPLAY_DELAY = "2s"
AS_OF = 'data-as-of="'

# A statement that changes rows (a SELECT's "updated_at" or "FOR UPDATE" is none of these).
WRITE_STATEMENT = r"\b(insert\s+into|update\s+\w+\s+set|delete\s+from|merge\s+into)\b"


@dataclass
class Scene:
    app: LiveServer
    primary: LocalPostgres
    standby: LocalPostgres
    clinic_id: str
    timezone: str
    service_id: str
    slot_id: str
    day: str
    owner_token: str
    owner_session: str
    pet_id: str
    stranger_token: str
    receptionist_token: str
    manager_session: str
    # A manager of every clinic: the database health page is theirs.
    chain_manager_session: str


async def _seed(url: str) -> dict:
    connection = await asyncpg.connect(url)
    try:
        clinic = await make_clinic(connection)
        service = await make_service(connection, clinic)
        slot = await make_slot(connection, clinic, service, None, start=local_start(clinic, 5, 10), capacity=4,
                               remaining=4)
        owner, stranger = await make_user(connection), await make_user(connection)
        pet = await make_pet(connection, owner)
        receptionist = await make_user(connection, role="receptionist", clinic=clinic)
        manager = await make_user(connection, role="manager", clinic=clinic)
        return {
            "clinic_id": str(clinic["clinic_id"]), "timezone": clinic["timezone"], "service_id": str(service["service_id"]),
            "slot_id": str(slot["slot_id"]), "day": slot["date"].isoformat(), "pet_id": str(pet["pet_id"]),
            "owner_token": await make_session(connection, owner, "api"),
            "owner_session": await make_session(connection, owner, "web"),
            "stranger_token": await make_session(connection, stranger, "api"),
            "receptionist_token": await make_session(connection, receptionist, "api"),
            "manager_session": await make_session(connection, manager, "web"),
            "chain_manager_session": await make_session(connection, await make_user(connection, role="manager"),
                                                        "web"),
        }
    finally:
        await connection.close()


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    folder = tmp_path_factory.mktemp("delayed-replica")
    primary = LocalPostgres(folder / "primary", fast=True)
    standby = LocalPostgres(folder / "standby", fast=True, standby_of=primary,
                            settings={"recovery_min_apply_delay": REPLAY_DELAY})
    try:
        url = primary.start()
        run_cli(*vetbook_command("migrate"), database_url=url)
        seeded = asyncio.run(_seed(url))
        replica_url = standby.start()
        standby.wait_for_replay(primary.wal_position())
        env = {"DATABASE_REPLICA_URL": replica_url, "VETBOOK_REPLICA_MAX_LAG_SECONDS": "60",
               "VETBOOK_SANDBOX_PAYMENTS": "1"}
        with running_app(url, folder / "app.log", env=env) as app:
            yield Scene(app, primary, standby, **seeded)
    finally:
        standby.destroy()
        primary.destroy()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _places(http: httpx.AsyncClient, scene: Scene, token: str) -> dict[str, int]:
    """The slot search (a replica-routed read): slot id -> places left."""
    found = await http.get("/api/v1/slots", headers=_bearer(token), params={
        "clinic_id": scene.clinic_id, "service_id": scene.service_id, "date": scene.day})
    assert found.status_code == 200, found.text
    return {slot["slot_id"]: slot["remaining"] for slot in found.json()}


async def _wait_until_the_replica_is_used(http: httpx.AsyncClient, scene: Scene) -> None:
    """The app uses a replica once its watcher has measured it (every WATCH_SECONDS): readiness measures it
    too, and two of the watcher's rounds later the app has."""
    async with asyncio.timeout(20):
        while True:
            replicas = (await http.get("/api/v1/ready")).json()["replicas"]
            if replicas and replicas[0]["lag_bytes"] is not None and replicas[0]["lag_seconds"] is not None:
                break
            await asyncio.sleep(0.2)
    await asyncio.sleep(2 * routing.WATCH_SECONDS)


async def test_an_owner_sees_the_hold_and_the_paid_booking_while_others_read_the_late_replica(scene: Scene) -> None:
    # The API with the owner's token; the gateway's page (HTML) with the owner's login cookie.
    async with httpx.AsyncClient(base_url=scene.app.base_url, timeout=30,
                                 cookies={"vb_session": scene.owner_session}) as owner, \
            httpx.AsyncClient(base_url=scene.app.base_url, timeout=30) as stranger:
        await _wait_until_the_replica_is_used(owner, scene)
        before = (await _places(stranger, scene, scene.stranger_token))[scene.slot_id]

        held = await owner.post("/api/v1/reservations", headers=_bearer(scene.owner_token),
                                json={"slot_id": scene.slot_id, "pet_id": scene.pet_id})
        assert held.status_code == 201, held.text
        # At once: the owner's own read waits for (or skips) the late replica; the stranger gets its old data.
        mine, theirs = await asyncio.gather(_places(owner, scene, scene.owner_token),
                                            _places(stranger, scene, scene.stranger_token))
        assert mine[scene.slot_id] == before - 1
        assert theirs[scene.slot_id] == before, "the stranger's read did not come from the late replica"

        hold = held.json()
        booked = await owner.post(f"/api/v1/reservations/{hold['reservation_id']}/confirm",
                                  headers=_bearer(scene.owner_token), json={"lock_token": hold["lock_token"]})
        assert booked.status_code == 201, booked.text
        booking_id = booked.json()["booking_id"]
        payment = await owner.post(f"/api/v1/bookings/{booking_id}/payments", headers=_bearer(scene.owner_token),
                                   json={"provider": "sandbox", "idempotency_key": uuid.uuid4().hex})
        assert payment.status_code == 201, payment.text
        pay_page = await owner.get(f"/sandbox/pay/{payment.json()['payment_id']}")
        assert pay_page.status_code == 200, pay_page.text
        paid = await owner.post(f"/sandbox/pay/{payment.json()['payment_id']}",
                                data={"_csrf_token": CSRF_INPUT.search(pay_page.text).group(1), "decision": "pay"})
        assert paid.status_code in (200, 303), paid.text

        seen = await owner.get(f"/api/v1/bookings/{booking_id}", headers=_bearer(scene.owner_token))
        assert (seen.json()["status"], seen.json()["payment_status"]) == ("confirmed", "paid")
        assert (await _places(owner, scene, scene.owner_token))[scene.slot_id] == before - 1


async def test_a_receptionist_finds_the_slot_just_opened(scene: Scene) -> None:
    async with httpx.AsyncClient(base_url=scene.app.base_url, timeout=30) as desk, \
            httpx.AsyncClient(base_url=scene.app.base_url, timeout=30) as stranger:
        await _wait_until_the_replica_is_used(desk, scene)
        # On the seeded slot's day (the one searched), in the afternoon of the clinic's zone.
        start = datetime.combine(date.fromisoformat(scene.day), time(16), ZoneInfo(scene.timezone))
        opened = await desk.post("/api/v1/slots", headers=_bearer(scene.receptionist_token), json={
            "clinic_id": scene.clinic_id, "service_id": scene.service_id, "start_time": start.isoformat(),
            "end_time": (start + timedelta(minutes=30)).isoformat(), "capacity": 2})
        assert opened.status_code == 201, opened.text
        new_slot = opened.json()["slot_id"]
        found, elsewhere = await asyncio.gather(_places(desk, scene, scene.receptionist_token),
                                                _places(stranger, scene, scene.stranger_token))
        assert found.get(new_slot) == 2
        assert new_slot not in elsewhere, "the stranger's read did not come from the late replica"


async def test_a_manager_sees_the_new_data_as_of_after_refresh_now(scene: Scene) -> None:
    cookies = {"vb_session": scene.manager_session}
    async with httpx.AsyncClient(base_url=scene.app.base_url, timeout=30, cookies=cookies) as manager:
        await _wait_until_the_replica_is_used(manager, scene)
        page = await manager.get("/manage/analytics")
        assert page.status_code == 200, page.text
        as_of = page.text.split(AS_OF, 1)[1].split('"', 1)[0]
        refreshed = await manager.post("/manage/analytics/refresh",
                                       data={"_csrf_token": CSRF_INPUT.search(page.text).group(1)})
        assert refreshed.status_code == 303, refreshed.text
        after = await manager.get(refreshed.headers["location"])
        new_as_of = after.text.split(AS_OF, 1)[1].split('"', 1)[0]
        assert new_as_of and new_as_of > as_of, (as_of, new_as_of)


def _node_section(html: str, marker: str) -> str:
    """The part of the health page from ``marker`` to the next node's section (or the tables' sections)."""
    start = html.index(marker)
    ends = [html.find(end, start + len(marker)) for end in ('data-testid="node-replica"', 'data-testid="dead-tuples"')]
    return html[start:min(end for end in ends if end != -1)]


async def test_the_database_health_page_shows_each_node_with_its_own_figures(scene: Scene) -> None:
    cookies = {"vb_session": scene.chain_manager_session}
    async with httpx.AsyncClient(base_url=scene.app.base_url, timeout=30, cookies=cookies) as manager:
        await _wait_until_the_replica_is_used(manager, scene)
        await _places(manager, scene, scene.stranger_token)  # a read the replica answers
        page = await manager.get("/manage/database")
    assert page.status_code == 200, page.text
    primary = _node_section(page.text, 'data-testid="node-primary"')
    replica = _node_section(page.text, 'data-testid="node-replica" data-node="replica-1"')
    for node in (primary, replica):
        assert re.search(r'data-testid="cache-database">\d+\.\d %', node)
        assert 'data-testid="slow-statement"' in node
    assert 'data-testid="replica-lag"' in replica
    # The primary names its streaming standby.
    assert 'data-testid="standby-row"' in primary
    # The replica's statements are its own: the primary's writes are not among them.
    assert not re.search(WRITE_STATEMENT, replica, re.IGNORECASE)


async def test_the_replica_ran_reads_only_and_its_loss_changes_nothing_for_people(scene: Scene) -> None:
    # After the journeys above (the file's order), whose reads the replica served, and one more of its own.
    async with httpx.AsyncClient(base_url=scene.app.base_url, timeout=30) as reader:
        await _wait_until_the_replica_is_used(reader, scene)
        await _places(reader, scene, scene.stranger_token)
    replica = await asyncpg.connect(scene.standby.url())
    try:
        statements = await replica.fetch(
            "SELECT query, calls FROM pg_stat_statements "
            "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())")
    finally:
        await replica.close()
    assert any("FROM slots" in row["query"] and row["calls"] > 0 for row in statements), \
        "the slot search never ran on the replica"
    writes = [row["query"] for row in statements if re.search(WRITE_STATEMENT, row["query"], re.IGNORECASE)]
    assert writes == []

    scene.standby.stop()
    async with httpx.AsyncClient(base_url=scene.app.base_url, timeout=30) as reader:
        places = await _places(reader, scene, scene.stranger_token)
        assert places[scene.slot_id] >= 0
        ready = await reader.get("/api/v1/ready")
        assert ready.status_code == 200
        assert ready.json()["ready"] is True
        assert ready.json()["replicas"][0]["reachable"] is False
        reader.cookies.set("vb_session", scene.chain_manager_session)
        health = await reader.get("/manage/database")
        assert health.status_code == 200
        assert 'data-testid="replica-unreachable"' in health.text
