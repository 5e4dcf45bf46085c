"""booking_analytics_daily with revenue gross and net of refunds and gateway fees (issue 16, point 4).

A materialized view cannot be altered to add columns (nor replaced): it is dropped and created again (CREATE ...
AS fills it at once), with the unique index REFRESH ... CONCURRENTLY needs and the date index. Its name is
unchanged, so on Citus it stays in COORDINATOR_VIEWS (web/ops/citus_layout.py): a view of the
coordinator over the distributed tables.

The columns of 0004 are kept as they were (``total_revenue`` is the money kept: paid minus refunds). New:

- ``gross_revenue``: what was paid for the bookings counted as paid, before any refund;
- ``refunded_amount``: what of it is returned (decided: on its way or paid back);
- ``gateway_fees``: the gateways' fees of the payments of those bookings (``payment_records.transaction_fee``,
  filled from the gateway's data where it gives them). A fee is counted where the booking's revenue is: on
  the booking that carries the payment (``bookings.payment_id``, never the rescheduled ones, whose replacement
  carries it); a settled payment no booking carries (money taken twice, or for an amount no longer due, and
  returned) is counted on the booking it was started for: its fee was paid all the same.

Net revenue = ``total_revenue`` - ``gateway_fees`` (web/analytics/services.py).
"""

from piccolo_migrations._raw import raw_sql_migration

ID = "2026-12-06T00:00:24:000000"
VERSION = "1.38.0"
DESCRIPTION = "booking_analytics_daily: gross revenue, refunds and gateway fees"

SQL = r"""
DROP MATERIALIZED VIEW booking_analytics_daily;

CREATE MATERIALIZED VIEW booking_analytics_daily AS
SELECT
    b.clinic_id,
    (b.created_at AT TIME ZONE c.timezone)::date AS booking_date,
    b.service_id,
    COUNT(*) FILTER (WHERE b.status <> 'rescheduled') AS total_bookings,
    COUNT(*) FILTER (WHERE b.status = 'completed') AS completed_bookings,
    COUNT(*) FILTER (WHERE b.status = 'cancelled') AS cancelled_bookings,
    COUNT(*) FILTER (WHERE b.status = 'no_show') AS no_show_bookings,
    COUNT(*) FILTER (WHERE b.status = 'rescheduled') AS rescheduled_bookings,
    COALESCE(SUM(b.final_amount - b.refunded_amount) FILTER (
        WHERE b.status <> 'rescheduled' AND b.payment_status IN ('paid', 'partially_refunded', 'refunded')
    ), 0)::DECIMAL(14, 2) AS total_revenue,
    COUNT(*) FILTER (
        WHERE b.status <> 'rescheduled' AND b.payment_status IN ('paid', 'partially_refunded', 'refunded')
    ) AS paid_bookings,
    AVG(b.final_amount) FILTER (WHERE b.status NOT IN ('rescheduled', 'cancelled'))::DECIMAL(14, 2)
        AS avg_booking_value,
    COALESCE(SUM(b.final_amount) FILTER (
        WHERE b.status <> 'rescheduled' AND b.payment_status IN ('paid', 'partially_refunded', 'refunded')
    ), 0)::DECIMAL(14, 2) AS gross_revenue,
    COALESCE(SUM(b.refunded_amount) FILTER (
        WHERE b.status <> 'rescheduled' AND b.payment_status IN ('paid', 'partially_refunded', 'refunded')
    ), 0)::DECIMAL(14, 2) AS refunded_amount,
    COALESCE(SUM(f.fees), 0)::DECIMAL(14, 2) AS gateway_fees
FROM bookings b
JOIN clinics c ON c.clinic_id = b.clinic_id
-- Each booking's fees, summed first (one row per booking at most), so that the join adds no booking twice.
LEFT JOIN (
    SELECT fee.clinic_id, fee.booking_id, fee.booking_created_at, SUM(fee.transaction_fee) AS fees
    FROM (
        -- The payment a booking carries (a reschedule hands it on; only the last booking counts).
        SELECT carrier.clinic_id, carrier.booking_id, carrier.created_at AS booking_created_at, p.transaction_fee
        FROM payment_records p
        JOIN bookings carrier ON carrier.clinic_id = p.clinic_id AND carrier.payment_id = p.payment_id
        WHERE carrier.status <> 'rescheduled' AND p.transaction_fee IS NOT NULL
          AND p.status IN ('completed', 'refunded', 'partially_refunded')
        UNION ALL
        -- A settled payment its own booking does not carry: counted on that booking.
        SELECT p.clinic_id, p.booking_id, p.booking_created_at, p.transaction_fee
        FROM payment_records p
        JOIN bookings own ON own.clinic_id = p.clinic_id AND own.booking_id = p.booking_id
                         AND own.created_at = p.booking_created_at
        WHERE p.transaction_fee IS NOT NULL AND p.status IN ('completed', 'refunded', 'partially_refunded')
          AND p.payment_id IS DISTINCT FROM own.payment_id
    ) fee
    GROUP BY fee.clinic_id, fee.booking_id, fee.booking_created_at
) f ON f.clinic_id = b.clinic_id AND f.booking_id = b.booking_id AND f.booking_created_at = b.created_at
GROUP BY b.clinic_id, (b.created_at AT TIME ZONE c.timezone)::date, b.service_id;

-- Required by REFRESH MATERIALIZED VIEW CONCURRENTLY.
CREATE UNIQUE INDEX booking_analytics_daily_unique_idx
    ON booking_analytics_daily (clinic_id, booking_date, service_id);
CREATE INDEX booking_analytics_daily_date_idx ON booking_analytics_daily (booking_date);
"""


async def forwards():
    return raw_sql_migration(ID, DESCRIPTION, SQL)
