"""VetBook on a distributed database (a local Citus coordinator and two workers, migrated and distributed by
``vetbook citus distribute``): the engine's concurrency tests, the owner's journey through the API over real
HTTP, and the managers' analytics, each against the same checks as on plain PostgreSQL.

Skipped, with the reason, where Citus cannot run (tests/conftest.py ``citus_cluster``).
"""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.analytics.expected import EXPECTED_CSV_ROWS, expected_csv
from tests.analytics.test_analytics import WORLD_KPIS_OF_TEN_DAYS, build_world, expected_for, kpi_values
from tests.booking.test_concurrent_holds import two_hundred_holds_take_exactly_the_three_places
from tests.booking.test_interleavings import POOL_SIZE, interleavings_keep_every_slot_consistent
from tests.conftest import APP_POOL_MAX, PROJECT_ROOT, connected, restart_pool, run_cli, vetbook_command
from tests.db.factories import local_start, make_clinic, make_service, make_slot
from tests.servers import running_app
from web.analytics import services as analytics
from web.payments.providers import SandboxProvider
from web.settings import get_settings


@pytest.fixture
async def conn_citus(on_citus: str):
    async with connected(on_citus) as connection:
        yield connection


async def test_two_hundred_holds_on_three_places_take_exactly_three(on_citus: str, conn_citus: asyncpg.Connection,
                                                                   tmp_path: Path, quiet_httpx) -> None:
    figures = await two_hundred_holds_take_exactly_the_three_places(
        on_citus, conn_citus, tmp_path, PROJECT_ROOT / "test-artifacts" / "concurrency-figures-citus.json")
    assert figures["answers"] == {"201": 3, "409": 197}
    # Every row of the contest is on the one shard of its clinic.
    assert await conn_citus.fetchval("SELECT count(DISTINCT clinic_id) FROM reservations") == 1


@pytest.fixture
def generous_hold_limit(monkeypatch):
    monkeypatch.setenv("VETBOOK_HOLD_RATE_LIMIT", "100000/600")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


async def test_random_interleavings_keep_every_slot_consistent(on_citus: str, conn_citus: asyncpg.Connection,
                                                               generous_hold_limit) -> None:
    await restart_pool(POOL_SIZE, dsn=on_citus)
    try:
        await interleavings_keep_every_slot_consistent(on_citus, conn_citus, seed=1031)
    finally:
        await restart_pool(APP_POOL_MAX, dsn=on_citus)


async def _clinic_with_slots(conn: asyncpg.Connection) -> tuple[dict, dict, list[dict]]:
    clinic = await make_clinic(conn, timezone="Asia/Makassar")
    service = await make_service(conn, clinic, price=Decimal("150000"))
    slots = [await make_slot(conn, clinic, service, start=local_start(clinic, days_ahead=6, hour=hour),
                             capacity=2, remaining=2) for hour in (9, 10, 11)]
    return clinic, service, slots


