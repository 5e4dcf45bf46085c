"""The booking engine's SQL that Piccolo cannot express: guarded UPDATEs whose WHERE clause *is* the rule,
row locks, and set-based expiry. Each statement is used inside one transaction by web/booking/services.py
(or is one: ``CONFIRM``). A slot's places change through web/slots/places.py, or through the slots
feature's own statements run as a step of one of these (``HOLD``, ``CONFIRM``); a payment's record through
web/payments/ledger.py.

Every statement that touches a slot names its partition key (``date``) so PostgreSQL prunes to one month.
"""

from web.booking import state
from web.core import audit
from web.slots import statements as slot_statements

# A slot with its price (the slot's, else its service's) and its clinic's rules: a three-table join.
_SLOT_COLUMNS = """s.slot_id, s.date, s.clinic_id, s.service_id, s.staff_id, s.start_time, s.end_time, s.status,
       s.capacity, s.remaining, COALESCE(s.price, sv.price) AS price, sv.currency,
       c.min_booking_notice_minutes, c.refund_deadline_hours, c.timezone"""
_SLOT_JOINS = """FROM slots s
JOIN services sv ON sv.service_id = s.service_id
JOIN clinics c ON c.clinic_id = s.clinic_id"""
_SLOT_WITH_RULES = f"SELECT {_SLOT_COLUMNS}\n{_SLOT_JOINS}\n"

# By id alone (what the API and the pages are given): one index probe per monthly partition.
SLOT_BY_ID = _SLOT_WITH_RULES + "WHERE s.slot_id = $1"

# The pet ($2) is this owner's ($3), and the owner is an owner (the desk books only for owners).
_OWN_PET = """EXISTS (SELECT 1 FROM pets p JOIN users u ON u.user_id = p.owner_id
               WHERE p.pet_id = $2 AND p.owner_id = $3 AND u.role = 'owner')"""
PET_OF_OWNER = "SELECT " + _OWN_PET.replace("$2", "$1").replace("$3", "$2")

# Serialises one owner's holds, so that the per-owner limit and the same-pet overlap check cannot be
# raced by two tabs: the namespace of a transaction-level advisory lock (safe behind PgBouncer) on the
# owner, taken by ``transaction_as(..., lock=...)`` in the round trip that names the actor.
OWNER_HOLDS_LOCK = "vetbook:holds"

# Does this pet already have a hold or a booking whose time overlaps [start, end)? ``excluded``: a booking
# to leave out (the one being rescheduled); ``day``: the new visit's slot date. A slot ends on the
# clinic-local day it starts (slots_within_one_local_day), so an overlapping visit has its slot date within
# two days of the new one's, whatever the clinics' time zones: that window lets the partial indexes on
# (pet_id, slot_date) answer instead of a scan of every bookings partition (partitioned by creation time,
# unknown here), and prunes the slots it joins to the months of that window.
def _pet_is_busy(pet: str, start: str, end: str, excluded: str, day: str) -> str:
    return f"""EXISTS (
    SELECT 1 FROM reservations r JOIN slots s ON s.slot_id = r.slot_id AND s.date = r.slot_date
    WHERE r.pet_id = {pet} AND r.status = 'pending' AND r.expires_at > now()
      AND r.slot_date BETWEEN {day} - 2 AND {day} + 2 AND s.date BETWEEN {day} - 2 AND {day} + 2
      AND tstzrange(s.start_time, s.end_time) && tstzrange({start}, {end})
    UNION ALL
    SELECT 1 FROM bookings b JOIN slots s ON s.slot_id = b.slot_id AND s.date = b.slot_date
    WHERE b.pet_id = {pet} AND b.status IN {state.ACTIVE_SQL}
      AND b.slot_date BETWEEN {day} - 2 AND {day} + 2 AND s.date BETWEEN {day} - 2 AND {day} + 2
      AND b.booking_id IS DISTINCT FROM {excluded}
      AND tstzrange(s.start_time, s.end_time) && tstzrange({start}, {end})
)"""


