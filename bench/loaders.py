"""Fill the real partitioned tables quickly: ``bulk_load`` adds clinics, owners with pets, slots over ~2 years
of days (past and the next two months) and bookings of those slots, in a few ``INSERT … SELECT`` statements.

The loader's connection sets ``session_replication_role = replica``: PostgreSQL then fires no triggers and
checks no foreign keys for its rows (both are implemented as triggers), which is what makes a million rows
take seconds instead of minutes. CHECK and UNIQUE constraints still apply. Because the triggers do not run,
the loader keeps their rules itself: a slot's ``date`` is the clinic-local day of its start, ``remaining`` is
the capacity minus the bookings that keep a place (cancelled bookings come on top), a full slot reads
'booked', and every booking points at a real slot, pet and owner. No notifications are sent and no history
is written for these rows (they are inserted, not changed).

The shape: ``clinics × services`` lanes, 16 half-hour slots a day per lane (08:00–16:00 Asia/Jakarta), from
``days_back`` days ago to ``days_ahead`` days ahead; the number of lanes follows from the slots wanted.
Bookings per slot follow from the bookings wanted (mean ``bookings / slots``, spread by a hash of the slot);
past visits are completed (90 %) or no-shows, upcoming ones confirmed (70 %) or waiting for payment, plus
about one booking in ten cancelled. Booked by ``bookings / 10`` owners, one pet each, who are not the
benchmark's own clients.
"""

from __future__ import annotations

import math
import time
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

TIMEZONE = "Asia/Jakarta"
SLOTS_PER_DAY = 16
SERVICES_PER_CLINIC = 2  # 'Check-up' and 'Vaccination'
PRICE = 150000


async def ensure_partitions_for(conn, days_back: int) -> int:
    """Monthly partitions from before the oldest booking's creation (days_back + 15 days ago) to 3 months
    ahead, through the schema's own function."""
    months_back = (days_back + 15) // 28 + 1
    return await conn.fetchval("SELECT vetbook_ensure_partitions(3, $1)", months_back)


