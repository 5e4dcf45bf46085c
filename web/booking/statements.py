"""The booking engine's SQL that Piccolo cannot express: guarded UPDATEs whose WHERE clause *is* the rule,
row locks, and set-based expiry. Each statement is used inside one transaction by web/booking/services.py.
A slot's places change through web/slots/places.py, or through the slots feature's own statements run as a
step of one of these (``TAKE_PLACE_FOR_HOLD``, ``CONFIRM_HOLD``); a payment's record through
web/payments/ledger.py.

Every statement of the write paths names the clinic ($1 everywhere) on every distributed table it reads or
writes, so that on Citus it is planned for the one shard that holds the clinic (docs/scaling.md;
tests/citus/test_router_plans.py reads their plans), and names the partition key (a slot's ``date``, a
booking's ``created_at``) so PostgreSQL prunes to one month. Citus plans a statement for one shard only
when its inserts are top-level statements, so a hold is a guarded UPDATE then an INSERT, not one statement
with an INSERT inside a WITH.
"""

from web.booking import state
from web.slots import statements as slot_statements

# A slot with its price (the slot's, else its service's) and its clinic's rules: a three-table join.
_SLOT_COLUMNS = """s.slot_id, s.date, s.clinic_id, s.service_id, s.staff_id, s.start_time, s.end_time, s.status,
       s.capacity, s.remaining, COALESCE(s.price, sv.price) AS price, sv.currency,
       c.min_booking_notice_minutes, c.refund_deadline_hours, c.timezone"""
_SLOT_JOINS = """FROM slots s
JOIN services sv ON sv.service_id = s.service_id
JOIN clinics c ON c.clinic_id = s.clinic_id"""

# By its whole key ($1 clinic, $2 slot, $3 day: web/slots/queries.py locate_slot).
SLOT_WITH_RULES = f"SELECT {_SLOT_COLUMNS}\n{_SLOT_JOINS}\nWHERE s.clinic_id = $1 AND s.slot_id = $2 AND s.date = $3"


def _own_pet(pet: str, owner: str) -> str:
    """The pet is the owner's, and the owner is an owner (the desk books only for owners)."""
    return f"""EXISTS (SELECT 1 FROM pets p JOIN users u ON u.user_id = p.owner_id
               WHERE p.pet_id = {pet} AND p.owner_id = {owner} AND u.role = 'owner')"""


PET_OF_OWNER = "SELECT " + _own_pet("$1", "$2")

# Serialises one owner's holds, so that the per-owner limit and the same-pet overlap check cannot be
# raced by two tabs: the namespace of a transaction-level advisory lock (safe behind PgBouncer) on the
# owner, taken by ``transaction_as(..., lock=...)`` in the round trip that names the request.
OWNER_HOLDS_LOCK = "vetbook:holds"


def _pet_is_busy(clinic: str, pet: str, start: str, end: str, excluded: str, day: str) -> str:
    """Does this pet already have a hold or a booking at this clinic whose time overlaps [start, end)?
    ``excluded``: a booking to leave out (the one being rescheduled); ``day``: the new visit's slot date.
    A slot ends on the clinic-local day it starts (slots_within_one_local_day) and all of a clinic's slots
    share its zone, so an overlapping visit at the same clinic has the same slot date: the partial indexes
    on (clinic_id, pet_id, slot_date) answer, and the slots joined are pruned to that day's partition.
    Visits at other clinics are on other shards and are not looked at (docs/scaling.md)."""
    return f"""EXISTS (
    SELECT 1 FROM reservations r JOIN slots vs ON vs.clinic_id = {clinic} AND vs.slot_id = r.slot_id AND vs.date = r.slot_date
    WHERE r.clinic_id = {clinic} AND r.pet_id = {pet} AND r.status = 'pending' AND r.expires_at > now()
      AND r.slot_date = {day} AND vs.date = {day}
      AND tstzrange(vs.start_time, vs.end_time) && tstzrange({start}, {end})
    UNION ALL
    SELECT 1 FROM bookings b JOIN slots vs ON vs.clinic_id = {clinic} AND vs.slot_id = b.slot_id AND vs.date = b.slot_date
    WHERE b.clinic_id = {clinic} AND b.pet_id = {pet} AND b.status IN {state.ACTIVE_SQL}
      AND b.slot_date = {day} AND vs.date = {day}
      AND b.booking_id IS DISTINCT FROM {excluded}
      AND tstzrange(vs.start_time, vs.end_time) && tstzrange({start}, {end})
)"""


