"""The desk's reads (the day grid, a booking by its code, owners by phone or email) and the walk-in flow.

Scope: a receptionist sees their own clinic, a manager the clinics they manage; anything else is "not
found". Booking rules stay in the engine (web/booking/services.py): a desk booking is made by
``book_on_behalf``; this module only finds or creates the owner and pet it is for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time
from uuid import UUID
from zoneinfo import ZoneInfo

from web.accounts import services as accounts
from web.accounts import validation
from web.accounts.auth import CurrentUser
from web.accounts.services import NO_EMAIL_DOMAIN
from web.booking import services as engine
from web.booking import state
from web.booking.codes import normalise_booking_code
from web.booking.keys import locate_booking
from web.clinics.services import clinics_for
from web.core import clock, rate_limit, shard_keys, sql
from web.core.audit import transaction_as
from web.core.errors import InvalidInput, NotFound
from web.core.forms import day_or_none, uuid_or_none
from web.core.messages import N_
from web.desk import statements as q
from web.desk.tables import DeskOwnerLookup
from web.settings import get_settings

# ------------------------------------------------------------------ clinics and days


def choose_clinic(clinics: list[dict], wanted: str | None) -> dict:
    """The clinic asked for (``?clinic=``), or the first one; 404 for one outside ``clinics``."""
    if not clinics:
        raise NotFound(N_("No such clinic."))
    if not wanted:
        return clinics[0]
    for clinic in clinics:
        if str(clinic["clinic_id"]) == wanted.strip():
            return clinic
    raise NotFound(N_("No such clinic."))


def parse_day(value: str | None, clinic: dict) -> date:
    """``?date=YYYY-MM-DD``, or the clinic's today when absent; 422 for anything else."""
    if not value:
        return clock.clinic_today(clinic["timezone"])
    day = day_or_none(value)
    if day is None:
        raise InvalidInput({"date": N_("Enter a date as YYYY-MM-DD.")}, detail=N_("Enter a date as YYYY-MM-DD."))
    return day


# ------------------------------------------------------------------ the day grid


@dataclass
class GridBooking:
    booking_id: UUID
    booking_code: str
    status: str
    payment_status: str
    booking_source: str
    pet_name: str
    species: str
    owner_name: str
    owner_phone: str | None


@dataclass
class GridSlot:
    slot_id: UUID
    start_time: datetime
    end_time: datetime
    local_start: time
    local_end: time
    status: str
    capacity: int
    remaining: int
    service_name: str
    staff_id: UUID | None
    bookings: list[GridBooking] = field(default_factory=list)

    @property
    def blocked(self) -> bool:
        return self.status in ("maintenance", "unavailable")


@dataclass
class GridColumn:
    staff_id: UUID | None
    name: str | None  # None: the slots without a staff member


@dataclass
class GridRow:
    local_time: time
    cells: list[list[GridSlot]]


@dataclass
class DayGrid:
    columns: list[GridColumn]
    rows: list[GridRow]
    slots: list[GridSlot]

    @property
    def bookings(self) -> list[GridBooking]:
        return [booking for slot in self.slots for booking in slot.bookings]


async def day_grid(clinic: dict, day: date) -> DayGrid:
    """The clinic's day as a grid: one row per slot start time (clinic-local), one column per staff
    member with slots that day (and one for slots without staff, last); each cell the slots starting
    then, with their standing bookings (cancelled and rescheduled ones left out)."""
    zone = ZoneInfo(clinic["timezone"])
    rows = await sql.fetch(q.DAY_GRID, clinic["clinic_id"], day, sorted(state.RELEASED_PLACE))
    slots: dict[UUID, GridSlot] = {}
    staff_names: dict[UUID | None, str | None] = {}
    for row in rows:
        slot = slots.get(row["slot_id"])
        if slot is None:
            slot = slots[row["slot_id"]] = GridSlot(
                slot_id=row["slot_id"], start_time=row["start_time"], end_time=row["end_time"],
                local_start=row["start_time"].astimezone(zone).time(), local_end=row["end_time"].astimezone(zone).time(),
                status=row["slot_status"], capacity=row["capacity"], remaining=row["remaining"],
                service_name=row["service_name"], staff_id=row["staff_id"],
            )
            staff_names.setdefault(row["staff_id"], row["staff_name"])
        if row["booking_id"] is not None:
            slot.bookings.append(GridBooking(
                booking_id=row["booking_id"], booking_code=row["booking_code"], status=row["status"],
                payment_status=row["payment_status"], booking_source=row["booking_source"],
                pet_name=row["pet_name"], species=row["species"], owner_name=row["owner_name"],
                owner_phone=row["owner_phone"],
            ))
    named = sorted((key for key in staff_names if key is not None), key=lambda key: (staff_names[key] or "", str(key)))
    columns = [GridColumn(key, staff_names[key]) for key in named]
    if None in staff_names:
        columns.append(GridColumn(None, None))
    position = {column.staff_id: index for index, column in enumerate(columns)}
    grid_rows: dict[time, GridRow] = {}
    for slot in slots.values():  # already in start order
        grid_row = grid_rows.get(slot.local_start)
        if grid_row is None:
            grid_row = grid_rows[slot.local_start] = GridRow(slot.local_start, [[] for _ in columns])
        grid_row.cells[position[slot.staff_id]].append(slot)
    return DayGrid(columns=columns, rows=list(grid_rows.values()), slots=list(slots.values()))


