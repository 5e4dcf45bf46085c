"""Holding, confirming and releasing over HTTP with plain forms (no JavaScript) and with HTMX."""

from __future__ import annotations

import re
from urllib.parse import unquote

import asyncpg
import httpx

from tests.booking.conftest import FinderScene, csrf, owner_with_pet, sign_in
from web.booking import services as booking_services

RESERVATION_URL = re.compile(r"^/reservations/([0-9a-f-]{36})$")


async def hold_form(page_client: httpx.AsyncClient, finder_scene: FinderScene, slot: dict, pet: dict | None = None) -> dict:
    return {"_csrf_token": await csrf(page_client), "slot_id": str(slot["slot_id"]),
            "pet_id": str((pet or finder_scene.pet)["pet_id"])}


async def test_hold_then_confirm_without_javascript(page_client: httpx.AsyncClient, finder_scene: FinderScene,
                                                   db: asyncpg.Connection) -> None:
    await sign_in(page_client, finder_scene.owner)

    held = await page_client.post("/book/hold", data=await hold_form(page_client, finder_scene, finder_scene.slots[0]))

    assert held.status_code == 303
    reservation_id = RESERVATION_URL.match(held.headers["location"]).group(1)
    assert await db.fetchval("SELECT remaining FROM slots WHERE slot_id = $1", finder_scene.slots[0]["slot_id"]) == 0
    page = await page_client.get(held.headers["location"])
    assert page.status_code == 200
    html = page.text
    assert 'data-testid="hold-countdown"' in html and 'data-expires-at="' in html
    assert "We hold this time for you until" in html and "WITA" in html
    assert "10:00\u202fAM WITA" in html and finder_scene.clinic["address"] in html and finder_scene.pet["name"] in html
    assert 'data-testid="price-final">IDR150,000<' in html
    assert 'data-testid="price-discount">IDR0<' in html
    lock_token = await db.fetchval("SELECT lock_token FROM reservations WHERE reservation_id = $1", reservation_id)
    assert f'type="hidden" name="lock_token" value="{lock_token}"' in html
    assert "/static/countdown.js" in html

    confirmed = await page_client.post(f"/reservations/{reservation_id}/confirm", data={
        "_csrf_token": await csrf(page_client), "lock_token": lock_token, "notes": "Shy with other cats"})

    assert confirmed.status_code == 303
    booking = await db.fetchrow("SELECT * FROM bookings WHERE reservation_id = $1", reservation_id)
    assert confirmed.headers["location"] == f"/bookings/{booking['booking_id']}/pay"
    assert (booking["status"], booking["payment_status"], booking["booking_source"]) == (
        "pending_payment", "pending", "web")
    assert booking["notes"] == "Shy with other cats" and booking["final_amount"] == finder_scene.service["price"]
    # The confirmed hold's page goes on to the payment.
    again = await page_client.get(f"/reservations/{reservation_id}")
    assert again.status_code == 303 and again.headers["location"] == confirmed.headers["location"]


async def test_htmx_hold_redirects_the_browser(page_client: httpx.AsyncClient, finder_scene: FinderScene) -> None:
    await sign_in(page_client, finder_scene.owner)
    held = await page_client.post("/book/hold", data=await hold_form(page_client, finder_scene, finder_scene.slots[1]),
                             headers={"HX-Request": "true", "HX-Target": "hold-form"})
    assert held.status_code == 200
    assert RESERVATION_URL.match(held.headers["hx-redirect"])


async def test_a_slot_just_taken_says_so_and_offers_the_nearest_free_slots(
        page_client: httpx.AsyncClient, finder_scene: FinderScene, db: asyncpg.Connection) -> None:
    other, other_pet = await owner_with_pet()
    await booking_services.hold(other, finder_scene.slots[0]["slot_id"], other_pet["pet_id"])
    await sign_in(page_client, finder_scene.owner)
    before = await db.fetchval("SELECT count(*) FROM reservations WHERE user_id = $1", finder_scene.owner.user_id)

    plain = await page_client.post("/book/hold", data=await hold_form(page_client, finder_scene, finder_scene.slots[0]))

    assert plain.status_code == 409
    assert 'data-testid="slot-taken-message"' in plain.text
    assert "this slot was just taken" in plain.text
    nearest = re.findall(r'data-testid="nearest-slot" data-slot-id="([0-9a-f-]+)"', plain.text)
    assert nearest == [str(finder_scene.slots[1]["slot_id"])]
    assert '<html' in plain.text  # the whole finder again, on the same day

    htmx = await page_client.post("/book/hold", data=await hold_form(page_client, finder_scene, finder_scene.slots[0]),
                             headers={"HX-Request": "true"})
    assert htmx.status_code == 200
    assert 'hx-target="#hold-feedback"' in (await page_client.get(finder_scene.finder())).text
    assert 'data-testid="slot-taken-message"' in htmx.text and "<html" not in htmx.text
    assert await db.fetchval("SELECT count(*) FROM reservations WHERE user_id = $1", finder_scene.owner.user_id) == before


