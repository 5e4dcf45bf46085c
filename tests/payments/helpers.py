"""Scenes for the payment tests: a clinic with its receptionist, an owner whose booking waits for payment
(made through the booking engine's own hold and confirm), notifications signed the Midtrans way, and
reads of what the database now says."""

from __future__ import annotations

import hashlib
import itertools
import json
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import httpx

from tests.accounts.helpers import api_token
from tests.db.factories import local_start, make_clinic, make_pet, make_service, make_slot, make_user
from web.accounts.auth import CurrentUser
from web.accounts.services import load_current_user
from web.booking import services as booking_services

PRICE = Decimal("150000.00")
RECORDED = Path(__file__).parent / "recorded"
_slot_numbers = itertools.count()


@dataclass
class Person:
    row: dict
    user: CurrentUser
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def user_id(self) -> UUID:
        return self.row["user_id"]


@dataclass
class Scene:
    clinic: dict
    service: dict
    receptionist: Person
    owner: Person


async def person(conn: asyncpg.Connection, role: str, clinic: dict | None = None) -> Person:
    """Someone with an API token, written by the factories (no password hashing: many people are cheap)."""
    row = await make_user(conn, role=role, clinic=clinic, name=f"Test {role}")
    return Person(row, await load_current_user(row["user_id"]), await api_token(row))


async def scene(conn: asyncpg.Connection) -> Scene:
    """A clinic (Asia/Jakarta) with a 150 000 IDR service, its receptionist, and a pet owner."""
    clinic = await make_clinic(conn)
    service = await make_service(conn, clinic, price=PRICE)
    return Scene(clinic, service, await person(conn, "receptionist", clinic), await person(conn, "owner"))


async def pending_booking(conn: asyncpg.Connection, at: Scene, owner: Person | None = None) -> dict:
    """A booking waiting for payment: a new slot (its own start time) and a new pet, held and confirmed
    through the booking engine."""
    owner = owner or at.owner
    number = next(_slot_numbers)
    start = local_start(at.clinic, days_ahead=3 + number // 16, hour=8 + (number % 16) // 2, minute=30 * (number % 2))
    slot = await make_slot(conn, at.clinic, at.service, None, start=start)
    pet = await make_pet(conn, owner.row, name=f"Pet {number}")
    held = await booking_services.hold(owner.user, slot["slot_id"], pet["pet_id"])
    booking = await booking_services.confirm(owner.user, held["reservation_id"], held["lock_token"])
    assert booking["status"] == "pending_payment"
    return booking


async def scene_with_booking(conn: asyncpg.Connection) -> tuple[Scene, dict]:
    """A scene, and a booking of its owner waiting for payment."""
    at = await scene(conn)
    return at, await pending_booking(conn, at)


def payments_path(booking: dict) -> str:
    return f"/api/v1/bookings/{booking['booking_id']}/payments"


async def start_payment(client: httpx.AsyncClient, booking: dict, provider: str, key: str,
                        by: Person | None = None) -> httpx.Response:
    """Ask the API to start paying ``booking`` with ``provider`` under the idempotency ``key``, as ``by``
    (signed out when None)."""
    return await client.post(payments_path(booking), json={"provider": provider, "idempotency_key": key},
                             headers=by.headers if by else {})


async def started_payment(client: httpx.AsyncClient, conn: asyncpg.Connection,
                          provider: str) -> tuple[Scene, dict, str]:
    """A scene whose owner has started paying a booking with ``provider`` over the API: the scene, the
    booking and the new payment's id."""
    at, booking = await scene_with_booking(conn)
    answer = await start_payment(client, booking, provider, f"{provider}-{uuid.uuid4()}", by=at.owner)
    assert answer.status_code == 201, answer.text
    return at, booking, answer.json()["payment_id"]


def midtrans_signature(order_id: str, status_code: str, gross_amount: str, server_key: str) -> str:
    """Written out here rather than imported, so that the tests check the app against Midtrans' formula."""
    return hashlib.sha512((order_id + status_code + gross_amount + server_key).encode()).hexdigest()


def recorded(name: str) -> dict[str, Any]:
    """A notification as Midtrans sent it (tests/payments/recorded/<name>.json)."""
    return json.loads((RECORDED / f"{name}.json").read_text())


def notification(name: str, payment_id: UUID, amount: Decimal, server_key: str, **changes: str) -> dict[str, Any]:
    """The recorded notification ``name`` re-addressed to ``payment_id`` (order_id is our payment id) and
    ``amount``, and signed with ``server_key`` the Midtrans way."""
    payload = recorded(name) | changes
    payload["order_id"] = str(payment_id)
    payload["gross_amount"] = f"{amount:.2f}"
    payload["signature_key"] = midtrans_signature(payload["order_id"], payload["status_code"],
                                                  payload["gross_amount"], server_key)
    return payload


async def state_of(conn: asyncpg.Connection, booking_id: UUID) -> dict:
    """Everything a payment may change: the booking, its payments, its history, its slot."""
    booking = await conn.fetchrow(
        "SELECT status, payment_status, payment_id, refunded_amount, version, payment_due_at, slot_id, slot_date "
        "FROM bookings WHERE booking_id = $1", booking_id)
    payments = await conn.fetch(
        "SELECT payment_id, status, paid_at, refund_amount, refunded_at, provider_payment_id, payment_url, "
        "payment_method, metadata::text AS metadata FROM payment_records WHERE booking_id = $1 ORDER BY created_at",
        booking_id)
    history = await conn.fetch(
        "SELECT previous_status, new_status, changed_by, change_reason, metadata::text AS metadata "
        "FROM booking_history WHERE booking_id = $1 ORDER BY changed_at", booking_id)
    remaining = await conn.fetchval("SELECT remaining FROM slots WHERE slot_id = $1 AND date = $2",
                                    booking["slot_id"], booking["slot_date"])
    return {"booking": dict(booking), "payments": [dict(row) for row in payments],
            "history": [dict(row) for row in history], "remaining": remaining}