# ------------------------------------------------------------------ bookings at the desk


def _clinic_ids(clinics: list[dict]) -> list[UUID]:
    return [clinic["clinic_id"] for clinic in clinics]


def shown_email(email: str | None) -> str | None:
    """An owner's email as the desk shows it: none for the placeholder of an owner without one."""
    return None if not email or email.endswith("@" + NO_EMAIL_DOMAIN) else email


async def desk_booking(staff: CurrentUser, booking_id: UUID) -> dict:
    """A booking with its pet, owner, service and visit, if it is at one of ``staff``'s clinics (404 otherwise)."""
    key = await locate_booking(booking_id)
    row = None
    if key is not None and staff.works_at(key.clinic_id):
        row = await sql.fetchrow(
            f"{q.DESK_BOOKING} WHERE b.clinic_id = $1 AND b.booking_id = $2 AND b.created_at BETWEEN $3 AND $4",
            key.clinic_id, booking_id, key.created.earliest, key.created.latest)
    if row is None:
        raise NotFound(N_("No such booking."))
    booking = dict(row)
    booking["owner_email"] = shown_email(booking["owner_email"])
    return booking


async def find_by_code(staff: CurrentUser, typed: str | None) -> list[dict]:
    """The bookings whose code is ``typed`` (any case, with dashes or spaces, as a scanner or a person
    types it) at ``staff``'s clinics, newest visit first. 422 when it cannot be a booking code; an empty
    list when no booking has it. Codes are unique only per clinic in practice, so there may be several."""
    code = normalise_booking_code(typed or "")
    if code is None:
        raise InvalidInput({"code": N_("A booking code has 8 letters and digits, like K7M2-9QXD.")},
                           detail=N_("A booking code has 8 letters and digits, like K7M2-9QXD."))
    clinics = await clinics_for(staff)
    # (clinic_id, booking_code) is bookings_clinic_code_idx.
    rows = await sql.fetch(
        f"{q.DESK_BOOKING} WHERE b.clinic_id = ANY($1::uuid[]) AND b.booking_code = $2 ORDER BY s.start_time DESC",
        _clinic_ids(clinics), code,
    )
    return [dict(row) for row in rows]


# ------------------------------------------------------------------ owners and free slots for the walk-in form

# Digits of a whole number after the country code or trunk zero: Indonesian mobile numbers have 9 to 12,
# landlines with their area code 8 to 11; E.164 allows 15 at most.
PHONE_KEY_DIGITS = (8, 15)
SEARCH_HOW = N_("Enter the owner's whole phone number (like 0812 3456 7890) or their email address.")

async def _record_lookup(staff: CurrentUser, clinic: dict, kind: str, searched: str, owner_ids: list[UUID]) -> None:
    await DeskOwnerLookup.insert(DeskOwnerLookup(
        lookup_id=shard_keys.new_id_today(clinic["clinic_id"]), staff_user_id=staff.user_id,
        clinic_id=clinic["clinic_id"], kind=kind, searched=searched, owner_ids=owner_ids,
    ))


