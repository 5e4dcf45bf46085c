"""The SQL of a slot's places that Piccolo cannot express: guarded UPDATEs whose WHERE clause *is* the rule,
and set-based updates over many slots. Run by ``web/slots/places.py`` inside the caller's transaction.

Every statement names the slot's clinic (``clinic_id``, $1 everywhere), so that on Citus it runs on the one
shard holding that clinic (docs/scaling.md), and every statement that touches one slot names its partition
key (``date``) so PostgreSQL prunes to one month. Statements over several slots lock their rows in
``slot_id`` order, as every multi-slot statement does (no deadlock between two of them).
"""

from web.booking.state import ACTIVE_SQL

# When a place of slot ``s`` (with its clinic ``c``) can be taken now: open, a place left, and not started —
# for owners also later than the clinic's minimum booking notice. The notice protects the clinic from online
# bookings it cannot prepare for; a receptionist booking a walk-in for the next free slot is the clinic
# itself, standing next to the pet. TAKE_PLACE and every list that offers slots use this one condition, so
# nothing is offered that taking would refuse.
# Written as "the time left is more than the notice": now() + interval is a STABLE function of a column, which
# Citus refuses in an UPDATE; the difference of two times is IMMUTABLE.
BOOKABLE_WITH_NOTICE = """(s.status = 'available' AND s.remaining > 0
  AND s.start_time - now() > make_interval(mins => c.min_booking_notice_minutes))"""
# At the desk: open, a place left, not started (the clinic books its own walk-ins without notice).
BOOKABLE_AT_DESK = """(s.status = 'available' AND s.remaining > 0 AND s.start_time > now())"""

# The guard and the decrement are one statement, so two buyers can never both take the last place (the row
# lock makes the second wait, then re-check remaining > 0).
def take_place_where(clinic: str, slot: str, day: str, with_notice: str, only_if: str = "true",
                     returning: str = "s.slot_id, s.remaining") -> str:
    """The guarded take of one place, on the clinic, slot and date given as SQL expressions (parameters),
    taken only when ``only_if`` holds too (the caller's own rules, as conditions over ``s``)."""
    return f"""
UPDATE slots s
SET remaining = s.remaining - 1, version = s.version + 1
FROM clinics c
WHERE s.clinic_id = {clinic} AND s.slot_id = {slot} AND s.date = {day} AND c.clinic_id = {clinic}
  AND CASE WHEN {with_notice}::boolean THEN {BOOKABLE_WITH_NOTICE} ELSE {BOOKABLE_AT_DESK} END
  AND {only_if}
RETURNING {returning}
"""


TAKE_PLACE = take_place_where("$1", "$2", "$3", "$4")

# A slot given places back: one staff blocked ('maintenance', 'unavailable') stays blocked; only a slot that
# was full ('booked') becomes available again. The one rule of both statements below.
_REOPENED_STATUS = "CASE WHEN s.status = 'booked' THEN 'available' ELSE s.status END"

# One slot (a release, a cancellation, a reschedule's old slot): pruned to its partition.
GIVE_BACK_PLACES = f"""
UPDATE slots s
SET remaining = s.remaining + $4, version = s.version + 1, status = {_REOPENED_STATUS}
WHERE s.clinic_id = $1 AND s.slot_id = $2 AND s.date = $3
"""

# Many slots of one clinic at once (the hold-expiry job, blocking): (slot_id, date, places) triples, summed
# per slot, rows locked in slot_id order before they change.
GIVE_BACK_PLACES_OF_MANY = f"""
WITH returned AS (
    SELECT slot_id, slot_date, sum(places)::int AS places
    FROM unnest($2::uuid[], $3::date[], $4::int[]) AS t(slot_id, slot_date, places)
    GROUP BY slot_id, slot_date
), locked AS (
    SELECT s.slot_id, s.date, r.places
    FROM slots s JOIN returned r ON r.slot_id = s.slot_id AND r.slot_date = s.date
    WHERE s.clinic_id = $1
    ORDER BY s.slot_id
    FOR UPDATE OF s
)
UPDATE slots s
SET remaining = s.remaining + l.places, version = s.version + 1, status = {_REOPENED_STATUS}
FROM locked l
WHERE s.clinic_id = $1 AND s.slot_id = l.slot_id AND s.date = l.date
RETURNING s.slot_id, l.places
"""

