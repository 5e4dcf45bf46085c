"""Scenes for the booking-engine tests: a clinic with its receptionist, owners with pets, slots, bookings
made through the services, payments settled in SQL, and snapshots of every booking table."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID
from zoneinfo import ZoneInfo

import asyncpg
import httpx

from tests.accounts.helpers import api_token
from tests.db.factories import (
    local_start,
    make_clinic,
    make_pet,
    make_service,
    make_slot,
    make_staff,
    make_user,
)
from web.accounts.auth import CurrentUser
from web.accounts.services import load_current_user
from web.booking import services
from web.core import sql
from web.core.audit import transaction_as
from web.core.shard_keys import new_id_today

PRICE = Decimal("150000.00")


@dataclass
class Person:
    row: dict
    user: CurrentUser
    # Bearer-token headers for the JSON API (only for people made with ``with_token=True``).
    headers: dict[str, str] = field(default_factory=dict)
    pets: list[dict] = field(default_factory=list)

    @property
    def user_id(self) -> UUID:
        return self.row["user_id"]

    @property
    def pet(self) -> dict:
        return self.pets[0]


@dataclass
class ClinicScene:
    clinic: dict
    service: dict
    staff: dict
    receptionist: Person


async def clinic_scene(conn: asyncpg.Connection, **clinic_overrides) -> ClinicScene:
    """A clinic with a service (price 150 000), a veterinarian and a receptionist who has an API token
    (written by the factories: no password hashing, these people never log in with a password)."""
    clinic = await make_clinic(conn, **clinic_overrides)
    service = await make_service(conn, clinic, price=PRICE)
    staff = await make_staff(conn, clinic)
    receptionist = await make_user(conn, role="receptionist", clinic=clinic)
    person = Person(receptionist, await load_current_user(receptionist["user_id"]), await api_token(receptionist))
    return ClinicScene(clinic, service, staff, person)


async def owner(conn: asyncpg.Connection, pets: int = 1, with_token: bool = True, pet_name: str | None = None,
                **user_columns: object) -> Person:
    """A pet owner with ``pets`` cats (named ``pet_name``, else "Pet 0", "Pet 1", …), written by the factories
    so that many owners are cheap; ``user_columns`` override the user row's (a name, a phone)."""
    row = await make_user(conn, role="owner", **user_columns)
    made = [await make_pet(conn, row, name=pet_name or f"Pet {index}") for index in range(pets)]
    headers = await api_token(row) if with_token else {}
    return Person(row, await load_current_user(row["user_id"]), headers, made)


async def slot(conn: asyncpg.Connection, scene: ClinicScene, days: int = 7, hour: int = 10, minute: int = 0,
               capacity: int = 1, minutes: int = 30, **overrides) -> dict:
    """A slot of the scene's service ``days`` days ahead at ``hour:minute`` clinic-local time (no staff, so
    that slots of one test never trip the staff no-overlap rule)."""
    start = local_start(scene.clinic, days_ahead=days, hour=hour, minute=minute)
    return await make_slot(conn, scene.clinic, scene.service, None, start=start, minutes=minutes,
                           capacity=capacity, remaining=overrides.pop("remaining", capacity), **overrides)


async def past_slot(conn: asyncpg.Connection, scene: ClinicScene, capacity: int = 1) -> dict:
    """A one-minute slot that started a moment ago (today, clinic-local), for no-shows."""
    zone = ZoneInfo(scene.clinic["timezone"])
    now = datetime.now(zone)
    start = max(now.replace(hour=0, minute=0, second=0, microsecond=0), now - timedelta(minutes=1))
    return await make_slot(conn, scene.clinic, scene.service, None, start=start, minutes=1,
                           capacity=capacity, remaining=capacity)


async def book(person: Person, slot_row: dict, pet: dict | None = None) -> dict:
    """Hold and confirm through the services: a booking waiting for payment."""
    held = await services.hold(person.user, slot_row["slot_id"], (pet or person.pet)["pet_id"])
    return await services.confirm(person.user, held["reservation_id"], held["lock_token"])


async def mark_paid(booking_id: UUID) -> bool:
    """Settle a booking's payment as a payment notification would (the payments module is tested
    elsewhere): a completed payment record and the booking confirmed/paid with its payment_id through the
    engine (which writes the history row), in one transaction. False when the booking no longer waits for
    payment, or its payment deadline passed."""
    async with transaction_as(None, reason="payment_received"):
        booking = await services.booking_for_update(booking_id)
        if (booking is None or booking["status"] != "pending_payment"
                or booking["payment_due_at"] <= datetime.now(UTC)):
            return False
        payment_id = await sql.fetchval(
            "INSERT INTO payment_records (clinic_id, payment_id, booking_id, booking_created_at, amount, currency, "
            "payment_method, payment_provider, status, paid_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, 'card', 'sandbox', 'completed', now()) RETURNING payment_id",
            booking["clinic_id"], new_id_today(booking["clinic_id"]), booking["booking_id"], booking["created_at"],
            booking["final_amount"], booking["currency"],
        )
        await services.confirm_paid(booking, payment_id)
    return True


async def paid_booking(person: Person, slot_row: dict, pet: dict | None = None) -> dict:
    booking = await book(person, slot_row, pet)
    assert await mark_paid(booking["booking_id"])
    return await booking_row(booking["booking_id"])


async def booking_row(booking_id: UUID) -> dict:
    return dict(await sql.fetchrow("SELECT * FROM bookings WHERE booking_id = $1", booking_id))


async def slot_row(conn: asyncpg.Connection, slot_id: UUID) -> dict:
    return dict(await conn.fetchrow("SELECT * FROM slots WHERE slot_id = $1", slot_id))


async def history(conn: asyncpg.Connection, booking_id: UUID) -> list[tuple]:
    """(previous_status, new_status, changed_by, change_reason, metadata) of each history row."""
    rows = await conn.fetch(
        "SELECT previous_status, new_status, changed_by, change_reason, metadata::text AS metadata "
        "FROM booking_history WHERE booking_id = $1 ORDER BY changed_at, history_id",
        booking_id,
    )
    return [
        (row["previous_status"], row["new_status"], row["changed_by"], row["change_reason"],
         json.loads(row["metadata"]) if row["metadata"] is not None else None)
        for row in rows
    ]


# Every table a booking operation may write, with its key.
BOOKING_TABLES = {
    "slots": "slot_id",
    "reservations": "reservation_id",
    "bookings": "booking_id",
    "booking_history": "history_id",
    "payment_records": "payment_id",
}


async def snapshot(conn: asyncpg.Connection) -> dict[str, list[dict]]:
    """Every row of every booking table (the test's database holds only its own rows)."""
    return {
        table: [dict(row) for row in await conn.fetch(f"SELECT * FROM {table} ORDER BY {key}")]
        for table, key in BOOKING_TABLES.items()
    }


def now() -> datetime:
    return datetime.now(UTC)


# ------------------------------------------------------------------ over the JSON API


async def hold_over_api(client: httpx.AsyncClient, person: Person, slot_id) -> dict:
    """A hold of ``slot_id`` for the person's pet through the API (asserted 201): its JSON."""
    response = await client.post("/api/v1/reservations", headers=person.headers,
                                 json={"slot_id": str(slot_id), "pet_id": str(person.pet["pet_id"])})
    assert response.status_code == 201, response.text
    return response.json()


async def confirm_over_api(client: httpx.AsyncClient, person: Person, held: dict) -> httpx.Response:
    return await client.post(f"/api/v1/reservations/{held['reservation_id']}/confirm", headers=person.headers,
                             json={"lock_token": held["lock_token"]})
