"""Fixtures of the owner's booking-page tests: the in-process app on a fresh database of each test's own
(the unpaid-expiry job these tests run looks at every booking), and a scene with an owner whose booking is
made through the engine's own hold and confirm."""

from __future__ import annotations

import itertools
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from uuid import UUID
from zoneinfo import ZoneInfo

import httpx
import pytest
from piccolo.engine import engine_finder

from tests.accounts.helpers import make_person, web_session
from tests.db.factories import local_start
from web.accounts.auth import CurrentUser
from web.accounts.services import add_pet, load_current_user
from web.booking import services as booking_services
from web.core import sql
from web.payments import providers
from web.payments import services as payment_services

APP_POOL_MAX = 10
PRICE = Decimal("150000.00")
CSRF_INPUT = re.compile(r'name="_csrf_token" value="([^"]+)"')
_slot_numbers = itertools.count()


async def _point_pool_at(dsn: str) -> None:
    engine = engine_finder()
    if engine.pool is not None:
        await engine.close_connection_pool()
    engine.config["dsn"] = dsn
    await engine.start_connection_pool(min_size=1, max_size=APP_POOL_MAX)


@pytest.fixture
async def own_db(app, fresh_database_url: str) -> AsyncIterator[str]:
    original = engine_finder().config["dsn"]
    await _point_pool_at(fresh_database_url)
    try:
        yield fresh_database_url
    finally:
        await _point_pool_at(original)


@dataclass
class Scene:
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


async def new_owner(name: str = "Page owner") -> tuple[dict, CurrentUser, UUID]:
    row = await make_person("owner")
    user = await load_current_user(row["user_id"])
    pet = await add_pet(user, {"name": "Bento", "species": "dog"})
    return row, user, pet["pet_id"]


@pytest.fixture
async def scene(own_db) -> Scene:
    clinic_id = await sql.fetchval(
        "INSERT INTO clinics (name, address, timezone) VALUES ($1, 'Jl. Sunset Road 88, Kuta', 'Asia/Makassar') "
        "RETURNING clinic_id", f"Page clinic {uuid.uuid4().hex[:6]}")
    service_id = await sql.fetchval(
        "INSERT INTO services (clinic_id, name, duration_minutes, price) VALUES ($1, 'Vaccination', 30, $2) "
        "RETURNING service_id", clinic_id, PRICE)
    row, user, pet_id = await new_owner()
    return Scene(clinic_id, service_id, user, row, pet_id)


@pytest.fixture
async def owner_client(app, scene: Scene) -> AsyncIterator[httpx.AsyncClient]:
    """A browser-like client of the scene's owner, reading English pages."""
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1",
                                 headers={"Accept-Language": "en"}) as http:
        await web_session(http, scene.owner_row)
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