# The last place taken by a booking: the slot reads as full.
def mark_full_where(clinic: str, slot: str, day: str) -> str:
    """The slot (given as SQL expressions) reads 'booked' when its last place is gone."""
    return f"""
UPDATE slots SET status = 'booked', version = version + 1
WHERE clinic_id = {clinic} AND slot_id = {slot} AND date = {day} AND remaining = 0 AND status = 'available'
"""


MARK_FULL_IF_NO_PLACE_LEFT = mark_full_where("$1", "$2", "$3")





# Existing slots of the staff member ($2, of the clinic $1) that overlap a candidate, except the candidate's
# own identity (which ON CONFLICT skips). Overlaps can only happen on the same clinic-local day (a slot stays
# within its day), so ``s.date = c.day`` keeps each probe inside one partition.
STAFF_CLASHES = """
SELECT c.start_time AS new_start, c.end_time AS new_end, s.start_time, s.end_time, sv.name AS service_name
FROM unnest($4::date[], $5::timestamptz[], $6::timestamptz[]) AS c(day, start_time, end_time)
JOIN slots s ON s.clinic_id = $1 AND s.date = c.day AND s.staff_id = $2
     AND tstzrange(s.start_time, s.end_time) && tstzrange(c.start_time, c.end_time)
JOIN services sv ON sv.service_id = s.service_id
WHERE s.clinic_id = $1 AND NOT (s.service_id = $3 AND s.start_time = c.start_time)
ORDER BY c.start_time, s.start_time
"""


# Every candidate of a template in one INSERT … SELECT FROM unnest, skipping slots that exist already. The
# ids are made by the app (web/core/shard_keys.py: each names the clinic and the slot's day).
INSERT_GENERATED = """
INSERT INTO slots (slot_id, clinic_id, service_id, staff_id, date, start_time, end_time, capacity, remaining,
                   price, created_by)
SELECT c.slot_id, $1, $2, $3, c.day, c.start_time, c.end_time, $4, $4, $5, $6
FROM unnest($7::uuid[], $8::date[], $9::timestamptz[], $10::timestamptz[]) AS c(slot_id, day, start_time, end_time)
ON CONFLICT (clinic_id, service_id, staff_id, start_time, date) DO NOTHING
RETURNING slot_id, date
"""


# The slots a block/unblock acts on, row-locked in slot_id order. $2: explicit ids (or NULL); $3/$4: a day
# range (or NULL); $5/$6: optional staff/service filters.
LOCK_SELECTED_SLOTS = """
SELECT s.slot_id, s.date, s.start_time, s.end_time, s.status, s.capacity, s.remaining
FROM slots s
WHERE s.clinic_id = $1
  AND ($2::uuid[] IS NULL OR s.slot_id = ANY($2::uuid[]))
  AND ($3::date IS NULL OR s.date >= $3::date)
  AND ($4::date IS NULL OR s.date <= $4::date)
  AND ($5::uuid IS NULL OR s.staff_id = $5::uuid)
  AND ($6::uuid IS NULL OR s.service_id = $6::uuid)
ORDER BY s.slot_id
FOR UPDATE OF s
"""


# Set-based over the locked selection; only open or full slots become blocked.
BLOCK = """
UPDATE slots SET status = $4, version = version + 1
WHERE clinic_id = $1 AND slot_id = ANY($2::uuid[]) AND date = ANY($3::date[]) AND status IN ('available', 'booked')
RETURNING slot_id
"""


# A full slot ('booked' means no place left) goes back to 'booked', any other to 'available'.
UNBLOCK = """
UPDATE slots SET status = CASE WHEN remaining = 0 THEN 'booked' ELSE 'available' END, version = version + 1
WHERE clinic_id = $1 AND slot_id = ANY($2::uuid[]) AND date = ANY($3::date[])
  AND status IN ('maintenance', 'unavailable')
RETURNING slot_id
"""


