"""The places of a slot: taking one, giving places back, and marking a slot full.

The slots feature owns a slot's ``remaining``, ``status`` and ``version``; the booking engine and slot
blocking change them only through these functions. Each runs in the caller's transaction (the engine's
``transaction_as``), so a place and the hold or booking that uses it commit together or not at all, and each
announces the slot's day to the open pages (web/core/announcements.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from uuid import UUID

from web.core import sql
from web.core.announcements import announce
from web.slots import statements as q

# take_place's ``with_notice``: owners book only later than the clinic's minimum notice; the desk books any
# slot that has not started.
WITH_NOTICE = True
WITHOUT_NOTICE = False


async def take_place(clinic_id: UUID, slot_id: UUID, day: date, *, with_notice: bool) -> bool:
    """Take one place of the slot if it is bookable now (open, a place left, not started, and for owners
    past the clinic's notice). False, and nothing changed, when it is not."""
    taken = await sql.fetchrow(q.TAKE_PLACE, clinic_id, slot_id, day, with_notice) is not None
    if taken:
        announce("slots", clinic_id, day)
    return taken


async def give_back(clinic_id: UUID, slot_id: UUID, day: date, places: int = 1) -> None:
    """Return ``places`` to the slot; a full slot becomes available, a blocked one stays blocked."""
    await sql.execute(q.GIVE_BACK_PLACES, clinic_id, slot_id, day, places)
    announce("slots", clinic_id, day)


async def give_back_many(clinic_id: UUID, returned: Iterable[tuple[UUID, date, int]]) -> int:
    """Return places to many slots of one clinic in one statement ((slot_id, day, places) triples; one slot
    may appear several times). Returns how many places came back."""
    triples = list(returned)
    if not triples:
        return 0
    slot_ids, days, places = (list(column) for column in zip(*triples, strict=True))
    rows = await sql.fetch(q.GIVE_BACK_PLACES_OF_MANY, clinic_id, slot_ids, days, places)
    for day in set(days):
        announce("slots", clinic_id, day)
    return sum(row["places"] for row in rows)


async def mark_full_if_no_place_left(clinic_id: UUID, slot_id: UUID, day: date) -> None:
    """After a booking took a slot's last place, the slot reads 'booked' (full)."""
    await sql.execute(q.MARK_FULL_IF_NO_PLACE_LEFT, clinic_id, slot_id, day)
    announce("slots", clinic_id, day)
