"""The booking engine's SQL that Piccolo cannot express: guarded UPDATEs whose WHERE clause *is* the rule,
row locks, and set-based expiry. Each statement is used inside one transaction by web/booking/services.py.

Every statement that touches a slot names its partition key (``date``) so PostgreSQL prunes to one month.
"""

SLOT_BY_ID = """
SELECT s.slot_id, s.date, s.clinic_id, s.service_id, s.staff_id, s.start_time, s.end_time, s.status,
       s.capacity, s.remaining, COALESCE(s.price, sv.price) AS price, sv.currency,
       c.min_booking_notice_minutes, c.refund_deadline_hours, c.timezone
FROM slots s
JOIN services sv ON sv.service_id = s.service_id
JOIN clinics c ON c.clinic_id = s.clinic_id
WHERE s.slot_id = $1
"""

# When a place of slot ``s`` (with its clinic ``c``) can be taken now: open, a place left, and not started —
# for owners also later than the clinic's minimum booking notice. The notice protects the clinic from online
# bookings it cannot prepare for; a receptionist booking a walk-in for the next free slot is the clinic
# itself, standing next to the pet. TAKE_PLACE and every list that offers slots use this one condition, so
# nothing is offered that taking would refuse.
BOOKABLE_WITH_NOTICE = """(s.status = 'available' AND s.remaining > 0
  AND s.start_time > now() + make_interval(mins => c.min_booking_notice_minutes))"""
BOOKABLE_AT_DESK = """(s.status = 'available' AND s.remaining > 0 AND s.start_time > now())"""

# The hold: the guard and the decrement are one statement, so two buyers can never both take the last
# place (the row lock makes the second wait, then re-check remaining > 0). Nothing else is written
# unless this returns a row (the design wrote the reservation first).
TAKE_PLACE = f"""
UPDATE slots s
SET remaining = s.remaining - 1, version = s.version + 1
FROM clinics c
WHERE s.slot_id = $1 AND s.date = $2 AND c.clinic_id = s.clinic_id
  AND CASE WHEN $3::boolean THEN {BOOKABLE_WITH_NOTICE} ELSE {BOOKABLE_AT_DESK} END
RETURNING s.slot_id, s.remaining
"""
# TAKE_PLACE's third parameter.
WITH_NOTICE = True
WITHOUT_NOTICE = False

# Give one place back. A slot staff blocked ('maintenance', 'unavailable') stays blocked; only a slot
# that was full ('booked') becomes available again.
RETURN_PLACES = """
UPDATE slots
SET remaining = remaining + $3, version = version + 1,
    status = CASE WHEN status = 'booked' THEN 'available' ELSE status END
WHERE slot_id = $1 AND date = $2
"""

MARK_FULL_SLOT_BOOKED = """
UPDATE slots SET status = 'booked', version = version + 1
WHERE slot_id = $1 AND date = $2 AND remaining = 0 AND status = 'available'
"""

# Serialises one owner's holds, so that the per-owner limit and the same-pet overlap check cannot be
# raced by two tabs. Transaction-level: safe behind PgBouncer.
LOCK_OWNER_HOLDS = "SELECT pg_advisory_xact_lock(hashtext('vetbook:holds'), hashtext($1::text))"

COUNT_PENDING_HOLDS = """
SELECT count(*) FROM reservations WHERE user_id = $1 AND status = 'pending' AND expires_at > now()
"""

# Does this pet already have a hold or a booking whose time overlaps [start, end)?
PET_IS_BUSY = """
SELECT EXISTS (
    SELECT 1 FROM reservations r JOIN slots s ON s.slot_id = r.slot_id AND s.date = r.slot_date
    WHERE r.pet_id = $1 AND r.status = 'pending' AND r.expires_at > now()
      AND tstzrange(s.start_time, s.end_time) && tstzrange($2, $3)
    UNION ALL
    SELECT 1 FROM bookings b JOIN slots s ON s.slot_id = b.slot_id AND s.date = b.slot_date
    WHERE b.pet_id = $1 AND b.status IN ('pending_payment', 'confirmed', 'in_progress')
      AND b.booking_id IS DISTINCT FROM $4
      AND tstzrange(s.start_time, s.end_time) && tstzrange($2, $3)
)
"""

INSERT_RESERVATION = """
INSERT INTO reservations (user_id, pet_id, slot_id, slot_date, service_id, expires_at, lock_token)
VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6), $7)
RETURNING reservation_id, lock_token, expires_at, slot_id, status
"""

RELEASE_RESERVATION = """
UPDATE reservations SET status = 'cancelled'
WHERE reservation_id = $1 AND user_id = $2 AND status = 'pending'
RETURNING slot_id, slot_date
"""

RESERVATION_FOR_UPDATE = """
SELECT r.reservation_id, r.user_id, r.pet_id, r.slot_id, r.slot_date, r.service_id, r.status, r.lock_token,
       r.expires_at, r.expires_at <= now() AS is_expired
FROM reservations r
WHERE r.reservation_id = $1 AND r.user_id = $2
FOR UPDATE
"""

EXPIRE_ONE_RESERVATION = "UPDATE reservations SET status = 'expired' WHERE reservation_id = $1 AND status = 'pending'"

CONFIRM_RESERVATION = "UPDATE reservations SET status = 'confirmed' WHERE reservation_id = $1"