# $1 clinic, $2 pet, [$3, $4) the time, $5 the booking to leave out, $6 the slot date.
PET_IS_BUSY = "SELECT " + _pet_is_busy("$1", "$2", "$3", "$4", "$5::uuid", "$6::date")


def _pending_holds(owner: str) -> str:
    """How many holds of this owner still count at the clinic $1 (by the database's clock, as everywhere a
    hold's expiry is checked): the per-owner limit is per clinic, which one shard answers."""
    return f"""(SELECT count(*) FROM reservations
    WHERE clinic_id = $1 AND user_id = {owner} AND status = 'pending' AND expires_at > now())"""


# The take of a place for a hold, after the owner's lock (so that the owner's other holds at this clinic are
# all visible): the slots feature's guarded take of one place of the slot ($1 clinic, $2 slot, $3 day; $4:
# with the clinic's notice), which decides every race, gated by the owner's rules: the pet ($5) is the
# owner's ($6), fewer than $7 holds at once, the pet not busy then, and no earlier hold with this
# idempotency key ($8, or NULL). Returns the slot when a place was taken; nothing otherwise (HOLD_VERDICT
# says why).
TAKE_PLACE_FOR_HOLD = slot_statements.take_place_where(
    "$1", "$2", "$3", "$4",
    only_if=f"""{_own_pet("$5", "$6")}
  AND {_pending_holds("$6")} < $7
  AND NOT {_pet_is_busy("$1", "$5", "s.start_time", "s.end_time", "NULL::uuid", "$3")}
  AND ($8::text IS NULL OR NOT EXISTS (
      SELECT 1 FROM reservations WHERE clinic_id = $1 AND user_id = $6 AND idempotency_key = $8))""",
    returning="s.slot_id, s.date, s.service_id")

# The hold for the place just taken: its expiry computed by the database's clock (now() + $8 seconds).
INSERT_RESERVATION = """
INSERT INTO reservations (clinic_id, reservation_id, user_id, pet_id, slot_id, slot_date, service_id, expires_at,
                          lock_token, idempotency_key)
VALUES ($1, $2, $3, $4, $5, $6, $7, now() + make_interval(secs => $8), $9, $10)
RETURNING reservation_id, slot_id, lock_token, expires_at, status
"""

# Everything a refused hold is judged on, in one row even when the slot does not exist (so that the pet is
# judged first): whether the pet ($4) is the owner's ($5), the slot ($1 clinic, $2 slot, $3 day) with its
# rules (NULLs when there is no such slot), the owner's holds that count at this clinic, whether the pet is
# busy then.
HOLD_VERDICT = f"""
SELECT {_own_pet("$4", "$5")} AS own_pet, t.*, {_pending_holds("$5")} AS pending_holds,
       t.slot_id IS NOT NULL AND {_pet_is_busy("$1", "$4", "t.start_time", "t.end_time", "NULL::uuid", "$3")}
           AS pet_busy
FROM (SELECT 1) AS one
LEFT JOIN (SELECT {_SLOT_COLUMNS} {_SLOT_JOINS} WHERE s.clinic_id = $1 AND s.slot_id = $2 AND s.date = $3) AS t ON true
"""

# The owner's ($2) hold at this clinic ($1) made earlier with this idempotency key ($3), whatever has become of
# it since.
HOLD_BY_IDEMPOTENCY_KEY = """
SELECT reservation_id, lock_token, expires_at, slot_id, pet_id, status AS hold_status
FROM reservations WHERE clinic_id = $1 AND user_id = $2 AND idempotency_key = $3
"""

