"""Finding an owner at the desk: a whole phone number (however it is written) or an email, never a part of
one; owners who booked at the clinic first and shown in full, anyone else only by name, pets and the last
digits of their phone; every search and every owner opened recorded; an owner id works only for an owner
the desk found or who booked there."""

from __future__ import annotations

import uuid

import asyncpg
import httpx
import pytest

from tests.db.factories import make_pet, make_user
from tests.desk.test_desk import EN, book, desk_scene, make_owner, signed_in
from web.desk import services as desk


def unique_phone() -> tuple[str, str]:
    """A phone number nobody else in the database has, as stored and as its 8 last digits."""
    digits = f"{uuid.uuid4().int % 10**8:08d}"
    return f"+62 811 {digits[:4]} {digits[4:]}", digits


async def lookups(db: asyncpg.Connection, staff_id) -> list[tuple]:
    rows = await db.fetch("SELECT clinic_id, kind, searched, owner_ids FROM desk_owner_lookups "
                          "WHERE staff_user_id = $1 ORDER BY looked_up_at, lookup_id", staff_id)
    return [(row["clinic_id"], row["kind"], row["searched"], row["owner_ids"]) for row in rows]


async def test_a_whole_number_is_found_however_it_is_written_and_a_part_is_not(
        client: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    scene = await desk_scene(db)
    phone, digits = unique_phone()
    owner = await make_owner(db, phone=phone)
    page = f"/desk/book?clinic={scene.clinic['clinic_id']}&date={scene.day.isoformat()}"
    await signed_in(client, scene.receptionist, page)
    for written in (f"0811{digits}", f"+62 811-{digits[:4]}-{digits[4:]}", f"62811{digits}", f"+62 (0)811 {digits}"):
        found = await client.get(page, params={"q": written}, headers=EN)
        assert found.status_code == 200
        assert f'data-owner-id="{owner.row["user_id"]}"' in found.text, written
    # A part of the number finds nobody: too short is refused with the rule, a longer part matches no one.
    short = await client.get(page, params={"q": f"811 {digits[:4]}"}, headers=EN)
    assert 'data-testid="owner-search-problem"' in short.text and "whole phone number" in short.text
    assert 'data-testid="owner-result"' not in short.text
    partial = await client.get(page, params={"q": f"811{digits[:5]}"}, headers=EN)
    assert 'data-testid="owner-none"' in partial.text and 'data-testid="owner-result"' not in partial.text
    # Every search made is recorded, with what was typed and whom it showed (the refused one searched nothing).
    recorded = await lookups(db, scene.receptionist["user_id"])
    assert [(kind, searched) for _clinic, kind, searched, _ids in recorded] == [
        ("phone", f"0811{digits}"), ("phone", f"+62 811-{digits[:4]}-{digits[4:]}"), ("phone", f"62811{digits}"),
        ("phone", f"+62 (0)811 {digits}"), ("phone", f"811{digits[:5]}")]
    assert all(clinic == scene.clinic["clinic_id"] for clinic, *_ in recorded)
    assert [ids for *_, ids in recorded] == [[owner.row["user_id"]]] * 4 + [[]]


async def test_owners_of_the_clinic_come_first_with_their_details_and_others_masked(
        db: asyncpg.Connection, app) -> None:
    scene = await desk_scene(db)
    phone, digits = unique_phone()
    # A family sharing one phone: one of them booked here, the other never did.
    stranger = await make_owner(db, phone=phone)
    regular = await make_owner(db, phone=phone)
    await book(regular, scene.slots["open_10"])
    search = await desk.find_owners(scene.receptionist_user, scene.clinic, f"0811{digits}")
    assert [owner["user_id"] for owner in search.owners] == [regular.row["user_id"], stranger.row["user_id"]]
    first, second = search.owners
    assert (first["known_here"], first["phone"], first["email"]) == (True, phone, regular.row["email"])
    assert (second["known_here"], second["phone"], second["email"]) == (False, f"•••• {digits[-4:]}", None)
    assert [pet["name"] for pet in second["pets"]] == ["Milo"]
    # By email: exactly, in any case; a part of an email finds nobody.
    assert [o["user_id"] for o in (await desk.find_owners(
        scene.receptionist_user, scene.clinic, stranger.row["email"].upper())).owners] == [stranger.row["user_id"]]
    assert (await desk.find_owners(scene.receptionist_user, scene.clinic, "@example.test")).owners == []


async def test_an_owner_id_opens_only_an_owner_the_desk_found_or_who_booked_there(
        client: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    scene, other = await desk_scene(db), await desk_scene(db)
    phone, digits = unique_phone()
    unseen = await make_owner(db, phone=phone, pet_name="Secret Pet")
    page = f"/desk/book?clinic={scene.clinic['clinic_id']}&date={scene.day.isoformat()}"
    csrf = await signed_in(client, scene.receptionist, page)
    probe = await client.get(page, params={"owner_id": str(unseen.row["user_id"])}, headers=EN)
    assert probe.status_code == 404
    assert unseen.row["name"] not in probe.text and "Secret Pet" not in probe.text
    # Booking for them by id, even with a new pet, is refused and writes nothing.
    pets_before = await db.fetchval("SELECT count(*) FROM pets WHERE owner_id = $1", unseen.row["user_id"])
    refused = await client.post("/desk/book", headers=EN, data={
        "_csrf_token": csrf, "clinic": str(scene.clinic["clinic_id"]), "date": scene.day.isoformat(),
        "owner_id": str(unseen.row["user_id"]), "pet_id": "new", "pet_name": "Planted", "pet_species": "cat",
        "slot_id": str(scene.slots["open_10"]["slot_id"]), "source": "phone"})
    assert refused.status_code == 422 and 'data-testid="error-owner_id"' in refused.text
    assert unseen.row["name"] not in refused.text
    assert await db.fetchval("SELECT count(*) FROM pets WHERE owner_id = $1", unseen.row["user_id"]) == pets_before

    # Found by their number, the same owner opens (and the opening is recorded).
    await client.get(page, params={"q": f"0811{digits}"}, headers=EN)
    opened = await client.get(page, params={"owner_id": str(unseen.row["user_id"])}, headers=EN)
    assert opened.status_code == 200 and "Secret Pet" in opened.text
    assert (await lookups(db, scene.receptionist["user_id"]))[-1] == (
        scene.clinic["clinic_id"], "open", str(unseen.row["user_id"]), [unseen.row["user_id"]])
    # Another clinic's receptionist did not find them: still 404 there.
    await signed_in(client, other.receptionist, page)
    elsewhere = f"/desk/book?clinic={other.clinic['clinic_id']}&date={other.day.isoformat()}"
    assert (await client.get(elsewhere, params={"owner_id": str(unseen.row["user_id"])}, headers=EN)).status_code == 404


async def test_an_owner_who_booked_at_the_clinic_opens_without_a_search(db: asyncpg.Connection, app) -> None:
    scene = await desk_scene(db)
    regular = await make_owner(db)
    await book(regular, scene.slots["open_10"])
    opened = await desk.open_owner(scene.receptionist_user, scene.clinic, regular.row["user_id"])
    assert (opened["name"], opened["known_here"]) == (regular.row["name"], True)
    # An owner who exists but never met this desk: "not found", like an id that does not exist.
    other_owner = await make_user(db, role="owner")
    await make_pet(db, other_owner)
    for owner_id in (other_owner["user_id"], uuid.uuid4()):
        with pytest.raises(desk.NotFound):
            await desk.open_owner(scene.receptionist_user, scene.clinic, owner_id)