INSERT_BOOKING = """
INSERT INTO bookings (
    reservation_id, user_id, pet_id, clinic_id, service_id, slot_id, slot_date, staff_id,
    status, payment_status, total_amount, discount_amount, final_amount, currency, notes,
    booking_source, payment_due_at, payment_id, rescheduled_from_booking_id, rescheduled_from_created_at
) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)
RETURNING *
"""

BOOKING_FOR_UPDATE = """
SELECT b.*, s.start_time, s.end_time, c.refund_deadline_hours, c.timezone
FROM bookings b
JOIN slots s ON s.slot_id = b.slot_id AND s.date = b.slot_date
JOIN clinics c ON c.clinic_id = b.clinic_id
WHERE b.booking_id = $1
FOR UPDATE OF b
"""

# The unpaid-expiry job's lock: a booking someone is changing right now is passed over (the next run
# takes it) instead of waited for: a job never queues behind people, and never holds locks that a
# person's change (a reschedule into a slot the job just gave a place back to) would wait for.
BOOKING_FOR_EXPIRY = """
SELECT b.*, s.start_time, s.end_time, c.refund_deadline_hours, c.timezone
FROM bookings b
JOIN slots s ON s.slot_id = b.slot_id AND s.date = b.slot_date
JOIN clinics c ON c.clinic_id = b.clinic_id
WHERE b.booking_id = $1
FOR UPDATE OF b SKIP LOCKED
"""

# Set-based expiry of holds: one statement marks them expired and returns their places, slot rows
# locked in slot_id order (the same order as every other multi-slot statement: no deadlock).
EXPIRE_HOLDS = """
WITH expired AS (
    UPDATE reservations SET status = 'expired'
    WHERE reservation_id IN (
        SELECT reservation_id FROM reservations
        WHERE status = 'pending' AND expires_at <= now()
        ORDER BY expires_at
        LIMIT $1
        FOR UPDATE SKIP LOCKED
    )
    RETURNING slot_id, slot_date
), per_slot AS (
    SELECT slot_id, slot_date, count(*)::int AS places FROM expired GROUP BY slot_id, slot_date
), locked AS (
    SELECT s.slot_id, s.date, p.places
    FROM slots s JOIN per_slot p ON p.slot_id = s.slot_id AND p.slot_date = s.date
    ORDER BY s.slot_id
    FOR UPDATE OF s
)
UPDATE slots s
SET remaining = s.remaining + l.places, version = s.version + 1,
    status = CASE WHEN s.status = 'booked' THEN 'available' ELSE s.status END
FROM locked l
WHERE s.slot_id = l.slot_id AND s.date = l.date
RETURNING s.slot_id, l.places
"""

UNPAID_PAST_DUE = """
SELECT booking_id FROM bookings
WHERE status = 'pending_payment' AND payment_due_at <= now()
ORDER BY payment_due_at
LIMIT $1
"""

# The operators' invariant (``vetbook check``): for every slot, the places left are the capacity minus
# pending holds minus bookings that keep their place; and nothing is negative.
SLOT_INVARIANT_VIOLATIONS = """
SELECT s.slot_id, s.date, s.capacity, s.remaining, COALESCE(h.pending, 0) AS pending_holds,
       COALESCE(b.kept, 0) AS kept_bookings
FROM slots s
LEFT JOIN (
    SELECT slot_id, slot_date, count(*) AS pending FROM reservations WHERE status = 'pending'
    GROUP BY slot_id, slot_date
) h ON h.slot_id = s.slot_id AND h.slot_date = s.date
LEFT JOIN (
    SELECT slot_id, slot_date, count(*) AS kept FROM bookings WHERE status NOT IN ('cancelled', 'rescheduled')
    GROUP BY slot_id, slot_date
) b ON b.slot_id = s.slot_id AND b.slot_date = s.date
WHERE s.remaining <> s.capacity - COALESCE(h.pending, 0) - COALESCE(b.kept, 0)
   OR s.remaining < 0
ORDER BY s.date, s.slot_id
"""

# Money returned from a settled payment, added to what it already returned (a reschedule to a cheaper time,
# then a cancellation, both return part of the same payment). Fully returned: 'refunded'.
RECORD_REFUND_ON_PAYMENT = """
UPDATE payment_records
SET refund_amount = COALESCE(refund_amount, 0) + $2, refunded_at = now(),
    status = CASE WHEN COALESCE(refund_amount, 0) + $2 >= amount THEN 'refunded' ELSE 'partially_refunded' END,
    metadata = COALESCE(metadata, '{}'::jsonb) || $3::jsonb
WHERE payment_id = $1 AND status IN ('completed', 'partially_refunded')
RETURNING payment_id, status, refund_amount
"""

# Payment attempts still waiting for the money of a booking or of the bookings it was rescheduled from
# (an attempt names the booking it was started for): they end when the amount due changes or the booking
# is cancelled. A gateway that settles one of them later is answered by web/payments/services.py.
EXPIRE_PENDING_PAYMENTS_OF_CHAIN = """
WITH RECURSIVE chain(booking_id, from_id, depth) AS (
    SELECT b.booking_id, b.rescheduled_from_booking_id, 0 FROM bookings b WHERE b.booking_id = $1
    UNION ALL
    SELECT e.booking_id, e.rescheduled_from_booking_id, chain.depth + 1
    FROM chain JOIN bookings e ON e.booking_id = chain.from_id
    WHERE chain.depth < 20
)
UPDATE payment_records SET status = 'expired'
WHERE status = 'pending' AND booking_id IN (SELECT booking_id FROM chain)
"""