# Guarded: only the owner's ($3) own pending hold is released; RETURNING says which slot gets its place back.
RELEASE_RESERVATION = """
UPDATE reservations SET status = 'cancelled'
WHERE clinic_id = $1 AND reservation_id = $2 AND user_id = $3 AND status = 'pending'
RETURNING slot_id, slot_date
"""

# A new booking with all its terms and its code (made by the app, web/booking/codes.py: the column's default
# would be one more statement on a Citus coordinator); RETURNING * hands the row back.
INSERT_BOOKING = """
INSERT INTO bookings (
    clinic_id, booking_id, reservation_id, user_id, pet_id, service_id, slot_id, slot_date, staff_id,
    status, payment_status, total_amount, discount_amount, final_amount, currency, notes,
    booking_source, payment_due_at, payment_id, rescheduled_from_booking_id, rescheduled_from_created_at,
    booking_code
) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)
RETURNING *
"""

# The confirm's guarded step: the owner's ($3) pending, unexpired hold ($1 clinic, $2 hold) whose token ($4)
# matches (compared as digests, so the comparison's time says nothing about the token; MD5 because Citus
# refuses a STABLE function such as convert_to() of a column in an UPDATE) becomes
# confirmed, and its slot is marked full if that was its last place (the slots feature's statement). Returns
# the hold with its slot's times and price (the slot's, else its service's), or nothing (CONFIRM_VERDICT
# says why). Only UPDATEs inside the WITH: Citus plans it for one shard.
CONFIRM_HOLD = f"""
WITH hold AS (
    UPDATE reservations SET status = '{state.HOLD_CONFIRMED}'
    WHERE clinic_id = $1 AND reservation_id = $2 AND user_id = $3 AND status = '{state.HOLD_PENDING}'
      AND expires_at > now() AND md5(lock_token) = md5($4::text)
    RETURNING reservation_id, user_id, pet_id, slot_id, slot_date, service_id
),
full_now AS ({slot_statements.mark_full_where("$1", "(SELECT slot_id FROM hold)", "(SELECT slot_date FROM hold)")})
SELECT h.reservation_id, h.user_id, h.pet_id, h.service_id, h.slot_id, h.slot_date, s.staff_id, s.start_time,
       s.end_time, COALESCE(s.price, sv.price, 0) AS price, sv.currency
FROM hold h
JOIN slots s ON s.clinic_id = $1 AND s.slot_id = h.slot_id AND s.date = h.slot_date
JOIN services sv ON sv.service_id = h.service_id
WHERE s.clinic_id = $1
"""

# The booking of a confirmed hold, priced $10: a free one confirmed and paid at once, otherwise waiting for
# payment until now() + $14 minutes or the visit's start ($15), whichever is first (the database's clock);
# its code $16.
INSERT_CONFIRMED_BOOKING = """
INSERT INTO bookings (
    clinic_id, booking_id, reservation_id, user_id, pet_id, service_id, slot_id, slot_date, staff_id,
    status, payment_status, total_amount, discount_amount, final_amount, currency, notes, booking_source,
    payment_due_at, booking_code
) VALUES (
    $1, $2, $3, $4, $5, $6, $7, $8, $9,
    CASE WHEN $10::numeric = 0 THEN 'confirmed' ELSE 'pending_payment' END,
    CASE WHEN $10::numeric = 0 THEN 'paid' ELSE 'pending' END,
    $10, 0, $10, $11, $12, $13,
    CASE WHEN $10::numeric = 0 THEN NULL ELSE least(now() + make_interval(mins => $14), $15::timestamptz) END,
    $16
)
RETURNING *
"""

# Why a hold was not confirmed: its status, whether it expired (the database's clock), whether the token ($4)
# matches. No row: no such hold of this owner.
CONFIRM_VERDICT = """
SELECT status AS hold_status, expires_at <= now() AS is_expired,
       md5(lock_token) = md5($4::text) AS token_matches
FROM reservations WHERE clinic_id = $1 AND reservation_id = $2 AND user_id = $3
"""