# $1 pet, [$2, $3) the time, $4 the booking to leave out, $5 the slot date.
PET_IS_BUSY = "SELECT " + _pet_is_busy("$1", "$2", "$3", "$4", "$5::date")

# A hold in one statement, after the owner's lock (so that the owner's other holds are all visible). First
# ``verdict``, everything a hold decides on: whether the pet ($2) is the owner's ($3) (a row even when the
# slot does not exist, so that the pet is judged first); the slot ($1) with its rules (NULLs when there is no
# such slot) and whether it is bookable now by the slots feature's own condition; how many holds the owner
# has that still count (by the database's clock, as everywhere a hold's expiry is checked); whether the pet
# is busy then. Then, only when the owner's rules pass ($5: the most holds at once), the slots feature's
# guarded take of a place ($4: with the clinic's notice), which decides every race, and the reservation for
# it, whose expiry the database's clock computes (now() + $6 seconds), with the client's idempotency key ($8,
# or NULL). The verdict comes back in every case,
# the reservation's columns only when a place was taken: the service says why from the verdict otherwise.
HOLD = f"""
WITH t AS (
    SELECT {_SLOT_COLUMNS}, {slot_statements.BOOKABLE_WITH_NOTICE} AS bookable
    {_SLOT_JOINS}
    WHERE s.slot_id = $1
),
verdict AS MATERIALIZED (
    SELECT {_OWN_PET} AS own_pet, t.*,
           (SELECT count(*) FROM reservations WHERE user_id = $3 AND status = 'pending' AND expires_at > now())
               AS pending_holds,
           t.slot_id IS NOT NULL AND {_pet_is_busy("$2", "t.start_time", "t.end_time", "NULL::uuid", "t.date")}
               AS pet_busy
    FROM (SELECT 1) AS one
    LEFT JOIN t ON true
),
taken AS ({slot_statements.take_place_where(
    "$1", "(SELECT date FROM verdict)", "$4",
    only_if="(SELECT own_pet AND pending_holds < $5 AND NOT pet_busy FROM verdict)")}),
placed AS (
    INSERT INTO reservations (user_id, pet_id, slot_id, slot_date, service_id, expires_at, lock_token,
                              idempotency_key)
    SELECT $3, $2, taken.slot_id, verdict.date, verdict.service_id, now() + make_interval(secs => $6), $7, $8
    FROM taken, verdict
    RETURNING reservation_id, lock_token, expires_at, status
)
SELECT verdict.*, placed.reservation_id, placed.lock_token, placed.expires_at, placed.status AS hold_status
FROM verdict LEFT JOIN placed ON true
"""

# The owner's ($1) hold made earlier with this idempotency key ($2), whatever has become of it since.
HOLD_BY_IDEMPOTENCY_KEY = """
SELECT reservation_id, lock_token, expires_at, slot_id, pet_id, status AS hold_status
FROM reservations WHERE user_id = $1 AND idempotency_key = $2
"""

# Guarded: only the owner's own pending hold is released; RETURNING says which slot gets its place back.
RELEASE_RESERVATION = """
UPDATE reservations SET status = 'cancelled'
WHERE reservation_id = $1 AND user_id = $2 AND status = 'pending'
RETURNING slot_id, slot_date
"""

# All twenty columns set from the engine's terms; RETURNING * hands the row (with its generated code) back.
INSERT_BOOKING = """
INSERT INTO bookings (
    reservation_id, user_id, pet_id, clinic_id, service_id, slot_id, slot_date, staff_id,
    status, payment_status, total_amount, discount_amount, final_amount, currency, notes,
    booking_source, payment_due_at, payment_id, rescheduled_from_booking_id, rescheduled_from_created_at
) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)
RETURNING *
"""

