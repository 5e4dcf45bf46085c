"""Rows for schema-level tests, written with plain SQL through asyncpg (no ORM between test and schema).

Each helper inserts one valid row and returns its key columns as a dict; keyword arguments override
columns so that a test can break exactly one rule.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from web.core.shard_keys import new_id


async def insert(conn: asyncpg.Connection, table: str, values: dict[str, Any], returning: str = "*") -> dict:
    columns = ", ".join(values)
    placeholders = ", ".join(f"${i}" for i in range(1, len(values) + 1))
    row = await conn.fetchrow(
        f"INSERT INTO {table} ({columns}) VALUES ({placeholders}) RETURNING {returning}", *values.values()
    )
    return dict(row)


async def make_clinic(conn: asyncpg.Connection, **overrides: Any) -> dict:
    values = {"name": f"Clinic {uuid.uuid4().hex[:8]}", "address": "Jl. Test 1", "timezone": "Asia/Jakarta"}
    return await insert(conn, "clinics", values | overrides)


async def make_service(conn: asyncpg.Connection, clinic: dict, **overrides: Any) -> dict:
    values = {
        "clinic_id": clinic["clinic_id"],
        "name": f"Service {uuid.uuid4().hex[:8]}",
        "duration_minutes": 30,
        "price": Decimal("150000"),
    }
    return await insert(conn, "services", values | overrides)


async def make_staff(conn: asyncpg.Connection, clinic: dict, **overrides: Any) -> dict:
    values = {"clinic_id": clinic["clinic_id"], "name": f"drh. {uuid.uuid4().hex[:6]}", "role": "veterinarian"}
    return await insert(conn, "staff", values | overrides)


async def make_user(conn: asyncpg.Connection, role: str = "owner", clinic: dict | None = None, **overrides: Any) -> dict:
    values = {
        "email": f"{uuid.uuid4().hex[:10]}@example.test",
        "name": "Test Person",
        "role": role,
        "clinic_id": clinic["clinic_id"] if clinic else None,
        "password_hash": "$argon2id$test",
    }
    return await insert(conn, "users", values | overrides)


async def make_session(conn: asyncpg.Connection, user: dict, kind: str = "web",
                       lasts: timedelta = timedelta(days=1)) -> str:
    """A login session (``web``: the cookie) or API token (``api``: the bearer) of ``user``; returns the
    secret, as the app hands it out (it stores only the secret's SHA-256)."""
    token = secrets.token_urlsafe(32)
    await insert(conn, "auth_sessions", {"token_hash": hashlib.sha256(token.encode()).digest(),
                                         "user_id": user["user_id"], "kind": kind,
                                         "expires_at": datetime.now(UTC) + lasts}, returning="session_id")
    return token


async def make_pet(conn: asyncpg.Connection, owner: dict, **overrides: Any) -> dict:
    values = {"owner_id": owner["user_id"], "name": "Milo", "species": "cat"}
    return await insert(conn, "pets", values | overrides)


def local_start(clinic: dict, days_ahead: int = 7, hour: int = 10, minute: int = 0) -> datetime:
    """A start time ``days_ahead`` days from today at ``hour:minute`` in the clinic's zone."""
    zone = ZoneInfo(clinic["timezone"])
    day = datetime.now(zone).date() + timedelta(days=days_ahead)
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)


def start_between(zone_name: str, earliest: timedelta, latest: timedelta, minutes: int = 30) -> datetime:
    """A slot start at least ``earliest`` and at most ``latest`` from now, whatever the hour: on a
    5-minute mark, and moved to the next local midnight when a slot of ``minutes`` starting there would
    end on the next day (a slot stays within its clinic-local day). For "inside the refund deadline",
    "beyond the booking notice" and the like, independent of the time of day."""
    zone = ZoneInfo(zone_name)
    start = (datetime.now(zone) + earliest).replace(second=0, microsecond=0)
    start += timedelta(minutes=-start.minute % 5)
    end = start + timedelta(minutes=minutes)
    if end.date() != start.date() and end.time() != datetime.min.time():
        next_day = start.date() + timedelta(days=1)
        start = datetime(next_day.year, next_day.month, next_day.day, tzinfo=zone)
    if start - datetime.now(zone) > latest:
        raise AssertionError(f"no {minutes}-minute slot fits between {earliest} and {latest} from now")
    return start


