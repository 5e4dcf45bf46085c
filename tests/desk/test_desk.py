"""The desk over HTTP (in-process app): the day grid equals the database, scope per clinic, check-in by
code, staff transitions, payment at the desk, and walk-in / phone bookings made through the engine.

Each test builds its own clinics (unique names) in the session's app database, on a day two days ahead
(so that every slot is in the future whatever the time of day), and looks only at its own rows.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest

from tests.accounts.helpers import CSRF_INPUT, api_token, make_person, web_session
from tests.booking import helpers as booking_scenes
from tests.booking.helpers import Person, book
from tests.db.factories import local_start, make_clinic, make_service, make_slot, make_staff
from web.accounts.auth import CurrentUser
from web.accounts.passwords import verify_password
from web.accounts.services import load_current_user
from web.booking import services as engine
from web.booking.codes import display_booking_code
from web.desk import services as desk

EN = {"Accept-Language": "en"}
DAYS_AHEAD = 2


@dataclass
class Desk:
    clinic: dict
    service: dict
    vets: list[dict]
    receptionist: dict
    receptionist_user: CurrentUser
    day: date
    slots: dict[str, dict]


async def desk_scene(db: asyncpg.Connection, zone: str = "Asia/Jakarta") -> Desk:
    clinic = await make_clinic(db, name=f"Desk {uuid.uuid4().hex[:8]}", timezone=zone)
    service = await make_service(db, clinic, name="Check-up", price=Decimal("150000"))
    vets = [await make_staff(db, clinic, name="drh. Ayu"), await make_staff(db, clinic, name="drh. Budi")]
    receptionist = await make_person("receptionist", clinic_id=clinic["clinic_id"])

    def at(hour: int) -> datetime:
        return local_start(clinic, days_ahead=DAYS_AHEAD, hour=hour)

    slots = {
        "ayu_9": await make_slot(db, clinic, service, vets[0], start=at(9)),
        "budi_9": await make_slot(db, clinic, service, vets[1], start=at(9), capacity=2, remaining=2),
        "open_10": await make_slot(db, clinic, service, None, start=at(10), capacity=3, remaining=3),
        "blocked_11": await make_slot(db, clinic, service, vets[0], start=at(11), status="maintenance"),
        "ayu_12": await make_slot(db, clinic, service, vets[0], start=at(12)),
    }
    return Desk(clinic, service, vets, receptionist, await load_current_user(receptionist["user_id"]),
                slots["ayu_9"]["date"], slots)


async def make_owner(db: asyncpg.Connection, phone: str | None = None, pet_name: str = "Milo") -> Person:
    """An owner the desk can find: a name of its own, ``phone``, and one cat, ``pet_name``."""
    return await booking_scenes.owner(db, with_token=False, pet_name=pet_name,
                                      name=f"Owner {uuid.uuid4().hex[:4]}", phone=phone)


async def signed_in(client: httpx.AsyncClient, person: dict, page: str = "/desk") -> str:
    """Give ``client`` a web session for ``person``; returns a CSRF token for its forms."""
    client.cookies.clear()
    await web_session(client, person)
    response = await client.get(page, headers=EN)
    match = CSRF_INPUT.search(response.text)
    assert match, response.text[:500]
    return match.group(1)


async def booking_row(db: asyncpg.Connection, booking_id) -> dict:
    return dict(await db.fetchrow("SELECT * FROM bookings WHERE booking_id = $1", booking_id))


def grid_booking_ids(html: str) -> set[str]:
    return set(re.findall(r'data-testid="grid-booking" data-booking-id="([0-9a-f-]+)"', html))


# ------------------------------------------------------------------ the day grid


async def test_the_grid_shows_exactly_the_days_standing_bookings_of_the_clinic(
        client: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    scene = await desk_scene(db)
    other = await desk_scene(db)
    owners = [await make_owner(db, phone="+62 811 1000 001"), await make_owner(db), await make_owner(db)]
    kept = [await book(owners[0], scene.slots["ayu_9"]), await book(owners[1], scene.slots["budi_9"])]
    cancelled = await book(owners[2], scene.slots["open_10"])
    await engine.cancel(scene.receptionist_user, cancelled["booking_id"], "clinic_request", cancelled["version"])
    elsewhere = await book(owners[2], other.slots["ayu_12"])

    await signed_in(client, scene.receptionist)
    response = await client.get(f"/desk?date={scene.day.isoformat()}", headers=EN)
    assert response.status_code == 200
    expected = {str(row["booking_id"]) for row in await db.fetch(
        "SELECT booking_id FROM bookings WHERE clinic_id = $1 AND slot_date = $2 "
        "AND status NOT IN ('cancelled', 'rescheduled')", scene.clinic["clinic_id"], scene.day)}
    assert grid_booking_ids(response.text) == expected == {str(booking["booking_id"]) for booking in kept}
    assert str(elsewhere["booking_id"]) not in response.text and str(cancelled["booking_id"]) not in response.text
    # Each booking shows its pet, owner, phone, code, status and payment status.
    for booking, owner in zip(kept, owners, strict=False):
        assert display_booking_code(booking["booking_code"]) in response.text
        assert owner.row["name"] in response.text
    assert "+62 811 1000 001" in response.text
    assert 'data-status="pending_payment"' in response.text and 'data-payment-status="pending"' in response.text
    # Every slot of the day is a cell; the blocked one says so; columns are the vets and "Unassigned".
    slot_ids = set(re.findall(r'data-testid="grid-slot" data-slot-id="([0-9a-f-]+)"', response.text))
    assert slot_ids == {str(slot["slot_id"]) for slot in scene.slots.values()}
    assert response.text.count('data-testid="slot-blocked"') == 1
    assert re.findall(r'data-testid="grid-column">([^<]+)<', response.text) == ["drh. Ayu", "drh. Budi", "Unassigned"]
    # The live wrapper follows this clinic day; the fragment it refetches is the same grid.
    assert f'sse-connect="/live/clinics/{scene.clinic["clinic_id"]}/days/{scene.day.isoformat()}?topics=slots,bookings"' \
        in response.text
    fragment = await client.get(f"/desk/grid?clinic={scene.clinic['clinic_id']}&date={scene.day.isoformat()}", headers=EN)
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert grid_booking_ids(fragment.text) == expected


async def test_the_grid_is_one_structure_in_start_order(db: asyncpg.Connection, app) -> None:
    scene = await desk_scene(db)
    grid = await desk.day_grid(scene.clinic, scene.day)
    assert [row.local_time.hour for row in grid.rows] == [9, 10, 11, 12]
    assert [column.name for column in grid.columns] == ["drh. Ayu", "drh. Budi", None]
    nine = grid.rows[0]
    assert [len(cell) for cell in nine.cells] == [1, 1, 0]
    assert grid.rows[2].cells[0][0].blocked


async def test_today_is_the_default_day_and_other_days_are_reachable(client: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    scene = await desk_scene(db, zone="Asia/Jayapura")
    await signed_in(client, scene.receptionist)
    today = datetime.now(ZoneInfo("Asia/Jayapura")).date()
    response = await client.get("/desk", headers=EN)
    assert f'data-day="{today.isoformat()}"' in response.text
    assert f"date={(today + timedelta(days=1)).isoformat()}" in response.text
    assert f"date={(today - timedelta(days=1)).isoformat()}" in response.text
    bad = await client.get("/desk?date=not-a-day", headers=EN)
    assert bad.status_code == 422 and "YYYY-MM-DD" in bad.text


async def test_a_manager_switches_between_their_clinics(client: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    scene = await desk_scene(db)
    manager = await make_person("manager")  # manages every clinic
    await signed_in(client, manager)
    response = await client.get(f"/desk?clinic={scene.clinic['clinic_id']}&date={scene.day.isoformat()}", headers=EN)
    assert response.status_code == 200 and scene.clinic["name"] in response.text
    assert 'data-testid="clinic-select"' in response.text


# ------------------------------------------------------------------ scope


async def test_a_receptionist_never_sees_another_clinics_bookings(client: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    scene = await desk_scene(db)
    other = await desk_scene(db)
    theirs = await book(await make_owner(db), other.slots["ayu_9"])
    await signed_in(client, scene.receptionist)
    assert (await client.get(f"/desk/bookings/{theirs['booking_id']}", headers=EN)).status_code == 404
    assert (await client.get(f"/desk?clinic={other.clinic['clinic_id']}", headers=EN)).status_code == 404
    assert (await client.get(f"/desk/grid?clinic={other.clinic['clinic_id']}", headers=EN)).status_code == 404
    lookup = await client.get("/desk/bookings", params={"code": theirs["booking_code"]}, headers=EN)
    assert lookup.status_code == 404 and "No booking at your clinic" in lookup.text
    day = await client.get(f"/desk?date={other.day.isoformat()}", headers=EN)
    assert str(theirs["booking_id"]) not in day.text
    csrf = CSRF_INPUT.search(day.text).group(1)
    for action in ("check-in", "complete", "no-show", "payment"):
        answer = await client.post(f"/desk/bookings/{theirs['booking_id']}/{action}",
                                   data={"_csrf_token": csrf, "version": "1"}, headers=EN)
        assert answer.status_code == 404, action
    assert (await booking_row(db, theirs["booking_id"]))["status"] == "pending_payment"
    # The API agrees.
    headers = await api_token(scene.receptionist)
    listed = await client.get("/api/v1/bookings", headers=headers)
    assert listed.status_code == 200
    assert str(theirs["booking_id"]) not in {item["booking_id"] for item in listed.json()}
    assert (await client.get(f"/api/v1/bookings/{theirs['booking_id']}", headers=headers)).status_code == 404
    # An owner is not staff.
    owner = await make_owner(db)
    client.cookies.clear()
    await web_session(client, owner.row)
    assert (await client.get("/desk", headers=EN)).status_code == 403


# ------------------------------------------------------------------ check-in by code


@pytest.mark.parametrize("typed", ["{lower_dashed}", "{spaced}", "{code}"])
async def test_a_booking_is_found_by_its_code_however_it_is_typed(
        client: httpx.AsyncClient, db: asyncpg.Connection, typed: str) -> None:
    scene = await desk_scene(db)
    booking = await book(await make_owner(db), scene.slots["ayu_9"])
    code = booking["booking_code"]
    text = typed.format(code=code, lower_dashed=display_booking_code(code).lower(), spaced=f" {code[:4]} {code[4:]} ")
    await signed_in(client, scene.receptionist)
    response = await client.get("/desk/bookings", params={"code": text}, headers=EN)
    assert response.status_code == 303
    assert response.headers["location"] == f"/desk/bookings/{booking['booking_id']}"
    page = await client.get(response.headers["location"], headers=EN)
    assert page.status_code == 200 and display_booking_code(code) in page.text
    assert 'data-testid="take-payment"' in page.text and 'data-testid="check-in"' not in page.text


@pytest.mark.parametrize(("typed", "status", "message"), [
    ("xx", 422, "A booking code has 8 letters and digits"),
    ("O0O0-1I1I", 422, "A booking code has 8 letters and digits"),
    ("", 422, "A booking code has 8 letters and digits"),
    ("ZZZZ-ZZZZ", 404, "No booking at your clinic has the code ZZZZ-ZZZZ"),
])
async def test_a_wrong_code_gets_a_message_not_an_error(client: httpx.AsyncClient, db: asyncpg.Connection,
                                                        typed: str, status: int, message: str) -> None:
    scene = await desk_scene(db)
    await signed_in(client, scene.receptionist)
    response = await client.get("/desk/bookings", params={"code": typed}, headers=EN)
    assert response.status_code == status
    assert message in response.text and 'data-testid="checkin-code"' in response.text


async def test_several_bookings_with_one_code_are_listed(client: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    scene = await desk_scene(db)
    first = await book(await make_owner(db), scene.slots["ayu_9"])
    second = await book(await make_owner(db), scene.slots["budi_9"])
    await db.execute("UPDATE bookings SET booking_code = $2 WHERE booking_id = $1", second["booking_id"], first["booking_code"])
    await signed_in(client, scene.receptionist)
    response = await client.get("/desk/bookings", params={"code": first["booking_code"]}, headers=EN)
    assert response.status_code == 200
    assert response.text.count('data-testid="lookup-match"') == 2


# ------------------------------------------------------------------ the desk's booking page


async def test_pay_check_in_complete_at_the_desk_with_versions(client: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    scene = await desk_scene(db)
    booking = await book(await make_owner(db), scene.slots["ayu_9"])
    url = f"/desk/bookings/{booking['booking_id']}"
    csrf = await signed_in(client, scene.receptionist, url)
    # Check-in before payment: the state machine says no, nothing changes.
    refused = await client.post(f"{url}/check-in", data={"_csrf_token": csrf, "version": "1"}, headers=EN)
    assert refused.status_code == 409 and "cannot be checked in" in refused.text
    paid = await client.post(f"{url}/payment", data={"_csrf_token": csrf}, headers=EN)
    assert paid.status_code == 303 and paid.headers["location"] == f"{url}?done=paid"
    row = await booking_row(db, booking["booking_id"])
    assert (row["status"], row["payment_status"]) == ("confirmed", "paid")
    payment = await db.fetchrow("SELECT * FROM payment_records WHERE payment_id = $1", row["payment_id"])
    assert (payment["payment_provider"], payment["status"], payment["amount"]) == ("clinic", "completed", Decimal("150000"))
    # Paying again: refused with a message, no second payment.
    again = await client.post(f"{url}/payment", data={"_csrf_token": csrf}, headers=EN)
    assert again.status_code == 409 and "already paid" in again.text
    assert await db.fetchval("SELECT count(*) FROM payment_records WHERE booking_id = $1", booking["booking_id"]) == 1

    checked = await client.post(f"{url}/check-in", data={"_csrf_token": csrf, "version": str(row["version"])}, headers=EN)
    assert checked.status_code == 303
    row = await booking_row(db, booking["booking_id"])
    assert row["status"] == "in_progress"
    # A stale version (another desk acted meanwhile): a clear message and the current state, no change.
    stale = await client.post(f"{url}/complete", data={"_csrf_token": csrf, "version": str(row["version"] - 1)}, headers=EN)
    assert stale.status_code == 409 and "changed meanwhile" in stale.text and 'data-status="in_progress"' in stale.text
    assert (await booking_row(db, booking["booking_id"]))["status"] == "in_progress"
    bad = await client.post(f"{url}/complete", data={"_csrf_token": csrf, "version": "x"}, headers=EN)
    assert bad.status_code == 422
    done = await client.post(f"{url}/complete", data={"_csrf_token": csrf, "version": str(row["version"])}, headers=EN)
    assert done.status_code == 303
    assert (await booking_row(db, booking["booking_id"]))["status"] == "completed"
    history = await db.fetch("SELECT new_status, changed_by FROM booking_history WHERE booking_id = $1 ORDER BY changed_at",
                             booking["booking_id"])
    assert [row["changed_by"] for row in history if row["new_status"] != "pending_payment"] == \
        [scene.receptionist["user_id"]] * 3


async def test_no_show_after_the_start(client: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    zone = daytime_zone()
    scene = await desk_scene(db, zone=zone)
    now = datetime.now(ZoneInfo(zone)).replace(second=0, microsecond=0)
    slot = await make_slot(db, scene.clinic, scene.service, scene.vets[1], start=now + timedelta(hours=2))
    booking = await book(await make_owner(db), slot)
    url = f"/desk/bookings/{booking['booking_id']}"
    csrf = await signed_in(client, scene.receptionist, url)
    await client.post(f"{url}/payment", data={"_csrf_token": csrf}, headers=EN)
    row = await booking_row(db, booking["booking_id"])
    assert row["status"] == "confirmed"
    early = await client.post(f"{url}/no-show", data={"_csrf_token": csrf, "version": str(row["version"])}, headers=EN)
    assert early.status_code == 409 and "only after its start time" in early.text
    await move_into_the_past(db, slot, now)
    page = await client.get(url, headers=EN)
    assert 'data-testid="no-show"' in page.text
    marked = await client.post(f"{url}/no-show", data={"_csrf_token": csrf, "version": str(row["version"])}, headers=EN)
    assert marked.status_code == 303
    assert (await booking_row(db, booking["booking_id"]))["status"] == "no_show"


def daytime_zone() -> str:
    """A clinic zone where it is now between 01:00 and 20:59, so that a slot two hours from now and one a
    few minutes ago are both on today's date."""
    for zone in ("Asia/Jakarta", "Asia/Makassar", "Asia/Jayapura", "Europe/London", "America/New_York",
                 "Pacific/Honolulu"):
        if 1 <= datetime.now(ZoneInfo(zone)).hour <= 20:
            return zone
    raise AssertionError("no zone in daytime")


