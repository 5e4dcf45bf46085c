"""The payments feature's SQL: payment records written and read with their bookings. Guarded UPDATEs whose
WHERE clause is the rule (a settled payment is never settled twice; only a waiting one fails), the
idempotent insert of an attempt, and the joins to the booking by its whole key (``clinic_id``, ``booking_id``,
``created_at``), which a Piccolo ForeignKey (one column) cannot express without losing partition pruning.

Every statement names the payment's clinic ($1 everywhere): a payment id names its clinic
(web/core/shard_keys.py), and on Citus each statement runs on that clinic's shard (docs/scaling.md).
"""

# The columns every answer about a payment carries.
PAYMENT_COLUMNS = """
p.payment_id, p.clinic_id, p.booking_id, p.booking_created_at, p.amount, p.currency, p.payment_method, p.payment_provider,
p.provider_payment_id, p.status, p.payment_url, p.expiry_time, p.paid_at, p.refunded_at, p.refund_amount,
p.idempotency_key, p.created_at
"""

# The payment an idempotency key ($2) names at the clinic, with its booking's owner (whole-key join).
PAYMENT_BY_KEY = f"""
SELECT {PAYMENT_COLUMNS}, b.user_id
FROM payment_records p
JOIN bookings b ON b.clinic_id = $1 AND b.booking_id = p.booking_id AND b.created_at = p.booking_created_at
WHERE p.clinic_id = $1 AND p.idempotency_key = $2
"""

# A payment with its booking, service, clinic and visit time, for the pay and desk pages.
PAYMENT_WITH_BOOKING = f"""
SELECT {PAYMENT_COLUMNS}, b.user_id, b.clinic_id, b.status AS booking_status,
       b.payment_status AS booking_payment_status, b.final_amount, b.payment_due_at,
       sv.name AS service_name, c.name AS clinic_name, c.timezone, s.start_time
FROM payment_records p
JOIN bookings b ON b.clinic_id = $1 AND b.booking_id = p.booking_id AND b.created_at = p.booking_created_at
JOIN services sv ON sv.service_id = b.service_id
JOIN clinics c ON c.clinic_id = b.clinic_id
JOIN slots s ON s.clinic_id = $1 AND s.slot_id = b.slot_id AND s.date = b.slot_date
WHERE p.clinic_id = $1 AND p.payment_id = $2
"""

# ON CONFLICT on the idempotency key: two requests with one key start one payment, never two.
INSERT_PAYMENT = f"""
INSERT INTO payment_records AS p (clinic_id, payment_id, booking_id, booking_created_at, amount, currency,
                                  payment_method, payment_provider, status, expiry_time, idempotency_key)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $10)
ON CONFLICT ON CONSTRAINT payment_records_idempotency_key_key DO NOTHING
RETURNING {PAYMENT_COLUMNS}
"""

# The gateway's answer, stored after the call (no transaction was open during it).
STORE_STARTED = f"""
UPDATE payment_records AS p SET provider_payment_id = $3, payment_url = $4, expiry_time = COALESCE($5, expiry_time)
WHERE clinic_id = $1 AND payment_id = $2
RETURNING {PAYMENT_COLUMNS}
"""

# Row-locked after the booking (the engine's lock order: booking, then payment).
LOCK_PAYMENT = """
SELECT payment_id, booking_id, amount, status, payment_provider FROM payment_records
WHERE clinic_id = $1 AND payment_id = $2 FOR UPDATE
"""

# Money taken. Guarded: a payment already settled is never settled again. A payment the expiry job or a
# cancellation marked 'expired' (or a gateway 'failed') can still complete: if the gateway says the money
# was taken, it was, and it must be recorded (and then refunded, when the booking is gone).
COMPLETE_PAYMENT = """
UPDATE payment_records
SET status = 'completed', paid_at = now(), payment_method = COALESCE($4, payment_method),
    metadata = COALESCE(metadata, '{}'::jsonb) || $3::jsonb
WHERE clinic_id = $1 AND payment_id = $2 AND status IN ('pending', 'expired', 'failed')
RETURNING payment_id
"""

# Money taken for a booking that can no longer use it: settled and returned in one guarded UPDATE.
REFUND_LATE_PAYMENT = """
UPDATE payment_records
SET status = 'refunded', paid_at = now(), refund_amount = amount, refunded_at = now(),
    payment_method = COALESCE($4, payment_method), metadata = COALESCE(metadata, '{}'::jsonb) || $3::jsonb
WHERE clinic_id = $1 AND payment_id = $2 AND status IN ('pending', 'expired', 'failed')
RETURNING payment_id
"""

