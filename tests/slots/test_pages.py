"""The desk's slot pages over HTTP (in-process app): forms, 303s, 4xx pages with messages, nothing written
on bad input, and the cancel-and-block confirmation."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import asyncpg
import httpx

from tests.accounts.helpers import csrf_token, web_session
from tests.booking.helpers import clinic_scene, owner, paid_booking, slot, snapshot

ENGLISH = {"Accept-Language": "en"}


async def signed_in(client: httpx.AsyncClient, scene) -> str:
    client.cookies.clear()
    client.headers.update(ENGLISH)
    await web_session(client, scene.receptionist.row)
    return await csrf_token(client, f"/desk/slots?clinic={scene.clinic['clinic_id']}")


def week_form(scene, token: str, **overrides) -> dict:
    first = datetime.now(ZoneInfo(scene.clinic["timezone"])).date() + timedelta(days=1)
    form = {"_csrf_token": token, "weekday": ["0", "1", "2", "3", "4", "5", "6"], "opening": "09:00",
            "closing": "10:00", "service_id": str(scene.service["service_id"]),
            "staff_id": str(scene.staff["staff_id"]), "length_minutes": "", "capacity": "1", "price": "",
            "first_day": first.isoformat(), "last_day": (first + timedelta(days=6)).isoformat()}
    return form | overrides


async def test_generate_form_then_list_and_again_zero_new(own_database, conn: asyncpg.Connection,
                                                          client: httpx.AsyncClient) -> None:
    scene = await clinic_scene(conn)
    token = await signed_in(client, scene)
    url = f"/desk/slots/generate?clinic={scene.clinic['clinic_id']}"
    form_page = await client.get(url)
    assert form_page.status_code == 200 and 'data-testid="weekday-6"' in form_page.text

    created = await client.post(url, data=week_form(scene, token))
    assert created.status_code == 303
    listing = await client.get(created.headers["location"])
    assert "14 new slots created; 0 already existed." in listing.text
    assert listing.text.count('data-testid="slot-row"') == 14

    again = await client.post(url, data=week_form(scene, token))
    listing = await client.get(again.headers["location"])
    assert "0 new slots created; 14 already existed." in listing.text
    assert await conn.fetchval("SELECT count(*) FROM slots WHERE clinic_id = $1", scene.clinic["clinic_id"]) == 14


async def test_bad_generate_input_is_a_422_page_with_messages_and_writes_nothing(
        own_database, conn: asyncpg.Connection, client: httpx.AsyncClient) -> None:
    scene = await clinic_scene(conn)
    token = await signed_in(client, scene)
    url = f"/desk/slots/generate?clinic={scene.clinic['clinic_id']}"
    for overrides, message in (
        ({"opening": "12:00", "closing": "09:00"}, "The closing time must be after the opening time."),
        ({"opening": "nine"}, "Give a time like 09:00."),
        ({"capacity": "0"}, "Capacity must be between 1 and 100."),
        ({"price": "12.5"}, "Give the price in whole rupiah"),
        ({"weekday": []}, "Choose at least one weekday."),
        ({"service_id": "not-a-uuid"}, "Choose one from the list."),
    ):
        response = await client.post(url, data=week_form(scene, token, **overrides))
        assert response.status_code == 422, (overrides, response.status_code)
        assert message in response.text, overrides
    assert await conn.fetchval("SELECT count(*) FROM slots WHERE clinic_id = $1", scene.clinic["clinic_id"]) == 0


async def test_an_overlap_is_a_409_page_listing_the_clash(own_database, conn: asyncpg.Connection,
                                                           client: httpx.AsyncClient) -> None:
    scene = await clinic_scene(conn)
    token = await signed_in(client, scene)
    url = f"/desk/slots/generate?clinic={scene.clinic['clinic_id']}"
    assert (await client.post(url, data=week_form(scene, token))).status_code == 303
    other = await conn.fetchrow("INSERT INTO services (clinic_id, name, duration_minutes, price) "
                                "VALUES ($1, 'Grooming', 60, 90000) RETURNING service_id", scene.clinic["clinic_id"])
    response = await client.post(url, data=week_form(scene, token, service_id=str(other["service_id"]),
                                                     opening="09:30", closing="10:30"))
    assert response.status_code == 409
    assert "already has slots at overlapping times" in response.text
    assert 'data-testid="generate-clashes"' in response.text
    assert await conn.fetchval("SELECT count(*) FROM slots WHERE service_id = $1", other["service_id"]) == 0


async def test_block_with_bookings_offers_cancel_and_block_which_refunds_in_full(
        own_database, conn: asyncpg.Connection, client: httpx.AsyncClient) -> None:
    scene = await clinic_scene(conn)
    customer = await owner(conn)
    target = await slot(conn, scene)
    booking = await paid_booking(customer, target)
    token = await signed_in(client, scene)
    clinic = scene.clinic["clinic_id"]
    before = await snapshot(conn)

    refused = await client.post(f"/desk/slots/block?clinic={clinic}",
                                data={"_csrf_token": token, "slot_id": str(target["slot_id"]), "reason": "leave"})

    assert refused.status_code == 409
    assert "These slots have active bookings" in refused.text
    code = booking["booking_code"]
    assert f"{code[:4]}-{code[4:]}" in refused.text
    assert await snapshot(conn) == before
    form = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">',
                           refused.text.split('data-testid="slots-cancel-and-block-form"')[1].split("</form>")[0]))
    assert form["slot_id"] == str(target["slot_id"]) and form["reason"] == "leave"

    done = await client.post(f"/desk/slots/cancel-and-block?clinic={clinic}", data={**form, "_csrf_token": token})

    assert done.status_code == 303
    listing = await client.get(done.headers["location"])
    assert "1 booking cancelled with a full refund" in listing.text
    row = await conn.fetchrow("SELECT status, payment_status, refunded_amount, final_amount FROM bookings "
                              "WHERE booking_id = $1", booking["booking_id"])
    assert (row["status"], row["payment_status"]) == ("cancelled", "refunded")
    assert row["refunded_amount"] == row["final_amount"] == Decimal("150000.00")
    assert await conn.fetchval("SELECT status FROM slots WHERE slot_id = $1", target["slot_id"]) == "unavailable"


async def test_block_and_unblock_a_range(own_database, conn: asyncpg.Connection, client: httpx.AsyncClient) -> None:
    scene = await clinic_scene(conn)
    first, second = await slot(conn, scene, hour=9), await slot(conn, scene, hour=10)
    token = await signed_in(client, scene)
    clinic = scene.clinic["clinic_id"]
    day = first["date"].isoformat()
    blocked = await client.post(f"/desk/slots/block?clinic={clinic}",
                                data={"_csrf_token": token, "first_day": day, "last_day": day})
    assert blocked.status_code == 303
    assert "2 slots blocked" in (await client.get(blocked.headers["location"])).text
    statuses = await conn.fetch("SELECT status FROM slots WHERE slot_id = ANY($1)", [first["slot_id"], second["slot_id"]])
    assert {row["status"] for row in statuses} == {"maintenance"}
    opened = await client.post(f"/desk/slots/unblock?clinic={clinic}",
                               data={"_csrf_token": token, "slot_id": [str(first["slot_id"])]})
    assert opened.status_code == 303
    assert await conn.fetchval("SELECT status FROM slots WHERE slot_id = $1", first["slot_id"]) == "available"
    assert await conn.fetchval("SELECT status FROM slots WHERE slot_id = $1", second["slot_id"]) == "maintenance"

    nothing = await client.post(f"/desk/slots/block?clinic={clinic}", data={"_csrf_token": token})
    assert nothing.status_code == 422 and "Choose slots, or a range of days." in nothing.text
