"""The SQL of reconciliation with the gateways (web/payments/reconciliation.py): which payments to ask a gateway
about, what it said (``gateway_payment_reads``, migration 0023), and a clinic's day of payments beside it.

Every statement of one clinic names it first ($1), so that on Citus it runs on the clinic's shard; only the
look-up of which clinics have work reads across clinics (as the expiry jobs' do).
"""

# Clinics with online payments still waiting for the money, started at least $2 seconds ago ($1: the
# providers whose gateways can be asked). Cheap: pending payments are few (payment_records_status_idx).
CLINICS_WITH_PENDING_ONLINE_PAYMENTS = """
SELECT DISTINCT clinic_id FROM payment_records
WHERE status = 'pending' AND payment_provider = ANY($1::text[]) AND created_at <= now() - make_interval(secs => $2)
"""

# One clinic's payments to ask about: still pending, started at least $3 seconds ago, whose booking still
# waits for payment (one cancelled for non-payment is over: its payment already ended), and not asked about
# in the last $4 seconds (each run does not ask again about what the last one just asked). Oldest first.
PENDING_ONLINE_PAYMENTS = """
SELECT p.payment_id, p.payment_provider, p.provider_payment_id
FROM payment_records p
JOIN bookings b ON b.clinic_id = $1 AND b.booking_id = p.booking_id AND b.created_at = p.booking_created_at
LEFT JOIN gateway_payment_reads g ON g.clinic_id = $1 AND g.payment_id = p.payment_id
WHERE p.clinic_id = $1 AND p.status = 'pending' AND p.payment_provider = ANY($2::text[])
  AND p.created_at <= now() - make_interval(secs => $3)
  AND b.status = 'pending_payment'
  AND (g.read_at IS NULL OR g.read_at <= now() - make_interval(secs => $4))
ORDER BY p.created_at
LIMIT $5
"""

# The clinic's online payments of a day ($2 <= created_at < $3, the clinic-local day), and the payments whose
# refunds were requested that day, not read since $4 (the end of the day: a read after it already sees the
# whole day, so a second run reads only what the first could not).
PAYMENTS_OF_DAY_TO_READ = """
WITH day_payments AS (
    SELECT p.payment_id FROM payment_records p
    WHERE p.clinic_id = $1 AND p.payment_provider = ANY($5::text[]) AND p.created_at >= $2 AND p.created_at < $3
    UNION
    SELECT r.payment_id FROM refunds r
    WHERE r.clinic_id = $1 AND r.provider = ANY($5::text[]) AND r.created_at >= $2 AND r.created_at < $3
)
SELECT p.payment_id, p.payment_provider, p.provider_payment_id
FROM day_payments d
JOIN payment_records p ON p.clinic_id = $1 AND p.payment_id = d.payment_id
LEFT JOIN gateway_payment_reads g ON g.clinic_id = $1 AND g.payment_id = d.payment_id
WHERE g.read_at IS NULL OR g.read_at < $4
ORDER BY p.created_at
LIMIT $6
"""

# What the gateways said about some of the clinic's payments, one row per payment (the latest read wins).
# Arrays in the order of the columns; one statement for a clinic's whole batch.
RECORD_READS = """
INSERT INTO gateway_payment_reads AS g (clinic_id, payment_id, provider, read_at, known, money_taken, outcome,
                                        gateway_status, gross_amount, refunded_amount, fee, payment_method, details)
SELECT $1, r.payment_id, r.provider, now(), r.known, r.money_taken, r.outcome, r.gateway_status, r.gross_amount,
       r.refunded_amount, r.fee, r.payment_method, r.details
FROM unnest($2::uuid[], $3::text[], $4::boolean[], $5::boolean[], $6::text[], $7::text[], $8::numeric[],
            $9::numeric[], $10::numeric[], $11::text[], $12::jsonb[])
     AS r(payment_id, provider, known, money_taken, outcome, gateway_status, gross_amount, refunded_amount, fee,
          payment_method, details)
ON CONFLICT (clinic_id, payment_id) DO UPDATE SET
    provider = EXCLUDED.provider, read_at = EXCLUDED.read_at, known = EXCLUDED.known,
    money_taken = EXCLUDED.money_taken, outcome = EXCLUDED.outcome, gateway_status = EXCLUDED.gateway_status,
    gross_amount = EXCLUDED.gross_amount, refunded_amount = EXCLUDED.refunded_amount, fee = EXCLUDED.fee,
    payment_method = EXCLUDED.payment_method, details = EXCLUDED.details
"""

# The fees the gateways reported in a batch of reads, kept on the payments (transaction_fee), as a notification's
# are (statements.STORE_FEE); unchanged rows are not rewritten.
STORE_FEES = """
UPDATE payment_records p SET transaction_fee = f.fee
FROM unnest($2::uuid[], $3::numeric[]) AS f(payment_id, fee)
WHERE p.clinic_id = $1 AND p.payment_id = f.payment_id AND p.transaction_fee IS DISTINCT FROM f.fee
"""

# A clinic's day beside what the gateways said: each online payment made that day ($2 <= created_at < $3) or
# with a refund requested that day, with its latest read (NULL: not read yet) and its refunds, summed: those
# the gateway returned (succeeded and not paid by hand) and those a person pays or paid by hand.
DAY_BESIDE_GATEWAY = """
WITH day_payments AS (
    SELECT p.payment_id FROM payment_records p
    WHERE p.clinic_id = $1 AND p.payment_provider = ANY($4::text[]) AND p.created_at >= $2 AND p.created_at < $3
    UNION
    SELECT r.payment_id FROM refunds r
    WHERE r.clinic_id = $1 AND r.provider = ANY($4::text[]) AND r.created_at >= $2 AND r.created_at < $3
), our_refunds AS (
    SELECT r.payment_id,
           sum(r.amount) FILTER (WHERE r.state = 'succeeded' AND r.paid_by_hand_at IS NULL) AS by_gateway,
           sum(r.amount) FILTER (WHERE r.paid_by_hand_at IS NOT NULL OR r.state IN ('manual', 'failed')) AS by_hand,
           string_agg(DISTINCT r.state, ', ' ORDER BY r.state) AS states
    FROM refunds r
    WHERE r.clinic_id = $1 AND r.payment_id IN (SELECT payment_id FROM day_payments)
    GROUP BY r.payment_id
)
SELECT p.payment_id, p.booking_id, b.booking_code, p.payment_provider, p.payment_method, p.status, p.amount,
       p.currency, p.refund_amount, p.transaction_fee, p.created_at, p.paid_at,
       g.read_at, g.known, g.money_taken, g.outcome, g.gateway_status, g.gross_amount, g.refunded_amount,
       COALESCE(o.by_gateway, 0) AS refunds_by_gateway, COALESCE(o.by_hand, 0) AS refunds_by_hand,
       o.states AS refund_states
FROM day_payments d
JOIN payment_records p ON p.clinic_id = $1 AND p.payment_id = d.payment_id
JOIN bookings b ON b.clinic_id = $1 AND b.booking_id = p.booking_id AND b.created_at = p.booking_created_at
LEFT JOIN gateway_payment_reads g ON g.clinic_id = $1 AND g.payment_id = d.payment_id
LEFT JOIN our_refunds o ON o.payment_id = d.payment_id
ORDER BY p.created_at, p.payment_id
"""

# The clinics, with their zones (the daily run: each clinic's day is its own).
CLINICS = "SELECT clinic_id, name, timezone FROM clinics ORDER BY name, clinic_id"
