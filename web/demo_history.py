"""Demo history: past weeks of visits, so that `make run` shows a desk day with patients and an analytics
page with figures. Loaded by ``vetbook demo --history DAYS`` (the Makefile's `make run` asks for six
weeks); plain ``vetbook demo`` stays history-free.

Past visits are written directly (they were never "booked" now, so the engine's rules about holds and
notice do not apply), with the states a real clinic produces: mostly completed, some cancelled with the
standard 90 % refund, some no-shows. Today's slots that already started are checked in or completed, the
rest of today is partly booked and paid. Every slot's ``remaining`` agrees with its bookings
(``vetbook check``). Idempotent: a clinic that already has bookings gets no history.
"""

from __future__ import annotations

import random
import secrets
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from web.accounts.passwords import hash_password
from web.core import sql
from web.core.maintenance import ensure_partitions

DEMO_OWNERS = (
    ("Agus Pratama", "+62 812 1111 2001", ("Kiki", "cat"), ("Bruno", "dog")),
    ("Rina Wulandari", "+62 812 1111 2002", ("Mochi", "cat"),),
    ("Hendra Gunawan", "+62 813 1111 2003", ("Rocky", "dog"),),
    ("Putu Ayu", "+62 813 1111 2004", ("Coco", "rabbit"),),
    ("Yohanes Wenda", "+62 821 1111 2005", ("Luna", "cat"), ("Bobi", "bird")),
    ("Lestari Handayani", "+62 821 1111 2006", ("Snowy", "dog"),),
)
BOOKED_SHARE = 0.6
STANDARD_REFUND = Decimal("0.90")


async def _ensure_owners() -> list[dict]:
    """The demo's other pet owners (no login: they book by phone or at the desk) with their pets."""
    pets = []
    for index, (name, phone, *owner_pets) in enumerate(DEMO_OWNERS, start=1):
        email = f"pet-owner-{index}@vetbook.test"
        owner_id = await sql.fetchval("SELECT user_id FROM users WHERE email = $1", email)
        if owner_id is None:
            owner_id = await sql.fetchval(
                "INSERT INTO users (email, name, phone, role, password_hash) VALUES ($1, $2, $3, 'owner', $4) "
                "RETURNING user_id",
                email, name, phone, hash_password(secrets.token_urlsafe(24)),
            )
            await sql.execute(
                "INSERT INTO pets (owner_id, name, species) SELECT $1, name, species "
                "FROM unnest($2::text[], $3::text[]) AS p(name, species)",
                owner_id, [pet for pet, _ in owner_pets], [species for _, species in owner_pets],
            )
        pets += [dict(row) for row in await sql.fetch(
            "SELECT pet_id, owner_id FROM pets WHERE owner_id = $1 ORDER BY name", owner_id)]
    return pets


def _past_visit(rng: random.Random, slot: dict, start: datetime, now: datetime) -> dict:
    """Status, payment and timestamps of a visit whose slot started before ``now``."""
    price = slot["price"]
    created = start - timedelta(days=rng.randint(1, 6), hours=rng.randint(0, 8))
    visit = {"status": "completed", "payment_status": "paid", "refunded": Decimal("0"), "created_at": created,
             "cancelled_at": None, "reason": None, "completed_at": start + timedelta(minutes=25)}
    roll = rng.random()
    if start + timedelta(hours=1) > now:  # still with the vet
        visit.update(status="in_progress", completed_at=None)
    elif roll < 0.12:
        refund = (price * STANDARD_REFUND).quantize(Decimal("0.01"))
        visit.update(status="cancelled", payment_status="partially_refunded" if refund < price else "refunded",
                     refunded=refund, cancelled_at=created + timedelta(hours=rng.randint(1, 20)),
                     reason=rng.choice(("customer_request", "schedule_conflict", "pet_unwell")), completed_at=None)
    elif roll < 0.20:
        visit.update(status="no_show", completed_at=None)
    if visit["completed_at"] is not None and visit["completed_at"] > now:
        visit["completed_at"] = now
    return visit