async def test_the_owner_journey_through_the_api(citus_database_url: str, tmp_path: Path) -> None:
    """Register, add a pet, find the clinic, its service and a free slot, hold, confirm, pay in the sandbox
    gateway (its signed notification), see the booking paid, move it, cancel it with the refund: a real app
    process on the coordinator."""
    async with connected(citus_database_url) as conn:
        clinic, service, slots = await _clinic_with_slots(conn)
    day = slots[0]["date"]
    with running_app(citus_database_url, tmp_path / "app.log") as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            registered = await http.post("/api/v1/auth/register", json={
                "email": "citus.owner@example.test", "password": "a long enough password", "name": "Citus Owner",
                "phone": "+62 812 3456 7890"})
            assert registered.status_code == 201, registered.text
            token = await http.post("/api/v1/auth/token", json={"email": "citus.owner@example.test",
                                                                 "password": "a long enough password"})
            headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
            pet = (await http.post("/api/v1/pets", headers=headers, json={"name": "Kuro", "species": "cat"})).json()

            clinics = (await http.get("/api/v1/clinics", headers=headers)).json()
            assert str(clinic["clinic_id"]) in {row["clinic_id"] for row in clinics}
            services = (await http.get(f"/api/v1/clinics/{clinic['clinic_id']}/services", headers=headers)).json()
            assert [row["service_id"] for row in services] == [str(service["service_id"])]
            found = await http.get("/api/v1/slots", headers=headers, params={
                "clinic_id": str(clinic["clinic_id"]), "service_id": str(service["service_id"]), "date": str(day)})
            assert found.status_code == 200, found.text
            assert {row["slot_id"] for row in found.json()} == {str(slot["slot_id"]) for slot in slots}

            held = await http.post("/api/v1/reservations", headers=headers,
                                   json={"slot_id": str(slots[0]["slot_id"]), "pet_id": pet["pet_id"]})
            assert held.status_code == 201, held.text
            hold = held.json()
            confirmed = await http.post(f"/api/v1/reservations/{hold['reservation_id']}/confirm", headers=headers,
                                        json={"lock_token": hold["lock_token"]})
            assert confirmed.status_code == 201, confirmed.text
            booking = confirmed.json()
            assert booking["status"] == "pending_payment"

            started = await http.post(f"/api/v1/bookings/{booking['booking_id']}/payments", headers=headers,
                                      json={"provider": "sandbox", "idempotency_key": "citus-journey-01"})
            assert started.status_code == 201, started.text
            payment = started.json()
            notice = SandboxProvider().notification(payment["payment_id"], Decimal(payment["amount"]), "IDR",
                                                    approve=True)
            settled = await http.post("/api/v1/payments/sandbox/notifications", json=notice)
            assert settled.json() == {"payment_id": payment["payment_id"], "status": "completed", "changed": True}
            # The notification replayed changes nothing.
            replayed = await http.post("/api/v1/payments/sandbox/notifications", json=notice)
            assert replayed.json()["changed"] is False

            paid = (await http.get(f"/api/v1/bookings/{booking['booking_id']}", headers=headers)).json()
            assert (paid["status"], paid["payment_status"]) == ("confirmed", "paid")
            moved = await http.post(f"/api/v1/bookings/{booking['booking_id']}/reschedule", headers=headers,
                                    json={"slot_id": str(slots[1]["slot_id"]), "version": paid["version"]})
            assert moved.status_code == 200, moved.text
            replacement = moved.json()
            cancelled = await http.post(f"/api/v1/bookings/{replacement['booking_id']}/cancel", headers=headers,
                                        json={"reason": "schedule_conflict", "version": replacement["version"]})
            assert cancelled.status_code == 200, cancelled.text
            assert cancelled.json()["payment_status"] in ("partially_refunded", "paid")
            mine = (await http.get("/api/v1/bookings", headers=headers)).json()
            assert {(row["booking_id"], row["status"]) for row in mine} == {
                (booking["booking_id"], "rescheduled"), (replacement["booking_id"], "cancelled")}
    async with connected(citus_database_url) as conn:
        history = await conn.fetch(
            "SELECT booking_id, previous_status, new_status FROM booking_history ORDER BY changed_at")
        assert [(str(row["booking_id"]), row["previous_status"], row["new_status"]) for row in history] == [
            (booking["booking_id"], "pending_payment", "confirmed"),
            (booking["booking_id"], "confirmed", "rescheduled"),
            (replacement["booking_id"], "confirmed", "cancelled"),
        ]
        # Every place is where the bookings say.
        assert [await conn.fetchval("SELECT remaining FROM slots WHERE clinic_id = $1 AND slot_id = $2",
                                    clinic["clinic_id"], slot["slot_id"]) for slot in slots] == [2, 2, 2]
    check = run_cli(*vetbook_command("check"), database_url=citus_database_url)
    assert check.stdout.startswith("ok:"), check.stdout


async def test_analytics_over_the_distributed_tables(on_citus: str) -> None:
    """The materialized view (on the coordinator) over the distributed bookings, refreshed CONCURRENTLY,
    gives the figures plain SQL over bookings gives; the CSV rows too."""
    world = await build_world()
    manager, today = world["manager_user"], world["today"]
    first = today - timedelta(days=9)
    clinic_ids = [world["clinic"]["clinic_id"]]

    report = await analytics.analytics_report(manager, first, today)

    assert kpi_values(report) == await expected_for(first, today, clinic_ids)
    assert kpi_values(report) == WORLD_KPIS_OF_TEN_DAYS
    async with connected(on_citus) as conn:
        expected = await conn.fetch(EXPECTED_CSV_ROWS, today - timedelta(days=19), today, clinic_ids, None)
    text = await analytics.analytics_csv(manager, today - timedelta(days=19), today)
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == list(analytics.CSV_HEADER)
    assert sorted(rows[1:]) == sorted(expected_csv(expected))


