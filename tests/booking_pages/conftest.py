"""Fixtures of the finder and hold/confirm page tests: the in-process app on the session's app database,
each test with a clinic, a service, slots and an owner of its own (unique names: nothing else is touched)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest

from tests.accounts.helpers import CSRF_INPUT, make_person, web_session
from tests.db.factories import make_clinic, make_service, make_slot
from web.accounts.auth import CurrentUser
from web.accounts.services import add_pet, load_current_user

PRICE = Decimal("150000.00")
ZONE = "Asia/Makassar"  # WITA
ENGLISH = {"Accept-Language": "en"}


@dataclass
class Scene:
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
async def client(app) -> AsyncIterator[httpx.AsyncClient]:
    """The app over HTTP in English (the default locale is Indonesian)."""
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1", headers=ENGLISH) as http:
        yield http


async def new_owner(with_pet: bool = True) -> tuple[CurrentUser, dict | None]:
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
async def scene(db: asyncpg.Connection) -> Scene:
    """A WITA clinic with a 150 000 rupiah service, two slots on the day after tomorrow (10:00 and 11:00
    clinic time), and an owner with one pet."""
    clinic = await make_clinic(db, name=f"Finder clinic {uuid.uuid4().hex[:8]}", timezone=ZONE,
                               address="Jl. Sunset Road 88, Kuta")
    service = await make_service(db, clinic, name=f"Check-up {uuid.uuid4().hex[:6]}", price=PRICE)
    day = datetime.now(ZoneInfo(ZONE)).date() + timedelta(days=2)
    slots = [await add_slot(db, clinic, service, day, hour) for hour in (10, 11)]
    owner, pet = await new_owner()
    return Scene(clinic, service, owner, pet, day, slots)


async def sign_in(client: httpx.AsyncClient, user: CurrentUser) -> None:
    await web_session(client, {"user_id": user.user_id})


async def csrf(client: httpx.AsyncClient, page: str = "/login") -> str:
    response = await client.get(page)
    match = CSRF_INPUT.search(response.text)
    assert match, f"no CSRF input on {page}"
    return match.group(1)