# A confirm in one statement, so its own transaction: the actor named for the history trigger ($7 user, $8
# reason, $9 metadata, $10 application_name: evaluated before any row changes, since every change below
# reads ``hold``); the owner's ($2) hold ($1) row-locked, with its slot by the hold's partition key, the database's verdict on
# expiry, and whether the token ($3) matches (compared as SHA-256 digests, so the comparison's time says
# nothing about the token). Only a pending, unexpired hold with its token is confirmed: its booking
# (INSERT_BOOKING's columns) priced from the slot or its service, a free one confirmed and paid at once,
# otherwise waiting for payment until now() + $6 minutes or the visit's start, whichever is first ($4 notes,
# $5 source); the slot marked full if that was its last place (the slots feature's statement). Returns the
# hold's verdict (no row: no such hold of this owner), and the booking's columns when it was confirmed.
def _confirm() -> str:
    free = "h.price = 0"
    return f"""
WITH actor AS MATERIALIZED (SELECT {audit.actor_settings("$7", "$8", "$9", "$10")}),
hold AS MATERIALIZED (
    SELECT r.reservation_id, r.user_id, r.pet_id, r.status AS hold_status, r.expires_at <= now() AS is_expired,
           sha256(convert_to(r.lock_token, 'UTF8')) = sha256(convert_to($3::text, 'UTF8')) AS token_matches,
           s.slot_id, s.date, s.clinic_id, s.service_id, s.staff_id, s.start_time, s.end_time,
           COALESCE(s.price, sv.price, 0) AS price, sv.currency
    FROM actor, reservations r
    JOIN slots s ON s.slot_id = r.slot_id AND s.date = r.slot_date
    JOIN services sv ON sv.service_id = s.service_id
    WHERE r.reservation_id = $1 AND r.user_id = $2
    FOR UPDATE OF r
),
confirmed AS (
    UPDATE reservations SET status = '{state.HOLD_CONFIRMED}' FROM hold h
    WHERE reservations.reservation_id = h.reservation_id
      AND h.hold_status = '{state.HOLD_PENDING}' AND NOT h.is_expired AND h.token_matches
    RETURNING h.*
),
full_now AS ({slot_statements.mark_full_where("(SELECT slot_id FROM confirmed)", "(SELECT date FROM confirmed)")}),
booked AS (
    INSERT INTO bookings (
        reservation_id, user_id, pet_id, clinic_id, service_id, slot_id, slot_date, staff_id,
        status, payment_status, total_amount, discount_amount, final_amount, currency, notes,
        booking_source, payment_due_at, payment_id, rescheduled_from_booking_id, rescheduled_from_created_at
    )
    SELECT h.reservation_id, h.user_id, h.pet_id, h.clinic_id, h.service_id, h.slot_id, h.date, h.staff_id,
           CASE WHEN {free} THEN '{state.CONFIRMED}' ELSE '{state.PENDING_PAYMENT}' END,
           CASE WHEN {free} THEN 'paid' ELSE 'pending' END,
           h.price, 0, h.price, h.currency, $4, $5,
           CASE WHEN {free} THEN NULL ELSE least(now() + make_interval(mins => $6), h.start_time) END,
           NULL, NULL, NULL
    FROM confirmed h
    RETURNING *
)
SELECT hold.hold_status, hold.is_expired, hold.token_matches, hold.start_time, hold.end_time, booked.*
FROM hold LEFT JOIN booked ON true
"""


CONFIRM = _confirm()

# The booking a confirmed hold ($1) of this owner ($2) made, with its visit's times (what CONFIRM answers):
# a confirm repeated with the hold's token gets it again.
BOOKING_OF_CONFIRMED_HOLD = """
SELECT b.*, s.start_time, s.end_time
FROM bookings b JOIN slots s ON s.slot_id = b.slot_id AND s.date = b.slot_date
WHERE b.reservation_id = $1 AND b.user_id = $2
ORDER BY b.created_at LIMIT 1
"""

