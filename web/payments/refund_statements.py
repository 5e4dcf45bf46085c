"""The SQL of refunds (web/payments/refunds.py; table: piccolo_migrations/0022_refunds.py).

Every statement names the refund's clinic ($1): on Citus each runs on that clinic's shard (docs/scaling.md),
except ``CLINICS_WITH_DUE_REFUNDS``, the job's deliberate cross-clinic read. State changes are guarded
UPDATEs whose WHERE clause is the rule, so an answer applied twice (a retried send, a gateway's notification
after the job's own answer) changes nothing the second time.
"""

REFUND_COLUMNS = """
r.refund_id, r.clinic_id, r.payment_id, r.booking_id, r.amount, r.currency, r.reason, r.provider, r.state,
r.refund_key, r.gateway_refund_id, r.attempts, r.next_attempt_at, r.last_error, r.manual_reason,
r.paid_by_hand_by, r.paid_by_hand_at, r.succeeded_at, r.created_at, r.updated_at
"""

# A new refund, in the transaction that decided it (a cancellation, a move to a cheaper time, money that
# arrived for a booking that cannot use it). $10: 'requested', or 'manual' when the gateway cannot take it.
INSERT_REFUND = f"""
INSERT INTO refunds AS r (clinic_id, refund_id, payment_id, booking_id, amount, currency, reason, provider, state,
                          refund_key, manual_reason, metadata)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $10, $9, $11, $12::jsonb)
RETURNING {REFUND_COLUMNS}
"""

# The payment a refund returns money from, with what the gateway needs to find it.
PAYMENT_FOR_REFUND = """
SELECT payment_id, booking_id, currency, payment_provider, payment_method, paid_at
FROM payment_records WHERE clinic_id = $1 AND payment_id = $2
"""

# The clinics that have refunds due now: one read across clinics, then one clinic at a time.
CLINICS_WITH_DUE_REFUNDS = """
SELECT DISTINCT clinic_id FROM refunds WHERE state IN ('requested', 'sent') AND next_attempt_at <= now()
"""

# Take the clinic's due refunds for one send each: the next attempt moves forward by the lease ($2 seconds)
# before any gateway call, in its own committed statement. A second job running at once waits for these rows,
# re-reads them, finds them no longer due and takes none of them; a job that crashes after sending leaves the
# refund due again once the lease ends, and the same refund_key makes the resend the same refund.
CLAIM_DUE_REFUNDS = f"""
UPDATE refunds AS r SET attempts = r.attempts + 1, next_attempt_at = now() + make_interval(secs => $2)
FROM payment_records p
WHERE r.clinic_id = $1 AND r.state IN ('requested', 'sent') AND r.next_attempt_at <= now()
  AND p.clinic_id = $1 AND p.payment_id = r.payment_id
RETURNING {REFUND_COLUMNS}, p.provider_payment_id, p.payment_method, p.paid_at
"""

# The gateway returned the money (also the answer of a resend of a refund it had accepted).
REFUND_SUCCEEDED = f"""
UPDATE refunds AS r SET state = 'succeeded', succeeded_at = now(),
    gateway_refund_id = COALESCE($3, r.gateway_refund_id), last_error = NULL
WHERE r.clinic_id = $1 AND r.refund_id = $2 AND r.state IN ('requested', 'sent')
RETURNING {REFUND_COLUMNS}
"""

# The gateway accepted it; its final word comes later. Asked again (a resend with the same key) after $4 s.
REFUND_SENT = f"""
UPDATE refunds AS r SET state = 'sent', gateway_refund_id = COALESCE($3, r.gateway_refund_id), last_error = NULL,
    next_attempt_at = now() + make_interval(secs => $4)
WHERE r.clinic_id = $1 AND r.refund_id = $2 AND r.state IN ('requested', 'sent')
RETURNING {REFUND_COLUMNS}
"""

# The gateway cannot take it ($3 says why): a person pays it back by hand.
REFUND_MANUAL = f"""
UPDATE refunds AS r SET state = 'manual', manual_reason = $3
WHERE r.clinic_id = $1 AND r.refund_id = $2 AND r.state IN ('requested', 'sent')
RETURNING {REFUND_COLUMNS}
"""

# No usable answer: try again after $4 seconds (backoff), or give up into 'failed' ($5) after the last attempt.
REFUND_RETRY = f"""
UPDATE refunds AS r SET last_error = $3, next_attempt_at = now() + make_interval(secs => $4),
    state = CASE WHEN $5 THEN 'failed' ELSE r.state END,
    manual_reason = CASE WHEN $5 THEN $3 ELSE r.manual_reason END
WHERE r.clinic_id = $1 AND r.refund_id = $2 AND r.state IN ('requested', 'sent')
RETURNING {REFUND_COLUMNS}
"""

# A person paid it back by hand (bank transfer, cash at the desk): closed, with who and when.
REFUND_PAID_BY_HAND = f"""
UPDATE refunds AS r SET state = 'succeeded', succeeded_at = now(), paid_by_hand_by = $3, paid_by_hand_at = now(),
    metadata = COALESCE(r.metadata, '{{}}'::jsonb) || $4::jsonb
WHERE r.clinic_id = $1 AND r.refund_id = $2 AND r.state IN ('manual', 'failed')
RETURNING {REFUND_COLUMNS}
"""

REFUND_BY_ID = f"SELECT {REFUND_COLUMNS} FROM refunds r WHERE r.clinic_id = $1 AND r.refund_id = $2"

REFUND_BY_KEY = f"SELECT {REFUND_COLUMNS} FROM refunds r WHERE r.clinic_id = $1 AND r.refund_key = $2"

# Refunds to pay by hand at a clinic, oldest first, with the owner to pay and the booking they came from.
REFUNDS_TO_PAY_BY_HAND = f"""
SELECT {REFUND_COLUMNS}, b.booking_code, b.slot_date, u.name AS owner_name, u.email AS owner_email,
       u.phone AS owner_phone, p.payment_provider, p.payment_method, p.paid_at
FROM refunds r
JOIN payment_records p ON p.clinic_id = $1 AND p.payment_id = r.payment_id
JOIN bookings b ON b.clinic_id = $1 AND b.booking_id = p.booking_id AND b.created_at = p.booking_created_at
JOIN users u ON u.user_id = b.user_id
WHERE r.clinic_id = $1 AND r.state IN ('manual', 'failed')
ORDER BY r.created_at
LIMIT 500
"""

# The refunds of payments started for these bookings ($2: their ids) at a clinic, for the owner's booking page.
REFUNDS_OF_BOOKINGS = f"""
SELECT {REFUND_COLUMNS} FROM refunds r WHERE r.clinic_id = $1 AND r.booking_id = ANY($2::uuid[])
ORDER BY r.created_at
"""
