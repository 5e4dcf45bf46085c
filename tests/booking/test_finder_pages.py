"""The slot finder over HTTP: the plain-GET page (no JavaScript), its HTMX parts, bad input, the inline
"add your pet" form."""

from __future__ import annotations

import re
from datetime import timedelta

import asyncpg
import httpx

from tests.accounts.helpers import make_person
from tests.booking.conftest import FinderScene, add_slot, csrf, owner_with_pet, sign_in
from web.accounts.services import load_current_user


def find_testids(html: str, testid: str) -> list[str]:
    return re.findall(rf'data-testid="{re.escape(testid)}"', html)


async def test_a_visitor_browses_the_day_in_clinic_time_with_prices_in_rupiah(
        page_client: httpx.AsyncClient, finder_scene: FinderScene) -> None:
    response = await page_client.get(finder_scene.finder())

    assert response.status_code == 200
    html = response.text
    assert "Jl. Sunset Road 88, Kuta" in html
    assert "Local time: WITA" in html
    assert "IDR150,000" in html
    # Both slots, in the clinic's time with its zone's name; a visitor sees times but no hold button.
    assert "10:00\u202fAM WITA" in html and "11:00\u202fAM WITA" in html
    assert len(find_testids(html, "slot-info")) == 2 and not find_testids(html, "hold-slot")
    assert "/login?next=%2Fbook%3Fclinic%3D" in html
    # Live: the list sits in an SSE section of this clinic day and refetches itself on a change.
    assert f'sse-connect="/live/clinics/{finder_scene.clinic["clinic_id"]}/days/{finder_scene.day.isoformat()}?topics=slots"' in html
    assert 'hx-trigger="sse:slots-changed"' in html


async def test_the_week_strip_counts_places_per_day(page_client: httpx.AsyncClient, finder_scene: FinderScene, db) -> None:
    await add_slot(db, finder_scene.clinic, finder_scene.service, finder_scene.day + timedelta(days=1), 9, capacity=3)

    html = (await page_client.get(finder_scene.finder())).text

    days = dict(re.findall(r'data-testid="week-day" data-date="([0-9-]+)" data-places="(\d+)"', html))
    assert len(days) == 7
    assert days[finder_scene.day.isoformat()] == "2"
    assert days[(finder_scene.day + timedelta(days=1)).isoformat()] == "3"
    assert sum(int(places) for places in days.values()) == 5
    assert 'data-testid="week-next"' in html


async def test_an_owner_gets_hold_buttons_for_the_first_pet(page_client: httpx.AsyncClient, finder_scene: FinderScene) -> None:
    await sign_in(page_client, finder_scene.owner)

    html = (await page_client.get(finder_scene.finder())).text

    assert len(find_testids(html, "hold-slot")) == 2
    assert f'name="pet_id" value="{finder_scene.pet["pet_id"]}"' in html
    assert 'data-testid="nav-book"' in html


async def test_htmx_gets_only_the_finder_and_the_live_list(page_client: httpx.AsyncClient, finder_scene: FinderScene) -> None:
    part = await page_client.get(finder_scene.finder(), headers={"HX-Request": "true", "HX-Target": "finder"})
    assert part.status_code == 200
    assert "<html" not in part.text and part.text.lstrip().startswith("<div id=\"finder\"")

    slot_list = await page_client.get(finder_scene.finder().replace("/book?", "/book/slots?"), headers={"HX-Request": "true"})
    assert slot_list.status_code == 200
    assert slot_list.text.lstrip().startswith('<div id="slot-list"')
    assert 'data-refreshed="true"' in slot_list.text
    assert len(find_testids(slot_list.text, "slot-info")) == 2

    # A history restore (the cache missed) needs the whole page.
    restore = await page_client.get(finder_scene.finder(), headers={"HX-Request": "true", "HX-Target": "finder",
                                                        "HX-History-Restore-Request": "true"})
    assert "<html" in restore.text