async def test_bad_hold_input_is_refused_with_a_message(page_client: httpx.AsyncClient, finder_scene: FinderScene) -> None:
    await sign_in(page_client, finder_scene.owner)
    token = await csrf(page_client)
    for form, status in (({"slot_id": "nope", "pet_id": str(finder_scene.pet["pet_id"])}, 422),
                         ({"pet_id": str(finder_scene.pet["pet_id"])}, 422),
                         ({"slot_id": str(finder_scene.slots[0]["slot_id"])}, 422),
                         ({"slot_id": "00000000-0000-4000-8000-000000000000", "pet_id": str(finder_scene.pet["pet_id"])}, 404)):
        response = await page_client.post("/book/hold", data={"_csrf_token": token, **form})
        assert response.status_code == status, form
        assert "text/html" in response.headers["content-type"]
    _, strangers_pet = await owner_with_pet()
    response = await page_client.post("/book/hold", data=await hold_form(page_client, finder_scene, finder_scene.slots[0], strangers_pet))
    assert response.status_code == 404


async def test_a_visitor_who_clicks_hold_is_sent_to_log_in_first(page_client: httpx.AsyncClient, finder_scene: FinderScene) -> None:
    response = await page_client.post("/book/hold", data=await hold_form(page_client, finder_scene, finder_scene.slots[0]))
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith("/login?next=")
    assert unquote(location.removeprefix("/login?next=")).startswith(f"/book?clinic={finder_scene.clinic['clinic_id']}")


async def test_someone_elses_hold_is_not_found(page_client: httpx.AsyncClient, finder_scene: FinderScene) -> None:
    held = await booking_services.hold(finder_scene.owner, finder_scene.slots[0]["slot_id"], finder_scene.pet["pet_id"])
    stranger, _ = await owner_with_pet()
    await sign_in(page_client, stranger)
    token = await csrf(page_client)
    url = f"/reservations/{held['reservation_id']}"
    assert (await page_client.get(url)).status_code == 404
    assert (await page_client.post(url + "/confirm", data={"_csrf_token": token,
                                                      "lock_token": held["lock_token"]})).status_code == 404
    assert (await page_client.post(url + "/release", data={"_csrf_token": token})).status_code == 404


async def test_release_returns_to_the_finder_and_the_hold_then_shows_as_over(
        page_client: httpx.AsyncClient, finder_scene: FinderScene, db: asyncpg.Connection) -> None:
    held = await booking_services.hold(finder_scene.owner, finder_scene.slots[0]["slot_id"], finder_scene.pet["pet_id"])
    await sign_in(page_client, finder_scene.owner)
    url = f"/reservations/{held['reservation_id']}"

    released = await page_client.post(url + "/release", data={"_csrf_token": await csrf(page_client)})

    assert released.status_code == 303
    assert released.headers["location"] == finder_scene.finder(pet=str(finder_scene.pet["pet_id"]))
    assert await db.fetchval("SELECT remaining FROM slots WHERE slot_id = $1", finder_scene.slots[0]["slot_id"]) == 1
    page = (await page_client.get(url)).text
    assert 'data-testid="hold-expired"' in page and 'data-testid="confirm-form"' not in page
    assert f'href="{finder_scene.finder(pet=str(finder_scene.pet["pet_id"])).replace("&", "&amp;")}"' in page


async def test_an_expired_hold_says_so_and_cannot_be_confirmed(
        page_client: httpx.AsyncClient, finder_scene: FinderScene, db: asyncpg.Connection) -> None:
    held = await booking_services.hold(finder_scene.owner, finder_scene.slots[1]["slot_id"], finder_scene.pet["pet_id"])
    await db.execute("UPDATE reservations SET created_at = now() - interval '20 minutes', "
                     "expires_at = now() - interval '1 second' WHERE reservation_id = $1", held["reservation_id"])
    await sign_in(page_client, finder_scene.owner)
    url = f"/reservations/{held['reservation_id']}"

    page = await page_client.get(url)
    assert page.status_code == 200 and 'data-testid="hold-expired"' in page.text

    refused = await page_client.post(url + "/confirm", data={"_csrf_token": await csrf(page_client),
                                                        "lock_token": held["lock_token"]})
    assert refused.status_code == 410
    assert 'data-testid="hold-expired"' in refused.text and 'data-testid="reservation-message"' in refused.text
    assert await db.fetchval("SELECT count(*) FROM bookings WHERE reservation_id = $1", held["reservation_id"]) == 0
    assert await db.fetchval("SELECT remaining FROM slots WHERE slot_id = $1", finder_scene.slots[1]["slot_id"]) == 1


async def test_a_wrong_token_or_too_long_notes_keep_the_confirm_page(
        page_client: httpx.AsyncClient, finder_scene: FinderScene, db: asyncpg.Connection) -> None:
    held = await booking_services.hold(finder_scene.owner, finder_scene.slots[0]["slot_id"], finder_scene.pet["pet_id"])
    await sign_in(page_client, finder_scene.owner)
    url = f"/reservations/{held['reservation_id']}/confirm"

    wrong = await page_client.post(url, data={"_csrf_token": await csrf(page_client), "lock_token": "x" * 43})
    assert wrong.status_code == 409
    assert 'data-testid="reservation-message"' in wrong.text and 'data-testid="confirm-form"' in wrong.text

    long_notes = await page_client.post(url, data={"_csrf_token": await csrf(page_client), "lock_token": held["lock_token"],
                                              "notes": "n" * 2001})
    assert long_notes.status_code == 422 and 'data-testid="error-notes"' in long_notes.text
    assert await db.fetchval("SELECT count(*) FROM bookings WHERE reservation_id = $1", held["reservation_id"]) == 0
