"""The analytics feature's SQL: the refresh of the materialized view (and its record, an upsert that keeps
the latest time), the manager's scope, and the view's rows with the previous period beside them."""

VIEW_NAME = "booking_analytics_daily"


# CONCURRENTLY: managers keep reading the old figures while the new ones are computed.
REFRESH = f"REFRESH MATERIALIZED VIEW CONCURRENTLY {VIEW_NAME}"

# now() is the start of the refreshing transaction: everything committed before it is in the view.
# GREATEST: of two overlapping refreshes, the one that commits last never moves the time backwards.
RECORD_REFRESH = """
INSERT INTO analytics_refreshes AS r (view_name, refreshed_at) VALUES ($1, now())
ON CONFLICT (view_name) DO UPDATE SET refreshed_at = GREATEST(r.refreshed_at, EXCLUDED.refreshed_at)
"""

# The clinics and services a manager may see ($1 NULL: a manager of every clinic).
SCOPE = """
SELECT c.clinic_id, c.name AS clinic_name, c.timezone, s.service_id, s.name AS service_name, s.is_active
FROM clinics c
LEFT JOIN services s ON s.clinic_id = c.clinic_id
WHERE $1::uuid IS NULL OR c.clinic_id = $1
ORDER BY c.name, c.clinic_id, s.name, s.service_id
"""

_SUMS = """sum(v.total_bookings)::bigint AS total_bookings, sum(v.completed_bookings)::bigint AS completed_bookings,
       sum(v.cancelled_bookings)::bigint AS cancelled_bookings, sum(v.no_show_bookings)::bigint AS no_show_bookings,
       sum(v.rescheduled_bookings)::bigint AS rescheduled_bookings, sum(v.paid_bookings)::bigint AS paid_bookings,
       sum(v.total_revenue) AS total_revenue, sum(v.gross_revenue) AS gross_revenue,
       sum(v.refunded_amount) AS refunded_amount, sum(v.gateway_fees) AS gateway_fees"""

# What the page shows, summed by PostgreSQL in one pass over the view's rows of the period ($2..$3) and of
# the period before it ($1..$2 - 1): per period the totals (level 3), per day (level 1) and per service
# (level 2). A page of 30 days over 44 clinics reads ~240 sums instead of ~5,000 rows. The view alone, no
# join: the names are the manager's scope's, and with joins the prepared statement's generic plan (estimating
# one row) turned to nested loops over clinics and services, 4× slower.
VIEW_SUMS = f"""
SELECT v.in_period, GROUPING(v.booking_date, v.service_id) AS level, v.booking_date, v.service_id,
       {_SUMS}
FROM (
    SELECT v.*, v.booking_date >= $2 AS in_period
    FROM booking_analytics_daily v
    WHERE v.booking_date BETWEEN $1 AND $3
      AND v.clinic_id = ANY($4::uuid[])
      AND ($5::uuid IS NULL OR v.service_id = $5)
) v
GROUP BY GROUPING SETS ((v.in_period), (v.in_period, v.booking_date), (v.in_period, v.service_id))
"""
LEVEL_TOTAL, LEVEL_DAY, LEVEL_SERVICE = 3, 1, 2

# The view's rows of a period, one per clinic, day and service (the CSV).
VIEW_ROWS = """
SELECT v.booking_date, v.clinic_id, c.name AS clinic_name, v.service_id, s.name AS service_name,
       v.total_bookings, v.completed_bookings, v.cancelled_bookings, v.no_show_bookings,
       v.rescheduled_bookings, v.paid_bookings, v.total_revenue, v.gross_revenue, v.refunded_amount, v.gateway_fees
FROM booking_analytics_daily v
JOIN clinics c ON c.clinic_id = v.clinic_id
JOIN services s ON s.service_id = v.service_id
WHERE v.booking_date BETWEEN $1 AND $2
  AND v.clinic_id = ANY($3::uuid[])
  AND ($4::uuid IS NULL OR v.service_id = $4)
ORDER BY v.booking_date, c.name, v.clinic_id, s.name, v.service_id
"""