# The design's query 3.3.1, offering only what a hold would take (web/slots/statements.py BOOKABLE_WITH_NOTICE: open, a
# place left, later than the clinic's minimum booking notice), with the price the booking will charge.
# The date is the clinic-local day; it is the partition key, so one monthly partition is scanned.
SEARCH_SLOTS = f"""
SELECT s.slot_id, s.start_time, s.end_time, s.capacity, s.remaining, COALESCE(s.price, sv.price) AS price,
       s.staff_id, sv.currency
FROM slots s
JOIN services sv ON sv.service_id = s.service_id
JOIN clinics c ON c.clinic_id = s.clinic_id
WHERE s.clinic_id = $1
  AND s.date = $2
  AND s.service_id = $3
  AND {BOOKABLE_WITH_NOTICE}
ORDER BY s.start_time ASC
"""



# "Bookable" is what the engine's hold (web/slots/statements.py TAKE_PLACE) can take right now: the
# finder offers nothing a hold would refuse.
BOOKABLE_SLOTS_OF_DAY = f"""
SELECT s.slot_id, s.date, s.start_time, s.end_time, s.capacity, s.remaining,
       COALESCE(s.price, sv.price) AS price, sv.currency
FROM slots s
JOIN services sv ON sv.service_id = s.service_id
JOIN clinics c ON c.clinic_id = s.clinic_id
WHERE s.clinic_id = $1 AND s.service_id = $2 AND s.date = $3 AND {BOOKABLE_WITH_NOTICE}
ORDER BY s.start_time
"""


# One grouped query for the finder's week strip (never one query per day).
BOOKABLE_PLACES_PER_DAY = f"""
SELECT s.date, count(*)::int AS slots, sum(s.remaining)::int AS places
FROM slots s
JOIN clinics c ON c.clinic_id = s.clinic_id
WHERE s.clinic_id = $1 AND s.service_id = $2 AND s.date BETWEEN $3 AND $4 AND {BOOKABLE_WITH_NOTICE}
GROUP BY s.date
"""


# The bookable slots of the same clinic and service nearest in time to a slot ($2 of clinic $1 on day $3;
# someone just took it). Two weeks either side keeps the scan to at most two monthly partitions' worth of days.
NEAREST_FREE_SLOTS = f"""
WITH taken AS (
    SELECT slot_id, clinic_id, service_id, date, start_time FROM slots WHERE clinic_id = $1 AND slot_id = $2 AND date = $3
)
SELECT s.slot_id, s.date, s.start_time, s.end_time, s.remaining, COALESCE(s.price, sv.price) AS price,
       sv.currency, c.timezone
FROM taken t
JOIN slots s ON s.clinic_id = $1 AND s.service_id = t.service_id AND s.slot_id <> t.slot_id
            AND s.date BETWEEN t.date - 14 AND t.date + 14
JOIN services sv ON sv.service_id = s.service_id
JOIN clinics c ON c.clinic_id = s.clinic_id
WHERE s.clinic_id = $1 AND {BOOKABLE_WITH_NOTICE}
ORDER BY abs(extract(epoch FROM s.start_time - t.start_time)), s.start_time
LIMIT $4
"""


# A clinic's schedule for its staff, with how many active bookings each slot has.
CLINIC_SLOTS = f"""
SELECT s.slot_id, s.date, s.start_time, s.end_time, s.status, s.capacity, s.remaining,
       COALESCE(s.price, sv.price) AS price, sv.currency, sv.name AS service_name, st.name AS staff_name,
       (SELECT count(*) FROM bookings b WHERE b.clinic_id = $1 AND b.slot_id = s.slot_id AND b.slot_date = s.date
          AND b.status IN {ACTIVE_SQL}) AS active_bookings,
       s.start_time <= now() AS started
FROM slots s
JOIN services sv ON sv.service_id = s.service_id
LEFT JOIN staff st ON st.staff_id = s.staff_id
WHERE s.clinic_id = $1 AND s.date BETWEEN $2 AND $3
  AND ($4::uuid IS NULL OR s.staff_id = $4::uuid) AND ($5::uuid IS NULL OR s.service_id = $5::uuid)
ORDER BY s.start_time, st.name NULLS FIRST, sv.name
LIMIT $6
"""


# Where a slot of an id of the old form is (web/core/shard_keys.py): a search by id, across clinics.
SLOT_KEY_BY_ID = "SELECT clinic_id, date FROM slots WHERE slot_id = $1"
