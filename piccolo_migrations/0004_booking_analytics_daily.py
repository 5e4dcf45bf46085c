"""The design's booking_analytics_daily materialized view (3.2), made to give numbers managers can trust.

Fixed: the day is the clinic-local day (the design's DATE_TRUNC('day', created_at) cuts days in the
session's TimeZone, so the same data gave different days depending on who refreshed it); revenue counts
only money kept (paid, minus refunds) instead of every booking's price; a rescheduled booking is counted
once (its replacement carries it), not twice.
"""

from piccolo_migrations._raw import raw_sql_migration

ID = "2026-11-26T00:00:04:000000"
VERSION = "1.38.0"
DESCRIPTION = "booking_analytics_daily materialized view"

SQL = r"""
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
        AS avg_booking_value
FROM bookings b
JOIN clinics c ON c.clinic_id = b.clinic_id
GROUP BY b.clinic_id, (b.created_at AT TIME ZONE c.timezone)::date, b.service_id;

-- Required by REFRESH MATERIALIZED VIEW CONCURRENTLY.
CREATE UNIQUE INDEX booking_analytics_daily_unique_idx
    ON booking_analytics_daily (clinic_id, booking_date, service_id);
CREATE INDEX booking_analytics_daily_date_idx ON booking_analytics_daily (booking_date);
"""


async def forwards():
    return raw_sql_migration(ID, DESCRIPTION, SQL)
