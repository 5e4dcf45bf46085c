"""Expected analytics figures computed straight from the ``bookings`` table (never from the view), for the
in-process tests, the view's test and the browser tests alike. Same definitions as web/analytics/services.py
and the view's migration, written apart, once: the KPIs and the CSV rows add up the daily figures."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

# The daily figures by hand, one row per clinic, clinic-local day and service: what the view
# booking_analytics_daily must hold (tests/db/test_analytics_view.py), and what the KPIs and the CSV add up.
DAILY_FIGURES = """
SELECT b.clinic_id,
       date(timezone(c.timezone, b.created_at)) AS booking_date,
       b.service_id,
       sum(CASE WHEN b.status <> 'rescheduled' THEN 1 ELSE 0 END) AS total_bookings,
       sum(CASE WHEN b.status = 'completed' THEN 1 ELSE 0 END) AS completed_bookings,
       sum(CASE WHEN b.status = 'cancelled' THEN 1 ELSE 0 END) AS cancelled_bookings,
       sum(CASE WHEN b.status = 'no_show' THEN 1 ELSE 0 END) AS no_show_bookings,
       sum(CASE WHEN b.status = 'rescheduled' THEN 1 ELSE 0 END) AS rescheduled_bookings,
       sum(CASE WHEN b.status <> 'rescheduled' AND b.payment_status IN ('paid', 'partially_refunded', 'refunded')
                THEN b.final_amount - b.refunded_amount ELSE 0 END) AS total_revenue,
       sum(CASE WHEN b.status <> 'rescheduled' AND b.payment_status IN ('paid', 'partially_refunded', 'refunded')
                THEN 1 ELSE 0 END) AS paid_bookings,
       round(avg(CASE WHEN b.status NOT IN ('rescheduled', 'cancelled') THEN b.final_amount END), 2)
           AS avg_booking_value,
       sum(CASE WHEN b.status <> 'rescheduled' AND b.payment_status IN ('paid', 'partially_refunded', 'refunded')
                THEN b.final_amount ELSE 0 END) AS gross_revenue,
       sum(CASE WHEN b.status <> 'rescheduled' AND b.payment_status IN ('paid', 'partially_refunded', 'refunded')
                THEN b.refunded_amount ELSE 0 END) AS refunded_amount,
       -- A booking's fees: its carried payment's (not on a rescheduled booking, whose replacement carries it),
       -- plus every settled payment started for it, minus the carried one when it was started for it too.
       sum(CASE WHEN b.status <> 'rescheduled' THEN coalesce(carried.transaction_fee, 0) ELSE 0 END
           + coalesce(started.fees, 0)
           - CASE WHEN carried.booking_id = b.booking_id AND carried.booking_created_at = b.created_at
                  THEN coalesce(carried.transaction_fee, 0) ELSE 0 END) AS gateway_fees
FROM bookings b
JOIN clinics c USING (clinic_id)
LEFT JOIN payment_records carried ON carried.clinic_id = b.clinic_id AND carried.payment_id = b.payment_id
    AND carried.status IN ('completed', 'refunded', 'partially_refunded')
LEFT JOIN (
    SELECT clinic_id, booking_id, booking_created_at, sum(transaction_fee) AS fees FROM payment_records
    WHERE status IN ('completed', 'refunded', 'partially_refunded')
    GROUP BY clinic_id, booking_id, booking_created_at
) started ON started.clinic_id = b.clinic_id AND started.booking_id = b.booking_id
    AND started.booking_created_at = b.created_at
GROUP BY 1, 2, 3
"""

# $1, $2: first and last clinic-local day; $3: the clinics; $4: one service, or NULL for all.
_CHOSEN = """
WHERE f.booking_date BETWEEN $1 AND $2
  AND f.clinic_id = ANY($3::uuid[])
  AND ($4::uuid IS NULL OR f.service_id = $4)
"""

EXPECTED_TOTALS = f"""
SELECT coalesce(sum(f.total_bookings), 0)::bigint AS bookings,
       coalesce(sum(f.completed_bookings), 0)::bigint AS completed,
       coalesce(sum(f.cancelled_bookings), 0)::bigint AS cancelled,
       coalesce(sum(f.no_show_bookings), 0)::bigint AS no_shows,
       coalesce(sum(f.paid_bookings), 0)::bigint AS paid_bookings,
       coalesce(sum(f.total_revenue), 0) AS revenue,
       coalesce(sum(f.gross_revenue), 0) AS gross_revenue,
       coalesce(sum(f.refunded_amount), 0) AS refunds,
       coalesce(sum(f.gateway_fees), 0) AS gateway_fees
FROM ({DAILY_FIGURES}) f
{_CHOSEN}
"""

EXPECTED_CSV_ROWS = f"""
SELECT f.booking_date AS day, c.name AS clinic, s.name AS service,
       f.total_bookings AS bookings, f.completed_bookings AS completed, f.cancelled_bookings AS cancelled,
       f.no_show_bookings AS no_shows, f.rescheduled_bookings AS rescheduled, f.paid_bookings,
       f.total_revenue AS revenue, f.gross_revenue, f.refunded_amount AS refunds, f.gateway_fees
FROM ({DAILY_FIGURES}) f
JOIN clinics c ON c.clinic_id = f.clinic_id
JOIN services s ON s.service_id = f.service_id
{_CHOSEN}
ORDER BY 1, 2, 3
"""


def spreadsheet_safe(text: str) -> str:
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def expected_kpis(row) -> dict:
    """The KPIs from a row of EXPECTED_TOTALS."""
    over = row["completed"] + row["no_shows"]
    return {
        "bookings": row["bookings"], "completed": row["completed"], "cancelled": row["cancelled"],
        "no_show_rate": (Decimal(100 * row["no_shows"]) / over).quantize(Decimal("0.1"), ROUND_HALF_UP) if over else None,
        "gross_revenue": row["gross_revenue"], "refunds": row["refunds"], "revenue": row["revenue"],
        "gateway_fees": row["gateway_fees"], "net_revenue": row["revenue"] - row["gateway_fees"],
        "average_booking_value": (row["revenue"] / row["paid_bookings"]).quantize(Decimal("0.01"), ROUND_HALF_UP)
        if row["paid_bookings"] else None,
    }


def expected_csv(rows) -> list[list[str]]:
    """Rows of EXPECTED_CSV_ROWS as the CSV must hold them (without the header)."""
    return [
        [row["day"].isoformat(), spreadsheet_safe(row["clinic"]), spreadsheet_safe(row["service"]),
         str(row["bookings"]), str(row["completed"]), str(row["cancelled"]), str(row["no_shows"]),
         str(row["rescheduled"]), str(row["paid_bookings"]), f"{row['revenue']:.2f}", f"{row['gross_revenue']:.2f}",
         f"{row['refunds']:.2f}", f"{row['gateway_fees']:.2f}", f"{row['revenue'] - row['gateway_fees']:.2f}"]
        for row in rows
    ]
