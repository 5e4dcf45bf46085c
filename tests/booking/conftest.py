"""Fixtures and helpers of the owner's booking pages (finder, hold and confirm, my bookings, cancel,
reschedule, pay), tested in process over HTTP.

- ``finder_scene``: on the session's app database, a clinic, a service, slots and an owner of the test's own
  (unique names: nothing else is touched); ``page_client`` reads English pages.
- ``booked_scene``: on a database of the test's own (``own_database``: the unpaid-expiry job these tests run
  looks at every booking), an owner whose bookings are made through the engine's own hold and confirm;
  ``owner_client`` is that owner's browser.
"""

from __future__ import annotations

import itertools
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from uuid import UUID
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest

from tests.accounts.helpers import CSRF_INPUT, make_person, web_session
from tests.db.factories import local_start, make_clinic, make_service, make_slot
from web.accounts.auth import CurrentUser
from web.accounts.services import add_pet, load_current_user
from web.booking import services as booking_services
from web.core import sql
from web.payments import providers
from web.payments import services as payment_services

PRICE = Decimal("150000.00")

ZONE = "Asia/Makassar"  # WITA
ENGLISH = {"Accept-Language": "en"}


@dataclass
class FinderScene:
    clinic: dict
    service: dict
    owner: CurrentUser
    pet: dict
    day: date
    slots: list[dict]

    def finder(self, **extra: str) -> str:
        query = {"clinic": str(self.clinic["clinic_id"]), "service": str(self.service["service_id"]),
                 "date": self.day.isoformat(), **extra}
        return "/book?" + "&".join(f"{key}={value}" for key, value in query.items())


@pytest.fixture
async def page_client(app) -> AsyncIterator[httpx.AsyncClient]:
    """The app over HTTP in English (the default locale is Indonesian)."""
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1", headers=ENGLISH) as http:
        yield http


async def owner_with_pet(with_pet: bool = True) -> tuple[CurrentUser, dict | None]:
    row = await make_person("owner")
    user = await load_current_user(row["user_id"])
    pet = await add_pet(user, {"name": f"Milo {uuid.uuid4().hex[:4]}", "species": "cat"}) if with_pet else None
    return user, pet


async def add_slot(db: asyncpg.Connection, clinic: dict, service: dict, day: date, hour: int,
                   capacity: int = 1) -> dict:
    start = datetime(day.year, day.month, day.day, hour, 0, tzinfo=ZoneInfo(clinic["timezone"]))
    await db.execute("SELECT vetbook_create_month_partitions($1)", day)
    return await make_slot(db, clinic, service, None, start=start, capacity=capacity, remaining=capacity)


@pytest.fixture
async def finder_scene(db: asyncpg.Connection) -> FinderScene:
    """A WITA clinic with a 150 000 rupiah service, two slots on the day after tomorrow (10:00 and 11:00
    clinic time), and an owner with one pet."""
    clinic = await make_clinic(db, name=f"Finder clinic {uuid.uuid4().hex[:8]}", timezone=ZONE,
                               address="Jl. Sunset Road 88, Kuta")
    service = await make_service(db, clinic, name=f"Check-up {uuid.uuid4().hex[:6]}", price=PRICE)
    day = datetime.now(ZoneInfo(ZONE)).date() + timedelta(days=2)
    slots = [await add_slot(db, clinic, service, day, hour) for hour in (10, 11)]
    owner, pet = await owner_with_pet()
    return FinderScene(clinic, service, owner, pet, day, slots)


async def sign_in(client: httpx.AsyncClient, user: CurrentUser) -> None:
    await web_session(client, {"user_id": user.user_id})


async def csrf(client: httpx.AsyncClient, page: str = "/login") -> str:
    response = await client.get(page)
    match = CSRF_INPUT.search(response.text)
    assert match, f"no CSRF input on {page}"
    return match.group(1)


_slot_numbers = itertools.count()


