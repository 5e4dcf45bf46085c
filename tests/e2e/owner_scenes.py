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
    clinic_id = await db.fetchval(
        "INSERT INTO clinics (name, address, timezone) VALUES ($1, $2, $3) RETURNING clinic_id", name, address, ZONE)
    service_id = await db.fetchval(
        "INSERT INTO services (clinic_id, name, duration_minutes, price) VALUES ($1, $2, 30, $3) RETURNING service_id",
        clinic_id, f"Vaccination {suffix}", PRICE)
    clinic = OwnClinic(clinic_id, service_id, name, address)
    today = datetime.now(ZoneInfo(ZONE)).date()
    for days in slot_days:
        day = today + timedelta(days=days)
        start = datetime(day.year, day.month, day.day, hour, tzinfo=ZoneInfo(ZONE))
        await db.execute("SELECT vetbook_create_month_partitions($1)", day)
        slot_id = await db.fetchval(
            "INSERT INTO slots (clinic_id, service_id, date, start_time, end_time, capacity, remaining) "
            "VALUES ($1, $2, $3, $4, $5, 1, 1) RETURNING slot_id",
            clinic_id, service_id, day, start, start + timedelta(minutes=30))
        clinic.slots.append((slot_id, day))
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
