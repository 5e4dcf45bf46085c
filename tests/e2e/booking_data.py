"""Rows for the owner booking e2e tests, written straight into the live server's database: a clinic of the
test's own (unique name, so the demo data stays as it is), its service and slots, and owners with a pet
and a web session (no login form: its rate limits are not what these tests are about)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import asyncpg
from playwright.async_api import BrowserContext

from tests.db.factories import make_clinic, make_pet, make_service, make_session, make_slot, make_user
from tests.servers import LiveServer

PRICE = Decimal("150000")
SESSION_COOKIE = "vb_session"


@dataclass
class BookingScene:
    clinic: dict
    service: dict
    day: date
    slots: list[dict]

    @property
    def slot(self) -> dict:
        return self.slots[0]


@dataclass
class Owner:
    user_id: uuid.UUID
    pet_id: uuid.UUID
    session_token: str


async def booking_scene(db: asyncpg.Connection, hours: tuple[int, ...] = (10, 11), capacity: int = 1,
                        timezone: str = "Asia/Makassar", days_ahead: int = 2) -> BookingScene:
    """A clinic with one 150 000 rupiah service and a slot at each of ``hours`` (clinic time), ``days_ahead``
    days from the clinic's today."""
    tag = uuid.uuid4().hex[:8]
    clinic = await make_clinic(db, name=f"E2E Clinic {tag}", timezone=timezone, address=f"Jl. Percobaan {tag[:3]}")
    service = await make_service(db, clinic, name=f"E2E Check-up {tag}", price=PRICE)
    day = datetime.now(ZoneInfo(timezone)).date() + timedelta(days=days_ahead)
    await db.execute("SELECT vetbook_create_month_partitions($1)", day)
    slots = []
    for hour in hours:
        start = datetime(day.year, day.month, day.day, hour, 0, tzinfo=ZoneInfo(timezone))
        slots.append(await make_slot(db, clinic, service, None, start=start, capacity=capacity, remaining=capacity))
    return BookingScene(clinic, service, day, slots)


async def owner_with_pet(db: asyncpg.Connection, pet_name: str = "Mochi", with_pet: bool = True) -> Owner:
    user = await make_user(db, role="owner", name=f"Owner {uuid.uuid4().hex[:6]}")
    pet = await make_pet(db, user, name=pet_name) if with_pet else None
    token = await make_session(db, user)
    return Owner(user["user_id"], pet["pet_id"] if pet else None, token)


async def sign_in(context: BrowserContext, live_server: LiveServer, owner: Owner) -> None:
    """Give the browser context the owner's session cookie."""
    await context.add_cookies([{"name": SESSION_COOKIE, "value": owner.session_token, "url": live_server.base_url,
                                "httpOnly": True, "sameSite": "Lax"}])
