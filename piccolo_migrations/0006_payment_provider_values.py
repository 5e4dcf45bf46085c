"""The design's V3__add_payment_provider_enum, as a CHECK constraint over the providers the app uses.

An enum type would need ALTER TYPE ... ADD VALUE for every new gateway (which cannot be used in the
transaction that adds it on older servers) and Piccolo cannot describe it; the design's list also lacked
the providers the service offers ('sandbox', 'clinic').
"""

from piccolo_migrations._raw import raw_sql_migration

ID = "2026-11-26T00:00:06:000000"
VERSION = "1.38.0"
DESCRIPTION = "V3: payment_records.payment_provider values"

SQL = r"""
ALTER TABLE payment_records ADD CONSTRAINT payment_records_provider_check
    CHECK (payment_provider IN ('midtrans', 'xendit', 'manual', 'system', 'sandbox', 'clinic'));
"""


async def forwards():
    return raw_sql_migration(ID, DESCRIPTION, SQL)
