"""Data of the owner e2e tests: a clinic of the test's own (unique name, WITA) with slots nobody else
books, and a new owner who signs up and adds a pet through the real pages."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from uuid import UUID
from zoneinfo import ZoneInfo

import asyncpg
from playwright.async_api import Page

from tests.db.factories import make_clinic, make_service, make_slot

ZONE = "Asia/Makassar"
PRICE = Decimal("180000")


@dataclass
class OwnClinic:
    clinic_id: UUID
    service_id: UUID
    name: str
    address: str
    # (slot_id, clinic-local day) in start order
    slots: list[tuple[UUID, date]] = field(default_factory=list)


async def own_clinic(db: asyncpg.Connection, slot_days: tuple[int, ...] = (3, 4), hour: int = 10) -> OwnClinic:
    """A clinic with one 180 000 IDR service and one single-place slot at ``hour`` on each of ``slot_days``
    days from today (clinic time)."""
    suffix = uuid.uuid4().hex[:6]
    name, address = f"E2E Owner Clinic {suffix}", f"Jl. Raya Ubud {suffix}, Bali"
    clinic_row = await make_clinic(db, name=name, address=address, timezone=ZONE)
    service = await make_service(db, clinic_row, name=f"Vaccination {suffix}", price=PRICE)
    clinic = OwnClinic(clinic_row["clinic_id"], service["service_id"], name, address)
    today = datetime.now(ZoneInfo(ZONE)).date()
    for days in slot_days:
        day = today + timedelta(days=days)
        start = datetime(day.year, day.month, day.day, hour, tzinfo=ZoneInfo(ZONE))
        await db.execute("SELECT vetbook_create_month_partitions($1)", day)
        slot = await make_slot(db, clinic_row, service, None, start=start, capacity=1, remaining=1)
        clinic.slots.append((slot["slot_id"], day))
    return clinic


async def sign_up_with_pet(page: Page, pet_name: str = "Mochi") -> str:
    """Sign up a new owner on /signup and add a cat on /pets/new; returns the email."""
    email = f"owner-{uuid.uuid4().hex[:10]}@example.test"
    await page.goto("/signup")
    await page.get_by_test_id("field-name").fill("Wayan Owner")
    await page.get_by_test_id("field-email").fill(email)
    await page.get_by_test_id("field-phone").fill("+62 812 3456 7890")
    await page.get_by_test_id("field-password").fill("journey-pass-2026")
    await page.get_by_test_id("signup-submit").click()
    await page.wait_for_url("**/profile")
    await page.goto("/pets/new")
    await page.get_by_test_id("field-name").fill(pet_name)
    await page.get_by_test_id("field-species").select_option("cat")
    await page.get_by_test_id("pet-submit").click()
    await page.wait_for_url("**/profile")
    return email


def finder_url(clinic: OwnClinic, day: date, pet_id: UUID) -> str:
    return f"/book?clinic={clinic.clinic_id}&service={clinic.service_id}&date={day.isoformat()}&pet={pet_id}"