async def make_slot(
    conn: asyncpg.Connection,
    clinic: dict,
    service: dict,
    staff: dict | None = None,
    start: datetime | None = None,
    minutes: int = 30,
    **overrides: Any,
) -> dict:
    start = start or local_start(clinic)
    local_day: date = start.astimezone(ZoneInfo(clinic["timezone"])).date()
    values = {
        "clinic_id": clinic["clinic_id"],
        "service_id": service["service_id"],
        "staff_id": staff["staff_id"] if staff else None,
        "date": local_day,
        "start_time": start,
        "end_time": start + timedelta(minutes=minutes),
        "capacity": 1,
        "remaining": 1,
        "price": None,
    }
    values |= overrides
    # An id that names the clinic and day, as the app makes them (web/core/shard_keys.py).
    values.setdefault("slot_id", new_id(values["clinic_id"], values["date"]))
    return await insert(conn, "slots", values)


async def make_reservation(conn: asyncpg.Connection, slot: dict, owner: dict, pet: dict, **overrides: Any) -> dict:
    values = {
        "clinic_id": slot["clinic_id"],
        # A hold's id carries its slot's day (web/booking/services.py hold).
        "reservation_id": new_id(slot["clinic_id"], slot["date"]),
        "user_id": owner["user_id"],
        "pet_id": pet["pet_id"],
        "slot_id": slot["slot_id"],
        "slot_date": slot["date"],
        "service_id": slot["service_id"],
        "expires_at": datetime.now(ZoneInfo("UTC")) + timedelta(minutes=10),
        "lock_token": secrets.token_urlsafe(32),
    }
    return await insert(conn, "reservations", values | overrides)


async def make_booking(conn: asyncpg.Connection, slot: dict, owner: dict, pet: dict, **overrides: Any) -> dict:
    price = Decimal("150000")
    values = {
        "user_id": owner["user_id"],
        "pet_id": pet["pet_id"],
        "clinic_id": slot["clinic_id"],
        "service_id": slot["service_id"],
        "slot_id": slot["slot_id"],
        "slot_date": slot["date"],
        "staff_id": slot["staff_id"],
        "total_amount": price,
        "discount_amount": Decimal("0"),
        "final_amount": price,
    }
    values |= overrides
    created = values.get("created_at") or datetime.now(UTC)
    values.setdefault("booking_id", new_id(values["clinic_id"], created.astimezone(UTC).date()))
    return await insert(conn, "bookings", values)


async def make_payment(conn: asyncpg.Connection, booking: dict, **overrides: Any) -> dict:
    """A payment attempt of ``booking`` for its final amount (status as the schema defaults it)."""
    values = {
        "clinic_id": booking["clinic_id"],
        "payment_id": new_id(booking["clinic_id"], datetime.now(UTC).date()),
        "booking_id": booking["booking_id"],
        "booking_created_at": booking["created_at"],
        "amount": booking["final_amount"],
        "payment_method": "bank_transfer",
        "payment_provider": "midtrans",
    }
    return await insert(conn, "payment_records", values | overrides)


async def make_booking_at(conn: asyncpg.Connection, slot: dict, owner: dict, pet: dict, created_at: datetime,
                          status: str, payment_status: str, amount: Decimal | str, refunded: Decimal | str = "0",
                          discount: Decimal | str = "0") -> dict:
    """A booking made at ``created_at`` that has reached ``status`` and ``payment_status`` (a cancelled or
    completed one was cancelled or completed then too), for figures over bookings: ``amount`` before the
    ``discount``, ``refunded`` of it given back."""
    total, off = Decimal(amount), Decimal(discount)
    ended = {"cancelled": "cancelled_at", "completed": "completed_at"}.get(status)
    return await make_booking(
        conn, slot, owner, pet, created_at=created_at, status=status, payment_status=payment_status,
        total_amount=total, discount_amount=off, final_amount=total - off, refunded_amount=Decimal(refunded),
        **({ended: created_at} if ended else {}),
    )


async def make_world(conn: asyncpg.Connection, timezone: str = "Asia/Jakarta") -> dict:
    """A clinic with a service, a staff member, an owner with a pet and one future slot."""
    clinic = await make_clinic(conn, timezone=timezone)
    service = await make_service(conn, clinic)
    staff = await make_staff(conn, clinic)
    owner = await make_user(conn)
    pet = await make_pet(conn, owner)
    slot = await make_slot(conn, clinic, service, staff)
    return {"clinic": clinic, "service": service, "staff": staff, "owner": owner, "pet": pet, "slot": slot}
