"""The SQL of a slot's places that Piccolo cannot express: guarded UPDATEs whose WHERE clause *is* the rule,
and set-based updates over many slots. Run by ``web/slots/places.py`` inside the caller's transaction.

Every statement that touches one slot names its partition key (``date``) so PostgreSQL prunes to one month.
Statements over several slots lock their rows in ``slot_id`` order, as every multi-slot statement does
(no deadlock between two of them).
"""

# When a place of slot ``s`` (with its clinic ``c``) can be taken now: open, a place left, and not started —
# for owners also later than the clinic's minimum booking notice. The notice protects the clinic from online
# bookings it cannot prepare for; a receptionist booking a walk-in for the next free slot is the clinic
# itself, standing next to the pet. TAKE_PLACE and every list that offers slots use this one condition, so
# nothing is offered that taking would refuse.
BOOKABLE_WITH_NOTICE = """(s.status = 'available' AND s.remaining > 0
  AND s.start_time > now() + make_interval(mins => c.min_booking_notice_minutes))"""
BOOKABLE_AT_DESK = """(s.status = 'available' AND s.remaining > 0 AND s.start_time > now())"""

# The guard and the decrement are one statement, so two buyers can never both take the last place (the row
# lock makes the second wait, then re-check remaining > 0).
TAKE_PLACE = f"""
UPDATE slots s
SET remaining = s.remaining - 1, version = s.version + 1
FROM clinics c
WHERE s.slot_id = $1 AND s.date = $2 AND c.clinic_id = s.clinic_id
  AND CASE WHEN $3::boolean THEN {BOOKABLE_WITH_NOTICE} ELSE {BOOKABLE_AT_DESK} END
RETURNING s.slot_id, s.remaining
"""

# A slot given places back: one staff blocked ('maintenance', 'unavailable') stays blocked; only a slot that
# was full ('booked') becomes available again. The one rule of both statements below.
_REOPENED_STATUS = "CASE WHEN s.status = 'booked' THEN 'available' ELSE s.status END"

# One slot (a release, a cancellation, a reschedule's old slot): pruned to its partition.
GIVE_BACK_PLACES = f"""
UPDATE slots s
SET remaining = s.remaining + $3, version = s.version + 1, status = {_REOPENED_STATUS}
WHERE s.slot_id = $1 AND s.date = $2
"""

# Many slots at once (the hold-expiry job, blocking): (slot_id, date, places) triples, summed per slot, rows
# locked in slot_id order before they change.
GIVE_BACK_PLACES_OF_MANY = f"""
WITH returned AS (
    SELECT slot_id, slot_date, sum(places)::int AS places
    FROM unnest($1::uuid[], $2::date[], $3::int[]) AS t(slot_id, slot_date, places)
    GROUP BY slot_id, slot_date
), locked AS (
    SELECT s.slot_id, s.date, r.places
    FROM slots s JOIN returned r ON r.slot_id = s.slot_id AND r.slot_date = s.date
    ORDER BY s.slot_id
    FOR UPDATE OF s
)
UPDATE slots s
SET remaining = s.remaining + l.places, version = s.version + 1, status = {_REOPENED_STATUS}
FROM locked l
WHERE s.slot_id = l.slot_id AND s.date = l.date
RETURNING s.slot_id, l.places
"""

# The last place taken by a booking: the slot reads as full.
MARK_FULL_IF_NO_PLACE_LEFT = """
UPDATE slots SET status = 'booked', version = version + 1
WHERE slot_id = $1 AND date = $2 AND remaining = 0 AND status = 'available'
"""