async def move_into_the_past(db: asyncpg.Connection, slot: dict, now: datetime) -> None:
    """The visit's time came: the slot started five minutes ago (same day, so the same partition)."""
    start = now - timedelta(minutes=5)
    await db.execute("UPDATE slots SET start_time = $3, end_time = $4 WHERE slot_id = $1 AND date = $2",
                     slot["slot_id"], slot["date"], start, start + timedelta(minutes=30))


# ------------------------------------------------------------------ walk-ins and phone bookings


async def test_a_walk_in_for_a_new_owner_and_pet(client: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    scene = await desk_scene(db)
    page = f"/desk/book?clinic={scene.clinic['clinic_id']}&date={scene.day.isoformat()}"
    csrf = await signed_in(client, scene.receptionist, page)
    form = await client.get(page, headers=EN)
    assert str(scene.slots["ayu_9"]["slot_id"]) in form.text
    assert str(scene.slots["blocked_11"]["slot_id"]) not in form.text  # blocked: not offered
    phone = f"+62 813 {uuid.uuid4().int % 10**8:08d}"
    response = await client.post("/desk/book", headers=EN, data={
        "_csrf_token": csrf, "clinic": str(scene.clinic["clinic_id"]), "date": scene.day.isoformat(),
        "owner_name": "Walk-in Wati", "owner_phone": phone, "owner_email": "",
        "pet_name": "Kopi", "pet_species": "dog", "slot_id": str(scene.slots["open_10"]["slot_id"]),
        "source": "walk_in", "notes": "limping",
    })
    assert response.status_code == 303, response.text
    booking_id = response.headers["location"].split("/")[-1].split("?")[0]
    row = await db.fetchrow(
        "SELECT b.*, u.name AS owner_name, u.phone, u.email, u.password_hash, p.name AS pet_name, p.species "
        "FROM bookings b JOIN users u ON u.user_id = b.user_id JOIN pets p ON p.pet_id = b.pet_id "
        "WHERE b.booking_id = $1", uuid.UUID(booking_id))
    assert (row["booking_source"], row["status"], row["payment_status"]) == ("walk_in", "pending_payment", "pending")
    assert (row["owner_name"], row["phone"], row["pet_name"], row["species"], row["notes"]) == \
        ("Walk-in Wati", phone, "Kopi", "dog", "limping")
    assert row["email"].endswith("@no-email.invalid")
    assert not verify_password(row["password_hash"], "")  # no password works for this account
    assert row["payment_due_at"] == scene.slots["open_10"]["start_time"]
    assert await db.fetchval("SELECT remaining FROM slots WHERE slot_id = $1", scene.slots["open_10"]["slot_id"]) == 2
    # Found later by phone, written another way, as an owner who booked here (the placeholder email hidden).
    found = (await desk.find_owners(scene.receptionist_user, scene.clinic, "0813" + phone.replace(" ", "")[6:])).owners
    assert [(owner["name"], owner["known_here"]) for owner in found] == [("Walk-in Wati", True)]
    assert found[0]["email"] is None


async def test_a_phone_booking_for_an_existing_owner(client: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    scene = await desk_scene(db)
    phone = f"+62 812 {uuid.uuid4().int % 10**8:08d}"
    owner = await make_owner(db, phone=phone, pet_name="Luna")
    page = f"/desk/book?clinic={scene.clinic['clinic_id']}&date={scene.day.isoformat()}"
    csrf = await signed_in(client, scene.receptionist, page)
    search = await client.get(page, params={"q": "0" + phone.replace(" ", "")[3:]}, headers=EN)
    assert search.status_code == 200 and owner.row["name"] in search.text and "Luna" in search.text
    by_email = await client.get(page, params={"q": owner.row["email"].upper()}, headers=EN)
    assert owner.row["name"] in by_email.text
    chosen = await client.get(page, params={"owner_id": str(owner.row["user_id"])}, headers=EN)
    assert 'data-testid="chosen-owner"' in chosen.text and str(owner.pet["pet_id"]) in chosen.text
    response = await client.post("/desk/book", headers=EN, data={
        "_csrf_token": csrf, "clinic": str(scene.clinic["clinic_id"]), "date": scene.day.isoformat(),
        "owner_id": str(owner.row["user_id"]), "pet_id": str(owner.pet["pet_id"]),
        "slot_id": str(scene.slots["budi_9"]["slot_id"]), "source": "phone",
    })
    assert response.status_code == 303, response.text
    row = await db.fetchrow("SELECT * FROM bookings WHERE user_id = $1", owner.row["user_id"])
    assert (row["booking_source"], row["pet_id"], row["slot_id"]) == ("phone", owner.pet["pet_id"], scene.slots["budi_9"]["slot_id"])
    # A new pet for the same owner, booked in the same call.
    again = await client.post("/desk/book", headers=EN, data={
        "_csrf_token": csrf, "clinic": str(scene.clinic["clinic_id"]), "date": scene.day.isoformat(),
        "owner_id": str(owner.row["user_id"]), "pet_id": "new", "pet_name": "Bola", "pet_species": "rabbit",
        "slot_id": str(scene.slots["ayu_12"]["slot_id"]), "source": "phone",
    })
    assert again.status_code == 303
    assert await db.fetchval("SELECT count(*) FROM pets WHERE owner_id = $1", owner.row["user_id"]) == 2


async def counts(db: asyncpg.Connection) -> tuple[int, int, int]:
    return (await db.fetchval("SELECT count(*) FROM users"), await db.fetchval("SELECT count(*) FROM pets"),
            await db.fetchval("SELECT count(*) FROM bookings"))


async def test_a_full_or_blocked_slot_is_refused_with_409_and_nothing_is_written(
        client: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    scene = await desk_scene(db)
    await book(await make_owner(db), scene.slots["ayu_9"])  # now full
    page = f"/desk/book?clinic={scene.clinic['clinic_id']}&date={scene.day.isoformat()}"
    csrf = await signed_in(client, scene.receptionist, page)
    before = await counts(db)
    for slot, message in ((scene.slots["ayu_9"], "This slot is full"), (scene.slots["blocked_11"], "This slot is blocked")):
        response = await client.post("/desk/book", headers=EN, data={
            "_csrf_token": csrf, "clinic": str(scene.clinic["clinic_id"]), "date": scene.day.isoformat(),
            "owner_name": "Nobody New", "owner_phone": "+62 812 5555 0000", "pet_name": "Ghost", "pet_species": "cat",
            "slot_id": str(slot["slot_id"]), "source": "walk_in",
        })
        assert response.status_code == 409 and message in response.text
        # The form comes back filled in.
        assert 'value="Nobody New"' in response.text
    assert await counts(db) == before
    late = await make_owner(db)
    before = await counts(db)
    with pytest.raises(engine.SlotUnavailable, match="This slot is full"):
        await engine.book_on_behalf(scene.receptionist_user, late.row["user_id"], late.pet["pet_id"],
                                    scene.slots["ayu_9"]["slot_id"], "walk_in")
    assert await counts(db) == before


async def test_bad_input_is_refused_and_changes_nothing(client: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    scene = await desk_scene(db)
    other = await desk_scene(db)
    owner, stranger = await make_owner(db), await make_owner(db)
    page = f"/desk/book?clinic={scene.clinic['clinic_id']}&date={scene.day.isoformat()}"
    csrf = await signed_in(client, scene.receptionist, page)
    base = {"_csrf_token": csrf, "clinic": str(scene.clinic["clinic_id"]), "date": scene.day.isoformat(),
            "slot_id": str(scene.slots["open_10"]["slot_id"]), "source": "walk_in"}
    for person in (owner, stranger):  # the desk may book for an owner it found
        assert (await desk.find_owners(scene.receptionist_user, scene.clinic, person.row["email"])).owners
    before = await counts(db)
    missing = await client.post("/desk/book", headers=EN, data={**base, "owner_phone": "abc", "pet_species": "dragon"})
    assert missing.status_code == 422
    for field in ("owner_name", "owner_phone", "pet_name", "pet_species"):
        assert f'data-testid="error-{field}"' in missing.text
    wrong_pet = await client.post("/desk/book", headers=EN, data={
        **base, "owner_id": str(owner.row["user_id"]), "pet_id": str(stranger.pet["pet_id"])})
    assert wrong_pet.status_code == 422 and "does not belong to this owner" in wrong_pet.text
    bad_source = await client.post("/desk/book", headers=EN, data={
        **base, "owner_id": str(owner.row["user_id"]), "pet_id": str(owner.pet["pet_id"]), "source": "app"})
    assert bad_source.status_code == 422
    not_a_slot = await client.post("/desk/book", headers=EN, data={
        **base, "owner_id": str(owner.row["user_id"]), "pet_id": str(owner.pet["pet_id"]), "slot_id": "nope"})
    assert not_a_slot.status_code == 422
    taken_email = await client.post("/desk/book", headers=EN, data={
        **base, "owner_name": "Dup", "owner_phone": "+62 812 1111 2222", "owner_email": owner.row["email"],
        "pet_name": "Dup", "pet_species": "cat"})
    assert taken_email.status_code == 422 and "already exists" in taken_email.text
    elsewhere = await client.post("/desk/book", headers=EN, data={
        **base, "owner_id": str(owner.row["user_id"]), "pet_id": str(owner.pet["pet_id"]),
        "slot_id": str(other.slots["open_10"]["slot_id"])})
    assert elsewhere.status_code == 404
    assert await counts(db) == before
    # Another clinic's receptionist cannot book here through the engine either.
    with pytest.raises(engine.NotFound):
        await engine.book_on_behalf(other.receptionist_user, owner.row["user_id"], owner.pet["pet_id"],
                                    scene.slots["open_10"]["slot_id"], "phone")
    with pytest.raises(engine.NotFound):
        await engine.book_on_behalf(owner.user, owner.row["user_id"], owner.pet["pet_id"],
                                    scene.slots["open_10"]["slot_id"], "phone")
    assert await counts(db) == before


async def test_the_desk_books_inside_the_online_notice_but_not_a_started_slot(db: asyncpg.Connection, app) -> None:
    zone = daytime_zone()
    scene = await desk_scene(db, zone=zone)
    now = datetime.now(ZoneInfo(zone)).replace(second=0, microsecond=0)
    soon = await make_slot(db, scene.clinic, scene.service, scene.vets[1], start=now + timedelta(minutes=20))
    owner = await make_owner(db)
    with pytest.raises(engine.SlotUnavailable):  # an owner online: inside the clinic's 60-minute notice
        await engine.hold(owner.user, soon["slot_id"], owner.pet["pet_id"])
    booking = await engine.book_on_behalf(scene.receptionist_user, owner.row["user_id"], owner.pet["pet_id"],
                                          soon["slot_id"], "walk_in")
    assert booking["booking_source"] == "walk_in"
    started = await make_slot(db, scene.clinic, scene.service, scene.vets[0], start=now + timedelta(minutes=20))
    await move_into_the_past(db, started, now)
    other_owner = await make_owner(db)
    with pytest.raises(engine.SlotUnavailable, match="already started"):
        await engine.book_on_behalf(scene.receptionist_user, other_owner.row["user_id"], other_owner.pet["pet_id"],
                                    started["slot_id"], "walk_in")