@dataclass
class BookedScene:
    clinic_id: UUID
    service_id: UUID
    owner: CurrentUser
    owner_row: dict
    pet_id: UUID
    timezone: str = "Asia/Makassar"

    async def slot(self, days_ahead: int = 5, hour: int | None = None, capacity: int = 1,
                   remaining: int | None = None, start: datetime | None = None, price: Decimal | None = None) -> UUID:
        number = next(_slot_numbers)
        start = start or local_start({"timezone": self.timezone}, days_ahead=days_ahead,
                                     hour=hour if hour is not None else 8 + number % 10, minute=0)
        return await sql.fetchval(
            "INSERT INTO slots (clinic_id, service_id, date, start_time, end_time, capacity, remaining, price) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING slot_id",
            self.clinic_id, self.service_id, start.astimezone(ZoneInfo(self.timezone)).date(), start,
            start + timedelta(minutes=30), capacity, capacity if remaining is None else remaining, price,
        )

    async def booking(self, days_ahead: int = 5, hour: int | None = None, start: datetime | None = None,
                      price: Decimal | None = None) -> dict:
        """A booking through the engine: waiting for payment (or confirmed, for a slot priced 0)."""
        slot_id = await self.slot(days_ahead, hour, start=start, price=price)
        held = await booking_services.hold(self.owner, slot_id, self.pet_id)
        return await booking_services.confirm(self.owner, held["reservation_id"], held["lock_token"])

    async def paid_booking(self, days_ahead: int = 5, hour: int | None = None, start: datetime | None = None) -> dict:
        """A booking paid through the sandbox gateway's signed notification."""
        booking = await self.booking(days_ahead, hour, start=start)
        payment, _ = await payment_services.create_payment(self.owner, booking["booking_id"], "sandbox",
                                                           f"test-{uuid.uuid4()}")
        await complete_sandbox_payment(payment)
        return await booking_row(booking["booking_id"])


async def complete_sandbox_payment(payment: dict, approve: bool = True) -> None:
    notification = providers.SandboxProvider().notification(payment["payment_id"], payment["amount"],
                                                             payment["currency"], approve=approve)
    await payment_services.handle_notification("sandbox", notification)


async def booking_row(booking_id: UUID) -> dict:
    row = await sql.fetchrow("SELECT * FROM bookings WHERE booking_id = $1", booking_id)
    return dict(row)


async def page_owner(name: str = "Page owner") -> tuple[dict, CurrentUser, UUID]:
    row = await make_person("owner")
    user = await load_current_user(row["user_id"])
    pet = await add_pet(user, {"name": "Bento", "species": "dog"})
    return row, user, pet["pet_id"]


@pytest.fixture
async def booked_scene(own_database) -> BookedScene:
    clinic_id = await sql.fetchval(
        "INSERT INTO clinics (name, address, timezone) VALUES ($1, 'Jl. Sunset Road 88, Kuta', 'Asia/Makassar') "
        "RETURNING clinic_id", f"Page clinic {uuid.uuid4().hex[:6]}")
    service_id = await sql.fetchval(
        "INSERT INTO services (clinic_id, name, duration_minutes, price) VALUES ($1, 'Vaccination', 30, $2) "
        "RETURNING service_id", clinic_id, PRICE)
    row, user, pet_id = await page_owner()
    return BookedScene(clinic_id, service_id, user, row, pet_id)


@pytest.fixture
async def owner_client(app, booked_scene: BookedScene) -> AsyncIterator[httpx.AsyncClient]:
    """A browser-like client of the scene's owner, reading English pages."""
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1",
                                 headers={"Accept-Language": "en"}) as http:
        await web_session(http, booked_scene.owner_row)
        yield http


async def form_token(client: httpx.AsyncClient, page: str) -> tuple[httpx.Response, str]:
    """Load a page (setting the CSRF cookie) and return it with the token its forms carry."""
    response = await client.get(page)
    assert response.status_code == 200, response.text[:500]
    match = CSRF_INPUT.search(response.text)
    assert match, f"no CSRF input on {page}"
    return response, match.group(1)


def text_of(html: str, testid: str) -> str:
    """The text of the first element with ``data-testid`` (tags stripped, whitespace collapsed)."""
    match = re.search(rf'data-testid="{re.escape(testid)}"[^>]*>(.*?)</', html, re.S)
    assert match, f"no data-testid={testid}"
    return " ".join(re.sub(r"<[^>]+>", " ", match.group(1)).split())


def attr_of(html: str, testid: str, attribute: str) -> str:
    match = re.search(rf'<[^>]*data-testid="{re.escape(testid)}"[^>]*>', html)
    assert match, f"no data-testid={testid}"
    value = re.search(rf'{attribute}="([^"]*)"', match.group(0))
    assert value, f"no {attribute} on data-testid={testid}"
    return value.group(1)
