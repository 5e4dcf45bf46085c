"""When an unpaid booking expires: the engine sets it on confirmation (NULL means it never expires, e.g.
rows written before this column existed)."""

from piccolo_migrations._raw import raw_sql_migration

ID = "2026-11-26T00:00:10:000000"
VERSION = "1.38.0"
DESCRIPTION = "bookings.payment_due_at and its expiry index"

SQL = r"""
-- An unpaid booking past this moment is cancelled (payment_status 'failed') and its place returned.
ALTER TABLE bookings ADD COLUMN payment_due_at TIMESTAMPTZ;
CREATE INDEX bookings_payment_due_idx ON bookings (payment_due_at) WHERE status = 'pending_payment';
"""


async def forwards():
    return raw_sql_migration(ID, DESCRIPTION, SQL)