def phone_key(text: str) -> str:
    """The digits that identify an Indonesian number whichever way it is written: ``0812…``, ``+62 812…``,
    ``62812…`` and ``+62 (0)812…`` all become ``812…`` (as the database's vetbook_phone_key does)."""
    return re.sub(r"^0*(62)?0*", "", re.sub(r"\D", "", text))


def masked_phone(phone: str | None) -> str | None:
    """``•••• 7890``: enough to confirm a number with the person, not enough to learn it."""
    digits = re.sub(r"\D", "", phone or "")
    return f"•••• {digits[-4:]}" if len(digits) >= 4 else None


@dataclass
class OwnerSearch:
    """What a desk search found: owners (known to the clinic first) or why nothing was searched."""

    owners: list[dict] = field(default_factory=list)
    problem: str | None = None


async def _owners_matching(condition: str, key: object, clinic_ids: list[UUID]) -> list[dict]:
    """The owners ``condition`` finds, each with ``known_here`` (booked at one of ``clinic_ids``), those known
    first, then by name; at most MAX_OWNER_MATCHES."""
    owners = [dict(row) for row in await sql.fetch(q.OWNER_MATCHES.format(condition=condition), key)]
    known = {row["user_id"] for row in await sql.fetch(
        q.OWNERS_KNOWN_AT, clinic_ids, [owner["user_id"] for owner in owners])} if owners else set()
    for owner in owners:
        owner["known_here"] = owner["user_id"] in known
    owners.sort(key=lambda owner: (not owner["known_here"], owner["name"], owner["user_id"]))
    return owners[:q.MAX_OWNER_MATCHES]


async def _with_pets(owners: list[dict]) -> list[dict]:
    """Each owner with their pets, and only the contact details the desk may see."""
    pets = await sql.fetch(q.PETS_OF, [owner["user_id"] for owner in owners]) if owners else []
    for owner in owners:
        if owner["known_here"]:
            owner["email"] = shown_email(owner["email"])
        else:
            owner["phone"], owner["email"] = masked_phone(owner["phone"]), None
        owner["pets"] = [dict(pet) for pet in pets if pet["owner_id"] == owner["user_id"]]
    return owners


async def find_owners(staff: CurrentUser, clinic: dict, query: str | None) -> OwnerSearch:
    """Pet owners whose email is ``query`` (any case) or whose phone number is the number ``query``
    spells (``0812…`` finds ``+62 812…``), each with their pets; owners who booked at ``staff``'s clinics
    first. The search is recorded. A query that is neither a whole number nor an email searches nothing."""
    if not staff.is_staff:
        raise NotFound(N_("No such owner."))
    text = (query or "").strip()[:254]
    if "@" in text:
        kind, key, condition = "email", text.lower(), q.BY_EMAIL
    else:
        kind, key, condition = "phone", phone_key(text), q.BY_PHONE
        if not PHONE_KEY_DIGITS[0] <= len(key) <= PHONE_KEY_DIGITS[1]:
            return OwnerSearch(problem=SEARCH_HOW)
    await rate_limit.hit(f"desk-lookup:user:{staff.user_id}", get_settings().desk_lookup_rate_limit,
                         N_("Too many owner searches in a short time. Wait a few minutes and try again."))
    clinic_ids = _clinic_ids(await clinics_for(staff))
    rows = await _owners_matching(condition, key, clinic_ids)
    await _record_lookup(staff, clinic, kind, text, [row["user_id"] for row in rows])
    return OwnerSearch(owners=await _with_pets(rows))


async def may_open_owner(staff: CurrentUser, owner_id: UUID) -> bool:
    """Whether ``staff`` may see and book for this owner: they booked at one of the staff member's
    clinics, or this staff member found them by phone or email a short while ago."""
    if not staff.is_staff:
        return False
    clinic_ids = _clinic_ids(await clinics_for(staff))
    return bool(await sql.fetchval(q.MAY_OPEN_OWNER, owner_id, clinic_ids, staff.user_id))


async def open_owner(staff: CurrentUser, clinic: dict, owner_id: UUID) -> dict:
    """An owner with their pets for the walk-in form (recorded as a look-up); 404 for an owner ``staff``
    may not open (``may_open_owner``), whether or not the id exists."""
    if not await may_open_owner(staff, owner_id):
        raise NotFound(N_("No such owner."))
    rows = await _owners_matching(q.BY_ID, owner_id, _clinic_ids(await clinics_for(staff)))
    if not rows:
        raise NotFound(N_("No such owner."))
    await _record_lookup(staff, clinic, "open", str(owner_id), [owner_id])
    return (await _with_pets(rows))[0]