async def bulk_load(conn, slots: int, bookings: int, days_back: int = 660, days_ahead: int = 60,
                    label: str = "bulk") -> dict:
    """Add about ``slots`` slots and ``bookings`` bookings (see the module docstring). Returns what was
    loaded and how long each step took."""
    timings: dict[str, float] = {}
    started = time.perf_counter()
    days = days_back + days_ahead
    lanes = max(1, math.ceil(slots / (SLOTS_PER_DAY * days)))
    clinics = math.ceil(lanes / SERVICES_PER_CLINIC)
    per_slot = bookings / (lanes * SLOTS_PER_DAY * days) if slots else 0.0
    # Places kept per slot have mean 0.9 × per_slot; about 0.1 × per_slot cancelled bookings come on top.
    kept_mean = 0.9 * per_slot
    capacity = max(1, math.ceil(2 * kept_mean))
    extra_probability = min(1.0, 0.1 * per_slot)
    owners = max(1000, bookings // 10)
    today = datetime.now(ZoneInfo(TIMEZONE)).date()
    first_day: date = today - timedelta(days=days_back)

    await conn.execute("SET session_replication_role = replica")
    await conn.execute("SET maintenance_work_mem = '256MB'")
    await conn.execute("SET work_mem = '64MB'")
    try:
        t = time.perf_counter()
        partitions = await ensure_partitions_for(conn, days_back)
        timings["partitions_s"] = time.perf_counter() - t

        t = time.perf_counter()
        await conn.execute("DROP TABLE IF EXISTS bench_bulk_lanes, bench_bulk_pets")
        await conn.execute(
            """
            INSERT INTO clinics (name, address, timezone)
            SELECT $1 || ' clinic ' || n, 'Jl. Bulk ' || n, $2 FROM generate_series(1, $3::int) n
            """,
            label, TIMEZONE, clinics,
        )
        await conn.execute("CREATE UNLOGGED TABLE bench_bulk_lanes (lane int, clinic_id uuid, service_id uuid)")
        await conn.execute(
            """
            WITH new_services AS (
                INSERT INTO services (clinic_id, name, duration_minutes, price)
                SELECT c.clinic_id, s.name, 30, $2
                FROM clinics c, (VALUES ('Check-up'), ('Vaccination')) s(name)
                WHERE c.name LIKE $1 || ' clinic %'
                RETURNING clinic_id, service_id
            )
            INSERT INTO bench_bulk_lanes
            SELECT (row_number() OVER (ORDER BY service_id) - 1)::int, clinic_id, service_id FROM new_services
            """,
            label, PRICE,
        )
        await conn.execute("DELETE FROM bench_bulk_lanes WHERE lane >= $1", lanes)
        await conn.execute(
            """
            INSERT INTO users (email, name, role, password_hash)
            SELECT $1 || '-owner-' || n || '@example.test', 'Owner ' || n, 'owner', 'not-a-password-hash'
            FROM generate_series(1, $2::int) n
            """,
            label, owners,
        )
        await conn.execute("CREATE UNLOGGED TABLE bench_bulk_pets (i int, pet_id uuid, user_id uuid)")
        await conn.execute(
            """
            WITH new_pets AS (
                INSERT INTO pets (owner_id, name, species)
                SELECT user_id, 'Pet', (ARRAY['dog', 'cat', 'rabbit', 'bird'])[1 + abs(hashtext(email)) % 4]
                FROM users WHERE email LIKE $1 || '-owner-%'
                RETURNING pet_id, owner_id
            )
            INSERT INTO bench_bulk_pets
            SELECT (row_number() OVER (ORDER BY pet_id) - 1)::int, pet_id, owner_id FROM new_pets
            """,
            label,
        )
        await conn.execute("ALTER TABLE bench_bulk_pets ADD PRIMARY KEY (i)")
        timings["clinics_owners_s"] = time.perf_counter() - t

        # h: a well-spread number in [0, 1) from the slot's position; kept places = floor(h × (2·mean + 1)).
        t = time.perf_counter()
        slot_count = await conn.fetchval(
            """
            WITH inserted AS (
                INSERT INTO slots (slot_id, clinic_id, service_id, date, start_time, end_time, status, capacity,
                                   remaining, created_at, updated_at)
                SELECT vetbook_new_id(l.clinic_id, d.day), l.clinic_id, l.service_id, d.day,
                       (d.day + time '08:00' + make_interval(mins => 30 * m)) AT TIME ZONE $1,
                       (d.day + time '08:00' + make_interval(mins => 30 * m + 30)) AT TIME ZONE $1,
                       CASE WHEN k.kept >= $4 THEN 'booked' ELSE 'available' END,
                       $4, $4 - k.kept,
                       (d.day - 30)::timestamp AT TIME ZONE $1, (d.day - 30)::timestamp AT TIME ZONE $1
                FROM bench_bulk_lanes l
                CROSS JOIN generate_series($2::date, $3::date, interval '1 day') AS d0(d)
                CROSS JOIN LATERAL (SELECT d0.d::date AS day) d
                CROSS JOIN generate_series(0, $6::int - 1) m
                CROSS JOIN LATERAL (
                    SELECT least($4::int, floor((((l.lane::bigint * 1000003 + (d.day - $2::date) * 97 + m)
                                                  * 2654435761) % 4294967296) / 4294967296.0
                                                * (2 * $5::float8 + 1))::int) AS kept
                ) k
                RETURNING 1
            )
            SELECT count(*) FROM inserted
            """,
            TIMEZONE, first_day, today + timedelta(days=days_ahead - 1), capacity, kept_mean, SLOTS_PER_DAY,
        )
        timings["slots_s"] = time.perf_counter() - t

        # One booking per kept place (k ≤ capacity - remaining) plus, for some slots, one cancelled booking.
        t = time.perf_counter()
        booking_count = await conn.fetchval(
            """
            WITH inserted AS (
                INSERT INTO bookings (
                    booking_id, user_id, pet_id, clinic_id, service_id, slot_id, slot_date, status, payment_status,
                    total_amount, discount_amount, final_amount, currency, created_at, updated_at, cancelled_at,
                    completed_at, cancellation_reason, payment_due_at, booking_code, booking_source)
                SELECT vetbook_new_id(s.clinic_id, (b.created_at AT TIME ZONE 'UTC')::date),
                       p.user_id, p.pet_id, s.clinic_id, s.service_id, s.slot_id, s.date, st.status,
                       CASE st.status WHEN 'cancelled' THEN 'failed' WHEN 'pending_payment' THEN 'pending'
                                      ELSE 'paid' END,
                       $1, 0, $1, 'IDR', b.created_at, b.created_at,
                       CASE WHEN st.status = 'cancelled' THEN b.created_at + interval '1 hour' END,
                       CASE WHEN st.status = 'completed' THEN s.end_time END,
                       CASE WHEN st.status = 'cancelled' THEN 'customer_request' END,
                       CASE WHEN st.status = 'pending_payment' THEN s.start_time END,
                       translate(upper(substr(md5(s.slot_id::text || g.k), 1, 8)), '01', 'GH'),
                       (ARRAY['app', 'web', 'walk_in', 'phone'])[1 + h.v % 4]
                FROM slots s
                JOIN bench_bulk_lanes l ON l.service_id = s.service_id
                CROSS JOIN LATERAL generate_series(
                    1, s.capacity - s.remaining
                       + CASE WHEN abs(hashtext(s.slot_id::text)) % 1000 < $3::float8 * 1000 THEN 1 ELSE 0 END
                ) AS g(k)
                CROSS JOIN LATERAL (SELECT abs(hashtext(s.slot_id::text || '/' || g.k)) AS v) h
                JOIN bench_bulk_pets p ON p.i = h.v % $2::int
                CROSS JOIN LATERAL (
                    SELECT CASE
                        WHEN g.k > s.capacity - s.remaining THEN 'cancelled'
                        WHEN s.start_time < now() THEN CASE WHEN h.v % 10 = 0 THEN 'no_show' ELSE 'completed' END
                        ELSE CASE WHEN h.v % 10 < 7 THEN 'confirmed' ELSE 'pending_payment' END
                    END AS status
                ) st
                CROSS JOIN LATERAL (
                    SELECT least(now() - interval '1 minute',
                                 s.start_time - make_interval(hours => 1 + (h.v / 7) % 336)) AS created_at
                ) b
                RETURNING 1
            )
            SELECT count(*) FROM inserted
            """,
            PRICE, owners, extra_probability,
        )
        timings["bookings_s"] = time.perf_counter() - t
    finally:
        await conn.execute("RESET session_replication_role")
        await conn.execute("DROP TABLE IF EXISTS bench_bulk_lanes, bench_bulk_pets")

    # VACUUM too, not only ANALYZE: the loaded tables are then as autovacuum keeps long-lived ones. Left
    # to autovacuum, its first pass over 100+ freshly loaded partitions lands in the timed window, and each
    # pass invalidates every connection's cached plans of the tables it touched (seen: 366 re-plans of the
    # hold at ~130 ms each in one 20 s window). docs/performance.md says what such a pass costs.
    t = time.perf_counter()
    await conn.execute("VACUUM (ANALYZE)")
    timings["vacuum_analyze_s"] = time.perf_counter() - t
    sizes = await conn.fetchrow(
        """
        SELECT (SELECT count(*) FROM slots) AS slots, (SELECT count(*) FROM bookings) AS bookings,
               (SELECT count(*) FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent
                WHERE p.relname IN ('slots', 'bookings')) AS partitions,
               pg_database_size(current_database()) AS database_bytes
        """
    )
    timings["total_s"] = time.perf_counter() - started
    return {
        "slots_added": slot_count, "bookings_added": booking_count, "lanes": lanes, "clinics_added": clinics,
        "owners_added": owners, "slot_capacity": capacity,
        "days": f"{first_day} .. {today + timedelta(days=days_ahead - 1)}",
        "partitions_created": partitions,
        "slots_total": sizes["slots"], "bookings_total": sizes["bookings"], "partitions_total": sizes["partitions"],
        "database_mb": round(sizes["database_bytes"] / 2**20),
        "seconds": {key: round(value, 1) for key, value in timings.items()},
    }
