"""Piccolo's snapshot of the column migration 0012 added with raw SQL (``fake=True``, see 0007)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Varchar
from piccolo.columns.indexes import IndexMethod

from web.booking.codes import new_booking_code

ID = "2026-11-26T00:00:13:000000"
VERSION = "1.38.0"
DESCRIPTION = "True"


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="vetbook", description=DESCRIPTION, fake=True
    )

    manager.add_column(
        table_class_name="Booking",
        tablename="bookings",
        column_name="booking_code",
        db_column_name="booking_code",
        column_class_name="Varchar",
        column_class=Varchar,
        params={
            "length": 8,
            "default": new_booking_code,
            "null": False,
            "primary_key": False,
            "unique": False,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )

    return manager