# A hold found expired at its confirm: marked so (guarded: only while still pending), with its slot's key
# to give the place back.
EXPIRE_HOLD = f"""
UPDATE reservations SET status = '{state.HOLD_EXPIRED}'
WHERE reservation_id = $1 AND status = '{state.HOLD_PENDING}' AND expires_at <= now()
RETURNING slot_id, slot_date
"""

# Who cancelled the booking ($1, created $2): a cancel repeated by the same person is that cancel again.
CANCELLED_BY = """
SELECT changed_by FROM booking_history
WHERE booking_id = $1 AND booking_created_at = $2 AND new_status = 'cancelled'
ORDER BY changed_at DESC LIMIT 1
"""

# One UPDATE on the composite key (booking_id, created_at): the partition key prunes to one month.
CANCEL_BOOKING = """
UPDATE bookings SET status = 'cancelled', payment_status = $3, refunded_amount = $4,
    cancelled_at = now(), cancellation_reason = $5, cancellation_notes = $6, version = version + 1
WHERE booking_id = $1 AND created_at = $2
RETURNING *
"""

# The same composite key; the status change fires the history trigger.
MARK_RESCHEDULED = """
UPDATE bookings SET status = 'rescheduled', version = version + 1 WHERE booking_id = $1 AND created_at = $2
"""

# check-in, complete, no-show (the transition was checked by state.require_transition).
CHANGE_STATUS_AT_DESK = """
UPDATE bookings SET status = $3::text, version = version + 1,
    completed_at = CASE WHEN $3::text = 'completed' THEN now() ELSE completed_at END
WHERE booking_id = $1 AND created_at = $2
RETURNING *
"""

# The unpaid-expiry job's change, on the composite key, timestamped by the database.
CANCEL_UNPAID = """
UPDATE bookings SET status = 'cancelled', payment_status = 'failed', cancelled_at = now(),
    cancellation_reason = 'payment_expired', version = version + 1
WHERE booking_id = $1 AND created_at = $2
"""

# A booking with what its rules need (the visit's start and end, the clinic's refund deadline and zone),
# row-locked: the booking row first, as every change of a booking locks it.
_LOCKED_BOOKING = """
SELECT b.*, s.start_time, s.end_time, c.refund_deadline_hours, c.timezone
FROM bookings b
JOIN slots s ON s.slot_id = b.slot_id AND s.date = b.slot_date
JOIN clinics c ON c.clinic_id = b.clinic_id
WHERE b.booking_id = $1
FOR UPDATE OF b"""

BOOKING_FOR_UPDATE = _LOCKED_BOOKING
# The unpaid-expiry job's lock: a booking someone is changing right now is passed over (the next run
# takes it) instead of waited for: a job never queues behind people, and never holds locks that a
# person's change (a reschedule into a slot the job just gave a place back to) would wait for.
BOOKING_FOR_EXPIRY = _LOCKED_BOOKING + " SKIP LOCKED"

# Set-based expiry of holds: one statement marks a batch expired (holds someone is confirming right now are
# passed over) and says which slots get their places back (web/slots/places.py gives them back).
EXPIRE_HOLDS = """
UPDATE reservations SET status = 'expired'
WHERE reservation_id IN (
    SELECT reservation_id FROM reservations
    WHERE status = 'pending' AND expires_at <= now()
    ORDER BY expires_at
    LIMIT $1
    FOR UPDATE SKIP LOCKED
)
RETURNING slot_id, slot_date
"""

# Holds on slots being blocked: locked NOWAIT (see web/slots/blocking.py for why), then cancelled; their
# owners' confirm then answers "This hold was already released".
LOCK_HOLDS_NOWAIT = "SELECT 1 FROM reservations WHERE reservation_id = ANY($1::uuid[]) FOR UPDATE NOWAIT"
# Guarded by status: a hold confirmed meanwhile is left alone; RETURNING gives the places to give back.
CANCEL_HOLDS = """
UPDATE reservations SET status = 'cancelled'
WHERE reservation_id = ANY($1::uuid[]) AND status = 'pending'
RETURNING slot_id, slot_date
"""