# The gateway's fee for a payment, as it reported it (notification or status read); unchanged rows are not
# rewritten.
STORE_FEE = """
UPDATE payment_records SET transaction_fee = $3
WHERE clinic_id = $1 AND payment_id = $2 AND transaction_fee IS DISTINCT FROM $3
"""

# A gateway's failure or expiry: only a payment still waiting can fail.
FAIL_PAYMENT = """
UPDATE payment_records SET status = $3, metadata = COALESCE(metadata, '{}'::jsonb) || $4::jsonb
WHERE clinic_id = $1 AND payment_id = $2 AND status = 'pending'
RETURNING payment_id
"""

# Money the gateway took for a booking already paid otherwise, noted once (a replay notes nothing new), with
# the method the gateway reports ($4) and when: its refund depends on them (the method's refund window). No
# COALESCE around now(): Citus refuses a non-immutable function there, and this runs once per payment anyway.
NOTE_UNRECORDED_SETTLEMENT = """
UPDATE payment_records SET metadata = COALESCE(metadata, '{}'::jsonb) || $3::jsonb,
    payment_method = COALESCE($4, payment_method), paid_at = now()
WHERE clinic_id = $1 AND payment_id = $2 AND NOT (COALESCE(metadata, '{}'::jsonb) ? 'unrecorded_settlement')
RETURNING payment_id
"""


# Money returned from a settled payment, added to what it already returned (a reschedule to a cheaper time,
# then a cancellation, both return part of the same payment). Fully returned: 'refunded'.
RECORD_REFUND_ON_PAYMENT = """
UPDATE payment_records
SET refund_amount = COALESCE(refund_amount, 0) + $3, refunded_at = now(),
    status = CASE WHEN COALESCE(refund_amount, 0) + $3 >= amount THEN 'refunded' ELSE 'partially_refunded' END,
    metadata = COALESCE(metadata, '{}'::jsonb) || $4::jsonb
WHERE clinic_id = $1 AND payment_id = $2 AND status IN ('completed', 'partially_refunded')
RETURNING payment_id, status, refund_amount
"""

# Payment attempts still waiting for the money of a booking or of the bookings it was rescheduled from
# (an attempt names the booking it was started for): they end when the amount due changes or the booking
# is cancelled. A gateway that settles one of them later is answered by web/payments/services.py.
EXPIRE_PENDING_PAYMENTS_OF_CHAIN = """
WITH RECURSIVE chain(booking_id, from_id, depth) AS (
    SELECT b.booking_id, b.rescheduled_from_booking_id, 0 FROM bookings b WHERE b.clinic_id = $1 AND b.booking_id = $2
    UNION ALL
    SELECT e.booking_id, e.rescheduled_from_booking_id, chain.depth + 1
    FROM chain JOIN bookings e ON e.booking_id = chain.from_id
    WHERE e.clinic_id = $1 AND chain.depth < 20
)
UPDATE payment_records SET status = 'expired'
WHERE clinic_id = $1 AND status = 'pending' AND booking_id IN (SELECT booking_id FROM chain)
"""

# Only attempts still waiting expire (guarded by status).
EXPIRE_PENDING_PAYMENTS_OF_BOOKING = """
UPDATE payment_records SET status = 'expired' WHERE clinic_id = $1 AND booking_id = $2 AND status = 'pending'
"""

# jsonb merge (||) of a note into the payment's metadata: an expression Piccolo's update cannot write.
ADD_NOTE = """
UPDATE payment_records SET metadata = COALESCE(metadata, '{}'::jsonb) || $3::jsonb
WHERE clinic_id = $1 AND payment_id = $2
"""

# The clinic's pending payment at the desk for a booking ($2), the newest.
PENDING_DESK_PAYMENT = f"""
SELECT {PAYMENT_COLUMNS} FROM payment_records p
WHERE p.clinic_id = $1 AND p.booking_id = $2 AND p.payment_provider = $3 AND p.status = 'pending'
ORDER BY p.created_at DESC LIMIT 1
"""

# Where a payment of an id of the old form is: a search by id, across clinics.
PAYMENT_CLINIC_BY_ID = "SELECT clinic_id FROM payment_records WHERE payment_id = $1"
