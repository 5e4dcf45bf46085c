"""Demo data: three clinics in Indonesia's three time zones, their services, staff, slots for the next
14 days, and one login per role. Idempotent: a second run creates nothing that already exists (it only
adds slots for days that have come into the 14-day window since).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from web.accounts.passwords import hash_password
from web.accounts.tables import Pet, User
from web.clinics.tables import Clinic, Service, Staff
from web.core import shard_keys
from web.slots.tables import Slot

SLOT_DAYS = 14


@dataclass(frozen=True)
class DemoLogin:
    role: str
    email: str
    password: str
    name: str


DEMO_LOGINS = (
    DemoLogin("owner", "owner@vetbook.test", "owner-demo-2026", "Siti Rahma"),
    DemoLogin("receptionist", "reception@vetbook.test", "reception-demo-2026", "Budi Santoso"),
    DemoLogin("manager", "manager@vetbook.test", "manager-demo-2026", "Dewi Lestari"),
)

CLINICS = (
    ("VetBook Jakarta Kemang", "Jl. Kemang Raya No. 12, Jakarta Selatan 12730", "Asia/Jakarta", "+62 21 7180 1234"),
    ("VetBook Bali Kuta", "Jl. Sunset Road No. 88, Kuta, Badung, Bali 80361", "Asia/Makassar", "+62 361 475 222"),
    ("VetBook Jayapura", "Jl. Ahmad Yani No. 5, Jayapura, Papua 99111", "Asia/Jayapura", "+62 967 533 100"),
)

# name, minutes, price in IDR
SERVICES = (
    ("Vaccination", 30, Decimal("150000")),
    ("General check-up", 30, Decimal("200000")),
    ("Grooming", 60, Decimal("250000")),
    ("Dental cleaning", 60, Decimal("450000")),
)

# name, role
STAFF = (("drh. Andi Wijaya", "veterinarian"), ("drh. Maya Putri", "veterinarian"), ("Rudi Hartono", "groomer"))

# Each staff member's working pattern: (staff index, service name, first start, last start, step, capacity).
# Patterns of one staff member never overlap, as the exclusion constraint demands.
SCHEDULE = (
    (0, "Vaccination", time(9, 0), time(11, 30), 30, 1),
    (0, "General check-up", time(13, 0), time(15, 30), 30, 1),
    (1, "General check-up", time(9, 0), time(11, 30), 30, 1),
    (1, "Dental cleaning", time(13, 0), time(15, 0), 60, 1),
    (2, "Grooming", time(9, 0), time(15, 0), 60, 2),
)


async def _ensure_clinic(name: str, address: str, zone: str, phone: str) -> dict:
    existing = await Clinic.select().where(Clinic.name == name).first()
    if existing:
        return existing
    await Clinic.insert(Clinic(name=name, address=address, timezone=zone, phone=phone))
    return await Clinic.select().where(Clinic.name == name).first()


async def _ensure_services(clinic_id) -> dict[str, dict]:
    rows = {row["name"]: row for row in await Service.select().where(Service.clinic_id == clinic_id)}
    missing = [
        Service(clinic_id=clinic_id, name=name, duration_minutes=minutes, price=price)
        for name, minutes, price in SERVICES
        if name not in rows
    ]
    if missing:
        await Service.insert(*missing)
        rows = {row["name"]: row for row in await Service.select().where(Service.clinic_id == clinic_id)}
    return rows


async def _ensure_staff(clinic_id) -> list[dict]:
    rows = {row["name"]: row for row in await Staff.select().where(Staff.clinic_id == clinic_id)}
    missing = [Staff(clinic_id=clinic_id, name=name, role=role) for name, role in STAFF if name not in rows]
    if missing:
        await Staff.insert(*missing)
        rows = {row["name"]: row for row in await Staff.select().where(Staff.clinic_id == clinic_id)}
    return [rows[name] for name, _ in STAFF]


def planned_slots(clinic: dict, services: dict[str, dict], staff: list[dict], today: date, now: datetime,
                  days: int = SLOT_DAYS) -> list[Slot]:
    """The demo schedule for ``days`` days from ``today`` (clinic-local), skipping Sundays and anything
    started before ``now``."""
    zone = ZoneInfo(clinic["timezone"])
    slots: list[Slot] = []
    for day_offset in range(days):
        day = today + timedelta(days=day_offset)
        if day.weekday() == 6:
            continue
        for staff_index, service_name, first, last, step, capacity in SCHEDULE:
            service = services[service_name]
            start = datetime.combine(day, first, tzinfo=zone)
            last_start = datetime.combine(day, last, tzinfo=zone)
            while start <= last_start:
                if start > now:
                    slots.append(
                        Slot(
                            slot_id=shard_keys.new_id(clinic["clinic_id"], day),
                            clinic_id=clinic["clinic_id"],
                            service_id=service["service_id"],
                            staff_id=staff[staff_index]["staff_id"],
                            date=day,
                            start_time=start,
                            end_time=start + timedelta(minutes=service["duration_minutes"]),
                            capacity=capacity,
                            remaining=capacity,
                        )
                    )
                start += timedelta(minutes=step)
    return slots


async def _ensure_users(first_clinic_id) -> None:
    for login in DEMO_LOGINS:
        exists = await User.exists().where(User.email == login.email)
        if exists:
            continue
        await User.insert(
            User(
                email=login.email,
                name=login.name,
                role=login.role,
                phone="+62 812 0000 000" + str(DEMO_LOGINS.index(login)),
                clinic_id=first_clinic_id if login.role == "receptionist" else None,
                password_hash=hash_password(login.password),
            )
        )
    owner = await User.select(User.user_id).where(User.email == DEMO_LOGINS[0].email).first()
    if not await Pet.exists().where(Pet.owner_id == owner["user_id"]):
        await Pet.insert(
            Pet(owner_id=owner["user_id"], name="Milo", species="cat", breed="Domestic shorthair"),
            Pet(owner_id=owner["user_id"], name="Bono", species="dog", breed="Golden retriever"),
        )


async def load_demo_data(now: datetime | None = None, history_days: int = 0) -> dict[str, int]:
    """Create (or complete) the demo data, with ``history_days`` of past visits (web/demo_history.py).
    Returns how many slots and history bookings were added."""
    now = now or datetime.now(ZoneInfo("UTC"))
    added_slots = 0
    first_clinic_id = None
    for name, address, zone, phone in CLINICS:
        clinic = await _ensure_clinic(name, address, zone, phone)
        first_clinic_id = first_clinic_id or clinic["clinic_id"]
        services = await _ensure_services(clinic["clinic_id"])
        staff = await _ensure_staff(clinic["clinic_id"])
        today = now.astimezone(ZoneInfo(zone)).date()
        slots = planned_slots(clinic, services, staff, today, now)
        if slots:
            inserted = await Slot.insert(*slots).on_conflict(
                target="slots_unique_start", action="DO NOTHING"
            ).returning(Slot.slot_id)
            added_slots += len(inserted)
    await _ensure_users(first_clinic_id)
    from web.demo_history import load_demo_history

    history = await load_demo_history(history_days, now)
    return {"slots_added": added_slots, "history_bookings_added": history}
