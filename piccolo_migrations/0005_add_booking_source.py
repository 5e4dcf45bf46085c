"""The design's V2__add_booking_source, with NOT NULL and the values the app writes.

The design's column was nullable and unchecked, so a typo or a NULL would silently fall out of every
per-source figure.
"""

from piccolo_migrations._raw import raw_sql_migration

ID = "2026-11-26T00:00:05:000000"
VERSION = "1.38.0"
DESCRIPTION = "V2: bookings.booking_source"

SQL = r"""
ALTER TABLE bookings ADD COLUMN booking_source VARCHAR(20) NOT NULL DEFAULT 'app';
ALTER TABLE bookings ADD CONSTRAINT bookings_booking_source_check
    CHECK (booking_source IN ('app', 'web', 'walk_in', 'phone'));
"""


async def forwards():
    return raw_sql_migration(ID, DESCRIPTION, SQL)