# The booking a confirmed hold ($2) of this owner ($3) made, with its visit's times (what a confirm answers):
# a confirm repeated with the hold's token gets it again.
BOOKING_OF_CONFIRMED_HOLD = """
SELECT b.*, s.start_time, s.end_time
FROM bookings b JOIN slots s ON s.clinic_id = $1 AND s.slot_id = b.slot_id AND s.date = b.slot_date
WHERE b.clinic_id = $1 AND b.reservation_id = $2 AND b.user_id = $3
ORDER BY b.created_at LIMIT 1
"""

# A hold found expired at its confirm: marked so (guarded: only while still pending), with its slot's key
# to give the place back.
EXPIRE_HOLD = f"""
UPDATE reservations SET status = '{state.HOLD_EXPIRED}'
WHERE clinic_id = $1 AND reservation_id = $2 AND status = '{state.HOLD_PENDING}' AND expires_at <= now()
RETURNING slot_id, slot_date
"""

# One row of the booking's history: written by the engine in the transaction of the change it records.
RECORD_HISTORY = """
INSERT INTO booking_history (clinic_id, history_id, booking_id, booking_created_at, previous_status, new_status,
                             changed_by, change_reason, metadata)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb)
"""

# Who cancelled the booking ($2, created $3): a cancel repeated by the same person is that cancel again.
CANCELLED_BY = """
SELECT changed_by FROM booking_history
WHERE clinic_id = $1 AND booking_id = $2 AND booking_created_at = $3 AND new_status = 'cancelled'
ORDER BY changed_at DESC LIMIT 1
"""

# The whole key (clinic_id, booking_id, created_at): one shard, and the partition key prunes to one month.
CANCEL_BOOKING = """
UPDATE bookings SET status = 'cancelled', payment_status = $4, refunded_amount = $5,
    cancelled_at = now(), cancellation_reason = $6, cancellation_notes = $7, version = version + 1
WHERE clinic_id = $1 AND booking_id = $2 AND created_at = $3
RETURNING *
"""

MARK_RESCHEDULED = """
UPDATE bookings SET status = 'rescheduled', version = version + 1
WHERE clinic_id = $1 AND booking_id = $2 AND created_at = $3
RETURNING *
"""

# check-in and no-show (the transition was checked by state.require_transition).
CHANGE_STATUS_AT_DESK = """
UPDATE bookings SET status = $4::text, version = version + 1
WHERE clinic_id = $1 AND booking_id = $2 AND created_at = $3
RETURNING *
"""

# The visit completed, timestamped by the database. (Its own statement: Citus refuses now() inside a CASE of
# an UPDATE, which one statement for every desk transition would need.)
COMPLETE_AT_DESK = """
UPDATE bookings SET status = 'completed', completed_at = now(), version = version + 1
WHERE clinic_id = $1 AND booking_id = $2 AND created_at = $3
RETURNING *
"""

# The unpaid-expiry job's change, timestamped by the database.
CANCEL_UNPAID = """
UPDATE bookings SET status = 'cancelled', payment_status = 'failed', cancelled_at = now(),
    cancellation_reason = 'payment_expired', version = version + 1
WHERE clinic_id = $1 AND booking_id = $2 AND created_at = $3
RETURNING *
"""

# A booking ($1 clinic, $2 id, created between $3 and $4: web/booking/keys.py) with what its rules need (the
# visit's start and end, the clinic's refund deadline and zone), row-locked: the booking row first, as every
# change of a booking locks it.
_LOCKED_BOOKING = """
SELECT b.*, s.start_time, s.end_time, c.refund_deadline_hours, c.timezone
FROM bookings b
JOIN slots s ON s.clinic_id = $1 AND s.slot_id = b.slot_id AND s.date = b.slot_date
JOIN clinics c ON c.clinic_id = b.clinic_id
WHERE b.clinic_id = $1 AND b.booking_id = $2 AND b.created_at BETWEEN $3 AND $4
FOR UPDATE OF b"""