# Due by the database's clock, oldest first, a batch at a time.
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

# What a payment does to its booking (web/payments/services.py asks through the engine's confirm_paid,
# record_late_refund and set_payment_due). Guarded: only a booking still waiting for payment is confirmed.
CONFIRM_PAID_BOOKING = """
UPDATE bookings SET status = 'confirmed', payment_status = 'paid', payment_id = $3, version = version + 1
WHERE booking_id = $1 AND created_at = $2 AND status = 'pending_payment'
RETURNING booking_id
"""

# The cancelled booking says where its money went: taken once, returned in full. Its status stays.
RECORD_BOOKING_REFUND = """
UPDATE bookings SET payment_status = 'refunded', refunded_amount = final_amount, payment_id = $3,
    version = version + 1
WHERE booking_id = $1 AND created_at = $2 AND status = 'cancelled' AND payment_id IS NULL
RETURNING booking_id
"""

# The money is taken at the visit: the wait for payment lasts until the start.
SET_PAYMENT_DUE = "UPDATE bookings SET payment_due_at = $3 WHERE booking_id = $1 AND created_at = $2"

# The booking's replacement in a reschedule, whose status it hands on to.
REPLACEMENT_OF = """
SELECT booking_id FROM bookings WHERE rescheduled_from_booking_id = $1 AND rescheduled_from_created_at = $2
"""


# ------------------------------------------------------------------ reads (web/booking/queries.py)

# Bookings ⋈ slots on the composite partition key, with pet and owner names for the refusal message.
ACTIVE_BOOKINGS_IN_SLOTS = f"""
SELECT b.booking_id, b.booking_code, b.status, b.version, b.slot_id, s.start_time, p.name AS pet_name,
       u.name AS owner_name, b.final_amount, b.payment_status
FROM bookings b
JOIN slots s ON s.slot_id = b.slot_id AND s.date = b.slot_date
JOIN pets p ON p.pet_id = b.pet_id
JOIN users u ON u.user_id = b.user_id
WHERE b.slot_id = ANY($1::uuid[]) AND b.slot_date = ANY($2::date[])
  AND b.status IN {state.ACTIVE_SQL}
ORDER BY s.start_time, b.booking_code
"""


# Live by the database's clock.
LIVE_HOLDS_IN_SLOTS = """
SELECT r.reservation_id, r.slot_id, r.slot_date FROM reservations r
WHERE r.slot_id = ANY($1::uuid[]) AND r.slot_date = ANY($2::date[])
  AND r.status = 'pending' AND r.expires_at > now()
"""


# NOWAIT over a list of ids: see web/slots/blocking.py for why blocking must never wait for a booking.
LOCK_BOOKINGS_NOWAIT = "SELECT 1 FROM bookings WHERE booking_id = ANY($1::uuid[]) FOR UPDATE NOWAIT"


# The API's booking with its visit time: bookings ⋈ slots on the composite partition key.
BOOKING_READ = """
SELECT b.booking_id, b.status, b.payment_status, b.slot_id, b.pet_id, b.clinic_id, b.service_id, b.staff_id,
       b.total_amount, b.discount_amount, b.final_amount, b.refunded_amount, b.currency, b.version, b.notes,
       b.booking_source, b.created_at, b.payment_due_at, b.cancelled_at, b.completed_at,
       b.cancellation_reason, b.rescheduled_from_booking_id, s.start_time, s.end_time
FROM bookings b
JOIN slots s ON s.slot_id = b.slot_id AND s.date = b.slot_date
"""


