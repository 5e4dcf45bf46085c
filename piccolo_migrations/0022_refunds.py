"""Refunds as a workflow (issue 16): one row per sum of money to return, from its request to the gateway's answer.

The design returns money by inserting a second payment_records row (provider 'system', status 'refunded') in
the cancelling transaction (its section 5 example) and never tells the gateway. Here the cancelling transaction
records the decision on the payment (as before: refund_amount, 'refunded' / 'partially_refunded') and inserts a
``refunds`` row in state 'requested'; a job sends it to the gateway outside any transaction and applies the answer
(docs/payments.md):

    requested ──send──▶ sent ──gateway's word──▶ succeeded
        │                 └───────────────────▶ failed     (the gateway refused after accepting)
        └── the method or its window cannot be refunded by the gateway, or it refused ──▶ manual
    manual / failed ──a receptionist or manager paid it by hand──▶ succeeded (paid_by_hand_by, _at)

``refund_key`` is sent with every attempt (Midtrans' refund_key, Xendit's Idempotency-key), so a retried send
after a timeout or a crash makes one refund at the gateway, never two. ``clinic_id`` leads every key: the table
is distributed by clinic on Citus, co-located with its payment (web/ops/citus_layout.py).
"""

from piccolo_migrations._raw import raw_sql_migration

ID = "2026-12-06T00:00:22:000000"
VERSION = "1.38.0"
DESCRIPTION = "refunds: the money to return, sent to the gateway by a job"

SQL = r"""
CREATE TABLE refunds (
    clinic_id uuid NOT NULL REFERENCES clinics (clinic_id),
    refund_id uuid NOT NULL,
    payment_id uuid NOT NULL,
    booking_id uuid NOT NULL,
    amount numeric(12, 2) NOT NULL CHECK (amount > 0),
    currency varchar(3) NOT NULL DEFAULT 'IDR',
    -- Why the money goes back: standard_cancellation, clinic_cancellation, reschedule_price_difference,
    -- paid_after_cancellation, amount_no_longer_due, paid_twice.
    reason varchar(40) NOT NULL,
    provider varchar(30) NOT NULL,
    state varchar(20) NOT NULL DEFAULT 'requested'
        CHECK (state IN ('requested', 'sent', 'succeeded', 'failed', 'manual')),
    refund_key varchar(64) NOT NULL,
    gateway_refund_id varchar(100),
    attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    -- When the job may (re)send it; moved forward before each send, so that a crash or a second job
    -- running at once does not send it again before the gateway could answer.
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error text,
    -- Why the gateway cannot take it (method, window, refusal), shown on the list of refunds to pay by hand.
    manual_reason text,
    paid_by_hand_by uuid REFERENCES users (user_id),
    paid_by_hand_at timestamptz,
    succeeded_at timestamptz,
    metadata jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (clinic_id, refund_id),
    CONSTRAINT refunds_refund_key_key UNIQUE (clinic_id, refund_key),
    CONSTRAINT refunds_payment_fkey FOREIGN KEY (clinic_id, payment_id)
        REFERENCES payment_records (clinic_id, payment_id),
    -- Paid by hand: who and when, together, and only for a refund that ended succeeded.
    CONSTRAINT refunds_paid_by_hand_check CHECK (
        (paid_by_hand_by IS NULL) = (paid_by_hand_at IS NULL)
        AND (paid_by_hand_at IS NULL OR state = 'succeeded')),
    CONSTRAINT refunds_succeeded_at_check CHECK ((state = 'succeeded') = (succeeded_at IS NOT NULL))
);

CREATE TRIGGER refunds_update_timestamp BEFORE UPDATE ON refunds
    FOR EACH ROW EXECUTE FUNCTION update_timestamp();

-- The job's work: refunds to send or to ask about, by when they are due (a handful at any time).
CREATE INDEX refunds_due_idx ON refunds (next_attempt_at, clinic_id) WHERE state IN ('requested', 'sent');
-- The list of refunds to pay by hand, per clinic.
CREATE INDEX refunds_by_hand_idx ON refunds (clinic_id, created_at) WHERE state IN ('manual', 'failed');
-- A payment's refunds (reconciliation), and a booking's (the owner's booking page).
CREATE INDEX refunds_payment_idx ON refunds (clinic_id, payment_id);
CREATE INDEX refunds_booking_idx ON refunds (clinic_id, booking_id);
"""


async def forwards():
    return raw_sql_migration(ID, DESCRIPTION, SQL)