async def free_slots(clinic: dict, day: date) -> list[dict]:
    """The clinic's slots of ``day`` the desk can still book: open, not full, not started."""
    return [dict(row) for row in await sql.fetch(q.FREE_SLOTS, clinic["clinic_id"], day)]


# ------------------------------------------------------------------ a booking made at the desk


def _uuid(value: object, field_name: str, errors: dict, message) -> UUID | None:
    parsed = uuid_or_none(value)
    if parsed is None:
        errors[field_name] = message
    return parsed


async def book_at_desk(staff: CurrentUser, data: dict) -> dict:
    """A walk-in or phone booking from the desk's form: for an existing owner (``owner_id``) and one of
    their pets (``pet_id``) or a new pet, or for an owner created on the spot (``owner_name``,
    ``owner_phone``, optional ``owner_email``) with their pet (``pet_name``, ``pet_species``); a slot
    (``slot_id``), a ``source`` (walk_in or phone) and optional ``notes``.

    Everything is checked before anything is written, and owner, pet and booking are one transaction:
    when the engine refuses the slot (409), no owner or pet is left behind."""
    if not staff.is_staff:
        raise NotFound(N_("No such slot."))
    errors: dict = {}
    slot_id = _uuid(data.get("slot_id"), "slot_id", errors, N_("Choose a time."))
    source = str(data.get("source") or "")
    if source not in engine.DESK_SOURCES:
        errors["source"] = N_("Choose walk-in or phone.")
    notes = str(data.get("notes") or "").strip() or None
    if notes and len(notes) > 2000:
        errors["notes"] = N_("Use at most %(count)d characters.", count=2000)
    owner_id: UUID | None = None
    pet_id: UUID | None = None
    new_owner: dict | None = None
    new_pet: dict | None = None
    if data.get("owner_id"):
        owner_id = _uuid(data.get("owner_id"), "owner_id", errors, N_("Choose an owner."))
        if data.get("pet_id") and data.get("pet_id") != "new":
            pet_id = _uuid(data.get("pet_id"), "pet_id", errors, N_("Choose a pet."))
        else:
            new_pet = _new_pet(data, errors)
    else:
        new_owner = {
            "name": validation.clean_name(data.get("owner_name"), errors, field="owner_name"),
            "phone": _clean_owner_phone(data.get("owner_phone"), errors),
            "email": _clean_owner_email(data.get("owner_email"), errors),
        }
        new_pet = _new_pet(data, errors)
    if errors:
        raise InvalidInput(errors)
    if owner_id is not None and not await may_open_owner(staff, owner_id):
        raise InvalidInput({"owner_id": N_("Find the owner by their phone number or email first.")})
    if new_owner is not None and new_owner["email"] and await accounts.email_is_taken(new_owner["email"]):
        raise InvalidInput({"owner_email": N_("An account with this email already exists: search for it above.")})
    async with transaction_as(staff.user_id, reason=source):
        if new_owner is not None:
            owner_id = await accounts.create_owner_at_desk(new_owner["name"], new_owner["phone"], new_owner["email"])
        if new_pet is not None:
            pet_id = await accounts.add_pet_at_desk(owner_id, new_pet["name"], new_pet["species"])
        return await engine.book_on_behalf(staff, owner_id, pet_id, slot_id, source, notes)


def _new_pet(data: dict, errors: dict) -> dict:
    name = validation.clean_name(data.get("pet_name"), errors, field="pet_name", max_length=80)
    species = str(data.get("pet_species") or "").strip().lower()
    if species not in validation.SPECIES:
        errors["pet_species"] = N_("Choose a species.")
    return {"name": name, "species": species}


def _clean_owner_phone(value: object, errors: dict) -> str | None:
    phone_errors: dict = {}
    phone = validation.clean_phone(value, phone_errors, required=True)
    if phone_errors:
        errors["owner_phone"] = phone_errors["phone"]
    return phone


def _clean_owner_email(value: object, errors: dict) -> str | None:
    if not (isinstance(value, str) and value.strip()):
        return None
    return validation.clean_email(value, errors, field="owner_email")
