"""The JSON API's slot search offers exactly what a hold would take (the one shared "bookable" condition),
and opening a slot refuses amounts that are not numbers."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
import httpx

from tests.booking.helpers import clinic_scene, owner
from tests.db.factories import make_slot, start_between
from web.booking import services


async def search(client: httpx.AsyncClient, headers: dict, scene, day) -> list[str]:
    response = await client.get("/api/v1/slots", headers=headers, params={
        "clinic_id": str(scene.clinic["clinic_id"]), "service_id": str(scene.service["service_id"]),
        "date": day.isoformat()})
    assert response.status_code == 200, response.text
    return [row["slot_id"] for row in response.json()]


async def test_slots_inside_the_booking_notice_are_not_offered(own_database, conn: asyncpg.Connection,
                                                               client: httpx.AsyncClient) -> None:
    scene = await clinic_scene(conn, min_booking_notice_minutes=60)
    person = await owner(conn)
    zone = scene.clinic["timezone"]
    too_soon = await make_slot(conn, scene.clinic, scene.service, start=start_between(
        zone, timedelta(minutes=10), timedelta(minutes=45), minutes=5), minutes=5)
    later = await make_slot(conn, scene.clinic, scene.service, start=start_between(
        zone, timedelta(hours=3), timedelta(hours=6), minutes=5), minutes=5)

    assert str(too_soon["slot_id"]) not in await search(client, person.headers, scene, too_soon["date"])
    assert str(later["slot_id"]) in await search(client, person.headers, scene, later["date"])
    # What the search leaves out is exactly what a hold refuses.
    refused = await client.post("/api/v1/reservations", headers=person.headers, json={
        "slot_id": str(too_soon["slot_id"]), "pet_id": str(person.pet["pet_id"])})
    assert refused.status_code == 409 and "before the start" in refused.json()["detail"]
    held = await services.hold(person.user, later["slot_id"], person.pet["pet_id"])
    assert held["status"] == "pending"


async def test_a_slot_price_that_is_not_a_number_is_refused(own_database, conn: asyncpg.Connection,
                                                            client: httpx.AsyncClient) -> None:
    scene = await clinic_scene(conn)
    start = start_between(scene.clinic["timezone"], timedelta(days=3), timedelta(days=4))
    for price in ("NaN", "sNaN", "Infinity", "-1"):
        response = await client.post("/api/v1/slots", headers=scene.receptionist.headers, json={
            "clinic_id": str(scene.clinic["clinic_id"]), "service_id": str(scene.service["service_id"]),
            "start_time": start.isoformat(), "end_time": (start + timedelta(minutes=30)).isoformat(),
            "capacity": 1, "price": price})
        assert response.status_code == 422, (price, response.text)
    assert await conn.fetchval("SELECT count(*) FROM slots") == 0


async def test_the_api_creates_slots_by_the_generators_rules(own_database, conn: asyncpg.Connection,
                                                             client: httpx.AsyncClient) -> None:
    # One slot from the API and a week from the template follow the same rules: a service no longer
    # offered, someone who left, a 2-minute slot and 101 places are refused, each with its field named.
    scene = await clinic_scene(conn)
    start = start_between(scene.clinic["timezone"], timedelta(days=3), timedelta(days=4))
    body = {"clinic_id": str(scene.clinic["clinic_id"]), "service_id": str(scene.service["service_id"]),
            "start_time": start.isoformat(), "end_time": (start + timedelta(minutes=30)).isoformat(), "capacity": 1}
    await conn.execute("UPDATE services SET is_active = false WHERE service_id = $1", scene.service["service_id"])
    refused = await client.post("/api/v1/slots", headers=scene.receptionist.headers, json=body)
    assert refused.status_code == 422, refused.text
    assert "service_id" in refused.text and "no longer offered" in refused.text
    await conn.execute("UPDATE services SET is_active = true WHERE service_id = $1", scene.service["service_id"])
    await conn.execute("UPDATE staff SET is_active = false WHERE staff_id = $1", scene.staff["staff_id"])
    for change, field in (({"staff_id": str(scene.staff["staff_id"])}, "staff_id"),
                          ({"end_time": (start + timedelta(minutes=2)).isoformat()}, "end_time"),
                          ({"capacity": 101}, "capacity")):
        response = await client.post("/api/v1/slots", headers=scene.receptionist.headers, json=body | change)
        assert response.status_code == 422, (change, response.text)
        assert field in response.text, (change, response.text)
    assert await conn.fetchval("SELECT count(*) FROM slots") == 0
    created = await client.post("/api/v1/slots", headers=scene.receptionist.headers, json=body)
    assert created.status_code == 201, created.text
    assert await conn.fetchval("SELECT count(*) FROM slots") == 1