async def test_live_updates_reach_an_open_page(citus_database_url: str, tmp_path: Path) -> None:
    """The app announces a hold on the coordinator (web/core/announcements.py), where it listens: the open
    stream of that clinic day hears it; a refused hold (rolled back) announces nothing."""
    from tests.live.test_live_updates import EventStream, _hold, _open_stream

    async with connected(citus_database_url) as conn:
        clinic, _service, slots = await _clinic_with_slots(conn)
        await conn.execute("UPDATE slots SET remaining = 0, status = 'booked' WHERE clinic_id = $1 AND slot_id = $2",
                           clinic["clinic_id"], slots[2]["slot_id"])
        with running_app(citus_database_url, tmp_path / "app.log") as server:
            async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
                async with await _open_stream(client, clinic["clinic_id"], slots[0]["date"]) as response:
                    stream = EventStream(response)
                    assert await stream.next_event() == ("slots-changed", slots[0]["date"].isoformat())
                    assert (await _hold(client, conn, slots[2])).status_code == 409
                    assert await stream.nothing_within(2)
                    assert (await _hold(client, conn, slots[0])).status_code == 201
                    assert await stream.next_event() == ("slots-changed", slots[0]["date"].isoformat())


async def test_the_pages_of_owners_desk_and_managers_render_on_citus(on_citus: str, conn_citus: asyncpg.Connection,
                                                                    client: httpx.AsyncClient) -> None:
    """Every page reads across the distributed tables the way Citus can run: the owner's finder and bookings
    (across clinics), the desk's day, look-ups by code and phone and the walk-in form, the slots list, and the
    manager's analytics. Each answers 200 with the booking in it."""
    from tests.accounts.helpers import make_person, web_session
    from tests.booking.helpers import book, clinic_scene, owner, slot
    from web.booking.codes import display_booking_code

    scene = await clinic_scene(conn_citus)
    person = await owner(conn_citus, phone="+62 812 5555 0101")
    elsewhere = await clinic_scene(conn_citus)
    booking = await book(person, await slot(conn_citus, scene, days=3))
    other = await book(person, await slot(conn_citus, elsewhere, days=4))
    code = display_booking_code(booking["booking_code"])
    day = booking["slot_date"]

    await web_session(client, person.row)
    mine = await client.get("/bookings")
    # Both bookings, each on its clinic's shard, on one page.
    assert mine.status_code == 200
    assert f'data-booking-id="{booking["booking_id"]}"' in mine.text
    assert f'data-booking-id="{other["booking_id"]}"' in mine.text
    assert (await client.get(f"/bookings/{booking['booking_id']}")).status_code == 200
    finder = await client.get("/book/slots", params={"clinic": str(scene.clinic["clinic_id"]),
                                                     "service": str(scene.service["service_id"]), "date": str(day)})
    assert finder.status_code == 200

    client.cookies.clear()
    await web_session(client, scene.receptionist.row)
    clinic = str(scene.clinic["clinic_id"])
    grid = await client.get("/desk/", params={"clinic": clinic, "date": str(day)})
    assert grid.status_code == 200 and code in grid.text
    found = await client.get("/desk/bookings", params={"code": code}, follow_redirects=False)
    assert found.status_code == 303 and str(booking["booking_id"]) in found.headers["location"]
    assert (await client.get(f"/desk/bookings/{booking['booking_id']}")).status_code == 200
    walk_in = await client.get("/desk/book", params={"clinic": clinic, "date": str(day), "q": "0812 5555 0101"})
    assert walk_in.status_code == 200 and person.row["name"] in walk_in.text
    assert (await client.get("/desk/slots", params={"clinic": clinic})).status_code == 200

    client.cookies.clear()
    manager = await make_person("manager", clinic_id=scene.clinic["clinic_id"])
    await web_session(client, manager)
    assert (await client.get("/manage/analytics")).status_code == 200
