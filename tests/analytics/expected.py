"""Expected analytics figures computed straight from the ``bookings`` table (never from the view), for the
in-process tests and the browser tests alike. Same definitions as web/analytics/services.py, written apart."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

EXPECTED_TOTALS = """
SELECT coalesce(sum(CASE WHEN b.status <> 'rescheduled' THEN 1 ELSE 0 END), 0) AS bookings,
       coalesce(sum(CASE WHEN b.status = 'completed' THEN 1 ELSE 0 END), 0) AS completed,
       coalesce(sum(CASE WHEN b.status = 'cancelled' THEN 1 ELSE 0 END), 0) AS cancelled,
       coalesce(sum(CASE WHEN b.status = 'no_show' THEN 1 ELSE 0 END), 0) AS no_shows,
       coalesce(sum(CASE WHEN b.status <> 'rescheduled' AND b.payment_status IN ('paid', 'partially_refunded', 'refunded')
                         THEN 1 ELSE 0 END), 0) AS paid_bookings,
       coalesce(sum(CASE WHEN b.status <> 'rescheduled' AND b.payment_status IN ('paid', 'partially_refunded', 'refunded')
                         THEN b.final_amount - b.refunded_amount ELSE 0 END), 0) AS revenue
FROM bookings b
JOIN clinics c ON c.clinic_id = b.clinic_id
WHERE date(timezone(c.timezone, b.created_at)) BETWEEN $1 AND $2
  AND b.clinic_id = ANY($3::uuid[])
  AND ($4::uuid IS NULL OR b.service_id = $4)
"""

EXPECTED_CSV_ROWS = """
SELECT date(timezone(c.timezone, b.created_at)) AS day, c.name AS clinic, s.name AS service,
       sum(CASE WHEN b.status <> 'rescheduled' THEN 1 ELSE 0 END) AS bookings,
       sum(CASE WHEN b.status = 'completed' THEN 1 ELSE 0 END) AS completed,
       sum(CASE WHEN b.status = 'cancelled' THEN 1 ELSE 0 END) AS cancelled,
       sum(CASE WHEN b.status = 'no_show' THEN 1 ELSE 0 END) AS no_shows,
       sum(CASE WHEN b.status = 'rescheduled' THEN 1 ELSE 0 END) AS rescheduled,
       sum(CASE WHEN b.status <> 'rescheduled' AND b.payment_status IN ('paid', 'partially_refunded', 'refunded')
                THEN 1 ELSE 0 END) AS paid_bookings,
       sum(CASE WHEN b.status <> 'rescheduled' AND b.payment_status IN ('paid', 'partially_refunded', 'refunded')
                THEN b.final_amount - b.refunded_amount ELSE 0 END) AS revenue
FROM bookings b
JOIN clinics c ON c.clinic_id = b.clinic_id
JOIN services s ON s.service_id = b.service_id
WHERE date(timezone(c.timezone, b.created_at)) BETWEEN $1 AND $2
  AND b.clinic_id = ANY($3::uuid[])
  AND ($4::uuid IS NULL OR b.service_id = $4)
GROUP BY 1, 2, 3
ORDER BY 1, 2, 3
"""


def spreadsheet_safe(text: str) -> str:
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def expected_kpis(row) -> dict:
    """The six KPIs from a row of EXPECTED_TOTALS."""
    over = row["completed"] + row["no_shows"]
    return {
        "bookings": row["bookings"], "completed": row["completed"], "cancelled": row["cancelled"],
        "no_show_rate": (Decimal(100 * row["no_shows"]) / over).quantize(Decimal("0.1"), ROUND_HALF_UP) if over else None,
        "revenue": row["revenue"],
        "average_booking_value": (row["revenue"] / row["paid_bookings"]).quantize(Decimal("0.01"), ROUND_HALF_UP)
        if row["paid_bookings"] else None,
    }


def expected_csv(rows) -> list[list[str]]:
    """Rows of EXPECTED_CSV_ROWS as the CSV must hold them (without the header)."""
    return [
        [row["day"].isoformat(), spreadsheet_safe(row["clinic"]), spreadsheet_safe(row["service"]),
         str(row["bookings"]), str(row["completed"]), str(row["cancelled"]), str(row["no_shows"]),
         str(row["rescheduled"]), str(row["paid_bookings"]), f"{row['revenue']:.2f}"]
        for row in rows
    ]