async def test_a_full_slot_is_not_offered(page_client: httpx.AsyncClient, finder_scene: FinderScene, db) -> None:
    await db.execute("UPDATE slots SET remaining = 0, status = 'booked' WHERE slot_id = $1 AND date = $2",
                     finder_scene.slots[0]["slot_id"], finder_scene.day)
    try:
        html = (await page_client.get(finder_scene.finder())).text
        assert str(finder_scene.slots[0]["slot_id"]) not in html
        assert str(finder_scene.slots[1]["slot_id"]) in html
    finally:
        await db.execute("UPDATE slots SET remaining = 1, status = 'available' WHERE slot_id = $1 AND date = $2",
                         finder_scene.slots[0]["slot_id"], finder_scene.day)


async def test_bad_choices_get_a_message_not_a_crash(page_client: httpx.AsyncClient, finder_scene: FinderScene) -> None:
    for query, status in (("clinic=not-a-uuid", 422), ("date=2026-13-45", 422), ("service=12", 422),
                          ("clinic=00000000-0000-4000-8000-000000000000", 404)):
        response = await page_client.get("/book?" + query)
        assert response.status_code == status, query
        assert "text/html" in response.headers["content-type"]
    assert "YYYY-MM-DD" in (await page_client.get("/book?date=tomorrow")).text
    # A service of another clinic (after the clinic changed) falls back to the clinic's own.
    other = await page_client.get(f"/book?clinic={finder_scene.clinic['clinic_id']}&service=00000000-0000-4000-8000-000000000000")
    assert other.status_code == 200 and finder_scene.service["name"] in other.text


async def test_a_day_in_the_past_shows_today(page_client: httpx.AsyncClient, finder_scene: FinderScene) -> None:
    response = await page_client.get(finder_scene.finder().replace(finder_scene.day.isoformat(), "2020-01-01"))
    assert response.status_code == 200
    assert 'data-testid="week-prev"' not in response.text


async def test_an_owner_without_a_pet_adds_one_inline_and_comes_back(page_client: httpx.AsyncClient, finder_scene: FinderScene,
                                                                     db: asyncpg.Connection) -> None:
    owner, _ = await owner_with_pet(with_pet=False)
    await sign_in(page_client, owner)
    html = (await page_client.get(finder_scene.finder())).text
    assert 'data-testid="add-pet-form"' in html and not find_testids(html, "hold-slot")
    token = await csrf(page_client)
    form = {"_csrf_token": token, "clinic": str(finder_scene.clinic["clinic_id"]),
            "service": str(finder_scene.service["service_id"]), "date": finder_scene.day.isoformat()}

    refused = await page_client.post("/book/pet", data={**form, "name": "", "species": "cat"})
    assert refused.status_code == 422
    assert 'data-testid="error-name"' in refused.text
    assert await db.fetchval("SELECT count(*) FROM pets WHERE owner_id = $1", owner.user_id) == 0

    added = await page_client.post("/book/pet", data={**form, "name": "Kiki", "species": "rabbit"})
    assert added.status_code == 303
    pet_id = await db.fetchval("SELECT pet_id FROM pets WHERE owner_id = $1 AND name = 'Kiki'", owner.user_id)
    assert added.headers["location"] == finder_scene.finder(pet=str(pet_id))
    back = (await page_client.get(added.headers["location"])).text
    assert len(find_testids(back, "hold-slot")) == 2 and f'value="{pet_id}"' in back


async def test_staff_browse_but_do_not_hold(page_client: httpx.AsyncClient, finder_scene: FinderScene) -> None:
    receptionist = await load_current_user((await make_person("receptionist", clinic_id=finder_scene.clinic["clinic_id"]))
                                           ["user_id"])
    await sign_in(page_client, receptionist)
    html = (await page_client.get(finder_scene.finder())).text
    assert not find_testids(html, "hold-slot") and 'data-testid="nav-book"' not in html
    token = await csrf(page_client)
    refused = await page_client.post("/book/hold", data={"_csrf_token": token, "slot_id": str(finder_scene.slots[0]["slot_id"]),
                                                    "pet_id": str(finder_scene.pet["pet_id"])})
    assert refused.status_code == 403