BOOKING_FOR_UPDATE = _LOCKED_BOOKING
# The unpaid-expiry job's lock: a booking someone is changing right now is passed over (the next run
# takes it) instead of waited for: a job never queues behind people, and never holds locks that a
# person's change (a reschedule into a slot the job just gave a place back to) would wait for.
BOOKING_FOR_EXPIRY = _LOCKED_BOOKING + " SKIP LOCKED"

# The clinics that have holds past their expiry: the hold-expiry job then works clinic by clinic, each in a
# statement of its own shard (a read across clinics, cheap on the partial index of pending holds).
CLINICS_WITH_EXPIRED_HOLDS = """
SELECT DISTINCT clinic_id FROM reservations WHERE status = 'pending' AND expires_at <= now()
"""

# Set-based expiry of one clinic's holds: one statement marks a batch expired (holds someone is confirming
# right now are passed over) and says which slots get their places back (web/slots/places.py gives them back).
EXPIRE_HOLDS = """
UPDATE reservations SET status = 'expired'
WHERE clinic_id = $1 AND reservation_id IN (
    SELECT reservation_id FROM reservations
    WHERE clinic_id = $1 AND status = 'pending' AND expires_at <= now()
    ORDER BY expires_at
    LIMIT $2
    FOR UPDATE SKIP LOCKED
)
RETURNING slot_id, slot_date
"""

# Holds on slots being blocked: locked NOWAIT (see web/slots/blocking.py for why), then cancelled; their
# owners' confirm then answers "This hold was already released".
LOCK_HOLDS_NOWAIT = """
SELECT 1 FROM reservations WHERE clinic_id = $1 AND reservation_id = ANY($2::uuid[]) FOR UPDATE NOWAIT
"""
# Guarded by status: a hold confirmed meanwhile is left alone; RETURNING gives the places to give back.
CANCEL_HOLDS = """
UPDATE reservations SET status = 'cancelled'
WHERE clinic_id = $1 AND reservation_id = ANY($2::uuid[]) AND status = 'pending'
RETURNING slot_id, slot_date
"""

# Due by the database's clock, oldest first, a batch at a time, across clinics (each is then cancelled by
# statements of its own clinic's shard).
UNPAID_PAST_DUE = """
SELECT clinic_id, booking_id, created_at FROM bookings
WHERE status = 'pending_payment' AND payment_due_at <= now()
ORDER BY payment_due_at
LIMIT $1
"""

# The operators' invariant (``vetbook check``): for every slot, the places left are the capacity minus
# pending holds minus bookings that keep their place; and nothing is negative. Grouped and joined by clinic
# too, so that Citus runs it on each shard (the check reads every clinic).
SLOT_INVARIANT_VIOLATIONS = """
SELECT s.slot_id, s.date, s.capacity, s.remaining, COALESCE(h.pending, 0) AS pending_holds,
       COALESCE(b.kept, 0) AS kept_bookings
FROM slots s
LEFT JOIN (
    SELECT clinic_id, slot_id, slot_date, count(*) AS pending FROM reservations WHERE status = 'pending'
    GROUP BY clinic_id, slot_id, slot_date
) h ON h.clinic_id = s.clinic_id AND h.slot_id = s.slot_id AND h.slot_date = s.date
LEFT JOIN (
    SELECT clinic_id, slot_id, slot_date, count(*) AS kept FROM bookings WHERE status NOT IN ('cancelled', 'rescheduled')
    GROUP BY clinic_id, slot_id, slot_date
) b ON b.clinic_id = s.clinic_id AND b.slot_id = s.slot_id AND b.slot_date = s.date
WHERE s.remaining <> s.capacity - COALESCE(h.pending, 0) - COALESCE(b.kept, 0)
   OR s.remaining < 0
ORDER BY s.date, s.slot_id
"""

