"""Reconciliation with the payment gateways (issue 16, point 3), and leases for jobs that call them.

``gateway_payment_reads``: the gateway's latest word about one of our payments, from a status read (the job
that asks about payments still pending, and the daily reconciliation of a clinic's day). One row per payment,
replaced by each read: the daily report compares it with payment_records and refunds
(web/payments/reconciliation.py). ``clinic_id`` leads the key: the table is distributed by clinic on Citus,
co-located with its payment (web/ops/citus_layout.py).

``job_leases``: a job that calls a gateway must not run inside a transaction, so it cannot hold the
transaction-level advisory lock the other jobs run under (web/core/jobs.py). It takes a lease instead: a row
claimed by one statement while the previous lease has run out, renewed while the job runs, deleted when it
ends. A process that dies loses its lease when it runs out. A table of the coordinator.

Two indexes for the daily reconciliation: a clinic's payments and refunds of one day.
"""

from piccolo_migrations._raw import raw_sql_migration

ID = "2026-12-06T00:00:23:000000"
VERSION = "1.38.0"
DESCRIPTION = "gateway_payment_reads and job_leases: reconciliation with the gateways"

SQL = r"""
CREATE TABLE gateway_payment_reads (
    clinic_id uuid NOT NULL REFERENCES clinics (clinic_id),
    payment_id uuid NOT NULL,
    provider varchar(30) NOT NULL,
    read_at timestamptz NOT NULL DEFAULT now(),
    -- false: the gateway does not know the payment (Midtrans answers 404 until the customer chose a method).
    known boolean NOT NULL,
    -- Whether the gateway took the money (settled now, or settled and then refunded in part or in full).
    money_taken boolean NOT NULL DEFAULT false,
    -- What the read means for us (web/payments/providers.Outcome) and the gateway's own word for it.
    outcome varchar(20),
    gateway_status varchar(40),
    gross_amount numeric(12, 2),
    refunded_amount numeric(12, 2),
    fee numeric(12, 2),
    payment_method varchar(30),
    details jsonb,
    PRIMARY KEY (clinic_id, payment_id),
    CONSTRAINT gateway_payment_reads_payment_fkey FOREIGN KEY (clinic_id, payment_id)
        REFERENCES payment_records (clinic_id, payment_id),
    CONSTRAINT gateway_payment_reads_known_check CHECK (known OR NOT money_taken)
);

CREATE TABLE job_leases (
    job_name varchar(80) PRIMARY KEY,
    holder uuid NOT NULL,
    expires_at timestamptz NOT NULL
);

-- A clinic's payments of one day, and its refunds of one day (the daily reconciliation).
CREATE INDEX payment_records_clinic_created_idx ON payment_records (clinic_id, created_at);
CREATE INDEX refunds_clinic_created_idx ON refunds (clinic_id, created_at);
"""


async def forwards():
    return raw_sql_migration(ID, DESCRIPTION, SQL)