async def load_demo_history(days: int, now: datetime) -> int:
    """Create ``days`` days of past visits (and today's) in every demo clinic that has no bookings yet.
    Returns how many bookings were created."""
    if days <= 0:
        return 0
    await ensure_partitions(months_back=days // 28 + 1)
    pets = await _ensure_owners()
    created = 0
    clinics = await sql.fetch(
        "SELECT c.clinic_id, c.timezone FROM clinics c WHERE c.name LIKE 'VetBook %' "
        # Not a subquery correlated with clinics (a reference table on Citus, where that does not run).
        "AND c.clinic_id NOT IN (SELECT b.clinic_id FROM bookings b GROUP BY b.clinic_id) ORDER BY c.name")
    for clinic in clinics:
        zone = ZoneInfo(clinic["timezone"])
        today = now.astimezone(zone).date()
        await _make_past_slots(clinic["clinic_id"], zone, today - timedelta(days=days), today, now)
        slots = await sql.fetch(
            "SELECT s.slot_id, s.date, s.start_time, s.service_id, s.staff_id, s.capacity, "
            "COALESCE(s.price, v.price) AS price FROM slots s JOIN services v USING (service_id) "
            "WHERE s.clinic_id = $1 AND s.date BETWEEN $2 AND $3 ORDER BY s.start_time, s.slot_id",
            clinic["clinic_id"], today - timedelta(days=days), today,
        )
        rng = random.Random(f"{clinic['clinic_id']}")
        rows = []
        for slot in slots:
            if rng.random() > BOOKED_SHARE:
                continue
            pet = pets[rng.randrange(len(pets))]
            start = slot["start_time"]
            if start <= now:
                visit = _past_visit(rng, dict(slot), start, now)
            else:
                visit = {"status": "confirmed", "payment_status": "paid", "refunded": Decimal("0"),
                         "created_at": now - timedelta(hours=rng.randint(2, 48)), "cancelled_at": None,
                         "reason": None, "completed_at": None}
            rows.append((slot, pet, visit, rng.choice(("app", "web", "phone", "walk_in"))))
        created += await _insert_bookings(clinic["clinic_id"], rows)
    return created


async def _make_past_slots(clinic_id, zone: ZoneInfo, first_day: date, today: date, now: datetime) -> None:
    from web.demo import planned_slots  # the demo's weekly schedule, also for the past

    clinic = {"clinic_id": clinic_id, "timezone": zone.key}
    services = {row["name"]: dict(row) for row in await sql.fetch(
        "SELECT service_id, name, duration_minutes FROM services WHERE clinic_id = $1", clinic_id)}
    staff = [dict(row) for row in await sql.fetch(
        "SELECT staff_id, name FROM staff WHERE clinic_id = $1 ORDER BY array_position($2::text[], name)",
        clinic_id, ["drh. Andi Wijaya", "drh. Maya Putri", "Rudi Hartono"])]
    slots = planned_slots(clinic, services, staff, first_day, datetime.min.replace(tzinfo=zone),
                          days=(today - first_day).days + 1)
    await sql.execute(
        "INSERT INTO slots (slot_id, clinic_id, service_id, staff_id, date, start_time, end_time, capacity, remaining) "
        "SELECT vetbook_new_id($1, c.date), $1, c.* FROM unnest($2::uuid[], $3::uuid[], $4::date[], $5::timestamptz[], "
        "$6::timestamptz[], $7::int[], $7::int[]) AS c(service_id, staff_id, date, start_time, end_time, capacity, "
        "remaining) ON CONFLICT ON CONSTRAINT slots_unique_start DO NOTHING",
        clinic_id, [s.service_id for s in slots], [s.staff_id for s in slots], [s.date for s in slots],
        [s.start_time for s in slots], [s.end_time for s in slots], [s.capacity for s in slots],
    )


async def _insert_bookings(clinic_id, rows: list) -> int:
    if not rows:
        return 0
    async with sql.connection() as connection, connection.transaction():
        await connection.execute(
            """
            INSERT INTO bookings (booking_id, user_id, pet_id, clinic_id, service_id, slot_id, slot_date, staff_id, status,
                payment_status, total_amount, final_amount, refunded_amount, created_at, cancelled_at,
                cancellation_reason, completed_at, booking_source)
            SELECT vetbook_new_id($1, (created_at AT TIME ZONE 'UTC')::date), owner_id, pet_id, $1, service_id, slot_id,
                   slot_date, staff_id, status, payment_status, price,
                   price, refunded, created_at, cancelled_at, reason, completed_at, source
            FROM unnest($2::uuid[], $3::uuid[], $4::uuid[], $5::uuid[], $6::date[], $7::uuid[], $8::text[],
                        $9::text[], $10::numeric[], $11::numeric[], $12::timestamptz[], $13::timestamptz[],
                        $14::text[], $15::timestamptz[], $16::text[])
                AS v(owner_id, pet_id, service_id, slot_id, slot_date, staff_id, status, payment_status, price,
                     refunded, created_at, cancelled_at, reason, completed_at, source)
            """,
            clinic_id,
            [pet["owner_id"] for _, pet, _, _ in rows], [pet["pet_id"] for _, pet, _, _ in rows],
            [slot["service_id"] for slot, *_ in rows], [slot["slot_id"] for slot, *_ in rows],
            [slot["date"] for slot, *_ in rows], [slot["staff_id"] for slot, *_ in rows],
            [visit["status"] for _, _, visit, _ in rows], [visit["payment_status"] for _, _, visit, _ in rows],
            [slot["price"] for slot, *_ in rows], [visit["refunded"] for _, _, visit, _ in rows],
            [visit["created_at"] for _, _, visit, _ in rows], [visit["cancelled_at"] for _, _, visit, _ in rows],
            [visit["reason"] for _, _, visit, _ in rows], [visit["completed_at"] for _, _, visit, _ in rows],
            [source for *_, source in rows],
        )
        # Places follow the bookings that keep one (the invariant `vetbook check` verifies).
        await connection.execute(
            """
            UPDATE slots s SET remaining = s.capacity - b.kept
            FROM (SELECT slot_id, slot_date, count(*) AS kept FROM bookings
                  WHERE clinic_id = $1 AND status NOT IN ('cancelled', 'rescheduled')
                  GROUP BY slot_id, slot_date) b
            WHERE s.clinic_id = $1 AND s.slot_id = b.slot_id AND s.date = b.slot_date
            """,
            clinic_id,
        )
    return len(rows)