# What a payment does to its booking (web/payments/services.py asks through the engine's confirm_paid,
# record_late_refund and set_payment_due). Guarded: only a booking still waiting for payment is confirmed.
CONFIRM_PAID_BOOKING = """
UPDATE bookings SET status = 'confirmed', payment_status = 'paid', payment_id = $4, version = version + 1
WHERE clinic_id = $1 AND booking_id = $2 AND created_at = $3 AND status = 'pending_payment'
RETURNING *
"""

# The cancelled booking says where its money went: taken once, returned in full. Its status stays.
RECORD_BOOKING_REFUND = """
UPDATE bookings SET payment_status = 'refunded', refunded_amount = final_amount, payment_id = $4,
    version = version + 1
WHERE clinic_id = $1 AND booking_id = $2 AND created_at = $3 AND status = 'cancelled' AND payment_id IS NULL
RETURNING booking_id
"""

# The money is taken at the visit: the wait for payment lasts until the start.
SET_PAYMENT_DUE = """
UPDATE bookings SET payment_due_at = $4 WHERE clinic_id = $1 AND booking_id = $2 AND created_at = $3
"""

# The booking's replacement in a reschedule, whose status it hands on to.
REPLACEMENT_OF = """
SELECT booking_id, created_at FROM bookings
WHERE clinic_id = $1 AND rescheduled_from_booking_id = $2 AND rescheduled_from_created_at = $3
"""

# Where a hold or booking of an id of the old form is (web/booking/keys.py): a search by id, across clinics.
HOLD_KEY_BY_ID = "SELECT clinic_id FROM reservations WHERE reservation_id = $1"
BOOKING_KEY_BY_ID = "SELECT clinic_id, created_at FROM bookings WHERE booking_id = $1"


# ------------------------------------------------------------------ reads (web/booking/queries.py)

# Bookings ⋈ slots of one clinic ($1) on the whole key, with pet and owner names for the refusal message.
ACTIVE_BOOKINGS_IN_SLOTS = f"""
SELECT b.booking_id, b.booking_code, b.status, b.version, b.slot_id, s.start_time, p.name AS pet_name,
       u.name AS owner_name, b.final_amount, b.payment_status
FROM bookings b
JOIN slots s ON s.clinic_id = $1 AND s.slot_id = b.slot_id AND s.date = b.slot_date
JOIN pets p ON p.pet_id = b.pet_id
JOIN users u ON u.user_id = b.user_id
WHERE b.clinic_id = $1 AND b.slot_id = ANY($2::uuid[]) AND b.slot_date = ANY($3::date[])
  AND b.status IN {state.ACTIVE_SQL}
ORDER BY s.start_time, b.booking_code
"""


# Live by the database's clock.
LIVE_HOLDS_IN_SLOTS = """
SELECT r.reservation_id, r.slot_id, r.slot_date FROM reservations r
WHERE r.clinic_id = $1 AND r.slot_id = ANY($2::uuid[]) AND r.slot_date = ANY($3::date[])
  AND r.status = 'pending' AND r.expires_at > now()
"""


# NOWAIT over a list of ids: see web/slots/blocking.py for why blocking must never wait for a booking.
LOCK_BOOKINGS_NOWAIT = """
SELECT 1 FROM bookings WHERE clinic_id = $1 AND booking_id = ANY($2::uuid[]) FOR UPDATE NOWAIT
"""


# The API's booking with its visit time: bookings ⋈ slots on the whole key (the clinic too, so that Citus
# joins each shard's rows with its own).
BOOKING_READ = """
SELECT b.booking_id, b.status, b.payment_status, b.slot_id, b.pet_id, b.clinic_id, b.service_id, b.staff_id,
       b.total_amount, b.discount_amount, b.final_amount, b.refunded_amount, b.currency, b.version, b.notes,
       b.booking_source, b.created_at, b.payment_due_at, b.cancelled_at, b.completed_at,
       b.cancellation_reason, b.rescheduled_from_booking_id, s.start_time, s.end_time
FROM bookings b
JOIN slots s ON s.clinic_id = b.clinic_id AND s.slot_id = b.slot_id AND s.date = b.slot_date
"""