# One row per booking with everything the owner's pages show: clinic, service, pet, visit time, the
# replacement of a rescheduled booking, and the latest payment attempt along the booking's reschedule chain
# (a payment started before a reschedule names the earlier booking).
OWNER_BOOKINGS = """
SELECT b.booking_id, b.booking_code, b.status, b.payment_status, b.total_amount, b.discount_amount,
       b.final_amount, b.refunded_amount, b.currency, b.version, b.payment_due_at, b.payment_id, b.notes,
       b.created_at, b.cancelled_at, b.cancellation_reason, b.rescheduled_from_booking_id,
       b.clinic_id, b.service_id, b.slot_id, s.date AS slot_day, s.start_time, s.end_time,
       c.name AS clinic_name, c.address AS clinic_address, c.timezone, c.refund_deadline_hours,
       sv.name AS service_name, sv.duration_minutes, p.name AS pet_name,
       moved.booking_id AS rescheduled_to_booking_id,
       attempt.payment_id AS last_payment_id, attempt.payment_provider AS last_payment_provider,
       attempt.status AS last_payment_status, attempt.payment_url AS last_payment_url,
       -- What the booking's payment returned when the visit moved to a cheaper time (its refunds beyond
       -- the booking's own cancellation refund).
       GREATEST(COALESCE(paid.refund_amount, 0) - b.refunded_amount, 0) AS price_difference_returned
FROM bookings b
JOIN slots s ON s.slot_id = b.slot_id AND s.date = b.slot_date
JOIN clinics c ON c.clinic_id = b.clinic_id
JOIN services sv ON sv.service_id = b.service_id
JOIN pets p ON p.pet_id = b.pet_id
LEFT JOIN payment_records paid ON paid.payment_id = b.payment_id
LEFT JOIN LATERAL (
    SELECT r.booking_id FROM bookings r
    WHERE r.rescheduled_from_booking_id = b.booking_id AND r.rescheduled_from_created_at = b.created_at
    LIMIT 1
) moved ON b.status = 'rescheduled'
LEFT JOIN LATERAL (
    WITH RECURSIVE chain(booking_id, from_id, depth) AS (
        SELECT b.booking_id, b.rescheduled_from_booking_id, 0
        UNION ALL
        SELECT e.booking_id, e.rescheduled_from_booking_id, chain.depth + 1
        FROM chain JOIN bookings e ON e.booking_id = chain.from_id
        WHERE chain.depth < 20
    )
    SELECT pr.payment_id, pr.payment_provider, pr.status, pr.payment_url
    FROM payment_records pr
    WHERE pr.booking_id IN (SELECT booking_id FROM chain)
    ORDER BY pr.created_at DESC
    LIMIT 1
) attempt ON TRUE
WHERE b.user_id = $1
"""


# Everything a hold's page shows in one query (five joins and a LATERAL for its booking).
OWNER_RESERVATION = """
SELECT r.reservation_id, r.status, r.lock_token, r.created_at, r.expires_at, r.expires_at <= now() AS is_expired,
       r.slot_id, r.slot_date, r.service_id, r.pet_id, s.clinic_id, s.start_time, s.end_time,
       COALESCE(s.price, sv.price) AS price, sv.currency, sv.name AS service_name, sv.duration_minutes,
       c.name AS clinic_name, c.address AS clinic_address, c.timezone, p.name AS pet_name, p.species AS pet_species,
       b.booking_id
FROM reservations r
JOIN slots s ON s.slot_id = r.slot_id AND s.date = r.slot_date
JOIN services sv ON sv.service_id = r.service_id
JOIN clinics c ON c.clinic_id = s.clinic_id
JOIN pets p ON p.pet_id = r.pet_id
LEFT JOIN LATERAL (
    SELECT booking_id FROM bookings WHERE reservation_id = r.reservation_id LIMIT 1
) b ON r.status = 'confirmed'
WHERE r.reservation_id = $1 AND r.user_id = $2
"""