# One row per booking with everything the owner's pages show: clinic, service, pet, visit time, the
# replacement of a rescheduled booking, and what its payment returned. Every join between distributed tables
# is on the clinic too: across clinics (an owner's bookings) Citus runs it on every shard and adds the rows
# up. The latest payment attempt along a booking's reschedule chain comes from OWNER_PAYMENT_ATTEMPTS.
OWNER_BOOKINGS = """
SELECT b.booking_id, b.booking_code, b.status, b.payment_status, b.total_amount, b.discount_amount,
       b.final_amount, b.refunded_amount, b.currency, b.version, b.payment_due_at, b.payment_id, b.notes,
       b.created_at, b.cancelled_at, b.cancellation_reason, b.rescheduled_from_booking_id,
       b.clinic_id, b.service_id, b.slot_id, s.date AS slot_day, s.start_time, s.end_time,
       c.name AS clinic_name, c.address AS clinic_address, c.timezone, c.refund_deadline_hours,
       sv.name AS service_name, sv.duration_minutes, p.name AS pet_name,
       moved.booking_id AS rescheduled_to_booking_id,
       -- What the booking's payment returned when the visit moved to a cheaper time (its refunds beyond
       -- the booking's own cancellation refund).
       GREATEST(COALESCE(paid.refund_amount, 0) - b.refunded_amount, 0) AS price_difference_returned
FROM bookings b
JOIN slots s ON s.clinic_id = b.clinic_id AND s.slot_id = b.slot_id AND s.date = b.slot_date
JOIN clinics c ON c.clinic_id = b.clinic_id
JOIN services sv ON sv.service_id = b.service_id
JOIN pets p ON p.pet_id = b.pet_id
LEFT JOIN payment_records paid ON paid.clinic_id = b.clinic_id AND paid.payment_id = b.payment_id
-- A rescheduled booking has one replacement (a booking is rescheduled once).
LEFT JOIN bookings moved ON moved.clinic_id = b.clinic_id AND moved.rescheduled_from_booking_id = b.booking_id
     AND moved.rescheduled_from_created_at = b.created_at
WHERE b.user_id = $1
"""

# Every booking of the owner ($1) with the booking it was rescheduled from and its payment attempts: the
# owner's pages find a booking's latest attempt along its reschedule chain from these rows (an attempt names
# the booking it was started for, which a reschedule leaves behind).
OWNER_PAYMENT_ATTEMPTS = """
SELECT b.booking_id, b.rescheduled_from_booking_id, pr.payment_id, pr.payment_provider, pr.status, pr.payment_url,
       pr.created_at
FROM bookings b
LEFT JOIN payment_records pr ON pr.clinic_id = b.clinic_id AND pr.booking_id = b.booking_id
WHERE b.user_id = $1
"""


# Everything a hold's page shows in one query (five joins and its booking), on the hold's clinic ($1).
OWNER_RESERVATION = """
SELECT r.reservation_id, r.status, r.lock_token, r.created_at, r.expires_at, r.expires_at <= now() AS is_expired,
       r.slot_id, r.slot_date, r.service_id, r.pet_id, s.clinic_id, s.start_time, s.end_time,
       COALESCE(s.price, sv.price) AS price, sv.currency, sv.name AS service_name, sv.duration_minutes,
       c.name AS clinic_name, c.address AS clinic_address, c.timezone, p.name AS pet_name, p.species AS pet_species,
       (SELECT b.booking_id FROM bookings b
        WHERE b.clinic_id = $1 AND b.reservation_id = r.reservation_id AND r.status = 'confirmed'
        ORDER BY b.created_at LIMIT 1) AS booking_id
FROM reservations r
JOIN slots s ON s.clinic_id = $1 AND s.slot_id = r.slot_id AND s.date = r.slot_date
JOIN services sv ON sv.service_id = r.service_id
JOIN clinics c ON c.clinic_id = s.clinic_id
JOIN pets p ON p.pet_id = r.pet_id
WHERE r.clinic_id = $1 AND r.reservation_id = $2 AND r.user_id = $3
"""
